"""One model policy's batched rollouts on the test tasks of every environment, in the trajectory schema."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.policy.base import GenerationConfig, PolicyModel
from depo.policy.local import LocalGenerator
from depo.policy.rollouts import rollout_test_tasks
from depo.tracking import log_metrics


def model_rollouts(rollout_model: PolicyModel, tasks: pl.DataFrame, webshop_products: pl.DataFrame,
                   math_problems: pl.DataFrame, envs: dict[str, Any], settings: dict[str, Any]) -> pl.DataFrame:
    """Episodes of `rollout_model` (the `rollout_model` catalog entry) on the first `settings.n_tasks` test
    tasks of each of `settings.envs`, with `gen_tokens`, `total_tokens` and `avg_tokens_per_step`."""
    generator = LocalGenerator(rollout_model, max_batch_size=settings["batch_size"], name="rollout_model")
    config = GenerationConfig(max_new_tokens=settings["max_new_tokens"], do_sample=settings["do_sample"],
                              temperature=settings["temperature"], seed=settings["seed"])
    trajectories = rollout_test_tasks(
        generator, tasks, {"products": webshop_products, "problems": math_problems}, envs, settings["envs"],
        settings["n_tasks"], source="model", config=config, history_turns=settings["history_turns"],
        batch_size=settings["batch_size"], seed=settings["seed"],
    )
    per_trajectory = trajectories.unique("trajectory_id")
    for (env,), episodes in per_trajectory.group_by("env"):
        log_metrics({"success": episodes["success"].mean(), "t_all": episodes["total_tokens"].mean(),
                     "s_all": episodes["n_steps"].mean()}, prefix=f"model_rollouts/{env}/")
    return trajectories
