"""The whole `test` env DAG against a real MLflow tracking server on 127.0.0.1 (the shared-server
setup: MLFLOW_TRACKING_URI=http://…, artifacts proxied by the server), read back through the REST
API with plain HTTP; and the determinism of the full DAG: this run and the `dag_project` run (same
seeds, same conf, another tracking backend) give identical datasets and evaluation metrics.
First, the artifact rule of `depo.hooks.ArtifactLoggingHook` on its own (fast).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from depo.hooks import ArtifactLoggingHook, artifact_destination, model_directory_logging, saved_path
from tests.conftest import make_project_copy

MODELS = ("tiny_model", "base_model", "bc_model", "kto_model", "depo_model")
REPORTING = ("labeling_histograms.png", "stage_metrics.png", "math_metrics.png", "comparison_report.md")
SERVER_START_TIMEOUT = 240  # seconds; the first start migrates the database (~45 s on a loaded 2-core machine)


# --- the artifact rule ----------------------------------------------------------------------------

def test_model_directory_switch_defaults_on_and_must_be_a_boolean():
    assert model_directory_logging({}) is True
    assert model_directory_logging({"mlflow_artifacts": {"model_directories": False}}) is False
    with pytest.raises(ValueError, match="mlflow_artifacts.model_directories: must be true or false"):
        model_directory_logging({"mlflow_artifacts": {"model_directories": "no"}})
    with pytest.raises(ValueError, match="parameters mlflow_artifacts: expected"):
        model_directory_logging({"mlflow_artifacts": {"models": False}})


def versioned(dataset_class, **kwargs):
    from kedro.io import Version

    return dataset_class(**kwargs, version=Version(None, "2026-01-01T00.00.00.000Z"))


def test_models_figures_and_reports_are_chosen_by_dataset_type(tmp_path):
    from kedro_datasets.matplotlib import MatplotlibDataset
    from kedro_datasets.polars import EagerPolarsDataset
    from kedro_datasets.text import TextDataset

    from depo.datasets.model_directory import ModelDirectoryDataset

    model = versioned(ModelDirectoryDataset, path=str(tmp_path / "bc_model"))
    assert saved_path(model) == tmp_path / "bc_model" / "2026-01-01T00.00.00.000Z" / "bc_model"
    assert artifact_destination("bc_model", model, saved_path(model)) == "models/bc_model"
    assert artifact_destination("bc_model", model, saved_path(model), model_directories=False) is None
    figure = versioned(MatplotlibDataset, filepath=str(tmp_path / "plot.png"))
    assert artifact_destination("plot", figure, saved_path(figure)) == "reporting"
    report = TextDataset(filepath=str(tmp_path / "report.md"))
    assert saved_path(report) == tmp_path / "report.md"
    assert artifact_destination("report", report, saved_path(report)) == "reporting"
    frame = versioned(EagerPolarsDataset, filepath=str(tmp_path / "metrics.parquet"), file_format="parquet")
    assert artifact_destination("metrics", frame, saved_path(frame)) is None
    remote = MatplotlibDataset(filepath="memory://reporting/plot.png")  # not a local file
    assert saved_path(remote) is None


def test_nothing_is_logged_without_an_active_run(tmp_path, monkeypatch):
    from kedro.io import DataCatalog, MemoryDataset
    from kedro_datasets.text import TextDataset

    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    catalog = DataCatalog({"report": TextDataset(filepath=str(tmp_path / "report.md")), "parameters": MemoryDataset({})})
    catalog.save("report", "# report")
    hook = ArtifactLoggingHook()
    hook.before_pipeline_run({}, None, catalog)
    hook.after_dataset_saved("report", "# report", None)
    assert not store.exists()


# --- a real server ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(uri: str, endpoint: str, **query) -> dict:
    url = f"{uri}{endpoint}?{urllib.parse.urlencode(query)}" if query else f"{uri}{endpoint}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def post(uri: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(f"{uri}{endpoint}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def stop(process: subprocess.Popen) -> None:
    """The server and its workers (one process group of its own)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on a free local port: a SQLite backend store, artifacts proxied into a folder."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts")]
    with open(root / "server.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            assert process.poll() is None, (root / "server.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=5).close()
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, f"no answer from {uri}/health: " + (root / "server.log").read_text()[-3000:]
                time.sleep(1)
        yield uri, root
    finally:
        stop(process)


