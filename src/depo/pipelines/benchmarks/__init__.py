"""Speed benchmarks (`kedro run --pipelines benchmarks`); not part of the default run."""
from depo.pipelines.benchmarks.pipeline import create_pipeline

__all__ = ["create_pipeline"]
