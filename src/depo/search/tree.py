"""The search tree as explicit state, and the pure UCT functions over it (in the style of mctx).

A `Tree` is a set of parallel per-node lists indexed by node id (root = 0). Node `n` stands for the
state reached by taking `turn[n]` in its parent's state; it keeps the step result of that action
(`observation` the agent then sees, `reward`, `done`, ...). `env[n]` is a clone of the environment
in that state, kept only for expanded nodes: a leaf's clone is consumed by the rollout started from
it and re-derived (parent clone + one step) if the leaf is ever expanded, which halves the clones
per simulation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from depo.agent.react import AgentTurn
from depo.envs.base import TextEnv

ROOT = 0


@dataclass
class Tree:
    parent: list[int] = field(default_factory=list)
    children: list[list[int]] = field(default_factory=list)
    expanded: list[bool] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    turn: list[AgentTurn | None] = field(default_factory=list)
    # Tokens the proposing model generated for the turn; None when no model proposed it.
    proposal_tokens: list[int | None] = field(default_factory=list)
    env: list[TextEnv | None] = field(default_factory=list)
    # Set once the node's action has been stepped (its first visit).
    stepped: list[bool] = field(default_factory=list)
    observation: list[str] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    done: list[bool] = field(default_factory=list)
    valid_action: list[bool] = field(default_factory=list)
    success: list[bool] = field(default_factory=list)
    visit_count: list[int] = field(default_factory=list)
    value_sum: list[float] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return len(self.parent)


def new_tree(env: TextEnv, observation: str) -> Tree:
    """A tree holding only the root: `env` right after `reset`, showing `observation`."""
    tree = Tree()
    _append_node(tree, parent=-1, depth=0, turn=None, proposal_tokens=None)
    tree.env[ROOT] = env
    tree.stepped[ROOT] = True
    tree.observation[ROOT] = observation
    return tree


def _append_node(tree: Tree, parent: int, depth: int, turn: AgentTurn | None, proposal_tokens: int | None) -> int:
    node = tree.num_nodes
    tree.parent.append(parent)
    tree.children.append([])
    tree.expanded.append(False)
    tree.depth.append(depth)
    tree.turn.append(turn)
    tree.proposal_tokens.append(proposal_tokens)
    tree.env.append(None)
    tree.stepped.append(False)
    tree.observation.append("")
    tree.reward.append(0.0)
    tree.done.append(False)
    tree.valid_action.append(True)
    tree.success.append(False)
    tree.visit_count.append(0)
    tree.value_sum.append(0.0)
    return node


def add_child(tree: Tree, parent: int, turn: AgentTurn, proposal_tokens: int | None = None) -> int:
    """A not-yet-stepped child of `parent` for `turn`; its step result arrives with its first visit."""
    child = _append_node(tree, parent, tree.depth[parent] + 1, turn, proposal_tokens)
    tree.children[parent].append(child)
    return child


def q_value(tree: Tree, node: int) -> float:
    """Mean return of the simulations through `node` (0 before any)."""
    visits = tree.visit_count[node]
    return tree.value_sum[node] / visits if visits else 0.0


def uct_score(tree: Tree, node: int, exploration: float) -> float:
    """Q(s) + w·sqrt(ln N(parent) / N(s)); infinite for an unvisited node so it is tried first."""
    visits = tree.visit_count[node]
    if visits == 0:
        return math.inf
    parent_visits = tree.visit_count[tree.parent[node]]
    return q_value(tree, node) + exploration * math.sqrt(math.log(parent_visits) / visits)


def select_child(tree: Tree, node: int, exploration: float) -> int:
    """The child with the highest UCT score; ties go to the earliest child, so search is deterministic."""
    children = tree.children[node]
    if not children:
        raise ValueError(f"node {node} has no children to select from")
    best, best_score = children[0], uct_score(tree, children[0], exploration)
    for child in children[1:]:
        score = uct_score(tree, child, exploration)
        if score > best_score:
            best, best_score = child, score
    return best


def is_terminal(tree: Tree, node: int, max_depth: int) -> bool:
    return tree.done[node] or tree.depth[node] >= max_depth


def select_leaf(tree: Tree, exploration: float, max_depth: int) -> int:
    """Descend from the root by UCT through expanded nodes to a node to expand or simulate from."""
    node = ROOT
    while tree.expanded[node] and tree.children[node] and not is_terminal(tree, node, max_depth):
        node = select_child(tree, node, exploration)
        if not tree.stepped[node]:
            break
    return node


def backpropagate(tree: Tree, node: int, value: float) -> None:
    """Add one visit with return `value` to `node` and every ancestor up to the root."""
    while node != -1:
        tree.visit_count[node] += 1
        tree.value_sum[node] += value
        node = tree.parent[node]


def path_from_root(tree: Tree, node: int) -> list[int]:
    """Node ids from the root's first child down to `node` (empty for the root itself)."""
    path = []
    while node != ROOT:
        path.append(node)
        node = tree.parent[node]
    path.reverse()
    return path
