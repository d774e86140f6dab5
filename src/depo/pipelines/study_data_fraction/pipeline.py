"""`study_data_fraction`: DEPO trained on each of four data fractions, evaluated, compared with BC (Fig. 3).

The structure is four slots (`depo.evaluation.studies.DATA_FRACTION_SLOTS`), their fractions are
parameters (`study_data_fraction.<slot>.variant.data_fraction`): Kedro builds pipelines before it
reads parameters, and the paper's figure has four points, so changing the fractions is a
parameters edit and only a different number of points needs code. Each slot is the `depo` template
(`depo.pipelines.depo.pipeline.template`) plus the default evaluation node under the namespace
`study_data_fraction.<slot>`; `study_bonus` builds its variants the same way (`trained_variants`).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from depo.evaluation.plots import plot_data_fraction
from depo.evaluation.studies import DATA_FRACTION_SLOTS
from depo.pipelines.depo.pipeline import template as preference_training_template
from depo.pipelines.evaluation.nodes import evaluate_stage
from depo.pipelines.study_data_fraction import nodes

STUDY = "study_data_fraction"
SHARED_INPUTS = ("bc_model", "depo_dataset", "tasks", "webshop_products", "math_problems")


def _train_and_evaluate() -> Pipeline:
    """One variant: preference training from BC, then greedy rollouts on the default evaluation's test tasks."""
    return Pipeline([
        preference_training_template(),
        Node(evaluate_stage,
             ["preference_model", "tasks", "webshop_products", "math_problems", "params:envs", "evaluation_settings",
              "params:variant.name"],
             "eval_trajectories", name="evaluate"),
    ])


def trained_variants(study: str, slots: Sequence[str]) -> Pipeline:
    """`<study>.evaluation_settings`, then per slot `<study>.<slot>.preference_model` (trained with
    `params:<study>.<slot>.variant`) and `<study>.<slot>.eval_trajectories`."""
    settings = update_wrapper(partial(nodes.evaluation_settings, slots=tuple(slots)), nodes.evaluation_settings)
    return Pipeline([
        Node(settings, ["params:evaluation", f"params:{study}"], f"{study}.evaluation_settings",
             name="evaluation_settings", namespace=study),
        *(
            Pipeline(
                _train_and_evaluate(),
                namespace=f"{study}.{slot}",
                inputs={**{name: name for name in SHARED_INPUTS}, "evaluation_settings": f"{study}.evaluation_settings"},
                parameters={"params:preference_training", "params:envs"},
            )
            for slot in slots
        ),
    ])


def create_pipeline(**kwargs) -> Pipeline:
    return trained_variants(STUDY, DATA_FRACTION_SLOTS) + Pipeline([
        Node(nodes.summarize_data_fraction,
             ["params:evaluation", f"params:{STUDY}", "evaluation_metrics",
              *[f"{STUDY}.{slot}.eval_trajectories" for slot in DATA_FRACTION_SLOTS]],
             "study_data_fraction_metrics", name="summarize", namespace=STUDY),
        Node(plot_data_fraction, "study_data_fraction_metrics", "study_data_fraction_plot", name="plot",
             namespace=STUDY),
    ])
