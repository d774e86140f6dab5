"""Nodes of the bonus study (placement, α1 / α2 alone)."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.evaluation import bonus_table, relative_to_baseline, study_metric_names
from depo.evaluation.plots import plot_stage_metrics
from depo.evaluation.studies import BONUS_VARIANTS, study_stage_metrics
from depo.tracking import log_metrics


def summarize_bonus(
    evaluation: dict[str, Any],
    study: dict[str, Any],
    preference_training: dict[str, Any],
    kto_variant: dict[str, Any],
    depo_variant: dict[str, Any],
    evaluation_metrics: pl.DataFrame,
    *trajectories: pl.DataFrame,
) -> pl.DataFrame:
    """The ablation table: the new variants beside the default run's KTO and DEPO rows, each with its
    α1, α2 and placement (variant over the shared `preference_training`); the new variants are logged
    to MLflow as `study/bonus/<variant>/<env>/<metric>` and `…_vs_bc`."""
    stage_metrics = study_stage_metrics(evaluation, trajectories)
    variants = {study[name]["variant"]["name"]: study[name]["variant"] for name in BONUS_VARIANTS}
    references = {"kto": kto_variant, "depo": depo_variant}  # the default run's stages
    settings = {stage: {**preference_training, **variant} for stage, variant in {**references, **variants}.items()}
    table = bonus_table(stage_metrics, evaluation_metrics, settings, tuple(references), study["metrics"])
    log_metrics(study_metric_names(relative_to_baseline(stage_metrics, evaluation_metrics, study["metrics"]),
                                   "bonus", "stage"))
    return table


def plot_bonus(table: pl.DataFrame, study: dict[str, Any]):
    """Bars per env and variant with 95 % intervals for the study's metrics."""
    return plot_stage_metrics(table, tuple(study["metrics"]))
