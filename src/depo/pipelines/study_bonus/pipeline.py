"""`study_bonus`: the bonus as a margin instead of inside the log-ratio, and α1 (tokens) or α2 (steps)
alone, each trained from BC and evaluated like the `study_data_fraction` slots (`trained_variants`),
beside the default run's `depo` (log-ratio, both α) and `kto` (α = 0)."""
from kedro.pipeline import Node, Pipeline

from depo.evaluation.studies import BONUS_VARIANTS
from depo.pipelines.study_bonus import nodes
from depo.pipelines.study_data_fraction.pipeline import trained_variants

STUDY = "study_bonus"


def create_pipeline(**kwargs) -> Pipeline:
    return trained_variants(STUDY, BONUS_VARIANTS) + Pipeline([
        Node(nodes.summarize_bonus,
             ["params:evaluation", f"params:{STUDY}", "params:preference_training",
              "params:kto.variant", "params:depo.variant", "evaluation_metrics",
              *[f"{STUDY}.{variant}.eval_trajectories" for variant in BONUS_VARIANTS]],
             "study_bonus_metrics", name="summarize", namespace=STUDY),
        Node(nodes.plot_bonus, ["study_bonus_metrics", f"params:{STUDY}"], "study_bonus_plot", name="plot",
             namespace=STUDY),
    ])
