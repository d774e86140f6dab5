"""MLflow logging from Kedro nodes: into the run kedro-mlflow opened for this `kedro run`, if any.

Domain code never imports this; nodes call it with plain dicts. Without an active run (a notebook,
a test calling a node directly) nothing is logged.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

# Trainer log keys that are run summaries, not per-step curves.
_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"}


def _active() -> bool:
    import mlflow

    return mlflow.active_run() is not None


def log_metrics(metrics: Mapping[str, float], prefix: str = "", step: int | None = None) -> None:
    """Finite numeric values of `metrics` as `<prefix><name>`."""
    if not _active():
        return
    import mlflow

    values = {
        f"{prefix}{name}": float(value)
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }
    if values:
        mlflow.log_metrics(values, step=step)


def log_training_history(log_history: Iterable[Mapping[str, float]], prefix: str) -> None:
    """The Trainer's per-step logs as metric curves `<prefix>/<name>` (step = global step)."""
    for entry in log_history:
        step = int(entry.get("step", 0))
        per_step = {k: v for k, v in entry.items() if k not in _SUMMARY_KEYS and k not in ("step", "epoch")}
        summary = {k: v for k, v in entry.items() if k in _SUMMARY_KEYS}
        log_metrics(per_step, prefix=f"{prefix}/", step=step)
        log_metrics(summary, prefix=f"{prefix}/")


def log_figure(figure, artifact_file: str) -> None:
    if _active():
        import mlflow

        mlflow.log_figure(figure, artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    if _active():
        import mlflow

        mlflow.log_text(text, artifact_file)
