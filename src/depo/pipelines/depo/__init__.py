"""DEPO / KTO preference training from the BC model."""
from depo.pipelines.depo.pipeline import create_pipeline

__all__ = ["create_pipeline"]
