"""MCTS: UCT and backup on hand-built trees, then real searches on the BabyAI environment."""
from __future__ import annotations

import math
import random

import polars as pl
import pytest

from depo.agent.react import AgentTurn
from depo.envs import build_suite
from depo.schema import TRAJECTORY_SCHEMA, validate_frame
from depo.search import TREE_COLUMNS, ExpertProposer, MCTSConfig, run_search, search_tasks
from depo.search.tree import ROOT, add_child, backpropagate, new_tree, q_value, select_child, select_leaf


def _tree_with_children(n: int):
    # Node bookkeeping only: UCT and backup never touch the environment.
    tree = new_tree(env=None, observation="start")
    children = [add_child(tree, ROOT, AgentTurn(f"t{i}", f"a{i}")) for i in range(n)]
    for child in children:
        tree.stepped[child] = True
    tree.expanded[ROOT] = True
    return tree, children


def test_uct_tries_unvisited_children_first_in_order():
    tree, (a, b, c) = _tree_with_children(3)
    backpropagate(tree, a, 1.0)
    assert select_child(tree, ROOT, exploration=1.0) == b
    backpropagate(tree, b, 0.0)
    assert select_child(tree, ROOT, exploration=1.0) == c


def test_uct_trades_value_against_exploration():
    tree, (a, b) = _tree_with_children(2)
    for value in (1.0, 1.0, 1.0, 0.0):  # a: Q = 0.75 over 4 visits
        backpropagate(tree, a, value)
    backpropagate(tree, b, 0.5)  # b: Q = 0.5 over 1 visit
    # N(root) = 5. UCT(a) = 0.75 + w·sqrt(ln 5 / 4), UCT(b) = 0.5 + w·sqrt(ln 5 / 1).
    assert select_child(tree, ROOT, exploration=0.0) == a
    crossover = 0.25 / (math.sqrt(math.log(5)) - math.sqrt(math.log(5) / 4))
    assert select_child(tree, ROOT, exploration=crossover * 0.9) == a
    assert select_child(tree, ROOT, exploration=crossover * 1.1) == b


def test_backpropagate_updates_counts_and_means_along_the_path():
    tree, (a, b) = _tree_with_children(2)
    a1 = add_child(tree, a, AgentTurn("deeper", "x"))
    backpropagate(tree, a1, 1.0)
    backpropagate(tree, a1, 0.0)
    backpropagate(tree, a, 0.5)
    backpropagate(tree, b, 0.2)
    assert tree.visit_count[a1] == 2 and q_value(tree, a1) == pytest.approx(0.5)
    assert tree.visit_count[a] == 3 and q_value(tree, a) == pytest.approx(0.5)
    assert tree.visit_count[b] == 1 and q_value(tree, b) == pytest.approx(0.2)
    assert tree.visit_count[ROOT] == 4 and q_value(tree, ROOT) == pytest.approx(1.7 / 4)


def test_select_leaf_descends_to_an_unstepped_child():
    tree, (a, b) = _tree_with_children(2)
    tree.expanded[a] = True
    a1 = add_child(tree, a, AgentTurn("deeper", "x"))
    backpropagate(tree, a, 1.0)
    backpropagate(tree, b, 0.0)
    assert select_leaf(tree, exploration=0.0, max_depth=10) == a1
    assert select_leaf(tree, exploration=0.0, max_depth=1) == a  # depth 1 is terminal


@pytest.mark.parametrize(
    ("field", "value"),
    [("simulations", -1), ("simulations", 0), ("num_proposals", 0), ("max_depth", 0), ("exploration", -0.1),
     ("rollout_policy", "greedy"), ("seed", 1.5)],
)
def test_config_rejects_bad_values_naming_the_parameter(field, value):
    with pytest.raises(ValueError, match=field):
        MCTSConfig(**{field: value})


@pytest.fixture(scope="module")
def babyai():
    return build_suite("babyai", {"max_steps": 20})


@pytest.fixture(scope="module")
def searched(babyai):
    tasks = babyai.make_tasks("test", 40, seed=0)
    config = MCTSConfig(simulations=24, num_proposals=3, exploration=1.0, max_depth=20, seed=0)
    return tasks, search_tasks(babyai, tasks, ExpertProposer(), config, progress=False)


