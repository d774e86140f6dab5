"""BabyAI text environment on real minigrid levels: observations, macros, invalid actions, clone,
reward, expert, silenced minigrid output, task suite."""
from __future__ import annotations

import json
import random
import re

import pytest
from minigrid.envs.babyai.core.verifier import GoToInstr, OpenInstr, PickupInstr, PutNextInstr

from depo.envs.babyai import DEFAULT_LEVELS, BabyAIEnv, BabyAISuite
from depo.envs.babyai.levels import make_level_env
from depo.envs.babyai.view import DIRECTIONS, PRIMITIVES
from depo.envs.base import Task

# Levels with several rooms and doors, next to the single-room ones, for walks over varied states.
WALK_LEVELS = ("GoToLocal", "GoToDoor", "PickupDist", "Pickup", "Open", "OpenDoorLoc", "PutNextLocal")
OBJECT_LINE = re.compile(r"^The (?P<label>[a-z]+ [a-z ]+ \d+) is (?P<where>.+)\.$", re.MULTILINE)
AHEAD = re.compile(r"(\d+) steps? in front of you")
SIDE = re.compile(r"(\d+) steps? to your (left|right)")
WALL_LINE = re.compile(r"^You are facing a wall (\d+) steps? away\.$", re.MULTILINE)


def level_task(level: str, env_seed: int) -> Task:
    return Task(env="babyai", task_id=f"{level}/{env_seed}", split="test", seed=env_seed,
                spec={"level": level, "env_seed": env_seed})


def suite_tasks(level: str, n: int, seed: int = 0) -> list[Task]:
    return BabyAISuite(levels=[level]).make_tasks("test", n, seed=seed)


def agent_state(env: BabyAIEnv) -> tuple[int, int, int]:
    return int(env.game.agent_pos[0]), int(env.game.agent_pos[1]), int(env.game.agent_dir)


def front_cell(env: BabyAIEnv):
    return env.game.grid.get(*env.game.front_pos)


def game_snapshot(env: BabyAIEnv) -> tuple:
    """Everything a step can change in the minigrid level, as comparable values."""
    game = env.game
    carrying = None if game.carrying is None else (game.carrying.type, game.carrying.color)
    return agent_state(env), carrying, game.step_count, game.grid.encode().tobytes()


def episode_snapshot(env: BabyAIEnv) -> tuple:
    return game_snapshot(env), env.steps_taken, env.done


def random_walks(levels, tasks_per_level: int, seed: int):
    """(env, action) before each step of random valid-action episodes; the caller steps the env."""
    rng = random.Random(seed)
    env = BabyAIEnv(max_steps=20)
    for level in levels:
        for task in suite_tasks(level, tasks_per_level, seed=seed):
            env.reset(task)
            while not env.done:
                yield env, rng.choice(env.available_actions())


def parse_position(where: str) -> tuple[int, int]:
    """`2 steps in front of you and 1 step to your left` -> (ahead=2, right=-1)."""
    ahead, side = AHEAD.search(where), SIDE.search(where)
    assert ahead or side, where
    right = 0 if side is None else int(side[1]) * (1 if side[2] == "right" else -1)
    return (0 if ahead is None else int(ahead[1])), right


# --- observations ---------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["GoToLocal", "Open", "PutNextLocal"])
def test_reset_observation_has_goal_view_and_the_available_actions(level):
    env = BabyAIEnv()
    observation = env.reset(suite_tasks(level, 1)[0])
    assert observation.startswith(f"Your goal: {env.game.mission}\n")
    assert "You are not carrying anything." in observation
    last_line = observation.splitlines()[-1]
    assert last_line.startswith("Available actions: [")
    listed = json.loads(last_line.removeprefix("Available actions: "))
    assert listed == env.available_actions()
    assert {"turn left", "turn right"} <= set(listed)
    assert len(OBJECT_LINE.findall(observation)) == len(env.view.objects)


