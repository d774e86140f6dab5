from kedro.pipeline import Node, Pipeline

from depo.pipelines.mcts import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.search_trajectories,
                ["tasks", "webshop_products", "math_problems", "params:envs", "params:mcts", "endpoint_api_key"],
                "mcts_trajectories",
                name="search_trajectories",
            )
        ]
    )
