"""Monte Carlo tree search over agent turns: explicit trees, pluggable proposers, trajectory extraction."""
from depo.search.mcts import (
    TREE_COLUMNS,
    MCTSConfig,
    SearchResult,
    extract_trajectories,
    run_search,
    search_task,
    search_tasks,
)
from depo.search.proposers import ExpertProposer, ModelProposer, Proposal, Proposer

__all__ = [
    "TREE_COLUMNS",
    "ExpertProposer",
    "MCTSConfig",
    "ModelProposer",
    "Proposal",
    "Proposer",
    "SearchResult",
    "extract_trajectories",
    "run_search",
    "search_task",
    "search_tasks",
]
