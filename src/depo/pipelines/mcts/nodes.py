"""MCTS over the train tasks: many trajectories of varied quality and length per task."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.datasets.credentials import Secret
from depo.envs import build_suites
from depo.envs.base import select_tasks
from depo.search import ExpertProposer, MCTSConfig, ModelProposer, search_tasks
from depo.tracking import log_metrics

PROPOSERS = ("expert", "endpoint")


def make_proposer(proposer: dict[str, Any], system_prompt: str, api_key: Secret):
    """The expert proposer (embedded default) or K samples from an OpenAI-compatible endpoint."""
    kind = proposer["type"]
    if kind == "expert":
        return ExpertProposer(verbose_probability=proposer["verbose_probability"])
    if kind == "endpoint":
        from depo.policy.endpoint import EndpointGenerator

        endpoint = dict(proposer["endpoint"])
        sampling = {k: endpoint.pop(k) for k in ("max_new_tokens", "temperature", "top_p", "history_turns") if k in endpoint}
        generator = EndpointGenerator(api_key=api_key.reveal(), **endpoint)
        return ModelProposer(generator, system_prompt=system_prompt, **sampling)
    raise ValueError(f"mcts.proposer.type must be one of {PROPOSERS}, got {kind!r}")


def search_trajectories(
    tasks: pl.DataFrame,
    webshop_products: pl.DataFrame,
    math_problems: pl.DataFrame,
    envs: dict[str, Any],
    mcts: dict[str, Any],
    endpoint_api_key: Secret,
) -> pl.DataFrame:
    """MCTS trajectories for the first `mcts.n_tasks[env]` train tasks of each env in `mcts.envs`."""
    config = MCTSConfig(**{k: mcts[k] for k in ("simulations", "num_proposals", "exploration", "max_depth",
                                                 "rollout_policy", "seed")})
    suites = build_suites(envs, mcts["envs"], products=webshop_products, problems=math_problems)
    frames = []
    for name, suite in suites.items():
        train = select_tasks(tasks, name, "train", mcts["n_tasks"][name])
        proposer = make_proposer(mcts["proposer"], suite.system_prompt, endpoint_api_key)
        frame = search_tasks(suite, train, proposer, config)
        per_trajectory = frame.unique("trajectory_id")
        log_metrics(
            {
                "trajectories": per_trajectory.height,
                "success_rate": per_trajectory["success"].cast(pl.Float64).mean(),
                "mean_steps": per_trajectory["n_steps"].cast(pl.Float64).mean(),
            },
            prefix=f"mcts/{name}/",
        )
        frames.append(frame)
    return pl.concat(frames)
