"""`study_penalty`: DEPO vs the variant that also penalises undesirable trajectories (Fig. 4), from the
default run's `evaluation_metrics` (the default run trains and evaluates both)."""
from kedro.pipeline import Node, Pipeline

from depo.evaluation.plots import plot_penalty
from depo.pipelines.study_penalty import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(nodes.summarize_penalty, ["params:study_penalty", "evaluation_metrics"], "study_penalty_metrics",
             name="summarize", namespace="study_penalty"),
        Node(plot_penalty, "study_penalty_metrics", "study_penalty_plot", name="plot", namespace="study_penalty"),
    ])
