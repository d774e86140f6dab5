"""Figures of the evaluation: the paper's Table 1 as bars, its math figure (Fig. 2) and the studies (Figs. 3, 4)."""
from __future__ import annotations

import math

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


METRIC_LABELS = {"success": "Succ.", "reward": "reward", "t_all": "T@All", "s_all": "S@All",
                 "tokens_per_step": "tokens/step", "invalid_action_rate": "invalid"}


def _envs(table: pl.DataFrame, what: str) -> list[str]:
    if table.is_empty():
        raise ValueError(f"{what}: the table is empty, nothing to plot")
    return sorted(table["env"].unique().to_list())


def plot_data_fraction(table: pl.DataFrame):
    """Relative improvement over BC against the fraction of DEPO data, one line per metric, one panel
    per env (the paper's Fig. 3); `table` is `depo.evaluation.studies.data_fraction_table`."""
    plt = _pyplot()
    envs = _envs(table, "data fraction study")
    figure, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), squeeze=False)
    for axis, env in zip(axes[0], envs, strict=True):
        rows = table.filter(pl.col("env") == env)
        for metric in rows["metric"].unique(maintain_order=True).to_list():
            line = rows.filter(pl.col("metric") == metric).sort("data_fraction")
            axis.plot(line["data_fraction"] * 100, line["relative_improvement"] * 100, marker="o",
                      label=METRIC_LABELS.get(metric, metric))
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_xticks(sorted((rows["data_fraction"] * 100).unique().to_list()))
        axis.set_xlabel("DEPO data used (%)")
        axis.set_ylabel("improvement over BC (%)")
        axis.set_title(env)
    axes[0][0].legend()
    figure.tight_layout()
    return figure


def plot_penalty(table: pl.DataFrame):
    """Relative improvement over BC per metric, one bar per stage (DEPO, the undesirable-penalty
    variant), one panel per env (the paper's Fig. 4); `table` is `depo.evaluation.studies.penalty_table`."""
    plt = _pyplot()
    envs = _envs(table, "penalty study")
    figure, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), squeeze=False)
    stages = table["stage"].unique(maintain_order=True).to_list()
    width = 0.8 / len(stages)
    for axis, env in zip(axes[0], envs, strict=True):
        rows = table.filter(pl.col("env") == env)
        metrics = rows["metric"].unique(maintain_order=True).to_list()
        for i, stage in enumerate(stages):
            by_metric = {r["metric"]: r["relative_improvement"] for r in rows.filter(pl.col("stage") == stage).to_dicts()}
            xs = [m + i * width for m in range(len(metrics))]
            values = [by_metric.get(metric, float("nan")) * 100 for metric in metrics]
            axis.bar(xs, values, width, label=stage)
            for x, value in zip(xs, values, strict=True):
                if math.isnan(value):  # BC's value is 0: no relative change to draw
                    axis.annotate("n/a", (x, 0), ha="center", va="bottom", fontsize=8)
        axis.set_xticks([m + 0.4 - width / 2 for m in range(len(metrics))],
                        [METRIC_LABELS.get(metric, metric) for metric in metrics])
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_ylabel("improvement over BC (%)")
        axis.set_title(env)
    axes[0][0].legend()
    figure.tight_layout()
    return figure