@pytest.fixture(scope="module")
def server_run(mlflow_server, tmp_path_factory):
    """`kedro run --env test` (the whole DAG) in a fresh project copy, tracking to the server."""
    uri, server_root = mlflow_server
    project = make_project_copy(tmp_path_factory.mktemp("server_run") / "project")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": uri}
    result = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    experiment = get(uri, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="depo")["experiment"]
    runs = post(uri, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    assert len(runs) == 1, runs
    return uri, server_root, project, runs[0]


def newest(project: Path, relative: str) -> Path:
    folder = project / "data" / relative
    return sorted(p for p in folder.iterdir() if p.is_dir())[-1] / folder.name


def artifacts(uri: str, run_id: str, path: str = "") -> dict[str, dict]:
    listing = get(uri, "/api/2.0/mlflow/artifacts/list", run_id=run_id, **({"path": path} if path else {}))
    return {entry["path"]: entry for entry in listing.get("files", [])}


@pytest.mark.slow
def test_the_run_on_the_server_holds_parameters_evaluation_and_training_curves(server_run):
    uri, _, _, run = server_run
    run_id = run["info"]["run_id"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["mcts.simulations"] == "6" and params["evaluation.seed"] == "0"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    for name in ("eval/babyai/depo/t_all", "eval/webshop/bc/success", "eval/math/gsm8k/depo/accuracy",
                 "depo/bonus/mean", "time/behaviour_clone"):
        assert name in metrics, name
    assert metrics["depo/bonus/mean"] > 0.0 and metrics["eval/babyai/depo/t_all"] > 0
    history = get(uri, "/api/2.0/mlflow/metrics/get-history", run_id=run_id, metric_key="base_model/loss")["metrics"]
    assert len(history) > 1 and len({point["step"] for point in history}) == len(history)


@pytest.mark.slow
def test_model_directories_figures_and_the_report_are_artifacts_on_the_server(server_run):
    uri, server_root, project, run = server_run
    run_id = run["info"]["run_id"]
    assert {"models", "reporting"} <= set(artifacts(uri, run_id))
    assert set(artifacts(uri, run_id, "models")) == {f"models/{model}" for model in MODELS}
    for model in MODELS:
        files = artifacts(uri, run_id, f"models/{model}")
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            assert int(files[f"models/{model}/{name}"]["file_size"]) > 0, (model, name)
    reporting = artifacts(uri, run_id, "reporting")
    assert {f"reporting/{name}" for name in REPORTING} <= set(reporting)
    # The server holds the files (proxied upload), byte for byte what the run saved.
    stored = {p.name: p for p in (server_root / "artifacts").rglob("*") if p.parent.name == "reporting"}
    assert stored["comparison_report.md"].read_bytes() == newest(project, "08_reporting/comparison_report.md").read_bytes()
    assert stored["stage_metrics.png"].read_bytes() == newest(project, "08_reporting/stage_metrics.png").read_bytes()
    assert not (project / "mlruns").exists() and not (project / "mlflow.db").exists()


@pytest.mark.slow
def test_same_seed_full_runs_give_identical_data_and_evaluation_metrics(server_run, dag_project):
    _, _, project, _ = server_run
    assert newest(project, "05_model_input/depo_dataset.parquet").read_bytes() == \
        newest(dag_project, "05_model_input/depo_dataset.parquet").read_bytes()
    for relative in ("08_reporting/evaluation_metrics.parquet", "08_reporting/math_metrics.parquet",
                     "07_model_output/eval_trajectories.parquet"):
        ours, theirs = pl.read_parquet(newest(project, relative)), pl.read_parquet(newest(dag_project, relative))
        assert ours.height > 0 and ours.equals(theirs), relative
