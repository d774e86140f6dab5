"""Nodes of the data-fraction study; `evaluation_settings` also serves `study_bonus`."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from depo.evaluation import data_fraction_table, study_evaluation, study_metric_names
from depo.evaluation.studies import DATA_FRACTION_SLOTS, study_stage_metrics
from depo.tracking import log_metrics


def evaluation_settings(evaluation: dict[str, Any], study: dict[str, Any], slots: Sequence[str]) -> dict[str, Any]:
    """The default evaluation's settings for the study's envs, with the slots' variant names as stages."""
    return study_evaluation(evaluation, study["evaluation"]["envs"], [study[slot]["variant"]["name"] for slot in slots])


def summarize_data_fraction(
    evaluation: dict[str, Any], study: dict[str, Any], evaluation_metrics: pl.DataFrame, *trajectories: pl.DataFrame
) -> pl.DataFrame:
    """Fig. 3's table: each fraction's DEPO model relative to the default run's BC; logged to MLflow as
    `study/data_fraction/<fraction>/<env>/<metric>` and `…_vs_bc`."""
    variants = [study[slot]["variant"] for slot in DATA_FRACTION_SLOTS]
    fractions = {variant["name"]: variant["data_fraction"] for variant in variants}
    table = data_fraction_table(study_stage_metrics(evaluation, trajectories), fractions, evaluation_metrics,
                                study["metrics"])
    log_metrics(study_metric_names(table, "data_fraction", "data_fraction"))
    return table
