from kedro.pipeline import Node, Pipeline

from depo.pipelines.model_rollouts import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.model_rollouts,
                ["rollout_model", "tasks", "webshop_products", "math_problems", "params:envs",
                 "params:model_rollouts"],
                "model_trajectories",
                name="model_rollouts",
            )
        ]
    )
