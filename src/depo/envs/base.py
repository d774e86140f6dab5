"""The environment interface every text environment implements.

An environment is a small state machine over text: `reset(task)` gives the first observation
(goal, what is visible, `Available actions: [...]`); `step(action)` gives the next observation,
a reward and `done`. An unparseable or impossible action never raises: it is answered with an
observation saying so, counts as a step, and `info["valid_action"]` is False. `clone()` copies the
state cheaply for tree search. A `TaskSuite` generates tasks with disjoint train/test splits.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from depo.agent.react import AgentTurn

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Task:
    """One episode's specification; `spec` is env-specific and JSON-serialisable."""

    env: str
    task_id: str
    split: str
    seed: int
    spec: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class StepResult:
    observation: str
    reward: float
    done: bool
    # Always has "valid_action" (bool); on the last step also "success" (bool).
    info: dict[str, Any]


class TextEnv(ABC):
    """A text environment; one instance runs one episode at a time."""

    name: str
    max_steps: int

    @abstractmethod
    def reset(self, task: Task) -> str: ...

    @abstractmethod
    def step(self, action: str) -> StepResult: ...

    @abstractmethod
    def clone(self) -> "TextEnv": ...

    @abstractmethod
    def available_actions(self) -> list[str]: ...

    @abstractmethod
    def expert_turn(self) -> AgentTurn:
        """The scripted expert's next (thought, action) from the current state."""

    @property
    @abstractmethod
    def steps_taken(self) -> int: ...


class TaskSuite(ABC):
    """Task generator plus environment factory for one environment family."""

    name: str
    system_prompt: str

    @abstractmethod
    def make_tasks(self, split: str, n: int, seed: int) -> list[Task]:
        """`n` tasks of `split`; train and test never share a task, and a seed fixes the list."""

    @abstractmethod
    def make_env(self) -> TextEnv: ...


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def tasks_to_records(tasks: list[Task]) -> list[dict[str, Any]]:
    """Tasks as flat rows (spec as JSON text) for a parquet catalog entry."""
    import json

    return [
        {"env": t.env, "task_id": t.task_id, "split": t.split, "seed": t.seed,
         "spec": json.dumps(t.spec, sort_keys=True)}
        for t in tasks
    ]


def tasks_from_records(rows: list[dict[str, Any]]) -> list[Task]:
    import json

    return [
        Task(env=r["env"], task_id=r["task_id"], split=r["split"], seed=int(r["seed"]),
             spec=json.loads(r["spec"]))
        for r in rows
    ]


def select_tasks(tasks, env: str, split: str, n: int) -> list[Task]:
    """The first `n` tasks of `env` and `split` in a tasks catalog frame; ValueError when it has none."""
    import polars as pl

    rows = tasks.filter((pl.col("env") == env) & (pl.col("split") == split)).head(n)
    if rows.is_empty():
        raise ValueError(f"the tasks dataset has no {split} tasks for {env!r}: add it to rollouts.envs")
    return tasks_from_records(rows.to_dicts())
