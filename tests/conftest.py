"""Shared fixtures: a throw-away copy of the Kedro project so runs never write into the repo."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


def make_project_copy(dest: Path) -> Path:
    """conf/ and pyproject.toml of this repo in `dest`, with empty data folders and its own MLflow DB."""
    shutil.copytree(REPO / "conf", dest / "conf", ignore=shutil.ignore_patterns("local"))
    (dest / "conf" / "local").mkdir()
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    # Kedro checks that the source folder exists; the package itself is the installed one.
    (dest / "src").mkdir()
    for folder in (REPO / "data").iterdir():
        if folder.is_dir():
            (dest / "data" / folder.name).mkdir(parents=True)
    return dest


def run_kedro(project: Path, pipelines: list[str], env: str = "test", params: dict | None = None) -> dict:
    """Run pipelines through a real KedroSession in `project`; MLflow goes to the project's own DB."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    bootstrap_project(project)
    cwd = Path.cwd()
    os.chdir(project)  # catalog paths are relative to the project root
    try:
        with KedroSession.create(project_path=project, env=env, runtime_params=params or {}) as session:
            return session.run(pipeline_names=pipelines)
    finally:
        os.chdir(cwd)


@pytest.fixture
def kedro_project(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project")


@pytest.fixture(scope="session")
def dag_project(tmp_path_factory) -> Path:
    """A project after the whole default DAG, `kedro run --env test`, in a fresh process as a user runs it
    (MLflow state starts clean). Read it; to run more in it, copy it first (`shutil.copytree`)."""
    project = make_project_copy(tmp_path_factory.mktemp("dag") / "project")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    result = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project