def _per_trajectory(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by("trajectory_id", maintain_order=True).agg(
        pl.col("task_id").first(),
        pl.col("success").first(),
        pl.col("n_steps").first(),
        pl.col("action"),
        pl.col("step"),
    )


def test_search_finds_a_successful_path_for_almost_every_babyai_task(searched):
    tasks, frame = searched
    solved = set(frame.filter(pl.col("success"))["task_id"])
    assert len(solved) >= 0.95 * len(tasks)


def test_search_output_is_in_the_trajectory_schema_with_tree_statistics(searched):
    _, frame = searched
    validate_frame(frame, "mcts")
    assert list(frame.columns) == list(TRAJECTORY_SCHEMA) + list(TREE_COLUMNS)
    assert set(frame["source"]) == {"mcts"}
    trajectories = _per_trajectory(frame)
    assert trajectories["trajectory_id"].n_unique() == trajectories.height
    for steps, n_steps in zip(trajectories["step"], trajectories["n_steps"], strict=True):
        assert steps.to_list() == list(range(n_steps))
    # The first step of every path is a root child, which its simulation visited.
    first_steps = frame.filter(pl.col("step") == 0)
    assert first_steps["tree_visits"].min() >= 1
    assert first_steps["tree_value"].null_count() == 0
    # Rollout steps lie below the tree: no visits, no value.
    rollout = frame.filter(pl.col("tree_visits") == 0)
    assert rollout.height > 0 and rollout["tree_value"].null_count() == rollout.height


def test_search_keeps_each_action_sequence_once_per_task(searched):
    _, frame = searched
    trajectories = _per_trajectory(frame).with_columns(pl.col("action").list.join("\n").alias("sequence"))
    duplicates = trajectories.group_by(["task_id", "sequence"]).len().filter(pl.col("len") > 1)
    assert duplicates.is_empty()
    assert trajectories.group_by("task_id").len()["len"].min() > 1


def test_search_output_mixes_thought_lengths_and_step_counts(searched):
    _, frame = searched
    lengths = frame.group_by("action").agg(
        pl.col("thought").str.split(" ").list.len().min().alias("shortest"),
        pl.col("thought").str.split(" ").list.len().max().alias("longest"),
    )
    # Some action is written both tersely and at least three times as long.
    assert lengths.filter(pl.col("longest") >= 3 * pl.col("shortest")).height > 0
    steps_per_task = _per_trajectory(frame).group_by("task_id").agg(pl.col("n_steps").n_unique().alias("k"))
    assert steps_per_task["k"].max() >= 3
    assert _per_trajectory(frame)["n_steps"].n_unique() >= 5


def test_search_is_deterministic_for_a_seed(babyai):
    tasks = babyai.make_tasks("train", 3, seed=1)
    config = MCTSConfig(simulations=16, seed=7)
    first = search_tasks(babyai, tasks, ExpertProposer(), config, progress=False)
    again = search_tasks(babyai, tasks, ExpertProposer(), config, progress=False)
    other = search_tasks(babyai, tasks, ExpertProposer(), MCTSConfig(simulations=16, seed=8), progress=False)
    assert first.equals(again)
    assert not first.drop("trajectory_id", "seed").equals(other.drop("trajectory_id", "seed"))


def test_random_rollouts_explore_failing_paths_and_respect_max_depth(babyai):
    tasks = babyai.make_tasks("train", 4, seed=2)
    config = MCTSConfig(simulations=16, max_depth=6, rollout_policy="random", seed=0)
    frame = search_tasks(babyai, tasks, ExpertProposer(), config, progress=False)
    trajectories = _per_trajectory(frame)
    assert trajectories["n_steps"].max() <= 6
    assert not trajectories["success"].all()
    # A path cut at max depth is not done on its last step.
    last_steps = frame.filter(pl.col("step") == pl.col("n_steps") - 1)
    assert last_steps.filter(~pl.col("done"))["n_steps"].unique().to_list() in ([], [6])


def test_search_never_steps_the_callers_environment(babyai):
    task = babyai.make_tasks("train", 1, seed=3)[0]
    env = babyai.make_env()
    result = run_search(env, task, ExpertProposer(), MCTSConfig(simulations=12))
    assert env.steps_taken == 0
    assert result.tree.num_nodes > 1 and len(result.paths) > 1


def test_expert_proposer_gives_the_expert_action_first_and_distinct_alternatives(babyai):
    task = babyai.make_tasks("train", 1, seed=4)[0]
    env = babyai.make_env()
    observation = env.reset(task)
    proposals = ExpertProposer(verbose_probability=0.0).propose(env, [observation], [], 4, random.Random(0))
    actions = [p.turn.action for p in proposals]
    assert actions[0] == env.expert_turn().action
    assert proposals[0].turn.thought == env.expert_turn().thought
    assert len(set(actions)) == len(actions) == min(4, len(env.available_actions()))
    assert set(actions) <= set(env.available_actions())
    verbose = ExpertProposer(verbose_probability=1.0).propose(env, [observation], [], 1, random.Random(0))
    assert verbose[0].turn.action == actions[0]
    assert len(verbose[0].turn.thought) > len(proposals[0].turn.thought)
    with pytest.raises(ValueError, match="verbose_probability"):
        ExpertProposer(verbose_probability=1.5)
