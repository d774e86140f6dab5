"""Metrics of evaluation trajectories, per environment and model stage, as the paper names them.

Per task (one trajectory each): `success` (Succ.), `reward` (final reward), `t_all` (T@All: total
generated tokens), `s_all` (S@All: steps), `tokens_per_step`, `invalid_action_rate`. A stage's
metric is the mean over its tasks, with a 95 % percentile-bootstrap interval over tasks
(`<metric>_ci_low`, `<metric>_ci_high`; seeded, so a rerun gives the same interval).
"""
from __future__ import annotations

import math

import numpy as np
import polars as pl

AGENT_METRICS = ("success", "reward", "t_all", "s_all", "tokens_per_step", "invalid_action_rate")
MATH_METRICS = ("accuracy", "avg_tokens")
# For the comparison: whether a higher value is better.
HIGHER_IS_BETTER = {"success": True, "reward": True, "t_all": False, "s_all": False, "tokens_per_step": False,
                    "invalid_action_rate": False, "accuracy": True, "avg_tokens": False}


def per_task(trajectories: pl.DataFrame) -> pl.DataFrame:
    """One row per (source, env, task_id) trajectory with the per-task metric values."""
    for column in ("gen_tokens", "total_tokens"):
        if column not in trajectories.columns:
            raise ValueError(f"evaluation trajectories need token counts; column {column!r} is missing")
    return (
        trajectories.group_by("source", "env", "task_id", "trajectory_id", maintain_order=True)
        .agg(
            success=pl.col("success").first().cast(pl.Float64),
            reward=pl.col("final_reward").first(),
            t_all=pl.col("total_tokens").first().cast(pl.Float64),
            s_all=pl.col("n_steps").first().cast(pl.Float64),
            tokens_per_step=pl.col("avg_tokens_per_step").first(),
            invalid_action_rate=(~pl.col("valid_action")).cast(pl.Float64).mean(),
        )
        .rename({"source": "stage"})
    )


def bootstrap_interval(values: np.ndarray, n_resamples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def _summarise(tasks: pl.DataFrame, keys: list[str], metrics: tuple[str, ...], n_resamples: int, seed: int) -> pl.DataFrame:
    rows = []
    for group_keys, group in tasks.group_by(keys, maintain_order=True):
        row = dict(zip(keys, group_keys, strict=True))
        row["n_tasks"] = group.height
        for metric in metrics:
            values = group[metric].cast(pl.Float64).to_numpy()
            row[metric] = float(values.mean())
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = bootstrap_interval(values, n_resamples, seed)
        rows.append(row)
    return pl.DataFrame(rows).sort(keys)


def agent_metrics(trajectories: pl.DataFrame, n_resamples: int = 1000, seed: int = 0) -> pl.DataFrame:
    """One row per (env, stage): n_tasks and each of `AGENT_METRICS` with its 95 % interval."""
    return _summarise(per_task(trajectories), ["env", "stage"], AGENT_METRICS, n_resamples, seed)


def math_metrics(trajectories: pl.DataFrame, n_resamples: int = 1000, seed: int = 0) -> pl.DataFrame:
    """One row per (benchmark, stage): `accuracy`, `avg_tokens` (generated tokens per problem), `n`."""
    tasks = per_task(trajectories.filter(pl.col("env") == "math")).with_columns(
        benchmark=pl.col("task_id").str.split("/").list.first(),
        accuracy=pl.col("success"),
        avg_tokens=pl.col("t_all"),
    )
    if tasks.is_empty():
        return pl.DataFrame(schema={"benchmark": pl.String, "stage": pl.String, "n": pl.Int64,
                                    **{m: pl.Float64 for m in MATH_METRICS}})
    return _summarise(tasks, ["benchmark", "stage"], MATH_METRICS, n_resamples, seed).rename({"n_tasks": "n"})


def relative_change(new: float, old: float) -> float:
    return (new - old) / abs(old) if old else float("nan")


def comparison_report(evaluation_metrics: pl.DataFrame, target: str = "depo", baselines: tuple[str, ...] = ("bc", "kto")) -> str:
    """A Markdown table in the shape of the paper's Table 1, plus DEPO's relative change vs each baseline."""
    lines = ["# DEPO vs baselines", ""]
    stages = evaluation_metrics["stage"].unique(maintain_order=True).to_list()
    header = "| env | stage | n | Succ. | reward | T@All | S@All | tokens/step | invalid |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for row in evaluation_metrics.sort("env", "stage").to_dicts():
        lines.append(
            f"| {row['env']} | {row['stage']} | {row['n_tasks']} | {row['success']:.3f} | {row['reward']:.3f} | "
            f"{row['t_all']:.1f} | {row['s_all']:.2f} | {row['tokens_per_step']:.1f} | {row['invalid_action_rate']:.3f} |"
        )
    if target in stages:
        lines += ["", f"## Relative change of {target} (negative T@All / S@All = more efficient)", "",
                  "| env | vs | Succ. | reward | T@All | S@All | tokens/step |", "|" + "---|" * 7]
        by_key = {(r["env"], r["stage"]): r for r in evaluation_metrics.to_dicts()}
        for env in sorted(evaluation_metrics["env"].unique().to_list()):
            if (env, target) not in by_key:
                continue
            new = by_key[(env, target)]
            for baseline in baselines:
                if (env, baseline) not in by_key:
                    continue
                old = by_key[(env, baseline)]
                changes = [relative_change(new[m], old[m]) for m in ("success", "reward", "t_all", "s_all", "tokens_per_step")]
                cells = ["n/a" if math.isnan(change) else f"{change:+.1%}" for change in changes]
                lines.append(f"| {env} | {baseline} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
