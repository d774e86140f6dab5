"""Tree-search speed: simulations per second, clone versus replay, and how MCTS + labeling scale.

MCTS with the scripted proposer is single-threaded Python, so its rates are per core; torch is also
held to one thread while these are timed, so the whole measurement stays on one core.
"""
from __future__ import annotations

import math
import tracemalloc
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import polars as pl

from depo.benchmarks.measurement import Measurement, Target, interleaved, ratios, timed, torch_threads
from depo.envs.base import Task, TaskSuite, TextEnv
from depo.labeling import build_depo_dataset, thresholds_from_params
from depo.search import ExpertProposer, MCTSConfig, search_tasks

SIMULATIONS_TARGET = Target(">=", 500)
TIME_EXPONENT_TARGET = Target("<=", 1.1)
MEMORY_GROWTH_TARGET = Target("<=", 1.1)


def simulations_per_second(suite: TaskSuite, tasks: list[Task], proposer: ExpertProposer, config: MCTSConfig,
                           repeats: int) -> Measurement:
    """`search_tasks` (search and trajectory extraction, as the `mcts` pipeline runs it) on one core."""
    def rate() -> float:
        _, seconds = timed(lambda: search_tasks(suite, tasks, proposer, config, progress=False))
        return len(tasks) * config.simulations / seconds

    with torch_threads(1):
        rate()  # warm-up: level construction, plan caches
        samples = tuple(rate() for _ in range(repeats))
    return Measurement(
        "mcts_sims_per_s", "sims/s", samples, SIMULATIONS_TARGET,
        details={"n_tasks": len(tasks), "simulations": config.simulations, "num_proposals": config.num_proposals,
                 "max_depth": config.max_depth, "rollout_policy": config.rollout_policy, "torch_threads": 1,
                 "single_threaded": "MCTS with the expert proposer is pure Python"},
    )


def expert_states(suite: TaskSuite, tasks: list[Task]) -> list[tuple[Task, list[str], TextEnv]]:
    """(task, actions taken, env in that state) for every state along each task's expert episode."""
    states = []
    for task in tasks:
        env = suite.make_env()
        env.reset(task)
        actions: list[str] = []
        while True:
            states.append((task, list(actions), env.clone()))
            action = env.expert_turn().action
            if env.step(action).done:
                break
            actions.append(action)
    return states


def clone_speedup(suite: TaskSuite, tasks: list[Task], repeats: int) -> Measurement:
    """Time to rebuild every state of the expert episodes by reset + replay ÷ time to `clone()` them."""
    states = expert_states(suite, tasks)
    replay_env = suite.make_env()

    def clones_per_second() -> float:
        _, seconds = timed(lambda: [env.clone() for _, _, env in states])
        return len(states) / seconds

    def replays_per_second() -> float:
        def replay_all():
            for task, actions, _ in states:
                replay_env.reset(task)
                for action in actions:
                    replay_env.step(action)

        _, seconds = timed(replay_all)
        return len(states) / seconds

    with torch_threads(1):
        pairs = interleaved(clones_per_second, replays_per_second, repeats)
    return Measurement(
        "mcts_clone_speedup", "x", ratios(pairs),
        details={"states": len(states), "mean_replayed_steps": sum(len(a) for _, a, _ in states) / len(states),
                 "clones_per_s": [a for a, _ in pairs], "replays_per_s": [b for _, b in pairs], "torch_threads": 1},
    )


def search_and_label(suite: TaskSuite, tasks: list[Task], proposer: ExpertProposer, config: MCTSConfig, tokenizer,
                     thresholds: Mapping[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The `mcts` then `labeling` work for `tasks` (thought rewriting aside): trajectories and the DEPO dataset."""
    trajectories = search_tasks(suite, tasks, proposer, config, progress=False)
    dataset = build_depo_dataset(trajectories, tokenizer, {suite.name: suite.system_prompt},
                                 thresholds_from_params(thresholds), seed=config.seed)
    return trajectories, dataset


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) against log(size): 1 is linear growth."""
    xs, ys = [math.log(s) for s in sizes], [math.log(v) for v in values]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def replicated(tasks: Sequence[Task], copies: int) -> list[Task]:
    """`tasks` `copies` times over, each copy with its own task id (so its own search seed and trajectory ids)."""
    return [replace(task, task_id=f"{task.task_id}#{copy}") for copy in range(copies) for task in tasks]


def scaling(suite: TaskSuite, tasks: list[Task], multiples: Sequence[int], proposer: ExpertProposer, config: MCTSConfig,
            tokenizer, thresholds: Mapping[str, Any], repeats: int) -> list[Measurement]:
    """Wall time and peak memory of MCTS + labeling on `m` copies of `tasks` for each multiple `m`.

    Copies, not more tasks: BabyAI tasks differ several-fold in cost, so a bigger sample of new tasks
    would measure the tasks drawn, not how the code scales with their number.
    Time: one growth exponent per repeat (sizes run ascending, then descending, alternately). Memory:
    tracemalloc's peak of Python allocations (trees, step records, messages) in one separate pass per size
    (it slows the code down, and allocations repeat exactly); the frames' Arrow buffers live outside it
    and are the output size, polars' `estimated_size` of trajectories plus dataset.
    """
    multiples = sorted(set(multiples))
    if len(multiples) < 2 or multiples[0] < 1:
        raise ValueError(f"scaling needs at least two distinct positive multiples, got {multiples}")
    workloads = {m: replicated(tasks, m) for m in multiples}

    def run(m: int):
        return search_and_label(suite, workloads[m], proposer, config, tokenizer, thresholds)

    sizes = [len(workloads[m]) for m in multiples]
    exponents, seconds = [], {m: [] for m in multiples}
    with torch_threads(1):
        run(multiples[0])  # warm-up
        for repeat in range(repeats):
            for m in multiples if repeat % 2 == 0 else multiples[::-1]:
                seconds[m].append(timed(lambda: run(m))[1])
            exponents.append(growth_exponent(sizes, [seconds[m][-1] for m in multiples]))
        peaks, outputs = [], []
        for m in multiples:
            tracemalloc.start()
            trajectories, dataset = run(m)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            outputs.append(trajectories.estimated_size() + dataset.estimated_size())
    memory_growth = (peaks[-1] / peaks[0]) / (outputs[-1] / outputs[0])
    sizing = {"n_tasks": sizes, "distinct_tasks": len(tasks), "simulations": config.simulations, "torch_threads": 1}
    return [
        Measurement("scaling_time_exponent", "exponent", tuple(exponents), TIME_EXPONENT_TARGET,
                    details={**sizing, "seconds": {str(n): seconds[m] for n, m in zip(sizes, multiples)}}),
        Measurement("scaling_memory_growth", "x", (memory_growth,), MEMORY_GROWTH_TARGET,
                    details={**sizing, "peak_python_bytes": peaks, "output_bytes": outputs,
                             "memory_exponent": growth_exponent(sizes, peaks),
                             "output_exponent": growth_exponent(sizes, outputs)}),
    ]