def test_observation_lists_exactly_what_minigrid_shows_the_agent_at_its_relative_positions():
    checked_objects = checked_walls = 0
    for env, action in random_walks(WALK_LEVELS, tasks_per_level=4, seed=1):
        game = env.game
        half = game.agent_view_size // 2
        observation = env.view.text
        _, visible_mask = game.gen_obs_grid()
        # minigrid's own visibility: every non-wall object it shows, minus the cell the agent stands on
        # (a doorway), keyed by its view coordinates.
        shown = {}
        for index, cell in enumerate(game.grid.grid):
            x, y = index % game.grid.width, index // game.grid.width
            if cell is None or cell.type == "wall" or (x, y) == tuple(game.agent_pos):
                continue
            coords = game.relative_coords(x, y)
            if coords is not None and visible_mask[coords]:
                shown[coords] = cell
        described = {}
        for match in OBJECT_LINE.finditer(observation):
            ahead, right = parse_position(match["where"])
            described[(half + right, game.agent_view_size - 1 - ahead)] = match["label"]
        assert described.keys() == shown.keys()
        for coords, label in described.items():
            cell = shown[coords]
            assert label.startswith(f"{cell.color} ") and cell.type in label
            checked_objects += 1
        wall = WALL_LINE.search(observation)
        if wall:
            x, y, direction = agent_state(env)
            dx, dy = DIRECTIONS[direction]
            distance = int(wall[1])
            assert game.grid.get(x + dx * distance, y + dy * distance).type == "wall"
            between = [game.grid.get(x + dx * k, y + dy * k) for k in range(1, distance)]
            assert all(cell is None or cell.can_overlap() for cell in between)
            checked_walls += 1
        env.step(action)
    assert checked_objects > 100 and checked_walls > 20


def test_observation_says_what_the_agent_carries():
    env = BabyAIEnv()
    env.reset(suite_tasks("PutNextLocal", 1)[0])
    pickup = next(action for action in env.available_actions() if action.startswith("pickup "))
    result = env.step(pickup)
    carried = env.game.carrying
    assert f"You are carrying a {carried.color} {carried.type}." in result.observation


# --- macro actions --------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["PickupDist", "PutNextLocal", "Open"])
def test_go_to_faces_the_object_and_pickup_carries_it(level):
    env = BabyAIEnv()
    macros_checked = 0
    for task in suite_tasks(level, 5):
        env.reset(task)
        for action, seen in env.view.macro_targets.items():
            verb = action.removesuffix(f" {seen.label}")
            if verb not in ("go to", "pickup"):
                continue
            twin = env.clone()
            twin.step(action)
            if verb == "go to":
                assert tuple(twin.game.front_pos) == seen.pos
                assert (front_cell(twin).type, front_cell(twin).color) == (seen.kind, seen.color)
            else:
                assert (twin.game.carrying.type, twin.game.carrying.color) == (seen.kind, seen.color)
                assert twin.game.grid.get(*seen.pos) is None
            macros_checked += 1
    assert macros_checked >= 10


def test_each_macro_runs_its_primitive_steps_and_ends_where_announced():
    door_macros = put_macros = 0
    for env, action in random_walks(WALK_LEVELS, tasks_per_level=6, seed=2):
        seen = env.view.macro_targets.get(action)
        expansion = env.view.actions[action]
        announced_end = env.view.macro_ends.get(action)
        step_count_before = env.game.step_count
        result = env.step(action)
        assert result.info["valid_action"]
        if seen is None or result.done:
            continue  # a primitive, or minigrid ended the episode part way
        assert env.game.step_count - step_count_before == len(expansion)  # one macro = one agent step
        assert agent_state(env) == announced_end
        if action.startswith(("go through", "toggle and go through")):
            door = env.game.grid.get(*seen.pos)
            assert door.type == "door" and door.is_open
            door_macros += 1
        if action.startswith("put next to"):
            dropped_at = env.game.front_pos
            assert abs(dropped_at[0] - seen.pos[0]) + abs(dropped_at[1] - seen.pos[1]) == 1
            assert env.game.carrying is None and env.game.grid.get(*dropped_at) is not None
            put_macros += 1
    assert door_macros >= 5 and put_macros >= 1


