"""Monte Carlo tree search over agent turns, and the trajectories it explores.

One simulation: select a leaf by UCT, expand it with K proposals (a leaf is expanded on its second
visit; its first visit only steps its action), roll out with a scripted policy until `done` or
`max_depth`, back up the final reward. Every simulation's whole action sequence (tree prefix plus
rollout) is a trajectory; identical sequences within a task are kept once (the first found).
"""
from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from depo.agent.react import AgentTurn
from depo.envs.base import Task, TaskSuite, TextEnv
from depo.rollout.episodes import Policy, make_policy
from depo.schema import StepRecord, finalize, to_frame
from depo.search.proposers import Proposer
from depo.search.tree import (
    ROOT,
    Tree,
    add_child,
    backpropagate,
    is_terminal,
    new_tree,
    path_from_root,
    q_value,
    select_child,
    select_leaf,
)

ROLLOUT_POLICIES = ("expert", "random")
SOURCE = "mcts"
# Columns MCTS adds to the trajectory schema, per step. Rollout steps (below the tree) have 0 visits,
# no value; scripted proposals have no proposal tokens.
TREE_COLUMNS: dict[str, pl.DataType] = {
    "tree_visits": pl.Int32,
    "tree_value": pl.Float64,
    "proposal_tokens": pl.Int32,
}


