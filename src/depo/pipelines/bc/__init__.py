"""Behaviour cloning (SFT) on desirable trajectories."""
from depo.pipelines.bc.pipeline import create_pipeline

__all__ = ["create_pipeline"]