# --- invalid actions ------------------------------------------------------------------------------
def hidden_object_action(env: BabyAIEnv) -> str:
    """A well-formed `go to` naming an object on the map that is not in view."""
    visible_names = {seen.name for seen in env.view.objects}
    for cell in env.game.grid.grid:
        name = None if cell is None else f"{cell.color} {cell.type}"
        if name is not None and cell.type in ("ball", "key", "box") and name not in visible_names:
            return f"go to {name} 1"
    raise AssertionError("every object of this level is in view")


@pytest.mark.parametrize(
    "make_action",
    [lambda env: "fly to the moon", lambda env: "", lambda env: "click[buy now]", lambda env: "drop",
     hidden_object_action],
    ids=["garbage", "empty", "webshop-click", "drop-with-empty-hands", "hidden-object"],
)
def test_invalid_action_is_answered_counted_and_changes_nothing_else(make_action):
    env = BabyAIEnv()
    env.reset(suite_tasks("Pickup", 1)[0])
    env.step("turn left")
    action = make_action(env)
    assert action not in env.available_actions()
    before, steps_before, actions_before = game_snapshot(env), env.steps_taken, env.available_actions()
    result = env.step(action)
    assert result.info["valid_action"] is False and result.reward == 0.0 and not result.done
    assert "Invalid action" in result.observation
    assert result.observation.splitlines()[-1] == f"Available actions: {json.dumps(actions_before)}"
    assert env.steps_taken == steps_before + 1
    assert game_snapshot(env) == before  # agent, carried object, minigrid's step count and grid untouched


def test_invalid_actions_until_max_steps_end_the_episode_without_success():
    env = BabyAIEnv(max_steps=5)
    env.reset(suite_tasks("GoToLocal", 1)[0])
    results = [env.step("not an action") for _ in range(5)]
    assert [r.done for r in results] == [False] * 4 + [True]
    assert results[-1].info == {"valid_action": False, "success": False}
    assert all(r.reward == 0.0 for r in results) and env.steps_taken == 5


# --- clone ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["Pickup", "Open", "PutNextLocal"])
def test_clone_steps_like_the_original_and_leaves_it_untouched(level):
    for task in suite_tasks(level, 3):
        env = BabyAIEnv()
        env.reset(task)
        for _ in range(2):
            if env.step(env.expert_turn().action).done:
                break
        if env.done:
            continue
        twin = env.clone()
        assert twin.available_actions() == env.available_actions()

        # The expert's actions from the original, sent to the clone first: the original must not move.
        frozen = episode_snapshot(env)
        plan = []
        probe = env.clone()
        while not probe.done:
            plan.append(probe.expert_turn().action)
            probe.step(plan[-1])
        twin_results = [twin.step(action) for action in plan]
        # The clone's verifier must judge the clone's own objects, so the expert's plan succeeds in it.
        assert twin_results[-1].info["success"]
        assert episode_snapshot(env) == frozen
        original_results = [env.step(action) for action in plan]
        assert original_results == twin_results
        assert episode_snapshot(env) == episode_snapshot(twin)

        # Resetting a clone to another task must not reach back into the original either.
        twin.reset(suite_tasks(level, 1, seed=99)[0])
        assert episode_snapshot(env) == episode_snapshot(probe)


# --- reward and expert ----------------------------------------------------------------------------
def test_success_reward_is_minigrids_formula_over_primitive_steps():
    env = BabyAIEnv()
    for task in suite_tasks("PickupDist", 3):
        env.reset(task)
        primitive_steps = 0
        # Dawdle first so the step count, and thus the reward, is not the minimum.
        for action in ["turn left", "turn right", None, None, None, None, None]:
            action = action or env.expert_turn().action
            primitive_steps += len(env.view.actions[action])
            result = env.step(action)
            if result.done:
                break
            assert result.reward == 0.0
        assert result.info["success"]
        game = env.game
        assert game.step_count == primitive_steps
        assert result.reward == pytest.approx(1 - 0.9 * game.step_count / game.max_steps)
        assert 0 < result.reward < 1


