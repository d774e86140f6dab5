"""What a training run hands back, and where a resumed run restarts."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import NamedTuple

from transformers.trainer_utils import get_last_checkpoint

from depo.policy.base import PolicyModel
from depo.training.config import PolicyTrainingConfig


class TrainingOutcome(NamedTuple):
    policy: PolicyModel  # the trained model, LoRA merged in, ready to save
    log_history: list[dict]  # the Trainer's per-step logs (loss, rewards/…, kl, learning_rate, …)
    dropped_too_long: int  # trajectories over max_length, left out of training


def with_output_dir(config: PolicyTrainingConfig, output_dir: str | Path) -> PolicyTrainingConfig:
    """A copy of `config` writing to `output_dir` (the caller's config object stays untouched)."""
    config = copy.copy(config)
    config.output_dir = str(output_dir)
    return config


def checkpoint_to_resume(config: PolicyTrainingConfig) -> str | None:
    """The last checkpoint in output_dir when `config.resume` is set and one exists, else None (fresh run)."""
    if not config.resume or not Path(config.output_dir).is_dir():
        return None
    return get_last_checkpoint(config.output_dir)
