"""Project pipelines: every folder under `depo/pipelines/` is one, found by `find_pipelines()`."""
from __future__ import annotations

import importlib
import pkgutil

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

import depo.pipelines

# Run only when asked for by name: the benchmarks measure the other stages' speed; model_rollouts
# runs one chosen policy (evaluation already rolls out every stage of the default run); the studies
# (`study_*`) train and evaluate more models from a finished default run's outputs.
ON_REQUEST = ("benchmarks", "model_rollouts")
ON_REQUEST_PREFIX = "study_"


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    in_default = [
        pipeline for name, pipeline in pipelines.items()
        if name not in ON_REQUEST and not name.startswith(ON_REQUEST_PREFIX)
    ]
    pipelines["__default__"] = sum(in_default, Pipeline([]))
    return pipelines


def pipeline_of_node() -> dict[str, str]:
    """Every node name of every pipeline folder, mapped to its pipeline.

    Read from the folders, not through `find_pipelines()`: under `kedro run --pipelines X` Kedro
    loads only X, so a node of X that reports on the other stages (the benchmarks' `end_to_end`)
    would see none of them.
    """
    return {
        node.name: folder.name
        for folder in pkgutil.iter_modules(depo.pipelines.__path__)
        for node in importlib.import_module(f"depo.pipelines.{folder.name}").create_pipeline().nodes
    }
