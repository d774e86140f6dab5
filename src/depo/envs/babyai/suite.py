"""`BabyAISuite`: BabyAI tasks (level + minigrid seed) with disjoint train/test seed ranges."""
from __future__ import annotations

import random
from collections.abc import Sequence

from depo.envs.babyai.env import BabyAIEnv
from depo.envs.babyai.levels import DEFAULT_LEVELS, check_levels
from depo.envs.base import Task, TaskSuite, check_split

# minigrid seeds per split: train draws from the lower half, test from the upper, so no task is in both.
SEED_RANGES = {"train": (0, 2**30), "test": (2**30, 2**31)}

# Kept short on purpose: it opens every conversation, so its length is paid at every training and
# decoding step (the available actions are listed in each observation anyway).
SYSTEM_PROMPT = """You are an agent in BabyAI, a grid world of rooms joined by doors. Each observation gives your goal, the objects you see with their position in steps relative to you, what you carry, and the available actions.
Moves: "turn left", "turn right", "move forward", "pickup", "drop", "toggle" (open the door in front of you).
Macros walk to a visible object: "go to", "pickup", "put next to", "go through <color> open door <n>", "toggle and go through <color> closed door <n>"; <n> = 1 is the nearest of its kind.
Every action is one step: reach the goal in as few as you can, using only available actions.
Reply as:
Thought: <short reasoning>
Action: <one available action>"""


class BabyAISuite(TaskSuite):
    """BabyAI levels by short name (`GoToLocal` is `BabyAI-GoToLocal-v0`), cycled over the tasks."""

    name = "babyai"
    system_prompt = SYSTEM_PROMPT

    def __init__(self, levels: Sequence[str] | None = None, max_steps: int = 20):
        self.levels = check_levels(list(DEFAULT_LEVELS) if levels is None else list(levels))
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.max_steps = max_steps

    def make_tasks(self, split: str, n: int, seed: int) -> list[Task]:
        check_split(split)
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        low, high = SEED_RANGES[split]
        env_seeds = random.Random(f"babyai/{split}/{seed}").sample(range(low, high), n)
        tasks = []
        for i, env_seed in enumerate(env_seeds):
            level = self.levels[i % len(self.levels)]
            tasks.append(
                Task(
                    env=self.name,
                    task_id=f"{level}/{env_seed}",
                    split=split,
                    seed=env_seed,
                    spec={"level": level, "env_seed": env_seed},
                )
            )
        return tasks

    def make_env(self) -> BabyAIEnv:
        return BabyAIEnv(max_steps=self.max_steps)
