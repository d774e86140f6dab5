"""The bonus study: margin vs log-ratio placement, and α1 / α2 each alone, beside DEPO and KTO."""
from depo.pipelines.study_bonus.pipeline import create_pipeline

__all__ = ["create_pipeline"]
