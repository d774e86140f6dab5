"""Efficiency labeling: thought rewriting, desirable/undesirable labels, the DEPO dataset and its JSON."""
from depo.labeling.interchange import export_kto_json, import_kto_json, kto_records
from depo.labeling.labels import (
    DEPO_DATASET_SCHEMA,
    LabelThresholds,
    add_token_counts,
    assign_fraction_rank,
    bc_dataset,
    build_depo_dataset,
    conversations,
    label_trajectory,
    take_fraction,
    thresholds_from_params,
)
from depo.labeling.report import labeling_summary, plot_label_histograms
from depo.labeling.rewrite import ModelRewriter, Rewriter, RuleRewriter, ThoughtToRewrite, rewrite_desirable

__all__ = [
    "DEPO_DATASET_SCHEMA",
    "LabelThresholds",
    "ModelRewriter",
    "Rewriter",
    "RuleRewriter",
    "ThoughtToRewrite",
    "add_token_counts",
    "assign_fraction_rank",
    "bc_dataset",
    "build_depo_dataset",
    "conversations",
    "export_kto_json",
    "import_kto_json",
    "kto_records",
    "label_trajectory",
    "labeling_summary",
    "plot_label_histograms",
    "rewrite_desirable",
    "take_fraction",
    "thresholds_from_params",
]
