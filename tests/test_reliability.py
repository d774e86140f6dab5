"""Runs that must fail fast, or not fail: corrupt and missing inputs, an unreachable tracking server
(and the `DEPO_TRACKING=off` switch), determinism of the DAG, and endpoint keys kept out of MLflow.

Every run goes through a real KedroSession (or `kedro run`) in a throw-away project copy.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import make_project_copy, run_kedro

pytestmark = pytest.mark.slow


def data_files(project: Path) -> dict[str, tuple[int, int]]:
    """Every file under data/ with its modification time and size."""
    return {str(p.relative_to(project)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted((project / "data").rglob("*")) if p.is_file()}


def newest(project: Path, relative: str) -> Path:
    folder = project / "data" / relative
    return sorted(p for p in folder.iterdir() if p.is_dir())[-1] / folder.name


def mlflow_run_count(project: Path) -> int:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("depo")
    return 0 if experiment is None else len(client.search_runs([experiment.experiment_id]))


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def rolled_out(tmp_path_factory) -> Path:
    """A project after `kedro run --pipelines rollouts` (products, problems, tasks, trajectories)."""
    project = make_project_copy(tmp_path_factory.mktemp("rolled_out") / "project")
    run_kedro(project, ["rollouts"])
    return project


@pytest.fixture
def project(rolled_out, tmp_path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(rolled_out, copy)
    return copy


def assert_fails_before_any_node(project: Path, pipelines: list[str], match: list[str], params: dict | None = None):
    """The run raises an error whose message holds every string in `match`, quickly, and leaves data/
    and the MLflow store as they were (no new version, no MLflow run)."""
    before, runs_before = data_files(project), mlflow_run_count(project)
    started = time.perf_counter()
    with pytest.raises(Exception) as raised:
        run_kedro(project, pipelines, params=params)
    message = str(raised.value)
    for part in match:
        assert part in message, message
    assert time.perf_counter() - started < 60
    assert data_files(project) == before
    assert mlflow_run_count(project) == runs_before
    return message


# --- corrupt or missing inputs -------------------------------------------------------------------

def test_truncated_parquet_input_fails_naming_the_entry_and_file(project):
    tasks = newest(project, "02_intermediate/tasks.parquet")
    tasks.write_bytes(tasks.read_bytes()[: tasks.stat().st_size // 2])
    message = assert_fails_before_any_node(project, ["mcts"], ["'tasks'", str(tasks.relative_to(project)), "parquet"])
    assert "truncated or corrupt" in message


def test_missing_input_version_fails_naming_the_entry(project):
    shutil.rmtree(project / "data" / "02_intermediate" / "tasks.parquet")
    assert_fails_before_any_node(project, ["mcts"], ["'tasks'"])


def make_model_directory(folder: Path) -> Path:
    from depo.policy.tiny import build_tiny_model
    from depo.policy.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(["go to the red ball", "pick up the key"] * 20, vocab_size=300)
    model = build_tiny_model(tokenizer, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_model_directory_without_weights_fails_before_training(project):
    directory = make_model_directory(project / "data" / "06_models" / "base_model" / "2026-01-01T00.00.00.000Z" / "base_model")
    (directory / "model.safetensors").unlink()
    assert_fails_before_any_node(project, ["bc"], ["'base_model'", "has no weights", str(directory)])


def test_truncated_model_weights_fail_before_training(project):
    directory = make_model_directory(project / "data" / "06_models" / "base_model" / "2026-01-01T00.00.00.000Z" / "base_model")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    assert_fails_before_any_node(project, ["bc"], ["'base_model'", "model.safetensors", "truncated"])


def test_wrong_pretrained_model_path_fails_naming_it(project):
    (project / "conf" / "test" / "catalog.yml").write_text(
        "base_model:\n  type: depo.datasets.pretrained.PretrainedModelDataset\n"
        "  name_or_path: /nonexistent/models/Llama-3.1-8B-Instruct\n"
    )
    assert_fails_before_any_node(project, ["bc"], ["'base_model'", "/nonexistent/models/Llama-3.1-8B-Instruct",
                                                   "does not exist"])


def test_webshop_product_file_with_a_bad_record_fails_naming_file_and_record(project, tmp_path):
    items = [
        {"asin": "B000000001", "name": "Red cotton shirt", "category": "fashion", "query": "shirt",
         "product_category": "Clothing", "full_description": "A shirt.", "small_description": ["cotton"],
         "pricing": "$12.99", "customization_options": {}},
        {"asin": "B000000002", "name": "Blue shoes", "category": "fashion", "query": "shoes",
         "product_category": "Shoes", "full_description": "Shoes.", "small_description": ["leather"],
         "pricing": {"usd": 10}, "customization_options": {}},  # pricing is neither a string nor a list
    ]
    items_path = tmp_path / "items_shuffle.json"
    items_path.write_text(json.dumps(items))
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps({"B000000001": {"attributes": ["cotton"]}}))
    assert_fails_before_any_node(project, ["rollouts"], ["webshop_catalog.items_path", str(items_path), "record 1",
                                                         "pricing"],
                                 params={"webshop_catalog": {"items_path": str(items_path)}})


def test_math_jsonl_with_a_broken_line_fails_naming_file_and_line(project, tmp_path):
    path = tmp_path / "gsm8k_test.jsonl"
    good = json.dumps({"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4"})
    path.write_text(f"{good}\n{good[:25]}\n{good}\n")
    assert_fails_before_any_node(project, ["rollouts"], ["math_data.paths.gsm8k", str(path), "line 2"],
                                 params={"math_data": {"source": "jsonl", "paths": {"gsm8k": str(path)}}})


# --- tracking outage -----------------------------------------------------------------------------

def unreachable_tracking(project: Path) -> str:
    uri = f"http://127.0.0.1:{closed_port()}"
    (project / "conf" / "test" / "mlflow.yml").write_text(f"server:\n  mlflow_tracking_uri: {uri}\n")
    return uri


def test_unreachable_tracking_server_fails_fast_naming_the_uri(project):
    uri = unreachable_tracking(project)
    before = data_files(project)
    started = time.perf_counter()
    with pytest.raises(Exception, match="tracking server") as raised:
        run_kedro(project, ["rollouts"])
    # MLflow alone retries for minutes and then fails inside the run.
    assert time.perf_counter() - started < 20
    assert uri in str(raised.value) and "DEPO_TRACKING=off" in str(raised.value)
    assert data_files(project) == before


def test_tracking_off_switch_runs_without_mlflow(project):
    """`DEPO_TRACKING=off kedro run`: the same unreachable server, yet the run completes, writes its
    outputs and opens no MLflow store."""
    unreachable_tracking(project)
    (project / "mlflow.db").unlink(missing_ok=True)
    before = data_files(project)
    env = {**os.environ, "DEPO_TRACKING": "off", "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": ""}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines", "rollouts"],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.perf_counter() - started < 120
    written = set(data_files(project)) - set(before)
    assert any("tasks.parquet" in path for path in written) and any("rollout_summary" in path for path in written)
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()
    assert "Mlflow run" not in result.stdout + result.stderr


# --- determinism and secrets ---------------------------------------------------------------------

SENTINEL_FILE = "sk-depo-sentinel-from-credentials-7f3a9c"
SENTINEL_ENV = "sk-depo-sentinel-from-environment-2b8d41"


UP_TO_LABELING = "rollouts,base_model,mcts,labeling"


def kedro_run_logs(project: Path, pipelines: str = UP_TO_LABELING, extra_env: dict | None = None,
                   params: str | None = None) -> str:
    """`kedro run --env test` in a subprocess (a fresh MLflow state per run); its whole output."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
           **(extra_env or {})}
    command = [sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines", pipelines]
    if params:
        command += ["--params", params]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The test-env DAG up to labeling, twice with the same seeds: the endpoint key once in
    conf/local/credentials.yml, once in $DEPO_ENDPOINT_API_KEY (the expert proposer ignores it)."""
    first = make_project_copy(tmp_path_factory.mktemp("dag_first") / "project")
    (first / "conf" / "local" / "credentials.yml").write_text(f"endpoint:\n  api_key: {SENTINEL_FILE}\n")
    second = make_project_copy(tmp_path_factory.mktemp("dag_second") / "project")
    logs = kedro_run_logs(first) + kedro_run_logs(second, extra_env={"DEPO_ENDPOINT_API_KEY": SENTINEL_ENV})
    return first, second, logs


def all_bytes(project: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in project.rglob("*") if p.is_file() and "conf" not in p.relative_to(project).parts]


def test_same_seed_runs_give_byte_identical_depo_datasets(two_runs):
    first, second, _ = two_runs
    assert newest(first, "05_model_input/depo_dataset.parquet").read_bytes() == \
        newest(second, "05_model_input/depo_dataset.parquet").read_bytes()


def test_endpoint_keys_never_reach_mlflow_files_or_logs(two_runs):
    import mlflow

    first, second, logs = two_runs
    for project, sentinel in ((first, SENTINEL_FILE), (second, SENTINEL_ENV)):
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
        [run] = client.search_runs([client.get_experiment_by_name("depo").experiment_id])
        assert run.data.params and sentinel not in json.dumps([run.data.params, run.data.tags])
        for path, content in all_bytes(project):  # mlflow.db, artifacts, data, logs
            assert sentinel.encode() not in content, path
    assert "endpoint_api_key" in logs  # the dataset was loaded during the runs
    assert SENTINEL_FILE not in logs and SENTINEL_ENV not in logs


def test_a_different_seed_gives_different_data(two_runs):
    first, _, _ = two_runs
    original = newest(first, "05_model_input/depo_dataset.parquet").read_bytes()
    # Tasks and the base model are reused from the first run; search and labeling are re-seeded.
    kedro_run_logs(first, pipelines="mcts,labeling", params="mcts.seed=1,labeling.seed=1")
    reseeded = newest(first, "05_model_input/depo_dataset.parquet")
    assert reseeded.read_bytes() != original
    assert pl.read_parquet(reseeded).height > 0
