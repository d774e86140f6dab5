"""The stand-in instruct base model: corpus, tiny model, pretraining."""
from depo.pipelines.base_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