def test_expert_solves_default_levels_with_short_thoughts():
    suite = BabyAISuite(levels=DEFAULT_LEVELS)
    env = suite.make_env()
    tasks = suite.make_tasks("test", 10 * len(DEFAULT_LEVELS), seed=0)
    successes = 0
    for task in tasks:
        env.reset(task)
        result = None
        while result is None or not result.done:
            turn = env.expert_turn()
            assert turn.action in env.available_actions()
            assert 0 < len(turn.thought) <= 160 and "\n" not in turn.thought
            result = env.step(turn.action)
            assert result.info["valid_action"]
        assert env.steps_taken <= suite.max_steps
        if result.info["success"]:
            successes += 1
            game = env.game
            assert result.reward == pytest.approx(1 - 0.9 * game.step_count / game.max_steps)
            assert 0 < result.reward <= 1
        else:
            assert result.reward == 0.0
    assert successes / len(tasks) >= 0.95


# --- minigrid output ------------------------------------------------------------------------------
def test_minigrid_rejection_sampling_chatter_is_silenced(capfd):
    # GoToLocal with seed 8 rejects a sample while generating (minigrid prints "Sampling rejected").
    make_level_env("GoToLocal").reset(seed=8)
    assert "Sampling rejected" in capfd.readouterr().out
    env = BabyAIEnv()
    env.reset(level_task("GoToLocal", 8))
    env.clone().reset(level_task("PickupLoc", 4))
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


# --- suite and levels -----------------------------------------------------------------------------
def test_default_levels_cover_the_four_instruction_kinds():
    assert len(DEFAULT_LEVELS) >= 8
    env = BabyAIEnv()
    kinds = set()
    for level in DEFAULT_LEVELS:
        env.reset(suite_tasks(level, 1)[0])
        kinds.add(type(env.game.instrs))
    assert {GoToInstr, PickupInstr, OpenInstr, PutNextInstr} <= kinds


def test_suite_splits_are_disjoint_and_seeded():
    suite = BabyAISuite()
    train, test = suite.make_tasks("train", 300, seed=0), suite.make_tasks("test", 300, seed=0)
    assert not {t.task_id for t in train} & {t.task_id for t in test}
    assert not {t.seed for t in train} & {t.seed for t in test}
    assert suite.make_tasks("test", 300, seed=0) == test
    assert [t.spec for t in suite.make_tasks("test", 300, seed=0)] == [t.spec for t in test]
    assert suite.make_tasks("test", 300, seed=1) != test
    assert {t.spec["level"] for t in test} == set(DEFAULT_LEVELS)
    assert all(t.split == "test" and t.env == "babyai" for t in test)


def test_unknown_level_is_rejected_by_name():
    with pytest.raises(ValueError, match="GoToNowhere"):
        BabyAISuite(levels=["GoToLocal", "GoToNowhere"])
    with pytest.raises(ValueError, match="GoToNowhere"):
        BabyAIEnv().reset(level_task("GoToNowhere", 0))


@pytest.mark.parametrize("max_steps", [0, -3, 2.5, True, "20"])
def test_bad_max_steps_is_rejected(max_steps):
    with pytest.raises(ValueError, match="max_steps"):
        BabyAISuite(max_steps=max_steps)
    with pytest.raises(ValueError, match="max_steps"):
        BabyAIEnv(max_steps=max_steps)


def test_primitive_actions_do_what_their_names_say():
    seen_primitives = set()
    for env, action in random_walks(WALK_LEVELS, tasks_per_level=3, seed=3):
        if action not in PRIMITIVES:
            env.step(action)
            continue
        (x, y, direction), front_pos = agent_state(env), tuple(env.game.front_pos)
        ahead, carried = front_cell(env), env.game.carrying
        door_was_open = ahead is not None and ahead.type == "door" and ahead.is_open
        if env.step(action).done:
            continue
        seen_primitives.add(action)
        moved_to = front_pos if action == "move forward" else (x, y)
        turns = {"turn left": (direction - 1) % 4, "turn right": (direction + 1) % 4}
        turned_to = turns.get(action, direction)
        assert agent_state(env) == (*moved_to, turned_to)
        if action == "pickup":
            assert env.game.carrying is ahead and env.game.grid.get(*front_pos) is None
        if action == "drop":
            assert env.game.carrying is None and env.game.grid.get(*front_pos) is carried
        if action == "toggle" and ahead.type == "door":
            assert env.game.grid.get(*front_pos).is_open != door_was_open
    assert seen_primitives == set(PRIMITIVES)
