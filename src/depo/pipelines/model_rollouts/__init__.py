"""Rollouts of a model policy on the test tasks of every environment (`kedro run --pipelines model_rollouts`)."""
from depo.pipelines.model_rollouts.pipeline import create_pipeline

__all__ = ["create_pipeline"]
