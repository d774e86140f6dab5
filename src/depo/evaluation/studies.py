"""The paper's studies as tables: data fraction (Fig. 3), undesirable penalty (Fig. 4), bonus placement and α.

Every study compares stages with the BC model of the same (default) run on the same test tasks, in
one long table per study: one row per (env, stage, metric) with the stage's `value` and its 95 %
interval, the BC value, `relative_change = (value − bc) / |bc|` and `relative_improvement`, the
same change signed so that positive is better (less T@All / S@All is an improvement). A BC value of
0 makes both NaN (as in `comparison_report`). The study layout (which models a study trains) is
fixed here so the pipelines and the parameter checks share it; the settings are parameters.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from depo.evaluation.metrics import HIGHER_IS_BETTER, agent_metrics, relative_change

BASELINE = "bc"
STUDY_METRICS = ("success", "t_all", "s_all")
# Each slot trains one DEPO model; its `data_fraction` is a parameter (`study_data_fraction.<slot>.variant`).
DATA_FRACTION_SLOTS = ("fraction_1", "fraction_2", "fraction_3", "fraction_4")
# The bonus study's new variants; the default run's `depo` (log-ratio bonus) and `kto` (α = 0) sit beside them.
BONUS_VARIANTS = ("depo_margin", "depo_alpha1_only", "depo_alpha2_only")
BONUS_REFERENCE_STAGES = ("kto", "depo")
BONUS_SETTINGS = ("alpha_tokens", "alpha_steps", "bonus_placement")
# The penalty study's variant (Fig. 4), beside the default run's `depo`.
PENALTY_VARIANTS = ("depo_penalty",)
PENALTY_REFERENCE_STAGES = ("depo",)

RELATIVE_SCHEMA = {
    "env": pl.String, "stage": pl.String, "metric": pl.String, "n_tasks": pl.Int64, "value": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "bc_value": pl.Float64, "relative_change": pl.Float64,
    "relative_improvement": pl.Float64,
}


def study_evaluation(evaluation: Mapping[str, Any], envs: Sequence[str], stages: Sequence[str]) -> dict[str, Any]:
    """The default run's evaluation settings (test tasks, decoding, bootstrap) for `stages` on `envs`.

    Taking the task counts and seed from `evaluation` is what makes the BC rows of the default run's
    `evaluation_metrics` a fair baseline: both were measured on the same test tasks.
    """
    missing = [env for env in envs if env not in evaluation["envs"]]
    if missing:
        raise ValueError(
            f"study evaluation.envs {missing} are not in the default run's evaluation.envs {list(evaluation['envs'])}, "
            "so evaluation_metrics has no BC baseline for them"
        )
    return {**evaluation, "envs": list(envs), "stages": list(stages)}



def study_stage_metrics(evaluation: Mapping[str, Any], trajectories: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Per env × stage metrics of a study's rollouts, bootstrapped as the default evaluation does."""
    return agent_metrics(pl.concat(trajectories, how="vertical"), evaluation["bootstrap_resamples"], evaluation["seed"])

def _rank(column: str, order: Sequence[str]) -> pl.Expr:
    """Position of each value of `column` in `order`, for sorting in the given (not alphabetical) order."""
    return pl.col(column).replace_strict({value: i for i, value in enumerate(order)}, return_dtype=pl.Int64)


def _check_metrics(frame: pl.DataFrame, metrics: Sequence[str], what: str) -> None:
    needed = ["env", "stage", "n_tasks", *metrics, *(f"{m}_{b}" for m in metrics for b in ("ci_low", "ci_high"))]
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}; expected agent_metrics' columns")
    unknown = [m for m in metrics if m not in HIGHER_IS_BETTER]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected some of {sorted(HIGHER_IS_BETTER)}")


def relative_to_baseline(
    stage_metrics: pl.DataFrame,
    evaluation_metrics: pl.DataFrame,
    metrics: Sequence[str] = STUDY_METRICS,
    baseline: str = BASELINE,
) -> pl.DataFrame:
    """One row per (env, stage, metric) of `stage_metrics` against the `baseline` rows of `evaluation_metrics`.

    Both frames are `agent_metrics` frames. A study env without a baseline row, or measured on a
    different number of test tasks than the baseline, is an error: the comparison would be unfair.
    """
    _check_metrics(stage_metrics, metrics, "stage metrics")
    _check_metrics(evaluation_metrics, metrics, "evaluation_metrics")
    baselines = {row["env"]: row for row in evaluation_metrics.filter(pl.col("stage") == baseline).to_dicts()}
    rows = []
    for row in stage_metrics.sort("env", "stage").to_dicts():
        env = row["env"]
        if env not in baselines:
            raise ValueError(
                f"evaluation_metrics has no {baseline!r} row for env {env!r} (it has "
                f"{sorted(set(evaluation_metrics['env']))}); run the default evaluation on {env!r} first"
            )
        reference = baselines[env]
        if reference["n_tasks"] != row["n_tasks"]:
            raise ValueError(
                f"stage {row['stage']!r} on {env!r} was evaluated on {row['n_tasks']} test tasks but {baseline!r} in "
                f"evaluation_metrics on {reference['n_tasks']}; the evaluation parameters changed since the default "
                "run: rerun it, or restore evaluation.n_tasks"
            )
        for metric in metrics:
            change = relative_change(row[metric], reference[metric])
            rows.append({
                "env": env, "stage": row["stage"], "metric": metric, "n_tasks": row["n_tasks"],
                "value": row[metric], "ci_low": row[f"{metric}_ci_low"], "ci_high": row[f"{metric}_ci_high"],
                "bc_value": reference[metric], "relative_change": change,
                "relative_improvement": change if HIGHER_IS_BETTER[metric] else 0.0 - change,  # no -0.0
            })
    return pl.DataFrame(rows, schema=RELATIVE_SCHEMA)


