"""Preference training from the BC model: DEPO, and KTO as a namespaced copy (the studies train more variants)."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.policy.base import PolicyModel
from depo.tracking import log_metrics, training_step_logger
from depo.training import DEPOConfig, train_depo


def train_preference_model(
    bc_model: PolicyModel, depo_dataset: pl.DataFrame, preference_training: dict[str, Any], variant: dict[str, Any]
) -> PolicyModel:
    """DEPO/KTO training; `variant` (alphas, penalty, placement, output_dir) overrides the shared settings."""
    settings = {**preference_training, **variant}
    name, output_dir = settings.pop("name"), settings.pop("output_dir")
    config = DEPOConfig(output_dir=output_dir, **settings)
    outcome = train_depo(bc_model, depo_dataset, config, output_dir, log_step=training_step_logger(name))
    log_metrics({f"{name}/dropped_too_long": outcome.dropped_too_long})
    return outcome.policy
