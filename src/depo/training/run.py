"""What a training run hands back, where a resumed run restarts, and its logs handed out as they come."""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from transformers import TrainerCallback
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


LogStep = Callable[[Mapping[str, float], int], None]  # (one Trainer log entry, its global step)


class ForwardLogs(TrainerCallback):
    """Hands every Trainer log entry to `log_step` with its global step as soon as it is made (main process
    only). A resumed run first hands over the entries its checkpoint restored, so the receiver sees the whole
    curve, each step once."""

    def __init__(self, log_step: LogStep):
        self.log_step = log_step

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            for entry in state.log_history:
                self.log_step({name: value for name, value in entry.items() if name != "step"}, entry["step"])

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.log_step(logs, state.global_step)


def log_callbacks(log_step: LogStep | None) -> list[TrainerCallback]:
    return [] if log_step is None else [ForwardLogs(log_step)]
