"""`BabyAIEnv`: one BabyAI episode on a real minigrid level, driven by text actions."""
from __future__ import annotations

import copy
from typing import Any

from minigrid.core.grid import Grid
from minigrid.core.world_object import Wall, WorldObj
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

from depo.agent.react import AgentTurn
from depo.envs.babyai.expert import PlanCache, expert_turn
from depo.envs.babyai.levels import check_levels, make_level_env, reset_level_env
from depo.envs.babyai.view import StateView, build_view
from depo.envs.base import StepResult, Task, TextEnv


def normalize_action(action: str) -> str:
    """Lower case, single spaces, without surrounding quotes or a final full stop."""
    return " ".join(action.strip().strip("\"'`").rstrip(".").lower().split())


def _copy_object(obj: WorldObj, copies: dict[int, Any]) -> WorldObj:
    twin = object.__new__(obj.__class__)
    twin.__dict__.update(obj.__dict__)
    copies[id(obj)] = twin
    if obj.contains is not None:  # a box's hidden content
        twin.contains = _copy_object(obj.contains, copies)
    return twin


def clone_level(game: RoomGridLevel) -> RoomGridLevel:
    """An independent copy of a reset minigrid level, copying only what a step can change.

    Steps change the grid's contents (objects move, doors open), the agent, what it carries, the
    step count and the verifier's bookkeeping (`instrs`, which points at grid objects and the env).
    Walls never change, and the room layout, spaces and RNG are only used while generating a level
    (every reset reseeds), so those are shared with the original.
    """
    twin = object.__new__(game.__class__)
    twin.__dict__.update(game.__dict__)
    copies: dict[int, Any] = {id(game): twin}
    cells = game.grid.grid.copy()
    for index, cell in enumerate(cells):
        if cell is not None and cell.__class__ is not Wall:
            cells[index] = _copy_object(cell, copies)
    grid = object.__new__(Grid)
    grid.width, grid.height, grid.grid = game.grid.width, game.grid.height, cells
    twin.grid = grid
    if game.carrying is not None:
        twin.carrying = _copy_object(game.carrying, copies)
    # `copies` maps every mutable object to its copy, so the verifier's references follow.
    twin.instrs = copy.deepcopy(game.instrs, copies)
    return twin


class BabyAIEnv(TextEnv):
    """Text BabyAI: observations list what the agent sees; actions are primitive or macro moves.

    One agent step runs one available action (a macro expands to several minigrid steps, stopping
    early if minigrid ends the episode). The reward is minigrid's own, on the finishing step.
    """

    name = "babyai"

    def __init__(self, max_steps: int = 20):
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.max_steps = max_steps
        self._games: dict[str, RoomGridLevel] = {}  # one minigrid env per level, reused across resets
        self._game: RoomGridLevel | None = None
        self._level: str | None = None
        self._steps = 0
        self._done = False
        self._view: StateView | None = None
        self._plans = PlanCache()

    # --- episode ------------------------------------------------------------------------------
    def reset(self, task: Task) -> str:
        level, env_seed = task.spec.get("level"), task.spec.get("env_seed")
        check_levels([level], "task.spec['level']")
        if not isinstance(env_seed, int) or env_seed < 0:
            raise ValueError(f"task.spec['env_seed'] must be a non-negative integer, got {env_seed!r}")
        if level not in self._games:
            self._games[level] = make_level_env(level)
        self._game, self._level = self._games[level], level
        reset_level_env(self._game, env_seed)
        self._steps, self._done, self._view = 0, False, None
        self._plans = PlanCache()
        return self._observation()

    def step(self, action: str) -> StepResult:
        game = self._require_game()
        if self._done:
            raise RuntimeError("the episode is over; call reset() before stepping again")
        expansion = self.view.actions.get(normalize_action(action))
        self._steps += 1
        out_of_steps = self._steps >= self.max_steps
        if expansion is None:
            self._done = out_of_steps
            note = f"Invalid action: {action.strip()!r} is not one of the available actions; nothing happened."
            info: dict[str, Any] = {"valid_action": False}
            if self._done:
                info["success"] = False
            return StepResult(self._observation(note), 0.0, self._done, info)

        reward, terminated, truncated = 0.0, False, False
        for primitive in expansion:
            _, reward, terminated, truncated, _ = game.step(primitive)
            if terminated or truncated:
                break
        self._view = None
        success = bool(terminated and reward > 0)
        self._done = terminated or truncated or out_of_steps
        info = {"valid_action": True}
        note = ""
        if self._done:
            info["success"] = success
            note = "You completed the task." if success else "The episode is over: you ran out of steps."
        return StepResult(self._observation(note), float(reward), self._done, info)

    def clone(self) -> BabyAIEnv:
        twin = object.__new__(BabyAIEnv)
        twin.max_steps, twin._level = self.max_steps, self._level
        twin._steps, twin._done = self._steps, self._done
        twin._view = self._view  # positions and text only, valid for the copy's identical state
        twin._plans = self._plans  # keyed by layout, so shared safely between copies of an episode
        if self._game is None:
            twin._games, twin._game = {}, None
        else:
            twin._game = clone_level(self._game)
            twin._games = {self._level: twin._game}
        return twin

    # --- queries ------------------------------------------------------------------------------
    @property
    def view(self) -> StateView:
        """The current state's view (objects, available actions), built once per state."""
        if self._view is None:
            self._view = build_view(self._require_game())
        return self._view

    def available_actions(self) -> list[str]:
        return list(self.view.actions)

    def expert_turn(self) -> AgentTurn:
        if self._done:
            raise RuntimeError("the episode is over; the expert has no move to make")
        return expert_turn(self._require_game(), self.view, self._plans)

    @property
    def steps_taken(self) -> int:
        return self._steps

    @property
    def done(self) -> bool:
        return self._done

    @property
    def mission(self) -> str:
        return self._require_game().mission

    @property
    def level(self) -> str:
        self._require_game()
        return self._level

    @property
    def game(self) -> RoomGridLevel:
        """The underlying minigrid level (read it, do not step it directly)."""
        return self._require_game()

    def _observation(self, note: str = "") -> str:
        goal = f"Your goal: {self.mission}"
        return "\n".join(part for part in (note, goal, self.view.text) if part)

    def _require_game(self) -> RoomGridLevel:
        if self._game is None:
            raise RuntimeError("call reset(task) before using the environment")
        return self._game
