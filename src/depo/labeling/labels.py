"""Efficiency labels and the DEPO dataset: one row per labeled trajectory, as chat messages.

A trajectory is desirable when its reward reaches κ0 and (where a step limit is configured) it
took fewer steps than the limit; undesirable when κ2 ≤ reward < κ1, or when it reached κ2 but took
the step limit or more (successful but long is the inefficiency DEPO penalises). Everything else
is dropped. `data_fraction_rank` lets later stages take 25/50/75/100 % subsets reproducibly.
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from depo.agent.prompting import build_messages
from depo.agent.react import AgentTurn
from depo.policy.tokens import count_turn_tokens, with_token_totals
from depo.schema import TOKEN_COLUMNS, validate_frame

MESSAGE_DTYPE = pl.Struct({"role": pl.String, "content": pl.String})
DEPO_DATASET_SCHEMA: dict[str, pl.DataType] = {
    "env": pl.String,
    "task_id": pl.String,
    "split": pl.String,
    "trajectory_id": pl.String,
    "source": pl.String,
    "messages": pl.List(MESSAGE_DTYPE),
    "label": pl.Boolean,
    "reward": pl.Float64,
    "steps": pl.Int32,
    "total_tokens": pl.Int32,
    "avg_tokens_per_step": pl.Float64,
    "data_fraction_rank": pl.Int64,
}


@dataclass(frozen=True)
class LabelThresholds:
    """κ0 = `desirable_min_reward`, [κ2, κ1) = `undesirable_reward_range`, optional `step_limit`."""

    desirable_min_reward: float
    undesirable_reward_range: tuple[float, float]
    step_limit: int | None = None

    def __post_init__(self) -> None:
        low, high = self.undesirable_reward_range
        if not low < high:
            raise ValueError(f"undesirable_reward_range must be [low, high) with low < high, got {[low, high]}")
        if high > self.desirable_min_reward:
            raise ValueError(
                f"undesirable_reward_range upper end {high} exceeds desirable_min_reward "
                f"{self.desirable_min_reward}: a trajectory could be both desirable and undesirable"
            )
        if self.step_limit is not None and (
            not isinstance(self.step_limit, int) or isinstance(self.step_limit, bool) or self.step_limit < 2
        ):
            raise ValueError(f"step_limit must be an integer >= 2 or None, got {self.step_limit!r}")


def thresholds_from_params(params: Mapping[str, Mapping[str, Any]]) -> dict[str, LabelThresholds]:
    """`{env: {desirable_min_reward, undesirable_reward_range: [low, high], step_limit}}` → thresholds."""
    thresholds = {}
    for env, block in params.items():
        unknown = set(block) - {"desirable_min_reward", "undesirable_reward_range", "step_limit"}
        if unknown:
            raise ValueError(f"thresholds.{env}: unknown key(s) {sorted(unknown)}")
        try:
            low, high = block["undesirable_reward_range"]
            thresholds[env] = LabelThresholds(
                desirable_min_reward=float(block["desirable_min_reward"]),
                undesirable_reward_range=(float(low), float(high)),
                step_limit=block.get("step_limit"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"thresholds.{env}: {error}") from error
    return thresholds


def label_trajectory(reward: float, steps: int, thresholds: LabelThresholds) -> bool | None:
    """True (desirable), False (undesirable) or None (dropped) for one trajectory."""
    low, high = thresholds.undesirable_reward_range
    too_long = thresholds.step_limit is not None and steps >= thresholds.step_limit
    if reward >= thresholds.desirable_min_reward and not too_long:
        return True
    if low <= reward < high or (too_long and reward >= low):
        return False
    return None


def add_token_counts(trajectories: pl.DataFrame, tokenizer) -> pl.DataFrame:
    """`gen_tokens` per step with the policy tokenizer, then per-trajectory totals (replacing any)."""
    counts = [
        count_turn_tokens(tokenizer, AgentTurn(thought, action))
        for thought, action in zip(trajectories["thought"], trajectories["action"], strict=True)
    ]
    frame = trajectories.drop([c for c in TOKEN_COLUMNS if c in trajectories.columns])
    return with_token_totals(frame.with_columns(pl.Series("gen_tokens", counts, dtype=TOKEN_COLUMNS["gen_tokens"])))


def assign_fraction_rank(dataset: pl.DataFrame, seed: int) -> pl.DataFrame:
    """`data_fraction_rank` 0..n-1, a seeded permutation stratified by (env, label).

    Within a stratum of size m, the i-th row of a seeded shuffle gets the key (i + 0.5) / m; ranks
    follow the keys (seeded tie-break), so the rows ranked below any fraction f·n hold about the
    fraction f of every stratum.
    """
    rng = random.Random(seed)
    keys = [0.0] * dataset.height
    strata: dict[tuple, list[int]] = {}
    for row, stratum in enumerate(zip(dataset["env"], dataset["label"], strict=True)):
        strata.setdefault(stratum, []).append(row)
    for stratum in sorted(strata, key=repr):
        rows = strata[stratum]
        rng.shuffle(rows)
        for i, row in enumerate(rows):
            keys[row] = (i + 0.5) / len(rows)
    tie_break = [rng.random() for _ in range(dataset.height)]
    order = sorted(range(dataset.height), key=lambda row: (keys[row], tie_break[row]))
    ranks = [0] * dataset.height
    for rank, row in enumerate(order):
        ranks[row] = rank
    return dataset.with_columns(pl.Series("data_fraction_rank", ranks, dtype=pl.Int64))


CONVERSATION_SCHEMA: dict[str, pl.DataType] = {
    name: DEPO_DATASET_SCHEMA[name]
    for name in ("env", "task_id", "split", "trajectory_id", "source", "messages", "reward", "steps")
}


def check_envs_covered(trajectories: pl.DataFrame, **mappings: Mapping[str, Any]) -> None:
    """ValueError naming the mapping (`system_prompts`, `thresholds`) that lacks an env of the data."""
    envs = set(trajectories["env"].unique())
    for name, mapping in mappings.items():
        missing = sorted(envs - set(mapping))
        if missing:
            raise ValueError(f"{name} has no entry for environment(s) {missing}")


def conversations(trajectories: pl.DataFrame, system_prompts: Mapping[str, str]) -> pl.DataFrame:
    """One row per trajectory with its chat `messages`, sorted by (env, task_id, trajectory_id).

    Token columns present in `trajectories` (per trajectory) are carried over.
    """
    validate_frame(trajectories, "trajectories")
    check_envs_covered(trajectories, system_prompts=system_prompts)
    token_columns = [c for c in ("total_tokens", "avg_tokens_per_step") if c in trajectories.columns]
    ordered = trajectories.sort(["env", "task_id", "trajectory_id", "step"])
    rows = []
    for (env, task_id, trajectory_id), steps in ordered.group_by(
        ["env", "task_id", "trajectory_id"], maintain_order=True
    ):
        turns = [AgentTurn(t, a) for t, a in zip(steps["thought"], steps["action"], strict=True)]
        rows.append(
            {
                "env": env,
                "task_id": task_id,
                "split": steps["split"][0],
                "trajectory_id": trajectory_id,
                "source": steps["source"][0],
                "messages": build_messages(system_prompts[env], steps["observation"].to_list(), turns),
                "reward": float(steps["final_reward"][0]),
                "steps": steps.height,
                **{column: steps[column][0] for column in token_columns},
            }
        )
    schema = {**CONVERSATION_SCHEMA, **{c: DEPO_DATASET_SCHEMA[c] for c in token_columns}}
    return pl.DataFrame(rows, schema=schema)


def build_depo_dataset(
    trajectories: pl.DataFrame,
    tokenizer,
    system_prompts: Mapping[str, str],
    thresholds: Mapping[str, LabelThresholds],
    seed: int,
) -> pl.DataFrame:
    """Labeled trajectories as chat messages, sorted by (env, task_id, trajectory_id), in `DEPO_DATASET_SCHEMA`."""
    validate_frame(trajectories, "trajectories")
    check_envs_covered(trajectories, system_prompts=system_prompts, thresholds=thresholds)
    chats = conversations(add_token_counts(trajectories, tokenizer), system_prompts)
    labels = [
        label_trajectory(reward, steps, thresholds[env])
        for env, reward, steps in zip(chats["env"], chats["reward"], chats["steps"], strict=True)
    ]
    dataset = (
        chats.with_columns(pl.Series("label", labels, dtype=pl.Boolean))
        .filter(pl.col("label").is_not_null())
        .select([name for name in DEPO_DATASET_SCHEMA if name != "data_fraction_rank"])
    )
    return assign_fraction_rank(dataset, seed)


def bc_dataset(depo_dataset: pl.DataFrame) -> pl.DataFrame:
    """The desirable rows: the behaviour-cloning (SFT) set."""
    return depo_dataset.filter(pl.col("label"))


def take_fraction(depo_dataset: pl.DataFrame, fraction: float) -> pl.DataFrame:
    """The rows ranked in the first `fraction` of the data (0 < fraction ≤ 1), label mix kept."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    limit = round(fraction * depo_dataset.height)
    return depo_dataset.filter(pl.col("data_fraction_rank") < limit)
