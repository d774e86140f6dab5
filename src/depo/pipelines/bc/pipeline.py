from kedro.pipeline import Node, Pipeline

from depo.pipelines.bc import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([Node(nodes.behaviour_clone, ["base_model", "bc_dataset", "params:bc"], "bc_model",
                          name="behaviour_clone")])
