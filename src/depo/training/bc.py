"""Behaviour cloning: SFT on desirable trajectories, loss on assistant tokens only.

The Trainer's own causal-LM loss does the work (labels are −100 off the assistant tokens, and it
normalises by supervised tokens across gradient accumulation); `BCTrainer` only brings the
length-bucketed, resume-stable batch order, and runs the model without the padding mask: rows are
right-padded, so under the causal mask no real token attends to a pad and no scored logit changes,
while with a padding mask CPU attention builds and applies a full mask instead of its causal mode
(1.5x the time of a pretraining step). The mask stays in the batch for the Trainer's token count.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from transformers import Trainer, set_seed

from depo.policy.base import PolicyModel
from depo.policy.lora import add_lora
from depo.training.config import BCConfig
from depo.training.data import BatchBlockSampler, SFTCollator, in_planned_order, plan_batches, tokenize_frame
from depo.training.run import LogStep, TrainingOutcome, checkpoint_to_resume, log_callbacks, with_output_dir


def pad_token_id(tokenizer) -> int:
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token before training")
    return tokenizer.pad_token_id


class BCTrainer(Trainer):
    """`Trainer` over tokenised trajectory rows (see `depo.training.data.tokenize_frame`)."""

    def __init__(self, model, args: BCConfig, train_dataset: list[dict[str, Any]], processing_class,
                 eval_dataset: list[dict[str, Any]] | None = None, callbacks=None):
        batches = plan_batches([len(row["input_ids"]) for row in train_dataset], args.per_device_train_batch_size,
                               args.seed)
        super().__init__(
            model=model,
            args=args,
            data_collator=SFTCollator(pad_token_id(processing_class)),
            train_dataset=in_planned_order(train_dataset, batches),
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            callbacks=callbacks,
        )

    def _get_train_sampler(self, train_dataset=None):
        return BatchBlockSampler(len(self.train_dataset), self.args.per_device_train_batch_size, self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # right padding: the padding mask changes no scored logit (see the module docstring)
        inputs = {name: value for name, value in inputs.items() if name != "attention_mask"}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def train_bc(policy: PolicyModel, bc_dataset: pl.DataFrame, config: BCConfig, output_dir: str | Path,
             log_step: LogStep | None = None) -> TrainingOutcome:
    """SFT `policy` on `bc_dataset` (desirable trajectories); the model is trained in place.

    With finetuning="lora" the adapter is merged into the returned model. `log_step` receives every
    Trainer log entry and its global step while training runs (see `depo.training.run.ForwardLogs`).
    """
    if "label" in bc_dataset.columns and not bc_dataset["label"].all():
        raise ValueError("bc_dataset must hold desirable trajectories only (some rows have label=False)")
    args = with_output_dir(config, output_dir)
    rows, dropped = tokenize_frame(bc_dataset, policy.tokenizer, args.max_length)
    set_seed(args.seed)  # the LoRA init draws from the global RNG
    model = policy.model
    if args.finetuning == "lora":
        model = add_lora(model, r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout,
                         target_modules=args.lora_target_modules)
    trainer = BCTrainer(model, args, rows, policy.tokenizer, callbacks=log_callbacks(log_step))
    trainer.train(resume_from_checkpoint=checkpoint_to_resume(args))
    if args.finetuning == "lora":
        model = model.merge_and_unload()
    return TrainingOutcome(PolicyModel(model.eval(), policy.tokenizer), trainer.state.log_history, dropped)
