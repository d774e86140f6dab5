"""Preference-training throughput: `DEPOTrainer` at α = 0 against `trl.KTOTrainer`, same loss.

Both start from the same LoRA policy, see the same rows in the same batches (TRL's in DEPO's planned
order: TRL reads sequentially and builds its mismatched KL pairs by rotating within each batch, as
DEPO does), precompute reference log-probs and run in fp32, so their step-1 losses agree to float
precision; the benchmark reports the difference alongside the speed. TRL is an optional extra
(`pip install -e .[benchmarks]`), imported only here.

Where the difference comes from (profiled): both spend their time in the model's matmuls and
attention. TRL runs every prompt twice per step (a no-grad KL pass and the matched pass) and twice in
its reference pass; DEPO runs the system prompt, which every row shares, once per batch and each row's
prompt once for both of its completions (`depo.training.depo.paired_logps`), attending the two
completions as two causal attentions rather than under one mask. Both compute logits only at scored
positions.
"""
from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass

import polars as pl
import torch

from depo.benchmarks.measurement import Measurement, Target, interleaved, ratios, timed
from depo.policy.base import PolicyModel
from depo.policy.lora import add_lora
from depo.training import DEPOConfig, DEPOTrainer
from depo.training.data import tokenize_frame
from depo.training.depo import DATASET_COLUMNS

TRAINER_SPEEDUP_TARGET = Target(">=", 1.5)
QUIET = dict(use_cpu=True, dataloader_num_workers=0, report_to="none", disable_tqdm=True, logging_steps=1,
             save_strategy="no", num_train_epochs=1, learning_rate=1e-3, beta=0.2, seed=0)


def perturbed_lora(policy: PolicyModel, seed: int):
    """A LoRA copy of `policy.model` whose adapter is not zero: with a fresh adapter every implied
    reward is 0 and both losses are trivially 0.5, which would prove nothing."""
    torch.manual_seed(seed)
    model = add_lora(copy.deepcopy(policy.model), r=4, alpha=8)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return model


@dataclass(frozen=True)
class TrainingRun:
    samples_per_second: float
    step1_loss: float


def _step1_loss(trainer) -> float:
    return next(entry["loss"] for entry in trainer.state.log_history if "loss" in entry)


def run_depo(lora_model, tokenizer, frame: pl.DataFrame, batch_size: int,
             output_dir: str) -> tuple[TrainingRun, list[int]]:
    """One epoch of DEPOTrainer (α = 0) from the frame, tokenisation and reference pass included;
    also the frame rows in the order training read them."""
    def train():
        rows, _ = tokenize_frame(frame, tokenizer, None, columns=DATASET_COLUMNS)
        config = DEPOConfig(output_dir=output_dir, alpha_tokens=0.0, alpha_steps=0.0,
                            per_device_train_batch_size=batch_size, max_length=None, **QUIET)
        trainer = DEPOTrainer(lora_model, config, rows, tokenizer)
        trainer.train()
        return trainer

    trainer, seconds = timed(train)
    order = [trainer.train_dataset[i]["row_index"] for i in trainer._get_train_sampler()]
    return TrainingRun(frame.height / seconds, _step1_loss(trainer)), order


def run_trl_kto(lora_model, reference_model, tokenizer, frame: pl.DataFrame, order: list[int], batch_size: int,
                output_dir: str) -> TrainingRun:
    """One epoch of trl.KTOTrainer on the same rows, fed in `order`; dataset preparation and the
    reference pass (inside TRL's constructor) included."""
    import datasets
    from trl import KTOConfig, KTOTrainer

    messages, labels = frame["messages"].to_list(), frame["label"].to_list()

    def train():
        dataset = datasets.Dataset.from_list([
            {"prompt": messages[i][:-1], "completion": messages[i][-1:], "label": labels[i]} for i in order
        ])
        config = KTOConfig(output_dir=output_dir, precompute_ref_log_probs=True, bf16=False,
                           gradient_checkpointing=False, max_length=None, per_device_train_batch_size=batch_size,
                           **QUIET)
        trainer = KTOTrainer(model=lora_model, ref_model=reference_model, processing_class=tokenizer,
                             train_dataset=dataset, args=config)
        trainer.train()
        return trainer

    # TRL caches reference log-probs on disk by dataset fingerprint; with caching off every repeat
    # gets a fresh fingerprint and so pays for its own reference pass, as DEPO does.
    caching = datasets.is_caching_enabled()
    datasets.disable_caching()
    try:
        trainer, seconds = timed(train)
    finally:
        if caching:
            datasets.enable_caching()
    return TrainingRun(frame.height / seconds, _step1_loss(trainer))


def trainer_speedup(policy: PolicyModel, frame: pl.DataFrame, batch_size: int, repeats: int, seed: int) -> Measurement:
    """Samples/s of one DEPO (α = 0) epoch ÷ samples/s of one TRL KTO epoch on `frame` (single-turn rows,
    see `depo.benchmarks.workload.single_turn_preferences`), and how far apart their step-1 losses are."""
    lora_model = perturbed_lora(policy, seed)
    reference_model = copy.deepcopy(policy.model)
    depo_losses: list[float] = []
    trl_losses: list[float] = []
    with tempfile.TemporaryDirectory() as output_dir:
        # DEPO's reading order, fixed by its seeded batch plan, is what TRL must be fed.
        _, order = run_depo(copy.deepcopy(lora_model), policy.tokenizer, frame, batch_size, output_dir)

        def depo_rate() -> float:
            run, _ = run_depo(copy.deepcopy(lora_model), policy.tokenizer, frame, batch_size, output_dir)
            depo_losses.append(run.step1_loss)
            return run.samples_per_second

        def trl_rate() -> float:
            run = run_trl_kto(copy.deepcopy(lora_model), copy.deepcopy(reference_model), policy.tokenizer, frame,
                              order, batch_size, output_dir)
            trl_losses.append(run.step1_loss)
            return run.samples_per_second

        pairs = interleaved(depo_rate, trl_rate, repeats)
    # Every run starts from the same weights and batches, so all step-1 losses must agree.
    loss_difference = max(abs(d - t) for d in depo_losses for t in trl_losses)
    return Measurement(
        "trainer_speedup", "x", ratios(pairs), TRAINER_SPEEDUP_TARGET,
        details={
            "depo_samples_per_s": [a for a, _ in pairs], "trl_kto_samples_per_s": [b for _, b in pairs],
            "step1_loss_depo": depo_losses[0], "step1_loss_trl": trl_losses[0],
            "step1_loss_difference": loss_difference, "samples": frame.height, "batch_size": batch_size,
            "torch_threads": torch.get_num_threads(),
        },
    )
