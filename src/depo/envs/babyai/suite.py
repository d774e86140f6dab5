"""`BabyAISuite`: BabyAI tasks (level + minigrid seed) with disjoint train/test seed ranges."""
from __future__ import annotations

import random
from collections.abc import Sequence

from depo.envs.babyai.env import BabyAIEnv
from depo.envs.babyai.levels import DEFAULT_LEVELS, check_levels
from depo.envs.base import Task, TaskSuite, check_split

# minigrid seeds per split: train draws from the lower half, test from the upper, so no task is in both.
SEED_RANGES = {"train": (0, 2**30), "test": (2**30, 2**31)}

SYSTEM_PROMPT = """You are an agent in BabyAI, a grid world of rooms connected by doors. Each observation gives your goal, the objects in your 7x7 field of view with their positions in steps relative to you (walls and closed doors hide what is behind them), what you are carrying, and the actions available now.

Actions:
- "turn left", "turn right": turn in place.
- "move forward": step one cell ahead.
- "pickup", "drop", "toggle": pick up the object in front of you, drop what you carry in front of you, open or close the door in front of you.
- "go to <color> <type> <n>": walk up to a visible object and face it.
- "pickup <color> <type> <n>": walk up to a visible object and pick it up (you can carry one object).
- "put next to <color> <type> <n>": carry what you hold to a free cell beside a visible object and drop it there.
- "go through <color> open door <n>": walk through a visible open door.
- "toggle and go through <color> closed door <n>": open a visible door and walk through it (a locked door needs a key of its color).
<n> tells apart visible objects of the same color and type, 1 being the nearest. Each action counts as one step, and you have a limited number of steps, so reach the goal in as few actions as you can. Use only actions from the "Available actions" list.

Reply in exactly this format:
Thought: <a short reasoning about what to do next>
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
