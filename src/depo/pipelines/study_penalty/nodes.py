"""Nodes of the penalty study: a view of the default run's evaluation, nothing is trained."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.evaluation import penalty_table, study_metric_names
from depo.tracking import log_metrics


def summarize_penalty(study: dict[str, Any], evaluation_metrics: pl.DataFrame) -> pl.DataFrame:
    """Fig. 4's table: DEPO and the undesirable-penalty variant relative to BC; logged to MLflow as
    `study/penalty/<stage>/<env>/<metric>` and `…_vs_bc`."""
    table = penalty_table(evaluation_metrics, study["stages"], study["metrics"])
    log_metrics(study_metric_names(table, "penalty", "stage"))
    return table
