from kedro.pipeline import Node, Pipeline

from depo.pipelines.base_model import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.make_base_corpus, ["params:envs", "params:base_model", "webshop_products"], "base_corpus",
                 name="make_base_corpus"),
            Node(nodes.build_tiny_policy, ["base_corpus", "expert_trajectories", "params:tiny_model"], "tiny_model",
                 name="build_tiny_policy"),
            Node(nodes.pretrain_base_model, ["tiny_model", "base_corpus", "params:base_model"], "base_model",
                 name="pretrain_base_model"),
        ]
    )
