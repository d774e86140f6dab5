"""Project pipelines: every folder under `depo/pipelines/` is one, found by `find_pipelines()`."""
from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    # Benchmarks measure the other stages' speed; they run only when asked for by name.
    pipelines["__default__"] = sum(pipeline for name, pipeline in pipelines.items() if name != "benchmarks")
    return pipelines
