"""How much of the CPU's matmul throughput behaviour cloning turns into model FLOPs.

Model FLOPs are counted the usual way, 6 × parameters × tokens (forward 2, backward 4 per
parameter per token), over the non-padding tokens trained on. Every parameter counts once: the
embedding lookup does no arithmetic, but the tied LM head multiplies by the same matrix. Attention
score FLOPs and padded positions are left out, so the figure is the useful share of the work.
"""
from __future__ import annotations

import copy
import tempfile

import polars as pl
import torch

from depo.benchmarks.measurement import Measurement, interleaved, ratios, timed
from depo.policy.base import PolicyModel
from depo.training import BCConfig, BCTrainer
from depo.training.data import tokenize_frame


def matmul_flops_per_second(size: int, calls: int = 10) -> float:
    """fp32 FLOP/s of `torch.mm` on two size × size matrices, the median over `calls` calls."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # first call allocates and picks the kernel
    seconds = sorted(timed(lambda: torch.mm(a, b))[1] for _ in range(calls))
    return 2 * size**3 / seconds[len(seconds) // 2]


def bc_model_flops_per_second(policy: PolicyModel, bc_dataset: pl.DataFrame, batch_size: int,
                              output_dir: str) -> tuple[float, int]:
    """(model FLOP/s of one BC epoch of full fine-tuning on `bc_dataset`, tokens trained on); only
    `train()` is timed: the batches are planned and tokenised before."""
    model = copy.deepcopy(policy.model)
    rows, _ = tokenize_frame(bc_dataset, policy.tokenizer, max_length=None)
    config = BCConfig(output_dir=output_dir, finetuning="full", learning_rate=1e-3, num_train_epochs=1,
                      per_device_train_batch_size=batch_size, max_length=None, use_cpu=True, dataloader_num_workers=0,
                      report_to="none", disable_tqdm=True, save_strategy="no", seed=0)
    trainer = BCTrainer(model, config, rows, policy.tokenizer)
    _, seconds = timed(trainer.train)
    tokens = sum(len(row["input_ids"]) for row in rows)
    parameters = sum(p.numel() for p in model.parameters())
    return 6 * parameters * tokens / seconds, tokens


def training_flops_utilisation(policy: PolicyModel, bc_dataset: pl.DataFrame, batch_size: int, matmul_size: int,
                               repeats: int) -> Measurement:
    """Achieved model FLOP/s of BC training ÷ measured fp32 matmul FLOP/s of this machine, interleaved."""
    tokens_per_epoch: list[int] = []
    with tempfile.TemporaryDirectory() as output_dir:
        def training() -> float:
            flops, tokens = bc_model_flops_per_second(policy, bc_dataset, batch_size, output_dir)
            tokens_per_epoch.append(tokens)
            return flops

        pairs = interleaved(training, lambda: matmul_flops_per_second(matmul_size), repeats)
    return Measurement(
        "training_flops_utilisation", "fraction", ratios(pairs),
        details={
            "model_gflops_per_s": [a / 1e9 for a, _ in pairs], "matmul_gflops_per_s": [b / 1e9 for _, b in pairs],
            "parameters": sum(p.numel() for p in policy.model.parameters()), "tokens_per_epoch": tokens_per_epoch[0],
            "trajectories": bc_dataset.height, "batch_size": batch_size, "matmul_size": matmul_size,
            "counting": "6 x parameters (tied embedding once) x non-padding tokens; attention scores not counted",
            "torch_threads": torch.get_num_threads(),
        },
    )
