"""Throughput of the batched rollout engine against plain one-episode-at-a-time `model.generate`."""
from __future__ import annotations

import torch

from depo.benchmarks.measurement import Measurement, Target, interleaved, ratios, timed
from depo.envs.base import Task, TaskSuite
from depo.policy.base import GenerationConfig, PolicyModel
from depo.policy.local import LocalGenerator
from depo.policy.rollouts import rollout

ROLLOUT_SPEEDUP_TARGET = Target(">=", 8)


def env_steps_per_second(policy: PolicyModel, decoder: str, suite: TaskSuite, tasks: list[Task],
                         config: GenerationConfig, history_turns: int | None, batch_size: int) -> float:
    # A fresh generator per run: a reused one would find the previous run's episodes in its prefix
    # store and skip most of the first steps' prompts.
    generator = LocalGenerator(policy, max_batch_size=batch_size, decoder=decoder)
    frame, seconds = timed(lambda: rollout(generator, suite, tasks, source="benchmark", config=config,
                                           history_turns=history_turns, batch_size=batch_size, progress=False))
    return frame.height / seconds  # one row per env step


def rollout_speedup(policy: PolicyModel, suite: TaskSuite, tasks: list[Task], max_new_tokens: int,
                    history_turns: int | None, batch_size: int, repeats: int) -> Measurement:
    """Env steps/s of `rollout` with `batch_size` episodes and the prefix-cached decoder, ÷ env steps/s of
    one episode at a time with one `model.generate` call per step; same model, tasks, greedy decoding."""
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False)
    pairs = interleaved(
        lambda: env_steps_per_second(policy, "cached_loop", suite, tasks, config, history_turns, batch_size),
        lambda: env_steps_per_second(policy, "hf_generate", suite, tasks, config, history_turns, 1),
        repeats,
    )
    return Measurement(
        "rollout_speedup", "x", ratios(pairs), ROLLOUT_SPEEDUP_TARGET,
        details={
            "batched_env_steps_per_s": [a for a, _ in pairs],
            "sequential_env_steps_per_s": [b for _, b in pairs],
            "n_tasks": len(tasks), "batch_size": batch_size, "max_new_tokens": max_new_tokens,
            "max_steps": suite.max_steps, "history_turns": history_turns, "torch_threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in policy.model.parameters()),
        },
    )
