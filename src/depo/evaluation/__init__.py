"""Evaluation: per-task metrics named as in the paper, bootstrap intervals, the Table-1 comparison, the
studies' tables (data fraction, penalty, bonus), plots."""
from depo.evaluation.metrics import (
    AGENT_METRICS,
    MATH_METRICS,
    agent_metrics,
    comparison_report,
    math_metrics,
    per_task,
)
from depo.evaluation.studies import (
    bonus_table,
    data_fraction_table,
    penalty_table,
    relative_to_baseline,
    study_evaluation,
    study_metric_names,
)

__all__ = [
    "AGENT_METRICS",
    "MATH_METRICS",
    "agent_metrics",
    "bonus_table",
    "comparison_report",
    "data_fraction_table",
    "math_metrics",
    "penalty_table",
    "per_task",
    "relative_to_baseline",
    "study_evaluation",
    "study_metric_names",
]