@dataclass(frozen=True)
class MCTSConfig:
    simulations: int = 64  # per task
    num_proposals: int = 3  # K children per expansion
    exploration: float = 1.0  # w in the UCT bonus
    max_depth: int = 20  # steps from the root; a path this long ends there
    rollout_policy: str = "expert"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("simulations", "num_proposals", "max_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MCTSConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.exploration, (int, float)) or self.exploration < 0:
            raise ValueError(f"MCTSConfig.exploration must be a non-negative number, got {self.exploration!r}")
        if self.rollout_policy not in ROLLOUT_POLICIES:
            raise ValueError(f"MCTSConfig.rollout_policy must be one of {ROLLOUT_POLICIES}, got {self.rollout_policy!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"MCTSConfig.seed must be an integer, got {self.seed!r}")


@dataclass(frozen=True)
class RolloutStep:
    observation: str  # seen before acting
    turn: AgentTurn
    reward: float
    done: bool
    valid_action: bool
    success: bool


@dataclass(frozen=True)
class SimulationPath:
    """One simulation's trajectory: the tree path root → `node`, then the rollout steps below it."""

    node: int
    rollout: tuple[RolloutStep, ...]


@dataclass
class SearchResult:
    tree: Tree
    paths: list[SimulationPath]  # distinct action sequences, in the order found


def step_node(tree: Tree, node: int) -> TextEnv:
    """Take `node`'s action in a clone of its parent's state; record the result; return that env."""
    env = tree.env[tree.parent[node]].clone()
    result = env.step(tree.turn[node].action)
    tree.stepped[node] = True
    tree.observation[node] = result.observation
    tree.reward[node] = float(result.reward)
    tree.done[node] = result.done
    tree.valid_action[node] = bool(result.info.get("valid_action", True))
    tree.success[node] = bool(result.info.get("success", False))
    return env


def node_env(tree: Tree, node: int) -> TextEnv:
    """`node`'s environment state, re-derived from its parent's when its clone was used by a rollout."""
    if tree.env[node] is None:
        env = tree.env[tree.parent[node]].clone()
        env.step(tree.turn[node].action)
        tree.env[node] = env
    return tree.env[node]


def expand(tree: Tree, node: int, proposer: Proposer, k: int, rng: random.Random) -> None:
    """Add a child per proposal with a new action; the node keeps its env for its children's steps."""
    path = path_from_root(tree, node)
    observations = [tree.observation[ROOT]] + [tree.observation[n] for n in path]
    turns = [tree.turn[n] for n in path]
    seen: set[str] = set()
    for proposal in proposer.propose(node_env(tree, node), observations, turns, k, rng):
        if proposal.turn.action in seen:
            continue
        seen.add(proposal.turn.action)
        add_child(tree, node, proposal.turn, proposal.generated_tokens)
    tree.expanded[node] = True


def simulate(env: TextEnv, observation: str, policy: Policy, max_steps: int) -> list[RolloutStep]:
    """Run `policy` in `env` (consumed) for at most `max_steps` steps or until done."""
    steps: list[RolloutStep] = []
    done = False
    while not done and len(steps) < max_steps:
        turn = policy(env, observation)
        result = env.step(turn.action)
        done = result.done
        steps.append(
            RolloutStep(
                observation=observation,
                turn=turn,
                reward=float(result.reward),
                done=done,
                valid_action=bool(result.info.get("valid_action", True)),
                success=bool(result.info.get("success", False)),
            )
        )
        observation = result.observation
    return steps


def task_rng(task: Task, seed: int) -> random.Random:
    # A string seed is hashed with SHA-512, so it is stable across processes (unlike hash()).
    return random.Random(f"{seed}/{task.env}/{task.task_id}")


def run_search(env: TextEnv, task: Task, proposer: Proposer, config: MCTSConfig) -> SearchResult:
    """All simulations for one task. `env` is reset to the task and then only cloned, never stepped."""
    rng = task_rng(task, config.seed)
    rollout_policy = make_policy(config.rollout_policy, rng.randrange(2**31))
    tree = new_tree(env, env.reset(task))
    paths: list[SimulationPath] = []
    seen_sequences: set[tuple[str, ...]] = set()
    for _ in range(config.simulations):
        node = select_leaf(tree, config.exploration, config.max_depth)
        if tree.stepped[node] and not is_terminal(tree, node, config.max_depth):
            expand(tree, node, proposer, config.num_proposals, rng)
            if tree.children[node]:
                node = select_child(tree, node, config.exploration)
        rollout_env = step_node(tree, node) if not tree.stepped[node] else None
        rollout: list[RolloutStep] = []
        if not is_terminal(tree, node, config.max_depth):
            if rollout_env is None:  # an expanded node the proposer gave no children
                rollout_env = tree.env[node].clone()
            remaining = config.max_depth - tree.depth[node]
            rollout = simulate(rollout_env, tree.observation[node], rollout_policy, remaining)
        value = rollout[-1].reward if rollout else tree.reward[node]
        backpropagate(tree, node, value)
        sequence = tuple(tree.turn[n].action for n in path_from_root(tree, node)) + tuple(
            step.turn.action for step in rollout
        )
        if sequence not in seen_sequences:
            seen_sequences.add(sequence)
            paths.append(SimulationPath(node=node, rollout=tuple(rollout)))
    return SearchResult(tree=tree, paths=paths)


def extract_trajectories(result: SearchResult, task: Task, config: MCTSConfig) -> pl.DataFrame:
    """One trajectory per distinct simulation path, in the trajectory schema plus `TREE_COLUMNS`."""
    tree = result.tree
    records: list[StepRecord] = []
    extra: dict[str, list] = {name: [] for name in TREE_COLUMNS}
    for index, path in enumerate(result.paths):
        # (observation before acting, turn, reward, done, valid action) per step, tree part first.
        nodes = path_from_root(tree, path.node)
        steps = [
            (tree.observation[tree.parent[n]], tree.turn[n], tree.reward[n], tree.done[n], tree.valid_action[n])
            for n in nodes
        ]
        success = tree.success[path.node]
        for n in nodes:
            extra["tree_visits"].append(tree.visit_count[n])
            extra["tree_value"].append(q_value(tree, n))
            extra["proposal_tokens"].append(tree.proposal_tokens[n])
        for step in path.rollout:
            steps.append((step.observation, step.turn, step.reward, step.done, step.valid_action))
            extra["tree_visits"].append(0)
            extra["tree_value"].append(None)
            extra["proposal_tokens"].append(None)
            success = step.success
        trajectory_id = f"{SOURCE}/{task.env}/{task.task_id}/{config.seed}/{index}"
        trajectory = [
            StepRecord(
                env=task.env, task_id=task.task_id, split=task.split, trajectory_id=trajectory_id,
                step=i, observation=observation, thought=turn.thought, action=turn.action,
                reward=reward, done=done, valid_action=valid, source=SOURCE, seed=config.seed,
            )
            for i, (observation, turn, reward, done, valid) in enumerate(steps)
        ]
        records += finalize(trajectory, success=success)
    frame = to_frame(records)
    return frame.with_columns(pl.Series(name, extra[name], dtype=dtype) for name, dtype in TREE_COLUMNS.items())


def search_task(env: TextEnv, task: Task, proposer: Proposer, config: MCTSConfig) -> pl.DataFrame:
    """Search one task and return its trajectories; the tree is dropped on return."""
    return extract_trajectories(run_search(env, task, proposer, config), task, config)


def search_tasks(
    suite: TaskSuite, tasks: Iterable[Task], proposer: Proposer, config: MCTSConfig, progress: bool = True
) -> pl.DataFrame:
    """MCTS trajectories for every task, concatenated in task order; deterministic for `config.seed`."""
    from tqdm.auto import tqdm

    tasks = list(tasks)
    env = suite.make_env()
    frames = [
        search_task(env, task, proposer, config)
        for task in tqdm(tasks, desc=f"{suite.name}/mcts", disable=not progress, leave=False)
    ]
    if not frames:
        return to_frame([]).with_columns(pl.Series(name, [], dtype=dtype) for name, dtype in TREE_COLUMNS.items())
    return pl.concat(frames, how="vertical")