def data_fraction_table(
    stage_metrics: pl.DataFrame,
    fractions: Mapping[str, float],
    evaluation_metrics: pl.DataFrame,
    metrics: Sequence[str] = STUDY_METRICS,
) -> pl.DataFrame:
    """Fig. 3's data: `relative_to_baseline` plus the `data_fraction` each stage was trained on."""
    unknown = sorted(set(stage_metrics["stage"]) - set(fractions))
    if unknown:
        raise ValueError(f"no data_fraction given for stage(s) {unknown}")
    table = relative_to_baseline(stage_metrics, evaluation_metrics, metrics)
    fraction = pl.col("stage").replace_strict(dict(fractions), return_dtype=pl.Float64)
    return (
        table.with_columns(data_fraction=fraction)
        .select("env", "stage", "data_fraction", *[c for c in RELATIVE_SCHEMA if c not in ("env", "stage")])
        .sort(pl.col("env"), _rank("metric", metrics), pl.col("data_fraction"))
    )


def _reference_rows(
    evaluation_metrics: pl.DataFrame, reference_stages: Sequence[str], study_metrics: pl.DataFrame
) -> pl.DataFrame:
    """The default run's rows of `reference_stages` on the envs the study measured."""
    missing = [stage for stage in reference_stages if stage not in set(evaluation_metrics["stage"])]
    if missing:
        raise ValueError(
            f"evaluation_metrics has no rows for reference stage(s) {missing}; rerun the default evaluation"
        )
    return evaluation_metrics.filter(
        pl.col("stage").is_in(list(reference_stages)) & pl.col("env").is_in(study_metrics["env"].unique().to_list())
    )


def penalty_table(
    study_metrics: pl.DataFrame,
    evaluation_metrics: pl.DataFrame,
    reference_stages: Sequence[str] = PENALTY_REFERENCE_STAGES,
    metrics: Sequence[str] = STUDY_METRICS,
) -> pl.DataFrame:
    """Fig. 4's data: the default run's `reference_stages` (DEPO) and the study's stages (the
    undesirable-penalty variant, `study_metrics`), each relative to BC, per env."""
    _check_metrics(study_metrics, metrics, "penalty study metrics")
    references = _reference_rows(evaluation_metrics, reference_stages, study_metrics)
    combined = pl.concat([references, study_metrics.select(references.columns)], how="vertical_relaxed")
    studied = [stage for stage in study_metrics["stage"].unique(maintain_order=True) if stage not in reference_stages]
    stages = [*reference_stages, *studied]
    return relative_to_baseline(combined, evaluation_metrics, metrics).sort(
        pl.col("env"), _rank("metric", metrics), _rank("stage", stages)
    )


def bonus_table(
    study_metrics: pl.DataFrame,
    evaluation_metrics: pl.DataFrame,
    settings: Mapping[str, Mapping[str, Any]],
    reference_stages: Sequence[str] = BONUS_REFERENCE_STAGES,
    metrics: Sequence[str] = STUDY_METRICS,
) -> pl.DataFrame:
    """The bonus ablation: one row per (env, stage) with each metric and its interval, the default run's
    `reference_stages` first, then the new variants (`study_metrics`) in the order of `settings`; each
    stage's bonus settings (`settings[stage]`: α1, α2, placement; `origin` says which run measured it)
    and its relative change vs BC (`<metric>_vs_bc`, positive = better)."""
    _check_metrics(study_metrics, metrics, "bonus study metrics")
    references = _reference_rows(evaluation_metrics, reference_stages, study_metrics)
    columns = ["env", "stage", "n_tasks", *(f"{m}{s}" for m in metrics for s in ("", "_ci_low", "_ci_high"))]
    combined = pl.concat([
        references.select(columns).with_columns(origin=pl.lit("default run")),
        study_metrics.select(columns).with_columns(origin=pl.lit("study")),
    ])
    unknown = [stage for stage in (*reference_stages, *study_metrics["stage"].unique()) if stage not in settings]
    if unknown:
        raise ValueError(f"no bonus settings given for stage(s) {unknown}")
    studied = set(study_metrics["stage"])
    stages = [*reference_stages, *(stage for stage in settings if stage in studied and stage not in reference_stages)]
    settings_frame = pl.DataFrame(
        [{"stage": stage, **{key: settings[stage][key] for key in BONUS_SETTINGS}} for stage in stages],
        schema={"stage": pl.String, "alpha_tokens": pl.Float64, "alpha_steps": pl.Float64, "bonus_placement": pl.String},
    )
    relative = (
        relative_to_baseline(combined, evaluation_metrics, metrics)
        .pivot("metric", index=["env", "stage"], values="relative_improvement")
        .rename({metric: f"{metric}_vs_bc" for metric in metrics})
    )
    return (
        combined.join(settings_frame, on="stage", how="left")
        .join(relative, on=["env", "stage"], how="left")
        .sort(pl.col("env"), _rank("stage", stages))
    )


def study_metric_names(table: pl.DataFrame, study: str, key: str) -> dict[str, float]:
    """MLflow names for a long study table: `study/<study>/<row[key]>/<env>/<metric>` (the value) and
    `…/<metric>_vs_bc` (the relative improvement over BC)."""
    metrics: dict[str, float] = {}
    for row in table.to_dicts():
        name = f"study/{study}/{row[key]}/{row['env']}/{row['metric']}"
        metrics[name] = row["value"]
        metrics[f"{name}_vs_bc"] = row["relative_improvement"]
    return metrics
