"""Kedro hooks: parameters validated before a pipeline runs; node wall times for the run's budget."""
from __future__ import annotations

import time
from typing import Any

from kedro.framework.hooks import hook_impl

from depo.params import validate_parameters


def parameter_blocks(pipeline) -> set[str]:
    """Top-level parameter names the pipeline's nodes read (`params:mcts` and `params:kto.variant` → mcts, kto)."""
    names = set()
    for dataset in pipeline.inputs():
        if dataset.startswith("params:"):
            names.add(dataset.removeprefix("params:").split(".")[0])
    return names


class ParameterValidationHook:
    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        params = catalog.load("parameters")
        validate_parameters(params, parameter_blocks(pipeline))


class NodeTimingHook:
    """Wall time of every node, logged to MLflow as `time/<node>` (seconds) and kept in `timings`."""

    def __init__(self):
        self.timings: dict[str, float] = {}
        self._started: dict[str, float] = {}

    @hook_impl
    def before_node_run(self, node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node) -> None:
        from depo.tracking import log_metrics

        elapsed = time.perf_counter() - self._started.pop(node.name)
        self.timings[node.name] = elapsed
        log_metrics({f"time/{node.name}": elapsed})
