"""The `benchmarks` pipeline: every measurement row, sane figures, the report, MLflow metrics; its
building blocks (summaries, interleaving, growth fit, the end-to-end reader). Speed targets are never
asserted: on shared machines they are what the benchmark reports, not what a test can promise."""
from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from depo.benchmarks.end_to_end import end_to_end
from depo.benchmarks.measurement import RESULT_SCHEMA, Measurement, Target, interleaved, results_frame
from depo.benchmarks.search import growth_exponent, replicated
from depo.envs.base import Task
from depo.params import ParameterError, validate_parameters
from tests.conftest import make_project_copy, run_kedro

MEASUREMENTS = {
    "rollout_speedup", "trainer_speedup", "mcts_sims_per_s", "mcts_clone_speedup", "scaling_time_exponent",
    "scaling_memory_growth", "training_flops_utilisation", "end_to_end",
}


# --- building blocks ------------------------------------------------------------------------------
def test_a_measurement_is_the_median_of_its_samples_against_its_target():
    row = Measurement("speedup", "x", (3.0, 9.0, 8.5), Target(">=", 8), details={"n": 3}).row()
    assert (row["value"], row["median"], row["min"], row["max"], row["repeats"]) == (8.5, 8.5, 3.0, 9.0, 3)
    assert row["target"] == ">= 8" and row["met"] is True and json.loads(row["details"]) == {"n": 3}
    assert Measurement("exponent", "exponent", (1.3,), Target("<=", 1.1)).row()["met"] is False
    missing = Measurement("end_to_end", "s", ()).row()
    assert math.isnan(missing["value"]) and missing["repeats"] == 0 and missing["met"] is False
    assert results_frame([Measurement("a", "x", (1.0,))]).schema == pl.Schema(RESULT_SCHEMA)


def test_interleaving_warms_up_then_alternates_which_side_goes_first():
    calls = []
    pairs = interleaved(lambda: calls.append("a") or 2.0, lambda: calls.append("b") or 1.0, repeats=3)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert pairs == [(2.0, 1.0)] * 3


def test_growth_exponent_recovers_a_power_law():
    sizes = [4, 8, 16]
    assert growth_exponent(sizes, [0.5 * n for n in sizes]) == pytest.approx(1.0)
    assert growth_exponent(sizes, [0.1 * n**2 for n in sizes]) == pytest.approx(2.0)


def test_replicated_tasks_repeat_the_work_under_new_ids():
    tasks = [Task("babyai", f"GoToObj/{seed}", "train", seed, {"level": "GoToObj", "env_seed": seed})
             for seed in (1, 2)]
    copies = replicated(tasks, 3)
    assert len(copies) == 6 and len({task.task_id for task in copies}) == 6
    assert [task.spec for task in copies] == [task.spec for task in tasks] * 3


def test_benchmark_parameters_are_validated():
    block = {"repeats": 2, "corpus_tasks": 4, "rollout_tasks": 4, "rollout_batch_size": 4, "rollout_max_steps": 3,
             "max_new_tokens": 8, "trainer_tasks": 4, "trainer_batch_size": 4, "mcts_tasks": 2, "scaling_tasks": 2,
             "scaling_multiples": [1, 2], "flops_tasks": 4, "flops_batch_size": 2, "matmul_size": 64}
    validate_parameters({"benchmarks": block}, {"benchmarks"})
    for key, value in (("scaling_multiples", [2, 2]), ("trainer_batch_size", 1), ("repeats", 0)):
        with pytest.raises(ParameterError, match=f"benchmarks\\.{key}"):
            validate_parameters({"benchmarks": {**block, key: value}}, {"benchmarks"})


