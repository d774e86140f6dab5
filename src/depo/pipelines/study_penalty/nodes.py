"""Nodes of the penalty study (Fig. 4)."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.evaluation import penalty_table, study_metric_names
from depo.evaluation.studies import study_stage_metrics
from depo.tracking import log_metrics


def summarize_penalty(
    evaluation: dict[str, Any], study: dict[str, Any], evaluation_metrics: pl.DataFrame, *trajectories: pl.DataFrame
) -> pl.DataFrame:
    """Fig. 4's table: the default run's DEPO and the undesirable-penalty variant relative to BC; logged
    to MLflow as `study/penalty/<stage>/<env>/<metric>` and `…_vs_bc`."""
    table = penalty_table(study_stage_metrics(evaluation, trajectories), evaluation_metrics, metrics=study["metrics"])
    log_metrics(study_metric_names(table, "penalty", "stage"))
    return table
