"""Behaviour cloning: SFT of the base model on the desirable trajectories."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.policy.base import PolicyModel
from depo.tracking import log_metrics, training_step_logger
from depo.training import BCConfig, train_bc


def behaviour_clone(base_model: PolicyModel, bc_dataset: pl.DataFrame, bc: dict[str, Any]) -> PolicyModel:
    config = BCConfig(output_dir=bc["output_dir"], **bc["training"])
    outcome = train_bc(base_model, bc_dataset, config, bc["output_dir"], log_step=training_step_logger("bc"))
    log_metrics({"bc/dropped_too_long": outcome.dropped_too_long})
    return outcome.policy
