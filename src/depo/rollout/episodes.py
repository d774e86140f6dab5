"""One-episode-at-a-time rollouts of scripted policies (expert, random valid action).

Model policies use the batched engine in `depo.policy`; both write the same `StepRecord`s.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import polars as pl

from depo.agent.react import AgentTurn
from depo.agent.style import SHORT_ALTERNATIVE, verbose_thought
from depo.envs.base import StepResult, Task, TaskSuite, TextEnv
from depo.schema import StepRecord, finalize, to_frame

# A policy sees the environment (for its available actions) and the current observation.
Policy = Callable[[TextEnv, str], AgentTurn]


def expert_policy(env: TextEnv, observation: str) -> AgentTurn:
    return env.expert_turn()


def random_valid_policy(seed: int) -> Policy:
    rng = random.Random(seed)

    def act(env: TextEnv, observation: str) -> AgentTurn:
        actions = env.available_actions()
        if not actions:
            raise ValueError(f"the random policy needs a list of available actions; {env.name!r} takes free-text answers")
        action = rng.choice(actions)
        return AgentTurn(thought=f"I will try {action}.", action=action)

    return act


def verbose_expert_policy(seed: int, verbose_probability: float = 0.8, detour_probability: float = 0.15) -> Policy:
    """The expert as an instruct model acts: long thoughts, and now and then a needless action.

    With `detour_probability` a step takes a random other available action (a detour, re-check or
    needless click) and the expert replans from there; with `verbose_probability` the thought is
    padded with restating, weighing and re-checking (`depo.agent.style.verbose_thought`).
    """
    for name, value in (("verbose_probability", verbose_probability), ("detour_probability", detour_probability)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    rng = random.Random(seed)

    def act(env: TextEnv, observation: str) -> AgentTurn:
        expert = env.expert_turn()
        options = env.available_actions()
        detours = [a for a in options if a != expert.action]
        core, action = expert.thought, expert.action
        if detours and rng.random() < detour_probability:
            action = rng.choice(detours)
            core = rng.choice(SHORT_ALTERNATIVE).format(action=action)
        if rng.random() < verbose_probability:
            return AgentTurn(thought=verbose_thought(core, action, observation, options, rng), action=action)
        return AgentTurn(thought=core, action=action)

    return act


SCRIPTED_POLICIES = ("expert", "random", "verbose_expert")


def make_policy(name: str, seed: int, **style: float) -> Policy:
    """A scripted policy by name; `style` goes to the verbose expert (see `verbose_expert_policy`)."""
    if name == "expert":
        return expert_policy
    if name == "random":
        return random_valid_policy(seed)
    if name == "verbose_expert":
        return verbose_expert_policy(seed, **style)
    raise ValueError(f"unknown scripted policy {name!r}; expected one of {SCRIPTED_POLICIES}")


def episode_id(source: str, task: Task, seed: int) -> str:
    """The trajectory id of one policy episode on a task (scripted or model rollouts)."""
    return f"{source}/{task.task_id}/{seed}"


def step_record(
    task: Task, trajectory_id: str, step: int, observation: str, turn: AgentTurn, result: StepResult, source: str,
    seed: int,
) -> StepRecord:
    """One step of an episode in the trajectory schema (per-trajectory columns filled by `finalize`)."""
    return StepRecord(
        env=task.env,
        task_id=task.task_id,
        split=task.split,
        trajectory_id=trajectory_id,
        step=step,
        observation=observation,
        thought=turn.thought,
        action=turn.action,
        reward=float(result.reward),
        done=result.done,
        valid_action=bool(result.info.get("valid_action", True)),
        source=source,
        seed=seed,
    )


def run_episode(env: TextEnv, task: Task, policy: Policy, source: str, seed: int) -> list[StepRecord]:
    observation = env.reset(task)
    trajectory_id = episode_id(source, task, seed)
    records: list[StepRecord] = []
    result = None
    while result is None or not result.done:
        turn = policy(env, observation)
        result = env.step(turn.action)
        records.append(step_record(task, trajectory_id, len(records), observation, turn, result, source, seed))
        observation = result.observation
    return finalize(records, success=bool(result.info.get("success", False)))


def run_policy(
    suite: TaskSuite, tasks: Iterable[Task], policy_name: str, seed: int, progress: bool = True, **style: float
) -> pl.DataFrame:
    """Run a scripted policy once on every task; one frame in the trajectory schema."""
    from tqdm.auto import tqdm

    tasks = list(tasks)
    policy = make_policy(policy_name, seed, **style)
    env = suite.make_env()
    records: list[StepRecord] = []
    for task in tqdm(tasks, desc=f"{suite.name}/{policy_name}", disable=not progress, leave=False):
        records.extend(run_episode(env, task, policy, source=policy_name, seed=seed))
    return to_frame(records)
