"""Figures of the evaluation: the paper's Table 1 as bars, and its math figure (Fig. 2)."""
from __future__ import annotations

import polars as pl


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grouped_bars(axis, frame: pl.DataFrame, group: str, metric: str, stages: list[str]) -> None:
    groups = sorted(frame[group].unique().to_list())
    width = 0.8 / max(len(stages), 1)
    for i, stage in enumerate(stages):
        rows = {r[group]: r for r in frame.filter(pl.col("stage") == stage).to_dicts()}
        xs = [g + i * width for g in range(len(groups))]
        values = [rows[g][metric] if g in rows else 0.0 for g in groups]
        errors = [
            [rows[g][metric] - rows[g][f"{metric}_ci_low"] if g in rows else 0.0 for g in groups],
            [rows[g][f"{metric}_ci_high"] - rows[g][metric] if g in rows else 0.0 for g in groups],
        ]
        axis.bar(xs, values, width, yerr=errors, capsize=2, label=stage)
    axis.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups)
    axis.set_title(metric)


def plot_stage_metrics(evaluation_metrics: pl.DataFrame, metrics: tuple[str, ...] = ("success", "t_all", "s_all")):
    """Bars per env and stage with 95 % intervals: Succ., T@All, S@All (the paper's Table 1)."""
    plt = _pyplot()
    stages = evaluation_metrics["stage"].unique(maintain_order=True).to_list()
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        _grouped_bars(axis, evaluation_metrics, "env", metric, stages)
    axes[0][0].legend()
    figure.tight_layout()
    return figure


def plot_math_metrics(math_metrics: pl.DataFrame):
    """Accuracy and generated tokens per benchmark and stage (the paper's Fig. 2)."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
    if math_metrics.is_empty():
        axes[0][0].set_title("no math evaluation")
        return figure
    stages = math_metrics["stage"].unique(maintain_order=True).to_list()
    for axis, metric in zip(axes[0], ("accuracy", "avg_tokens"), strict=True):
        _grouped_bars(axis, math_metrics, "benchmark", metric, stages)
    axes[0][0].legend()
    figure.tight_layout()
    return figure
