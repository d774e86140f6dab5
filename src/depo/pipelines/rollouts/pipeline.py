from kedro.pipeline import Node, Pipeline

from depo.pipelines.rollouts import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.make_webshop_products, "params:webshop_catalog", "webshop_products",
                 name="make_webshop_products"),
            Node(nodes.make_math_problems, "params:math_data", "math_problems", name="make_math_problems"),
            Node(
                nodes.sample_tasks,
                ["params:envs", "params:rollouts", "webshop_products", "math_problems"],
                "tasks",
                name="sample_tasks",
            ),
            *[
                Node(
                    runner,
                    ["tasks", "webshop_products", "math_problems", "params:envs", "params:rollouts"],
                    f"{policy}_trajectories",
                    name=f"run_{policy}_rollouts",
                )
                for policy, runner in (("expert", nodes.run_expert_rollouts), ("random", nodes.run_random_rollouts))
            ],
            Node(
                nodes.summarize_rollouts,
                ["expert_trajectories", "random_trajectories"],
                "rollout_summary",
                name="summarize_rollouts",
            ),
        ]
    )
