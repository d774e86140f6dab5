"""DEPO / KTO preference training: a LoRA adapter on the BC model, the reference is the adapter switched off.

`DEPOTrainer` is a `transformers.Trainer` that only brings the batching (the fixed, length-bucketed
plan of `depo.training.data`, every batch at least 2 rows), the loss of `depo.training.losses` and its
metrics; the optimiser, schedule, checkpoints, resuming and distributed launch are the Trainer's own.

Reference log-probs of the matched and the mismatched (KL) sequences are computed once, before training,
with the adapter disabled, and stored with the rows. They depend only on the frozen base weights and on
the batch plan (seeded), so a resumed run recomputes exactly the same values.

The matched and the KL sequence of a row share its prompt, and all rows share the environment's system
prompt, so a batch is one pass (`paired_logps`): the system prompt runs once, each row's prompt once for
both completions (`depo.training.data.DEPOCollator`), and logits are computed only where scored. The KL
completion's log-probs get no gradient (z0 is detached); its few tokens ride along in the same pass.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import torch
from accelerate.utils import extract_model_from_parallel, gather_object
from peft import PeftModel
from transformers import DynamicCache, Trainer, set_seed

from depo.policy.attention import attention_implementation
from depo.policy.base import PolicyModel
from depo.policy.lora import add_lora, adapter_disabled
from depo.training.attention import PACKED_ATTENTION, PackedPairs
from depo.training.bc import pad_token_id
from depo.training.config import DEPOConfig
from depo.training.data import (
    COMPLETION,
    KL_COMPLETION,
    PROMPT,
    BatchBlockSampler,
    DEPOCollator,
    add_mismatched_pairs,
    plan_batches,
    select_data_fraction,
    shared_prefix_length,
    shared_prompt_attention_mask,
    tokenize_frame,
)
from depo.training.losses import depo_loss, efficiency_bonus, labelled_logps
from depo.training.run import LogStep, TrainingOutcome, checkpoint_to_resume, log_callbacks, with_output_dir

# Packed rows at least this long (after the shared prefix) are attended row by row, two causal attentions
# each; shorter ones in one masked call for the batch, which their few blocks make cheaper (benchmark rows
# of ~300 tokens: TRL ratio 2.06x masked, 1.45x row by row; default-data rows up to 7k tokens: 2.5x
# faster row by row).
PER_ROW_ATTENTION_FROM = 512
DATASET_COLUMNS = ("label", "steps", "avg_tokens_per_step")  # copied from the frame into each row
LOGGED_METRICS = ("kl", "rewards/desirable", "rewards/undesirable", "bonus/mean")

logger = logging.getLogger(__name__)


def check_label_balance(labels: list[bool], desirable_weight: float, undesirable_weight: float) -> float | None:
    """λD·nD / (λU·nU), with a warning outside KTO's recommended [1, 4/3] (None if a label is missing)."""
    n_desirable = sum(labels)
    n_undesirable = len(labels) - n_desirable
    if not n_desirable or not n_undesirable or not undesirable_weight:
        return None
    ratio = desirable_weight * n_desirable / (undesirable_weight * n_undesirable)
    if not 1.0 <= ratio <= 4 / 3:
        logger.warning(
            "desirable_weight x n_desirable / (undesirable_weight x n_undesirable) = %.1f x %d / (%.1f x %d) = %.2f, "
            "outside [1, 4/3], the range KTO recommends: adjust desirable_weight or undesirable_weight",
            desirable_weight, n_desirable, undesirable_weight, n_undesirable, ratio,
        )
    return ratio


