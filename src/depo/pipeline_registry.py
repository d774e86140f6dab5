"""Project pipelines: every folder under `depo/pipelines/` is one, found by `find_pipelines()`."""
from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Run only when asked for by name: the benchmarks measure the other stages' speed; the studies
# (`study_*`) train and evaluate more models from a finished default run's outputs.
ON_REQUEST = ("benchmarks",)
ON_REQUEST_PREFIX = "study_"


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    in_default = [
        pipeline for name, pipeline in pipelines.items()
        if name not in ON_REQUEST and not name.startswith(ON_REQUEST_PREFIX)
    ]
    pipelines["__default__"] = sum(in_default, Pipeline([]))
    return pipelines
