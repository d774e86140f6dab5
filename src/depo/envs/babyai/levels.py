"""BabyAI level names (as registered by minigrid) and construction of one level's minigrid env."""
from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Sequence
from functools import cache

import gymnasium as gym
import minigrid  # noqa: F401  (importing registers the BabyAI-* environments with gymnasium)
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

# Levels the scripted expert solves (>= 95 % within 20 agent steps), covering the four instruction
# kinds: go to, pick up, open, put next to.
DEFAULT_LEVELS = (
    "GoToRedBallNoDists",
    "GoToRedBall",
    "GoToObj",
    "GoToLocal",
    "GoToDoor",
    "PickupLoc",
    "PickupDist",
    "Pickup",
    "Open",
    "OpenDoorLoc",
    "PutNextLocal",
)

_LEVEL_ID = re.compile(r"BabyAI-(?P<name>\w+)-v(?P<version>\d+)")


@cache
def registered_levels() -> dict[str, str]:
    """Short level name (`GoToLocal`) -> gymnasium id (`BabyAI-GoToLocal-v0`), newest version."""
    newest: dict[str, tuple[int, str]] = {}
    for env_id in gym.envs.registry:
        match = _LEVEL_ID.fullmatch(env_id)
        if match is None:
            continue
        version = int(match["version"])
        if match["name"] not in newest or version > newest[match["name"]][0]:
            newest[match["name"]] = (version, env_id)
    return {name: env_id for name, (_, env_id) in sorted(newest.items())}


def check_levels(levels: Sequence[str], parameter: str = "levels") -> tuple[str, ...]:
    """The level names as a tuple; ValueError naming the first unknown one and listing the valid ones."""
    if isinstance(levels, str) or not levels:
        raise ValueError(f"{parameter} must be a non-empty list of BabyAI level names, got {levels!r}")
    valid = registered_levels()
    for level in levels:
        if level not in valid:
            raise ValueError(
                f"unknown BabyAI level {level!r} in {parameter}; valid levels: {', '.join(valid)}"
            )
    return tuple(levels)


def _skip_image_observation() -> None:
    return None


def make_level_env(level: str) -> RoomGridLevel:
    """A fresh, not yet reset minigrid env of `level` (no gymnasium wrappers)."""
    env = gym.make(registered_levels()[check_levels([level], "level")[0]]).unwrapped
    # minigrid renders a 7x7 image observation after every primitive step (most of a step's cost);
    # the text environment builds its own view, so that rendering is switched off.
    env.gen_obs = _skip_image_observation
    return env


def reset_level_env(env: RoomGridLevel, env_seed: int) -> None:
    """Generate the level for `env_seed`; minigrid's rejection-sampling chatter is swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        env.reset(seed=env_seed)
