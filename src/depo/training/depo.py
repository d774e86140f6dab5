"""DEPO / KTO preference training: a LoRA adapter on the BC model, the reference is the adapter switched off.

`DEPOTrainer` is a `transformers.Trainer` that only brings the batching (the fixed, length-bucketed
plan of `depo.training.data`, every batch at least 2 rows), the loss of `depo.training.losses` and its
metrics; the optimiser, schedule, checkpoints, resuming and distributed launch are the Trainer's own.

Reference log-probs of the matched and the mismatched (KL) sequences are computed once, before training,
with the adapter disabled, and stored with the rows. They depend only on the frozen base weights and on
the batch plan (seeded), so a resumed run recomputes exactly the same values.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import torch
from accelerate.utils import gather_object
from peft import PeftModel
from transformers import Trainer, set_seed

from depo.policy.base import PolicyModel
from depo.policy.lora import add_lora, adapter_disabled
from depo.training.bc import pad_token_id
from depo.training.config import DEPOConfig
from depo.training.data import (
    BatchBlockSampler,
    DEPOCollator,
    add_mismatched_pairs,
    plan_batches,
    select_data_fraction,
    tokenize_frame,
)
from depo.training.losses import depo_loss, efficiency_bonus, sequence_logps
from depo.training.run import TrainingOutcome, checkpoint_to_resume, with_output_dir

DATASET_COLUMNS = ("label", "steps", "avg_tokens_per_step")  # copied from the frame into each row
LOGGED_METRICS = ("kl", "rewards/desirable", "rewards/undesirable", "bonus/mean")


def disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


class DEPOTrainer(Trainer):
    """`Trainer` over tokenised trajectory rows carrying `label`, `steps` and `avg_tokens_per_step`
    (see `depo.training.data.tokenize_frame`); `model` is a LoRA (peft) model whose base is the reference.

    Logged per step, besides the Trainer's loss, learning_rate, grad_norm and train_tokens_per_second:
    `kl` (the reference point z0), `rewards/desirable` and `rewards/undesirable` (mean implied reward
    r = log πθ(y|x) − log π_ref(y|x) per label) and `bonus/mean` (mean efficiency bonus b), each averaged
    over the steps since the last log (and over processes).
    """

    loss_is_scaled_for_ga = False  # a batch mean: the Trainer divides it by the accumulation steps

    def __init__(self, model: PeftModel, args: DEPOConfig, train_dataset: list[dict[str, Any]], processing_class,
                 callbacks=None):
        if not isinstance(model, PeftModel):
            raise TypeError(
                f"DEPOTrainer needs a LoRA (peft) model, its reference being the adapter disabled; got "
                f"{type(model).__name__} (wrap it with depo.policy.lora.add_lora)"
            )
        if args.disable_dropout:
            disable_dropout(model)
        batches = plan_batches([len(row["input_ids"]) for row in train_dataset], args.per_device_train_batch_size,
                               args.seed, min_batch_size=2, labels=[bool(row["label"]) for row in train_dataset])
        super().__init__(
            model=model,
            args=args,
            data_collator=DEPOCollator(pad_token_id(processing_class)),
            train_dataset=add_mismatched_pairs(train_dataset, batches, args.max_length),
            processing_class=processing_class,
            callbacks=callbacks,
        )
        self.train_dataset = self._with_reference_logps(self.train_dataset)
        self._metrics: dict[str, list[float]] = defaultdict(list)

    def _get_train_sampler(self, train_dataset=None):
        return BatchBlockSampler(len(self.train_dataset), self.args.per_device_train_batch_size, self.args.seed)

    @torch.no_grad()
    def _with_reference_logps(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`rows` with `reference_logps` and `reference_kl_logps`, computed batch by batch as training will see
        them; under several processes each takes every n-th batch and the results are shared."""
        size = self.args.per_device_train_batch_size
        starts = range(0, len(rows), size)
        mine = starts[self.accelerator.process_index :: self.accelerator.num_processes]
        was_training = self.model.training
        self.model.eval()
        computed = []
        with adapter_disabled(self.model), self.accelerator.autocast():  # the precision training will use
            for start in mine:
                batch = {name: value.to(self.model.device) for name, value in
                         self.data_collator(rows[start : start + size]).items()}
                matched = sequence_logps(self.model, batch["input_ids"], batch["attention_mask"],
                                         batch["assistant_mask"])
                mismatched = sequence_logps(self.model, batch["kl_input_ids"], batch["kl_attention_mask"],
                                            batch["kl_assistant_mask"])
                computed.append((start, matched.tolist(), mismatched.tolist()))
        self.model.train(was_training)
        reference = {}
        for start, matched, mismatched in gather_object(computed):
            for offset, pair in enumerate(zip(matched, mismatched)):
                reference[start + offset] = pair
        return [
            {**row, "reference_logps": reference[i][0], "reference_kl_logps": reference[i][1]}
            for i, row in enumerate(rows)
        ]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args = self.args
        # z0 is a detached estimate, so its policy pass needs no graph.
        with torch.no_grad():
            policy_kl_logps = sequence_logps(model, inputs["kl_input_ids"], inputs["kl_attention_mask"],
                                             inputs["kl_assistant_mask"])
        policy_logps = sequence_logps(model, inputs["input_ids"], inputs["attention_mask"], inputs["assistant_mask"])
        bonus = efficiency_bonus(inputs["avg_tokens_per_step"], inputs["steps"], inputs["label"], args.alpha_tokens,
                                 args.alpha_steps, args.penalize_undesirable)
        loss, metrics = depo_loss(
            policy_logps, inputs["reference_logps"], policy_kl_logps, inputs["reference_kl_logps"], inputs["label"],
            bonus, beta=args.beta, desirable_weight=args.desirable_weight,
            undesirable_weight=args.undesirable_weight, bonus_placement=args.bonus_placement,
        )
        values = torch.tensor([metrics[name] for name in LOGGED_METRICS], device=loss.device)
        for name, value in zip(LOGGED_METRICS, self.accelerator.gather(values[None]).nanmean(0).tolist()):
            if not math.isnan(value):  # a batch without desirable (or undesirable) rows has no mean reward
                self._metrics[name].append(value)
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        logs.update({name: sum(values) / len(values) for name, values in self._metrics.items()})
        self._metrics.clear()
        super().log(logs, start_time)


def train_depo(policy: PolicyModel, depo_dataset: pl.DataFrame, config: DEPOConfig,
               output_dir: str | Path) -> TrainingOutcome:
    """DEPO (or KTO: zero alphas) on `depo_dataset` from the BC model `policy`, trained in place.

    The first `config.data_fraction` of the rows (by data_fraction_rank) are used; the LoRA adapter is
    merged into the returned model.
    """
    args = with_output_dir(config, output_dir)
    frame = select_data_fraction(depo_dataset, args.data_fraction)
    rows, dropped = tokenize_frame(frame, policy.tokenizer, args.max_length, columns=DATASET_COLUMNS)
    set_seed(args.seed)  # the LoRA init draws from the global RNG
    model = add_lora(policy.model, r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout,
                     target_modules=args.lora_target_modules)
    trainer = DEPOTrainer(model, args, rows, policy.tokenizer)
    trainer.train(resume_from_checkpoint=checkpoint_to_resume(args))
    return TrainingOutcome(PolicyModel(model.merge_and_unload().eval(), policy.tokenizer), trainer.state.log_history,
                           dropped)
