from kedro.pipeline import Node, Pipeline

from depo.pipelines.benchmarks import nodes

RESULTS = ["rollout_speedup", "trainer_speedup", "mcts_speed", "scaling", "training_flops", "end_to_end"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.build_benchmark_policy, ["params:envs", "params:tiny_model", "params:benchmarks"],
                 "benchmark_policy", name="build_benchmark_policy"),
            Node(nodes.measure_rollout_speedup, ["benchmark_policy", "params:envs", "params:benchmarks"],
                 "rollout_speedup_benchmark", name="measure_rollout_speedup"),
            Node(nodes.measure_trainer_speedup, ["benchmark_policy", "params:envs", "params:benchmarks"],
                 "trainer_speedup_benchmark", name="measure_trainer_speedup"),
            Node(nodes.measure_mcts_speed, ["params:envs", "params:mcts", "params:benchmarks"],
                 "mcts_speed_benchmark", name="measure_mcts_speed"),
            Node(nodes.measure_scaling,
                 ["benchmark_policy", "params:envs", "params:mcts", "params:labeling", "params:benchmarks"],
                 "scaling_benchmark", name="measure_scaling"),
            Node(nodes.measure_training_flops,
                 ["benchmark_policy", "params:envs", "params:labeling", "params:benchmarks"],
                 "training_flops_benchmark", name="measure_training_flops"),
            Node(nodes.measure_end_to_end, None, "end_to_end_benchmark", name="measure_end_to_end"),
            Node(nodes.report_benchmarks, [f"{name}_benchmark" for name in RESULTS],
                 ["benchmark_results", "benchmark_report"], name="report_benchmarks"),
        ]
    )
