from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from depo.pipelines.evaluation import nodes

COMMON_INPUTS = ["tasks", "webshop_products", "math_problems", "params:envs", "params:evaluation"]


def _for_stage(stage: str):
    return update_wrapper(partial(nodes.evaluate_stage, stage=stage), nodes.evaluate_stage)


def create_pipeline(**kwargs) -> Pipeline:
    stage_nodes = [
        Node(_for_stage(stage), [f"{stage}_model", *COMMON_INPUTS], f"{stage}_eval_trajectories",
             name=f"evaluate_{stage}")
        for stage in nodes.STAGES
    ]
    return Pipeline(
        [
            *stage_nodes,
            Node(
                nodes.summarize_evaluation,
                ["params:evaluation", *[f"{stage}_eval_trajectories" for stage in nodes.STAGES]],
                ["eval_trajectories", "evaluation_metrics", "math_metrics"],
                name="summarize_evaluation",
            ),
            Node(
                nodes.report_evaluation,
                ["evaluation_metrics", "math_metrics"],
                ["comparison_report", "stage_metrics_plot", "math_metrics_plot"],
                name="report_evaluation",
            ),
        ]
    )
