"""Speed and scaling benchmarks of the DEPO stages, free of Kedro (the `benchmarks` pipeline runs them).

- `measurement`: `Measurement` (samples → median, min–max, target met), interleaved A/B timing
- `workload`: the fresh tiny policy and the labeled BabyAI data the benchmarks run on
- `rollout`: batched rollout engine ÷ one-episode-at-a-time `model.generate`
- `trainer`: `DEPOTrainer` at α = 0 ÷ `trl.KTOTrainer`, with equal step-1 losses
- `search`: MCTS simulations/s, `clone()` ÷ reset + replay, MCTS + labeling scaling
- `flops`: BC model FLOP/s ÷ the machine's fp32 matmul FLOP/s
- `end_to_end`: a whole run's wall time by pipeline, from its MLflow run
- `report`: the Markdown table
"""
from depo.benchmarks.end_to_end import end_to_end
from depo.benchmarks.flops import training_flops_utilisation
from depo.benchmarks.measurement import Measurement, Target, results_frame
from depo.benchmarks.report import markdown_report
from depo.benchmarks.rollout import rollout_speedup
from depo.benchmarks.search import clone_speedup, scaling, simulations_per_second
from depo.benchmarks.trainer import trainer_speedup
from depo.benchmarks.workload import expert_bc_dataset, single_turn_preferences, tiny_policy

__all__ = [
    "Measurement",
    "Target",
    "clone_speedup",
    "end_to_end",
    "expert_bc_dataset",
    "markdown_report",
    "results_frame",
    "rollout_speedup",
    "scaling",
    "simulations_per_second",
    "single_turn_preferences",
    "tiny_policy",
    "trainer_speedup",
    "training_flops_utilisation",
]
