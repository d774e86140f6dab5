"""Evaluation of every model stage on held-out test tasks, and the comparison across stages."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.evaluation import agent_metrics, comparison_report, math_metrics
from depo.evaluation.plots import plot_math_metrics, plot_stage_metrics
from depo.policy.base import GenerationConfig, PolicyModel
from depo.policy.local import LocalGenerator
from depo.policy.rollouts import rollout_test_tasks
from depo.schema import TOKEN_COLUMNS, TRAJECTORY_SCHEMA
from depo.tracking import log_metrics

STAGES = ("base", "bc", "kto", "depo")
EMPTY_EVALUATION = {**TRAJECTORY_SCHEMA, **TOKEN_COLUMNS}


def evaluate_stage(
    model: PolicyModel,
    tasks: pl.DataFrame,
    webshop_products: pl.DataFrame,
    math_problems: pl.DataFrame,
    envs: dict[str, Any],
    evaluation: dict[str, Any],
    stage: str,
) -> pl.DataFrame:
    """Greedy batched rollouts of `model` on the first test tasks of each env (source = `stage`).

    A stage missing from `evaluation.stages` is skipped (an empty frame), so a run can evaluate a subset.
    """
    if stage not in evaluation["stages"]:
        return pl.DataFrame(schema=EMPTY_EVALUATION)
    generator = LocalGenerator(model, max_batch_size=evaluation["batch_size"], name=stage)
    return rollout_test_tasks(
        generator, tasks, {"products": webshop_products, "problems": math_problems}, envs, evaluation["envs"],
        evaluation["n_tasks"], source=stage, config=GenerationConfig(max_new_tokens=evaluation["max_new_tokens"]),
        history_turns=evaluation["history_turns"], batch_size=evaluation["batch_size"], seed=evaluation["seed"],
    )


def summarize_evaluation(evaluation: dict[str, Any], *stage_trajectories: pl.DataFrame):
    """All stages' trajectories in one frame, their per-env metrics and the math benchmark metrics."""
    trajectories = pl.concat([frame for frame in stage_trajectories if not frame.is_empty()], how="vertical")
    n_resamples, seed = evaluation["bootstrap_resamples"], evaluation["seed"]
    agents = agent_metrics(trajectories.filter(pl.col("env") != "math"), n_resamples, seed)
    maths = math_metrics(trajectories, n_resamples, seed)
    for row in agents.to_dicts():
        log_metrics({k: v for k, v in row.items() if k not in ("env", "stage")}, prefix=f"eval/{row['env']}/{row['stage']}/")
    for row in maths.to_dicts():
        log_metrics({k: v for k, v in row.items() if k not in ("benchmark", "stage")},
                    prefix=f"eval/math/{row['benchmark']}/{row['stage']}/")
    return trajectories, agents, maths


def report_evaluation(evaluation_metrics: pl.DataFrame, math_metrics_frame: pl.DataFrame):
    """The Table-1 comparison (Markdown) and the figures."""
    report = comparison_report(evaluation_metrics)
    return report, plot_stage_metrics(evaluation_metrics), plot_math_metrics(math_metrics_frame)
