"""What the benchmarks run on: a fresh tiny policy and labeled BabyAI data, built in seconds.

A random-weight tiny model costs exactly what a trained one of the same shape costs per token, so
speed figures need no earlier pipeline. Its tokenizer is trained on the environment's own texts,
as the `base_model` pipeline's is.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from depo.agent.prompting import build_messages
from depo.envs.base import TaskSuite
from depo.labeling import build_depo_dataset, thresholds_from_params
from depo.labeling.labels import DEPO_DATASET_SCHEMA
from depo.policy.base import PolicyModel
from depo.policy.tiny import build_tiny_model, environment_corpus
from depo.policy.tokenizer import train_tokenizer
from depo.policy.tokens import count_turn_tokens
from depo.rollout.episodes import expert_policy, random_valid_policy, run_policy


def tiny_policy(suite: TaskSuite, model_shape: Mapping[str, Any], corpus_tasks: int, seed: int) -> PolicyModel:
    """A BPE tokenizer trained on `suite`'s expert and random episodes, and a random tiny Llama of `model_shape`
    (the `tiny_model` parameters block)."""
    tokenizer = train_tokenizer(environment_corpus([suite], corpus_tasks, seed), vocab_size=model_shape["vocab_size"])
    model = build_tiny_model(tokenizer, **{k: v for k, v in model_shape.items() if k != "vocab_size"})
    return PolicyModel(model=model, tokenizer=tokenizer)


def single_turn_preferences(suite: TaskSuite, tokenizer, n_tasks: int, seed: int) -> pl.DataFrame:
    """A `DEPO_DATASET_SCHEMA` frame of one-step conversations: per task, the expert's first turn
    (desirable) and a random valid first turn (undesirable).

    One assistant turn per row is what makes DEPO at α = 0 and TRL's KTO compute the same loss: TRL
    supervises the whole completion after the prompt, DEPO only the assistant turns, the same tokens here.
    """
    env = suite.make_env()
    random_turn = random_valid_policy(seed)
    records = []
    for task in suite.make_tasks("train", n_tasks, seed):
        observation = env.reset(task)
        for label, policy in ((True, expert_policy), (False, random_turn)):
            turn = policy(env, observation)
            tokens = count_turn_tokens(tokenizer, turn)
            records.append({
                "env": suite.name, "task_id": task.task_id, "split": task.split,
                "trajectory_id": f"{'expert' if label else 'random'}/{task.task_id}", "source": "benchmark",
                "messages": build_messages(suite.system_prompt, [observation], [turn]), "label": label,
                "reward": 1.0 if label else 0.0, "steps": 1, "total_tokens": tokens,
                "avg_tokens_per_step": float(tokens), "data_fraction_rank": len(records),
            })
    return pl.DataFrame(records, schema=DEPO_DATASET_SCHEMA)


def expert_bc_dataset(suite: TaskSuite, tokenizer, n_tasks: int, thresholds: Mapping[str, Any],
                      seed: int) -> pl.DataFrame:
    """The desirable rows of labeled expert episodes: what the `bc` pipeline trains on."""
    trajectories = run_policy(suite, suite.make_tasks("train", n_tasks, seed), "expert", seed=seed, progress=False)
    dataset = build_depo_dataset(trajectories, tokenizer, {suite.name: suite.system_prompt},
                                 thresholds_from_params(thresholds), seed=seed)
    return dataset.filter(pl.col("label"))
