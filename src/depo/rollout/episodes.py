"""One-episode-at-a-time rollouts of scripted policies (expert, random valid action).

Model policies use the batched engine in `depo.policy`; both write the same `StepRecord`s.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import polars as pl

from depo.agent.react import AgentTurn
from depo.envs.base import Task, TaskSuite, TextEnv
from depo.schema import StepRecord, finalize, to_frame

# A policy sees the environment (for its available actions) and the current observation.
Policy = Callable[[TextEnv, str], AgentTurn]


def expert_policy(env: TextEnv, observation: str) -> AgentTurn:
    return env.expert_turn()


def random_valid_policy(seed: int) -> Policy:
    rng = random.Random(seed)

    def act(env: TextEnv, observation: str) -> AgentTurn:
        action = rng.choice(env.available_actions())
        return AgentTurn(thought=f"I will try {action}.", action=action)

    return act


def make_policy(name: str, seed: int) -> Policy:
    if name == "expert":
        return expert_policy
    if name == "random":
        return random_valid_policy(seed)
    raise ValueError(f"unknown scripted policy {name!r}; expected 'expert' or 'random'")


def run_episode(env: TextEnv, task: Task, policy: Policy, source: str, seed: int) -> list[StepRecord]:
    observation = env.reset(task)
    trajectory_id = f"{source}/{task.task_id}/{seed}"
    records: list[StepRecord] = []
    result = None
    while result is None or not result.done:
        turn = policy(env, observation)
        result = env.step(turn.action)
        records.append(
            StepRecord(
                env=task.env,
                task_id=task.task_id,
                split=task.split,
                trajectory_id=trajectory_id,
                step=len(records),
                observation=observation,
                thought=turn.thought,
                action=turn.action,
                reward=float(result.reward),
                done=result.done,
                valid_action=bool(result.info.get("valid_action", True)),
                source=source,
                seed=seed,
            )
        )
        observation = result.observation
    return finalize(records, success=bool(result.info.get("success", False)))


def run_policy(
    suite: TaskSuite, tasks: Iterable[Task], policy_name: str, seed: int, progress: bool = True
) -> pl.DataFrame:
    """Run a scripted policy once on every task; one frame in the trajectory schema."""
    from tqdm.auto import tqdm

    tasks = list(tasks)
    policy = make_policy(policy_name, seed)
    env = suite.make_env()
    records: list[StepRecord] = []
    for task in tqdm(tasks, desc=f"{suite.name}/{policy_name}", disable=not progress, leave=False):
        records.extend(run_episode(env, task, policy, source=policy_name, seed=seed))
    return to_frame(records)
