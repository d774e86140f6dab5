from kedro.pipeline import Node, Pipeline

from depo.pipelines.labeling import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.rewrite_thoughts, ["mcts_trajectories", "base_model", "params:labeling", "endpoint_api_key"],
                 "rewritten_trajectories", name="rewrite_thoughts"),
            Node(nodes.label_trajectories, ["rewritten_trajectories", "base_model", "params:labeling"], "depo_dataset",
                 name="label_trajectories"),
            Node(nodes.select_bc_dataset, "depo_dataset", "bc_dataset", name="select_bc_dataset"),
            Node(nodes.summarize_labels, "depo_dataset", "labeling_summary", name="summarize_labels"),
            Node(nodes.plot_labels, "depo_dataset", "labeling_histograms", name="plot_labels"),
            Node(nodes.export_depo_json, "depo_dataset", "depo_dataset_json", name="export_depo_json"),
        ]
    )