def paired_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed assistant-token log-probs of the matched and of the mismatched (KL) sequence of every row of
    a `DEPOCollator` batch, from one pass over the packed rows (each row's two sequences attended apart by
    `depo.training.attention.packed_pair_attention`).

    The tokens every row starts with (the environment's system prompt, `shared_prefix_length`) run once,
    for one row; their keys and values serve all rows, and gradients flow back through them. Under
    gradient checkpointing the layers drop a cache, so there each row runs its whole prefix, and since
    backward recomputes the layers, the caller keeps the model in `PACKED_ATTENTION` through backward
    (`DEPOTrainer.train` does).
    """
    unwrapped = extract_model_from_parallel(model)
    config = unwrapped.config
    input_ids, position_ids = batch["input_ids"], batch["position_ids"]
    window = getattr(config, "sliding_window", None)
    if window is not None and input_ids.shape[1] > window:
        raise ValueError(
            f"packed DEPO rows of {input_ids.shape[1]} tokens exceed the model's sliding attention window ({window}), "
            "which the packed attention does not apply: lower max_length"
        )
    checkpointing = model.training and torch.is_grad_enabled() and any(
        getattr(module, "gradient_checkpointing", False) for module in unwrapped.modules())
    if checkpointing and config._attn_implementation != PACKED_ATTENTION:
        raise RuntimeError(
            "under gradient checkpointing backward recomputes the layers with the attention set at that time: run "
            "forward and backward inside attention_implementation(model, PACKED_ATTENTION), as DEPOTrainer.train does"
        )
    prefix = 0 if checkpointing else shared_prefix_length(input_ids, batch["segment_ids"])
    pairs = PackedPairs.from_segments(batch["segment_ids"][:, prefix:], PROMPT, COMPLETION, KL_COMPLETION)
    if input_ids.shape[1] - prefix < PER_ROW_ATTENTION_FROM:
        pairs.mask = shared_prompt_attention_mask(batch["segment_ids"])[:, :, prefix:]
    cache = None
    with attention_implementation(model, PACKED_ATTENTION):
        if prefix:
            cache = DynamicCache(config=config)
            # one row that is all prompt: a plain causal attention
            model(input_ids=input_ids[:1, :prefix], position_ids=position_ids[:1, :prefix], cache=cache,
                  use_cache=True, logits_to_keep=torch.zeros(1, prefix, dtype=torch.bool, device=input_ids.device),
                  packed_pairs=PackedPairs([prefix], [0], [0]))
            if cache.get_seq_length() != prefix:
                raise RuntimeError(f"{type(unwrapped).__name__} did not fill the key/value cache passed as `cache`: "
                                   "DEPO needs a transformers causal LM that takes it")
            cache.batch_repeat_interleave(input_ids.shape[0])
        matched, mismatched = labelled_logps(
            model, input_ids[:, prefix:], None, [batch["labels"][:, prefix:], batch["kl_labels"][:, prefix:]],
            position_ids=position_ids[:, prefix:], cache=cache, packed_pairs=pairs,
        )
    if not pairs.attention_calls:
        raise RuntimeError(
            f"{type(unwrapped).__name__} does not run its attention through transformers' attention interface, "
            "which DEPO's packed rows need"
        )
    return matched, mismatched


def disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


class DEPOTrainer(Trainer):
    """`Trainer` over tokenised trajectory rows carrying `label`, `steps` and `avg_tokens_per_step`
    (see `depo.training.data.tokenize_frame`); `model` is a LoRA (peft) model whose base is the reference.

    Logged per step, besides the Trainer's loss, learning_rate, grad_norm and train_tokens_per_second (of
    the packed rows: prompt once, both completions):
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

    def train(self, *args, **kwargs):
        # backward too must see the packed attention: under gradient checkpointing it recomputes the layers
        with attention_implementation(self.model, PACKED_ATTENTION):
            return super().train(*args, **kwargs)

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
                matched, mismatched = paired_logps(self.model, batch)
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
        policy_logps, policy_kl_logps = paired_logps(model, inputs)
        bonus = efficiency_bonus(inputs["avg_tokens_per_step"], inputs["steps"], inputs["label"], args.alpha_tokens,
                                 args.alpha_steps, args.penalize_undesirable)
        # z0 is a detached estimate: no gradient reaches the KL completion
        loss, metrics = depo_loss(
            policy_logps, inputs["reference_logps"], policy_kl_logps.detach(), inputs["reference_kl_logps"],
            inputs["label"], bonus, beta=args.beta, desirable_weight=args.desirable_weight,
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


def train_depo(policy: PolicyModel, depo_dataset: pl.DataFrame, config: DEPOConfig, output_dir: str | Path,
               log_step: LogStep | None = None) -> TrainingOutcome:
    """DEPO (or KTO: zero alphas) on `depo_dataset` from the BC model `policy`, trained in place.

    The first `config.data_fraction` of the rows (by data_fraction_rank) are used; the LoRA adapter is
    merged into the returned model. `log_step` receives every Trainer log entry and its global step
    while training runs (see `depo.training.run.ForwardLogs`).
    """
    args = with_output_dir(config, output_dir)
    frame = select_data_fraction(depo_dataset, args.data_fraction)
    rows, dropped = tokenize_frame(frame, policy.tokenizer, args.max_length, columns=DATASET_COLUMNS)
    check_label_balance([bool(row["label"]) for row in rows], args.desirable_weight, args.undesirable_weight)
    set_seed(args.seed)  # the LoRA init draws from the global RNG
    model = add_lora(policy.model, r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout,
                     target_modules=args.lora_target_modules)
    trainer = DEPOTrainer(model, args, rows, policy.tokenizer, callbacks=log_callbacks(log_step))
    trainer.train(resume_from_checkpoint=checkpoint_to_resume(args))
    return TrainingOutcome(PolicyModel(model.merge_and_unload().eval(), policy.tokenizer), trainer.state.log_history,
                           dropped)
