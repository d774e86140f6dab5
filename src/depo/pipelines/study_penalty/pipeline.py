"""`study_penalty`: DEPO vs the variant that also penalises undesirable trajectories (Fig. 4). The
variant is trained from BC and evaluated like the `study_data_fraction` slots (`trained_variants`),
beside the default run's `depo`; both are compared with the default run's BC."""
from kedro.pipeline import Node, Pipeline

from depo.evaluation.plots import plot_penalty
from depo.evaluation.studies import PENALTY_VARIANTS
from depo.pipelines.study_data_fraction.pipeline import trained_variants
from depo.pipelines.study_penalty import nodes

STUDY = "study_penalty"


def create_pipeline(**kwargs) -> Pipeline:
    return trained_variants(STUDY, PENALTY_VARIANTS) + Pipeline([
        Node(nodes.summarize_penalty,
             ["params:evaluation", f"params:{STUDY}", "evaluation_metrics",
              *[f"{STUDY}.{variant}.eval_trajectories" for variant in PENALTY_VARIANTS]],
             "study_penalty_metrics", name="summarize", namespace=STUDY),
        Node(plot_penalty, "study_penalty_metrics", "study_penalty_plot", name="plot", namespace=STUDY),
    ])
