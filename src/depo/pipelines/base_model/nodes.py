"""The stand-in instruct model of the embedded default: a tiny Llama pretrained on verbose agent text.

The paper's BC models start from instruct models that reason at length; a tiny model trained from
random weights only on concise data would have no habits for DEPO to remove. So the tiny model is
first trained on a generated corpus: verbose-expert trajectories (long thoughts, some detours) in
every environment, plus worked solutions to generated math problems, never the real benchmarks.
"""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.agent.react import AgentTurn, format_turn
from depo.envs import build_suite, system_prompts
from depo.labeling.labels import conversations
from depo.policy.base import PolicyModel
from depo.policy.tiny import build_tiny_model
from depo.policy.tokenizer import train_tokenizer
from depo.rollout.episodes import run_policy
from depo.tracking import log_metrics, training_step_logger
from depo.training import BCConfig, train_bc


def make_base_corpus(envs: dict[str, Any], base_model: dict[str, Any], webshop_products: pl.DataFrame) -> pl.DataFrame:
    """Verbose-expert episodes on train tasks of every corpus env, in the trajectory schema.

    Math uses its own generated problems (`base_model.corpus.math_problems_per_benchmark`), so the
    corpus never reads the benchmark files even when evaluation does.
    """
    from depo.envs.math import generate_problems

    corpus = base_model["corpus"]
    frames = []
    for name in corpus["envs"]:
        resources: dict[str, Any] = {"products": webshop_products}
        if name == "math":
            resources["problems"] = generate_problems(
                n_per_benchmark=corpus["math_problems_per_benchmark"], seed=corpus["seed"]
            )
        suite = build_suite(name, envs.get(name, {}), **resources)
        tasks = suite.make_tasks("train", corpus["n_tasks"][name], seed=corpus["seed"])
        frames.append(
            run_policy(
                suite, tasks, "verbose_expert", seed=corpus["seed"],
                verbose_probability=corpus["verbose_probability"], detour_probability=corpus["detour_probability"],
            )
        )
    trajectories = pl.concat(frames)
    if not corpus.get("keep_failed", False):
        trajectories = trajectories.filter(pl.col("success"))
    per_trajectory = trajectories.unique("trajectory_id")
    log_metrics(
        {"base_corpus/trajectories": per_trajectory.height, "base_corpus/mean_steps": per_trajectory["n_steps"].mean()}
    )
    return trajectories


def _training_texts(frames: list[pl.DataFrame]) -> list[str]:
    """What the policy reads and writes: system prompts, observations, formatted turns."""
    texts = list(system_prompts().values())
    for frame in frames:
        texts += frame["observation"].to_list()
        texts += [format_turn(AgentTurn(t, a)) for t, a in zip(frame["thought"], frame["action"], strict=True)]
    return texts


def build_tiny_policy(base_corpus: pl.DataFrame, expert_trajectories: pl.DataFrame, tiny_model: dict[str, Any]) -> PolicyModel:
    """A BPE tokenizer trained on the environments' texts and a randomly initialised tiny Llama."""
    tokenizer = train_tokenizer(_training_texts([base_corpus, expert_trajectories]), vocab_size=tiny_model["vocab_size"])
    model = build_tiny_model(tokenizer, **{k: v for k, v in tiny_model.items() if k != "vocab_size"})
    log_metrics({"tiny_model/parameters": sum(p.numel() for p in model.parameters()), "tiny_model/vocab": len(tokenizer)})
    return PolicyModel(model=model, tokenizer=tokenizer)


def pretrain_base_model(tiny_model: PolicyModel, base_corpus: pl.DataFrame, base_model: dict[str, Any]) -> PolicyModel:
    """Instruct-style training on the corpus conversations (assistant turns supervised)."""
    corpus = conversations(base_corpus, system_prompts())
    config = BCConfig(output_dir=base_model["output_dir"], **base_model["training"])
    outcome = train_bc(tiny_model, corpus, config, base_model["output_dir"],
                       log_step=training_step_logger("base_model"))
    return outcome.policy
