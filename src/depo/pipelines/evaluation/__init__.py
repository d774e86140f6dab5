"""Evaluation of every model stage and the comparison report."""
from depo.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
