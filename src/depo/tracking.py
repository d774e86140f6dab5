"""MLflow logging from Kedro nodes: into the run kedro-mlflow opened for this `kedro run`, if any.

Domain code never imports this; nodes (and `depo.hooks`) call it with plain dicts and paths. Without
an active run (a notebook, a test calling a node directly) nothing is logged.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

# Trainer log keys that are run summaries, not per-step curves.
_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"}


def run_active() -> bool:
    """True while a `kedro run` with tracking on is running (kedro-mlflow opened its MLflow run)."""
    import mlflow

    return mlflow.active_run() is not None


def log_metrics(metrics: Mapping[str, float], prefix: str = "", step: int | None = None) -> None:
    """Finite numeric values of `metrics` as `<prefix><name>`."""
    if not run_active():
        return
    import mlflow

    values = {
        f"{prefix}{name}": float(value)
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }
    if values:
        mlflow.log_metrics(values, step=step)


def training_step_logger(prefix: str) -> Callable[[Mapping[str, float], int], None]:
    """A `log_step` for `depo.training`: each Trainer log entry, as it is made, as `<prefix>/<name>` at its
    global step; run summaries (train_runtime, train_loss, …) without a step."""

    def log_step(entry: Mapping[str, float], step: int) -> None:
        per_step = {k: v for k, v in entry.items() if k not in _SUMMARY_KEYS and k not in ("step", "epoch")}
        log_metrics(per_step, prefix=f"{prefix}/", step=step)
        log_metrics({k: v for k, v in entry.items() if k in _SUMMARY_KEYS}, prefix=f"{prefix}/")

    return log_step


def log_artifact(local_path: Path, artifact_path: str) -> None:
    """A file into the run's folder `artifact_path`; a directory's contents into it, keeping their layout."""
    if not run_active():
        return
    import mlflow

    if local_path.is_dir():
        mlflow.log_artifacts(str(local_path), artifact_path)
    else:
        mlflow.log_artifact(str(local_path), artifact_path)
