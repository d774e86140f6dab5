"""The one trajectory schema that flows through every stage: one row per agent step.

Stages add columns (token counts, labels); they never re-shape. `TRAJECTORY_SCHEMA` is the base
set every trajectory frame has; `TOKEN_COLUMNS` are added once a policy tokenizer has counted.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

TRAJECTORY_SCHEMA: dict[str, pl.DataType] = {
    "env": pl.String,
    "task_id": pl.String,
    "split": pl.String,
    "trajectory_id": pl.String,
    "step": pl.Int32,
    "observation": pl.String,  # what the agent saw before acting at this step
    "thought": pl.String,
    "action": pl.String,
    "reward": pl.Float64,  # the environment's reward for this step
    "done": pl.Boolean,
    "valid_action": pl.Boolean,
    "final_reward": pl.Float64,  # per trajectory: the episode's last reward
    "success": pl.Boolean,
    "n_steps": pl.Int32,
    "source": pl.String,  # expert / random / mcts / a model name
    "seed": pl.Int64,
}
TOKEN_COLUMNS: dict[str, pl.DataType] = {
    "gen_tokens": pl.Int32,  # tokens the policy generated at this step
    "total_tokens": pl.Int32,  # per trajectory: T@All
    "avg_tokens_per_step": pl.Float64,  # per trajectory: T̄tok
}


@dataclass
class StepRecord:
    env: str
    task_id: str
    split: str
    trajectory_id: str
    step: int
    observation: str
    thought: str
    action: str
    reward: float
    done: bool
    valid_action: bool
    final_reward: float = 0.0
    success: bool = False
    n_steps: int = 0
    source: str = ""
    seed: int = 0


def finalize(records: list[StepRecord], success: bool) -> list[StepRecord]:
    """Fill the per-trajectory columns of one episode's records in place."""
    final_reward = records[-1].reward if records else 0.0
    for record in records:
        record.final_reward = final_reward
        record.success = success
        record.n_steps = len(records)
    return records


def to_frame(records: list[StepRecord], extra: dict[str, list] | None = None) -> pl.DataFrame:
    """Records (plus optional extra columns, one value per record) as a frame in schema order."""
    columns = {name: [getattr(r, name) for r in records] for name in TRAJECTORY_SCHEMA}
    frame = pl.DataFrame(columns, schema=TRAJECTORY_SCHEMA)
    if extra:
        frame = frame.with_columns(
            pl.Series(name, values, dtype=TOKEN_COLUMNS.get(name)) for name, values in extra.items()
        )
    return frame


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=TRAJECTORY_SCHEMA)


def validate_frame(frame: pl.DataFrame, name: str = "trajectories") -> pl.DataFrame:
    """Raise naming `name` when a base column is missing or has the wrong type."""
    for column, dtype in TRAJECTORY_SCHEMA.items():
        if column not in frame.columns:
            raise ValueError(f"{name}: missing column {column!r} of the trajectory schema")
        if frame.schema[column] != dtype:
            raise ValueError(f"{name}: column {column!r} is {frame.schema[column]}, expected {dtype}")
    return frame


def record_dict(record: StepRecord) -> dict:
    return asdict(record)