def test_end_to_end_reads_the_newest_finished_run_with_evaluation_metrics(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert end_to_end({}, uri, "depo")[0].row()["met"] is False  # no experiment at all
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("depo")

    def run(metrics: dict[str, float], status: str) -> str:
        run_id = client.create_run(experiment).info.run_id
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        client.set_terminated(run_id, status)
        return run_id

    complete = run({"time/make_tasks": 1.0, "time/build_policy": 2.0, "time/search": 4.0, "time/gone": 0.5,
                    "eval/babyai/depo/success": 0.9}, "FINISHED")
    run({"time/search": 99.0}, "FINISHED")  # newer, but only part of the DAG: no evaluation
    run({"time/search": 99.0, "eval/babyai/depo/success": 0.1}, "FAILED")
    rows = {m.name: m for m in end_to_end({"make_tasks": "rollouts", "build_policy": "rollouts", "search": "mcts"},
                                          uri, "depo")}
    assert list(rows) == ["end_to_end", "end_to_end/rollouts", "end_to_end/mcts", "end_to_end/other"]
    assert rows["end_to_end"].details["run_id"] == complete and rows["end_to_end"].median >= 0
    assert rows["end_to_end"].details["pipeline_seconds"] == {"rollouts": 3.0, "mcts": 4.0, "other": 0.5}
    assert [rows[f"end_to_end/{p}"].median for p in ("rollouts", "mcts", "other")] == [3.0, 4.0, 0.5]


# --- the pipeline ---------------------------------------------------------------------------------
def newest(project: Path, relative: str) -> Path:
    folder = project / "data" / relative
    return sorted(p for p in folder.iterdir() if p.is_dir())[-1] / folder.name


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = make_project_copy(tmp_path_factory.mktemp("benchmarks") / "project")
    run_kedro(project, ["benchmarks"])
    return project


@pytest.fixture(scope="module")
def results(project) -> dict[str, dict]:
    frame = pl.read_parquet(newest(project, "08_reporting/benchmark_results.parquet"))
    assert frame.schema == pl.Schema(RESULT_SCHEMA)
    return {row["name"]: {**row, "details": json.loads(row["details"])} for row in frame.iter_rows(named=True)}


@pytest.mark.slow
def test_every_measurement_has_a_row(results):
    assert set(results) == MEASUREMENTS


@pytest.mark.slow
def test_rates_and_ratios_are_positive_medians_within_their_range(results):
    for name in MEASUREMENTS - {"end_to_end", "scaling_time_exponent"}:
        row = results[name]
        assert row["repeats"] >= 1 and 0 < row["min"] <= row["median"] <= row["max"], name
        assert row["value"] == row["median"] and isinstance(row["met"], bool), name
    rollout = results["rollout_speedup"]["details"]
    assert min(rollout["batched_env_steps_per_s"] + rollout["sequential_env_steps_per_s"]) > 0
    assert rollout["torch_threads"] == 1 and "history_turns" in rollout
    assert 0 < results["training_flops_utilisation"]["value"] < 1


@pytest.mark.slow
def test_depo_and_trl_kto_start_from_the_same_loss(results):
    details = results["trainer_speedup"]["details"]
    assert details["step1_loss_difference"] <= 1e-5
    assert details["step1_loss_depo"] == pytest.approx(details["step1_loss_trl"], abs=1e-5)


@pytest.mark.slow
def test_scaling_fits_a_finite_exponent_and_measures_memory(results):
    time_row, memory_row = results["scaling_time_exponent"], results["scaling_memory_growth"]
    assert all(math.isfinite(time_row[key]) for key in ("value", "min", "max"))
    assert time_row["details"]["n_tasks"] == [4, 8, 16]
    assert memory_row["value"] > 0 and min(memory_row["details"]["peak_python_bytes"]) > 0


@pytest.mark.slow
def test_end_to_end_without_a_complete_run_says_so(results):
    row = results["end_to_end"]
    assert math.isnan(row["value"]) and row["met"] is False and "no finished run" in row["details"]["note"]


@pytest.mark.slow
def test_the_report_and_mlflow_carry_every_measurement(project, results):
    from mlflow import MlflowClient

    report = newest(project, "08_reporting/benchmark_report.md").read_text()
    assert all(f"| {name} |" in report for name in MEASUREMENTS)
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("depo").experiment_id])
    logged = {key.removeprefix("benchmark/") for key in run.data.metrics if key.startswith("benchmark/")}
    assert logged == MEASUREMENTS - {"end_to_end"}  # a missing figure is not logged as a number


def test_the_default_run_leaves_the_benchmarks_out():
    from kedro.framework.project import configure_project, find_pipelines

    from depo.pipeline_registry import register_pipelines

    configure_project("depo")
    pipelines = register_pipelines()
    benchmark_nodes = {node.name for node in find_pipelines()["benchmarks"].nodes}
    assert benchmark_nodes and not benchmark_nodes & {node.name for node in pipelines["__default__"].nodes}


def test_end_to_end_maps_every_stage_even_when_kedro_loads_only_the_benchmarks():
    from kedro.framework.project import configure_project, pipelines

    from depo.pipeline_registry import pipeline_of_node

    configure_project("depo")
    pipelines.set_requested(["benchmarks"])  # what `kedro run --pipelines benchmarks` does
    try:
        assert set(pipelines) == {"benchmarks", "__default__"}
        mapping = pipeline_of_node()
    finally:
        pipelines.set_requested(None)
    assert mapping["pretrain_base_model"] == "base_model" and mapping["evaluate_bc"] == "evaluation"
    assert mapping["depo.train_preference_model"] == "depo" and mapping["measure_end_to_end"] == "benchmarks"
