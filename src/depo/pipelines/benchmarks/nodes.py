"""Benchmarks of rollouts, preference training, MCTS, scaling and training FLOPs; the report."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.benchmarks import (
    clone_speedup,
    end_to_end,
    expert_bc_dataset,
    markdown_report,
    results_frame,
    rollout_speedup,
    scaling,
    simulations_per_second,
    single_turn_preferences,
    tiny_policy,
    trainer_speedup,
    training_flops_utilisation,
)
from depo.benchmarks.measurement import RESULT_SCHEMA, torch_threads
from depo.envs import build_suite
from depo.policy.base import PolicyModel
from depo.search import ExpertProposer, MCTSConfig
from depo.tracking import log_metrics

DEFAULT_EXPERIMENT = "depo"


def _babyai(envs: dict[str, Any], **overrides: Any):
    return build_suite("babyai", {**envs.get("babyai", {}), **overrides})


def _mcts_config(mcts: dict[str, Any]) -> MCTSConfig:
    return MCTSConfig(**{k: mcts[k] for k in ("simulations", "num_proposals", "exploration", "max_depth",
                                             "rollout_policy", "seed")})


def build_benchmark_policy(envs: dict[str, Any], tiny_model: dict[str, Any], benchmarks: dict[str, Any]) -> PolicyModel:
    """A random tiny Llama of the `tiny_model` shape with a tokenizer trained on BabyAI texts."""
    return tiny_policy(_babyai(envs), tiny_model, benchmarks["corpus_tasks"], benchmarks["seed"])


def measure_rollout_speedup(benchmark_policy: PolicyModel, envs: dict[str, Any],
                            benchmarks: dict[str, Any]) -> pl.DataFrame:
    suite = _babyai(envs, max_steps=benchmarks["rollout_max_steps"])
    tasks = suite.make_tasks("test", benchmarks["rollout_tasks"], benchmarks["seed"])
    with torch_threads(benchmarks["torch_threads"]):
        measurement = rollout_speedup(benchmark_policy, suite, tasks, benchmarks["max_new_tokens"],
                                      benchmarks["history_turns"], benchmarks["rollout_batch_size"],
                                      benchmarks["repeats"])
    return results_frame([measurement])


def measure_trainer_speedup(benchmark_policy: PolicyModel, envs: dict[str, Any],
                            benchmarks: dict[str, Any]) -> pl.DataFrame:
    frame = single_turn_preferences(_babyai(envs), benchmark_policy.tokenizer, benchmarks["trainer_tasks"],
                                    benchmarks["seed"])
    with torch_threads(benchmarks["torch_threads"]):
        measurement = trainer_speedup(benchmark_policy, frame, benchmarks["trainer_batch_size"], benchmarks["repeats"],
                                      benchmarks["seed"])
    return results_frame([measurement])


def measure_mcts_speed(envs: dict[str, Any], mcts: dict[str, Any], benchmarks: dict[str, Any]) -> pl.DataFrame:
    """Simulations/s with the expert proposer and the `mcts` settings; clone() against reset + replay."""
    suite = _babyai(envs)
    tasks = suite.make_tasks("train", benchmarks["mcts_tasks"], benchmarks["seed"])
    proposer = ExpertProposer(verbose_probability=mcts["proposer"]["verbose_probability"])
    return results_frame([
        simulations_per_second(suite, tasks, proposer, _mcts_config(mcts), benchmarks["repeats"]),
        clone_speedup(suite, tasks, benchmarks["repeats"]),
    ])


def measure_scaling(benchmark_policy: PolicyModel, envs: dict[str, Any], mcts: dict[str, Any],
                    labeling: dict[str, Any], benchmarks: dict[str, Any]) -> pl.DataFrame:
    suite = _babyai(envs)
    tasks = suite.make_tasks("train", benchmarks["scaling_tasks"], benchmarks["seed"])
    proposer = ExpertProposer(verbose_probability=mcts["proposer"]["verbose_probability"])
    return results_frame(scaling(suite, tasks, benchmarks["scaling_multiples"], proposer, _mcts_config(mcts),
                                 benchmark_policy.tokenizer, labeling["thresholds"], benchmarks["repeats"]))


def measure_training_flops(benchmark_policy: PolicyModel, envs: dict[str, Any], labeling: dict[str, Any],
                           benchmarks: dict[str, Any]) -> pl.DataFrame:
    suite = _babyai(envs)
    bc_dataset = expert_bc_dataset(suite, benchmark_policy.tokenizer, benchmarks["flops_tasks"],
                                   labeling["thresholds"], benchmarks["seed"])
    with torch_threads(benchmarks["torch_threads"]):
        measurement = training_flops_utilisation(benchmark_policy, bc_dataset, benchmarks["flops_batch_size"],
                                                 benchmarks["matmul_size"], benchmarks["repeats"])
    return results_frame([measurement])


def measure_end_to_end() -> pl.DataFrame:
    """The newest complete run of this run's MLflow experiment, by pipeline of this project's registry."""
    import mlflow

    from depo.pipeline_registry import pipeline_of_node

    active = mlflow.active_run()
    experiment = mlflow.get_experiment(active.info.experiment_id).name if active else DEFAULT_EXPERIMENT
    return results_frame(end_to_end(pipeline_of_node(), mlflow.get_tracking_uri(), experiment))


def report_benchmarks(*results: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """All measurements in one frame (`benchmark/<name>` metrics in MLflow) and the Markdown table."""
    frame = pl.concat(results, how="vertical").cast(RESULT_SCHEMA)
    log_metrics({f"benchmark/{name}": value for name, value in frame.select("name", "value").iter_rows()})
    report = markdown_report(frame)
    return frame, report
