"""Evaluation: per-task metrics named as in the paper, bootstrap intervals, the Table-1 comparison, plots."""
from depo.evaluation.metrics import (
    AGENT_METRICS,
    MATH_METRICS,
    agent_metrics,
    comparison_report,
    math_metrics,
    per_task,
)

__all__ = ["AGENT_METRICS", "MATH_METRICS", "agent_metrics", "comparison_report", "math_metrics", "per_task"]
