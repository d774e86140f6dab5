"""MCTS trajectory search over the train tasks."""
from depo.pipelines.mcts.pipeline import create_pipeline

__all__ = ["create_pipeline"]
