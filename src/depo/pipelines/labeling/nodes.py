"""Efficiency labeling: concise rewrites of good trajectories, token counts, labels, the DEPO dataset."""
from __future__ import annotations

from typing import Any

import polars as pl

from depo.datasets.credentials import Secret
from depo.envs import system_prompts
from depo.labeling import (
    ModelRewriter,
    RuleRewriter,
    build_depo_dataset,
    kto_records,
    labeling_summary,
    plot_label_histograms,
    rewrite_desirable,
    thresholds_from_params,
)
from depo.policy.base import PolicyModel
from depo.tracking import log_metrics

REWRITERS = ("rule", "endpoint")


def make_rewriter(rewriter: dict[str, Any], api_key: Secret):
    kind = rewriter["type"]
    if kind == "rule":
        return RuleRewriter(max_words=rewriter["max_words"])
    if kind == "endpoint":
        from depo.policy.endpoint import EndpointGenerator

        endpoint = dict(rewriter["endpoint"])
        max_new_tokens = endpoint.pop("max_new_tokens", 96)
        return ModelRewriter(EndpointGenerator(api_key=api_key.reveal(), **endpoint), max_new_tokens=max_new_tokens)
    raise ValueError(f"labeling.rewriter.type must be one of {REWRITERS}, got {kind!r}")


def rewrite_thoughts(
    mcts_trajectories: pl.DataFrame, base_model: PolicyModel, labeling: dict[str, Any], endpoint_api_key: Secret
) -> pl.DataFrame:
    """Shorter thoughts for desirable trajectories, with policy-token counts before and after."""
    rewritten = rewrite_desirable(
        mcts_trajectories,
        make_rewriter(labeling["rewriter"], endpoint_api_key),
        base_model.tokenizer,
        thresholds_from_params(labeling["thresholds"]),
    )
    changed = rewritten.filter(pl.col("rewritten"))
    if not changed.is_empty():
        log_metrics(
            {
                "rewritten_steps": changed.height,
                "tokens_per_step_before": changed["gen_tokens_before"].mean(),
                "tokens_per_step_after": changed["gen_tokens"].mean(),
            },
            prefix="labeling/rewrite/",
        )
    return rewritten


def label_trajectories(rewritten_trajectories: pl.DataFrame, base_model: PolicyModel, labeling: dict[str, Any]) -> pl.DataFrame:
    """The DEPO dataset: one labeled row per trajectory with messages and efficiency counts."""
    return build_depo_dataset(
        rewritten_trajectories,
        base_model.tokenizer,
        system_prompts(),
        thresholds_from_params(labeling["thresholds"]),
        seed=labeling["seed"],
    )


def select_bc_dataset(depo_dataset: pl.DataFrame) -> pl.DataFrame:
    """The desirable trajectories: what BC imitates."""
    bc = depo_dataset.filter(pl.col("label"))
    if bc.is_empty():
        raise ValueError("depo_dataset has no desirable trajectory: lower labeling.thresholds or search more")
    return bc


def summarize_labels(depo_dataset: pl.DataFrame) -> pl.DataFrame:
    summary = labeling_summary(depo_dataset)
    for row in summary.to_dicts():
        label = "desirable" if row["label"] else "undesirable"
        log_metrics({k: v for k, v in row.items() if k not in ("env", "label")}, prefix=f"labeling/{row['env']}/{label}/")
    return summary


def plot_labels(depo_dataset: pl.DataFrame):
    return plot_label_histograms(depo_dataset)


def export_depo_json(depo_dataset: pl.DataFrame) -> list[dict[str, Any]]:
    """The released DEPO data's JSON format (LLaMA-Factory's KTO stage reads it)."""
    return kto_records(depo_dataset)
