"""Rollouts: the environments' data (products, problems), task splits, scripted-policy trajectories."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.envs import build_suites
from depo.envs.base import tasks_from_records, tasks_to_records
from depo.rollout.episodes import run_policy


def make_webshop_products(catalog: dict[str, Any]) -> pl.DataFrame:
    """WebShop's own product files when `items_path` is set, otherwise a generated catalog."""
    from depo.envs.webshop import generate_catalog, load_webshop_products

    if catalog.get("items_path"):
        return load_webshop_products(catalog["items_path"], catalog.get("attributes_path"))
    return generate_catalog(n_products=catalog["n_products"], seed=catalog["seed"])


def make_math_problems(math_data: dict[str, Any]) -> pl.DataFrame:
    """Math problems from local JSONL files, the hub, or the generated offline set (`source`)."""
    from depo.envs.math import generate_problems, load_from_hub, load_jsonl

    source = math_data["source"]
    if source == "generated":
        return generate_problems(n_per_benchmark=math_data["n_per_benchmark"], seed=math_data["seed"])
    if source == "jsonl":
        return pl.concat([load_jsonl(b, path) for b, path in math_data["paths"].items()], how="diagonal_relaxed")
    if source == "hub":
        return pl.concat([load_from_hub(b) for b in math_data["benchmarks"]], how="diagonal_relaxed")
    raise ValueError(f"math_data.source must be generated, jsonl or hub; got {source!r}")


def sample_tasks(
    envs: dict, rollouts: dict, webshop_products: pl.DataFrame, math_problems: pl.DataFrame
) -> pl.DataFrame:
    """Train and test tasks per environment; a split never shares a task with the other."""
    suites = build_suites(envs, rollouts["envs"], products=webshop_products, problems=math_problems)
    rows = []
    for name, suite in suites.items():
        for split in ("train", "test"):
            n = rollouts[f"n_{split}_tasks"][name]
            rows += tasks_to_records(suite.make_tasks(split, n, seed=rollouts["seed"]))
    return pl.DataFrame(rows)


def run_scripted_rollouts(
    tasks: pl.DataFrame,
    webshop_products: pl.DataFrame,
    math_problems: pl.DataFrame,
    envs: dict,
    rollouts: dict,
    policy: str,
) -> pl.DataFrame:
    """Run a scripted policy (`expert` or `random`) once on every task."""
    frames = []
    for name, suite in build_suites(envs, rollouts["envs"], products=webshop_products, problems=math_problems).items():
        env_tasks = tasks_from_records(tasks.filter(pl.col("env") == name).to_dicts())
        frames.append(run_policy(suite, env_tasks, policy, seed=rollouts["seed"]))
    return pl.concat(frames)


def run_expert_rollouts(tasks, webshop_products, math_problems, envs, rollouts) -> pl.DataFrame:
    return run_scripted_rollouts(tasks, webshop_products, math_problems, envs, rollouts, "expert")


def run_random_rollouts(tasks, webshop_products, math_problems, envs, rollouts) -> pl.DataFrame:
    return run_scripted_rollouts(tasks, webshop_products, math_problems, envs, rollouts, "random")


def summarize_rollouts(expert_trajectories: pl.DataFrame, random_trajectories: pl.DataFrame) -> pl.DataFrame:
    """Per env, split and policy: tasks, success rate, mean reward, mean steps."""
    per_trajectory = pl.concat([expert_trajectories, random_trajectories]).unique(
        "trajectory_id", keep="first", maintain_order=True
    )
    return (
        per_trajectory.group_by("env", "split", "source")
        .agg(
            n_tasks=pl.len(),
            success_rate=pl.col("success").cast(pl.Float64).mean(),
            mean_reward=pl.col("final_reward").mean(),
            mean_steps=pl.col("n_steps").cast(pl.Float64).mean(),
        )
        .sort("env", "split", "source")
    )
