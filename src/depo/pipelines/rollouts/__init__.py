"""Rollouts: environment data, task splits and scripted-policy trajectories."""
from depo.pipelines.rollouts.pipeline import create_pipeline

__all__ = ["create_pipeline"]
