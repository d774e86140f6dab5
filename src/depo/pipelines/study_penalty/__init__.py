"""The undesirable-penalty study (the paper's Fig. 4): DEPO vs its penalty variant, relative to BC."""
from depo.pipelines.study_penalty.pipeline import create_pipeline

__all__ = ["create_pipeline"]
