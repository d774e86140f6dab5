"""The whole default DAG in the `test` env through a real KedroSession, then what it left behind:
every catalog output in its place and schema, the MLflow run's metrics, the kedro-viz DAG export."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from depo.labeling.labels import DEPO_DATASET_SCHEMA
from depo.schema import TOKEN_COLUMNS, validate_frame
from tests.conftest import run_kedro

pytestmark = pytest.mark.slow

STAGES = {"base", "bc", "kto", "depo"}
PIPELINE_ORDER = ["rollouts", "base_model", "mcts", "labeling", "bc", "depo", "evaluation"]


@pytest.fixture
def project(dag_project) -> Path:
    return dag_project


def newest(project: Path, relative: str) -> Path:
    folder = project / "data" / relative
    versions = sorted(p for p in folder.iterdir() if p.is_dir())
    assert versions, f"no version of {relative}"
    return versions[-1] / folder.name


def test_every_stage_wrote_its_versioned_outputs(project):
    for relative in (
        "01_raw/webshop_products.parquet", "02_intermediate/tasks.parquet", "03_primary/base_corpus.parquet",
        "03_primary/mcts_trajectories.parquet", "05_model_input/depo_dataset.parquet",
        "05_model_input/bc_dataset.parquet", "05_model_input/depo_dataset.json",
        "08_reporting/labeling_histograms.png", "08_reporting/comparison_report.md",
        "08_reporting/stage_metrics.png", "08_reporting/math_metrics.png",
    ):
        assert newest(project, relative).is_file(), relative
    for model in ("tiny_model", "base_model", "bc_model", "kto_model", "depo_model"):
        directory = newest(project, f"06_models/{model}")
        assert (directory / "config.json").is_file() and (directory / "model.safetensors").is_file(), model


def test_datasets_keep_the_shared_schemas(project):
    mcts = pl.read_parquet(newest(project, "03_primary/mcts_trajectories.parquet"))
    validate_frame(mcts, "mcts_trajectories")
    assert set(mcts["source"]) == {"mcts"} and set(mcts["split"]) == {"train"}
    depo = pl.read_parquet(newest(project, "05_model_input/depo_dataset.parquet"))
    assert depo.schema == pl.Schema(DEPO_DATASET_SCHEMA)
    assert set(depo["label"]) == {True, False}
    bc = pl.read_parquet(newest(project, "05_model_input/bc_dataset.parquet"))
    assert bc["label"].all() and bc.height == depo["label"].sum()
    records = json.loads(newest(project, "05_model_input/depo_dataset.json").read_text())
    assert len(records) == depo.height and {"messages", "label", "steps"} <= set(records[0])
    evaluation = pl.read_parquet(newest(project, "07_model_output/eval_trajectories.parquet"))
    validate_frame(evaluation, "eval_trajectories")
    assert set(TOKEN_COLUMNS) <= set(evaluation.columns)
    assert set(evaluation["source"]) == STAGES and set(evaluation["split"]) == {"test"}


def test_model_rollouts_run_the_chosen_policy_on_every_env(project, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    run_kedro(copy, ["model_rollouts"])  # rollout_model: the newest base_model, evaluation's settings (test env)
    rollouts = pl.read_parquet(newest(copy, "07_model_output/model_trajectories.parquet"))
    validate_frame(rollouts, "model_trajectories")
    assert set(TOKEN_COLUMNS) <= set(rollouts.columns) and set(rollouts["source"]) == {"model"}
    assert set(rollouts["env"]) == {"babyai", "webshop", "math"} and set(rollouts["split"]) == {"test"}
    # Greedy, same model and tasks: the evaluation's base rows, step for step.
    base = pl.read_parquet(newest(copy, "07_model_output/base_eval_trajectories.parquet"))
    columns = ["env", "task_id", "step", "observation", "thought", "action", "gen_tokens", "total_tokens"]
    assert rollouts.select(columns).equals(base.select(columns))


def test_evaluation_reports_every_env_and_stage(project):
    metrics = pl.read_parquet(newest(project, "08_reporting/evaluation_metrics.parquet"))
    assert {(e, s) for e, s in metrics.select("env", "stage").iter_rows()} == {
        (env, stage) for env in ("babyai", "webshop") for stage in STAGES
    }
    for metric in ("success", "reward", "t_all", "s_all", "tokens_per_step", "invalid_action_rate"):
        assert (metrics[f"{metric}_ci_low"] <= metrics[metric]).all()
        assert (metrics[metric] <= metrics[f"{metric}_ci_high"]).all()
    assert (metrics["t_all"] > 0).all() and (metrics["s_all"] >= 1).all()
    maths = pl.read_parquet(newest(project, "08_reporting/math_metrics.parquet"))
    assert set(maths["benchmark"]) == {"gsm8k", "math", "simuleq"} and set(maths["stage"]) == STAGES
    report = newest(project, "08_reporting/comparison_report.md").read_text()
    assert "| babyai | depo |" in report and "Relative change of depo" in report


def test_the_mlflow_run_holds_parameters_training_curves_and_evaluation(project):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("depo")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.params["mcts.simulations"] == "6"
    metrics = run.data.metrics
    for name in ("bc/loss", "depo/kl", "kto/rewards/desirable", "depo/bonus/mean", "eval/babyai/depo/t_all",
                 "eval/math/gsm8k/bc/accuracy", "time/behaviour_clone"):
        assert name in metrics, name
    assert len(client.get_metric_history(run.info.run_id, "base_model/loss")) > 1
    assert metrics["kto/bonus/mean"] == 0.0 and metrics["depo/bonus/mean"] > 0.0
    # Every saved model directory, figure and report is an artifact of the run (depo.hooks.ArtifactLoggingHook).
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert models == {f"models/{m}" for m in ("tiny_model", "base_model", "bc_model", "kto_model", "depo_model")}
    assert "models/bc_model/model.safetensors" in {a.path for a in client.list_artifacts(run.info.run_id, "models/bc_model")}
    reporting = {a.path for a in client.list_artifacts(run.info.run_id, "reporting")}
    assert {f"reporting/{name}" for name in ("labeling_histograms.png", "stage_metrics.png", "math_metrics.png",
                                             "comparison_report.md")} <= reporting


def test_kedro_viz_exports_the_dag_with_the_stages_in_order(project):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    subprocess.run([sys.executable, "-m", "kedro", "viz", "build"], cwd=project, env=env, check=True,
                   capture_output=True, timeout=300)
    graph = json.loads((project / "build" / "api" / "main").read_text())
    nodes = {node["id"]: node for node in graph["nodes"]}
    by_name = {node["name"]: node for node in graph["nodes"]}
    for name in ("make_base_corpus", "search_trajectories", "label_trajectories", "behaviour_clone",
                 "summarize_evaluation"):
        assert name in {n.split(".")[-1] for n in by_name}, name
    # Walk the edges: each stage's node is reachable from the previous stage's node.
    successors: dict[str, set[str]] = {}
    for edge in graph["edges"]:
        successors.setdefault(edge["source"], set()).add(edge["target"])

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in successors.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    ids = {node["name"].split(".")[-1]: node_id for node_id, node in nodes.items() if node["type"] == "task"}
    chain = ["make_base_corpus", "pretrain_base_model", "rewrite_thoughts", "label_trajectories", "behaviour_clone",
             "train_preference_model", "summarize_evaluation"]
    for earlier, later in zip(chain, chain[1:]):
        assert ids[later] in reachable(ids[earlier]), (earlier, later)
    assert {p["id"] for p in graph["pipelines"]} >= set(PIPELINE_ORDER)


def test_the_comparison_notebook_runs_top_to_bottom_on_the_run(project):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "compare_runs.ipynb", as_version=4)
    os.environ["DEPO_MLFLOW_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(project)}}).execute()
    finally:
        del os.environ["DEPO_MLFLOW_URI"]
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "1 run(s)" in text
    tables = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "t_all" in tables and "vs_bc_t_all" in tables and "accuracy" in tables
