"""Training configs: `transformers.TrainingArguments` plus what BC and DEPO add, TRL style.

Defaults follow the paper (BC: LoRA, lr 1e-4, 3 epochs; DEPO: LoRA on the BC model, lr 2e-5,
3 epochs, β = 0.2, λD = λU = 1, α1 = α2 = 3); the tiny CPU model overrides them in parameters.
Logging is per step with report_to="none" (Kedro attaches MLflow); tokens/s comes from the
Trainer's own `train_tokens_per_second` (non-padding input tokens).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from depo.training.losses import BONUS_PLACEMENTS

FINETUNING_MODES = ("lora", "full")


@dataclass
class PolicyTrainingConfig(TrainingArguments):
    """What BC and DEPO share: LoRA shape, sequence length limit, resume switch, logging defaults."""

    max_length: int | None = field(
        default=1024, metadata={"help": "Longer trajectories are dropped and counted (None: keep all)."}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Linear layers that get an adapter."},
    )
    resume: bool = field(
        default=False, metadata={"help": "Continue from the last checkpoint in output_dir when there is one."}
    )
    # TrainingArguments defaults changed for this project
    logging_steps: float = 1
    save_steps: float = 100
    report_to: None | str | list[str] = "none"
    include_num_input_tokens_seen: str | bool = "non_padding"
    remove_unused_columns: bool = False  # rows carry masks and counts the collators need

    def __post_init__(self):
        super().__post_init__()
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 tokens or None, got {self.max_length}")
        if self.lora_r <= 0:
            raise ValueError(f"lora_r must be positive, got {self.lora_r}")


@dataclass
class BCConfig(PolicyTrainingConfig):
    """Behaviour cloning (SFT on desirable trajectories, assistant tokens only)."""

    finetuning: str = field(
        default="lora",
        metadata={"help": "'lora' (paper) or 'full' (the randomly initialised tiny model needs full).",
                  "choices": list(FINETUNING_MODES)},
    )
    learning_rate: float = 1e-4
    num_train_epochs: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        if self.finetuning not in FINETUNING_MODES:
            raise ValueError(f"finetuning must be one of {FINETUNING_MODES}, got {self.finetuning!r}")


@dataclass
class DEPOConfig(PolicyTrainingConfig):
    """DEPO / KTO on the BC model with a LoRA adapter; the reference is the adapter switched off.

    KTO is alpha_tokens = alpha_steps = 0; the "undesirable penalty" variant is penalize_undesirable.
    """

    beta: float = field(default=0.2, metadata={"help": "β: sharpness of the value function."})
    desirable_weight: float = field(default=1.0, metadata={"help": "λD"})
    undesirable_weight: float = field(default=1.0, metadata={"help": "λU"})
    alpha_tokens: float = field(default=3.0, metadata={"help": "α1: bonus weight on 1 / mean tokens per step."})
    alpha_steps: float = field(default=3.0, metadata={"help": "α2: bonus weight on 1 / number of steps."})
    penalize_undesirable: bool = field(
        default=False, metadata={"help": "Subtract the bonus size from undesirable trajectories too."}
    )
    bonus_placement: str = field(
        default="log_ratio",
        metadata={"help": "'log_ratio' (inside the sigmoid, paper) or 'margin' (SimPO-like hurdle).",
                  "choices": list(BONUS_PLACEMENTS)},
    )
    data_fraction: float = field(
        default=1.0, metadata={"help": "Train on the first fraction of rows by data_fraction_rank."}
    )
    disable_dropout: bool = field(
        default=True, metadata={"help": "Dropout off, so matched and reference passes see the same network."}
    )
    learning_rate: float = 2e-5
    num_train_epochs: float = 3.0
    per_device_train_batch_size: int = 8

    def __post_init__(self):
        super().__post_init__()
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.desirable_weight < 0 or self.undesirable_weight < 0:
            raise ValueError(
                f"desirable_weight and undesirable_weight must be >= 0, got {self.desirable_weight} "
                f"and {self.undesirable_weight}"
            )
        if self.alpha_tokens < 0 or self.alpha_steps < 0:
            raise ValueError(
                f"alpha_tokens and alpha_steps must be >= 0, got {self.alpha_tokens} and {self.alpha_steps}"
            )
        if self.bonus_placement not in BONUS_PLACEMENTS:
            raise ValueError(f"bonus_placement must be one of {BONUS_PLACEMENTS}, got {self.bonus_placement!r}")
        if not 0 < self.data_fraction <= 1:
            raise ValueError(f"data_fraction must be in (0, 1], got {self.data_fraction}")
        if self.per_device_train_batch_size < 2:
            raise ValueError(
                "per_device_train_batch_size must be >= 2: the reference point z0 is estimated from mismatched "
                f"pairs within a batch, got {self.per_device_train_batch_size}"
            )
        if self.eval_strategy != "no":
            raise ValueError("DEPOTrainer has no evaluation loop: set eval_strategy='no'")
