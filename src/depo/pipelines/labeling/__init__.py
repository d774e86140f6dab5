"""Thought rewriting and efficiency labeling: the DEPO and BC datasets."""
from depo.pipelines.labeling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
