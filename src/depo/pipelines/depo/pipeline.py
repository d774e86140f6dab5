"""`depo` trains DEPO and KTO (α = 0) from one template (`study_penalty` and the other studies train more variants).

Each variant is the template under its own namespace: its node reads `params:<variant>.variant` and
writes `<variant>_model`; the data, the BC model and the shared `preference_training` settings are
common to all. kedro-viz collapses each namespace into one box.
"""
from kedro.pipeline import Node, Pipeline

from depo.pipelines.depo import nodes

VARIANTS = ("depo", "kto")


def template() -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.train_preference_model,
                ["bc_model", "depo_dataset", "params:preference_training", "params:variant"],
                "preference_model",
                name="train_preference_model",
            )
        ]
    )


def variant_pipeline(variant: str) -> Pipeline:
    return Pipeline(
        template(),
        namespace=variant,
        inputs={"bc_model", "depo_dataset"},
        outputs={"preference_model": f"{variant}_model"},
        parameters={"params:preference_training"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum((variant_pipeline(variant) for variant in VARIANTS), Pipeline([]))
