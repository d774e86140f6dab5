"""The studies (data fraction, penalty, bonus): their tables on hand-made metrics (exact numbers), their
figures, their parameters, and the three pipelines run after a default run of the test env."""
from __future__ import annotations

import copy
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from depo.evaluation.plots import plot_data_fraction, plot_penalty, plot_stage_metrics
from depo.evaluation.studies import (
    BONUS_VARIANTS,
    DATA_FRACTION_SLOTS,
    PENALTY_VARIANTS,
    bonus_table,
    data_fraction_table,
    penalty_table,
    relative_to_baseline,
    study_evaluation,
    study_metric_names,
)
from depo.params import ParameterError, validate_parameters
from tests.conftest import REPO

METRICS = ("success", "t_all", "s_all")


def metrics_frame(rows: list[tuple[str, str, float, float, float]], n_tasks: int = 10) -> pl.DataFrame:
    """An agent_metrics-shaped frame from (env, stage, success, t_all, s_all); intervals ±10 %."""
    records = []
    for env, stage, success, t_all, s_all in rows:
        record = {"env": env, "stage": stage, "n_tasks": n_tasks}
        for name, value in zip(METRICS, (success, t_all, s_all), strict=True):
            record |= {name: value, f"{name}_ci_low": value * 0.9, f"{name}_ci_high": value * 1.1}
        records.append(record)
    return pl.DataFrame(records)


@pytest.fixture
def evaluation_metrics() -> pl.DataFrame:
    return metrics_frame([
        ("babyai", "bc", 0.5, 200.0, 10.0),
        ("babyai", "kto", 0.5, 180.0, 9.0),
        ("babyai", "depo", 0.6, 150.0, 8.0),
        ("webshop", "bc", 0.0, 400.0, 4.0),
        ("webshop", "kto", 0.1, 400.0, 4.0),
        ("webshop", "depo", 0.2, 300.0, 5.0),
    ])


@pytest.fixture
def penalty_metrics() -> pl.DataFrame:
    """What `study_penalty` measures itself: the undesirable-penalty variant."""
    return metrics_frame([("babyai", "depo_penalty", 0.4, 100.0, 5.0), ("webshop", "depo_penalty", 0.0, 200.0, 2.0)])


def _row(table: pl.DataFrame, **keys) -> dict:
    [row] = table.filter(*(pl.col(k) == v for k, v in keys.items())).to_dicts()
    return row


def test_relative_to_baseline_signs_improvement_so_that_positive_is_better(evaluation_metrics):
    depo = evaluation_metrics.filter(pl.col("stage") == "depo")
    table = relative_to_baseline(depo, evaluation_metrics)
    assert table.height == 2 * 3
    success = _row(table, env="babyai", metric="success")
    assert success["bc_value"] == 0.5 and success["value"] == 0.6
    assert success["relative_change"] == pytest.approx(0.2) and success["relative_improvement"] == pytest.approx(0.2)
    assert (success["ci_low"], success["ci_high"]) == pytest.approx((0.54, 0.66))
    t_all = _row(table, env="babyai", metric="t_all")
    assert t_all["relative_change"] == -0.25 and t_all["relative_improvement"] == 0.25
    s_all = _row(table, env="webshop", metric="s_all")  # more steps than BC: worse
    assert s_all["relative_change"] == 0.25 and s_all["relative_improvement"] == -0.25
    # BC never succeeds on webshop: no relative change exists
    assert math.isnan(_row(table, env="webshop", metric="success")["relative_improvement"])


def test_relative_to_baseline_refuses_an_unfair_or_missing_baseline(evaluation_metrics):
    depo = evaluation_metrics.filter(pl.col("stage") == "depo")
    with pytest.raises(ValueError, match="no 'bc' row for env 'webshop'"):
        relative_to_baseline(depo, evaluation_metrics.filter((pl.col("env") == "babyai") | (pl.col("stage") != "bc")))
    with pytest.raises(ValueError, match="evaluated on 5 test tasks but 'bc' in evaluation_metrics on 10"):
        relative_to_baseline(depo.with_columns(n_tasks=pl.lit(5)), evaluation_metrics)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['t_all_ci_low'\]"):
        relative_to_baseline(depo.drop("t_all_ci_low"), evaluation_metrics)


def test_data_fraction_table_orders_by_env_metric_and_fraction(evaluation_metrics):
    stages = metrics_frame([
        ("babyai", "depo_fraction_1", 0.25, 250.0, 10.0),
        ("babyai", "depo_fraction_2", 0.5, 100.0, 8.0),
        ("webshop", "depo_fraction_1", 0.0, 400.0, 4.0),
        ("webshop", "depo_fraction_2", 0.1, 200.0, 2.0),
    ])
    table = data_fraction_table(stages, {"depo_fraction_2": 1.0, "depo_fraction_1": 0.5}, evaluation_metrics)
    assert table.columns[:4] == ["env", "stage", "data_fraction", "metric"]
    assert table.height == 2 * 2 * 3
    babyai = table.filter(pl.col("env") == "babyai")
    assert babyai["metric"].to_list() == ["success", "success", "t_all", "t_all", "s_all", "s_all"]
    assert babyai["data_fraction"].to_list() == [0.5, 1.0] * 3
    assert babyai["relative_improvement"].to_list() == pytest.approx([-0.5, 0.0, -0.25, 0.5, 0.0, 0.2])
    with pytest.raises(ValueError, match=r"no data_fraction given for stage\(s\) \['depo_fraction_2'\]"):
        data_fraction_table(stages, {"depo_fraction_1": 0.5}, evaluation_metrics)


def test_penalty_table_compares_depo_and_the_penalty_variant_with_bc(evaluation_metrics, penalty_metrics):
    table = penalty_table(penalty_metrics, evaluation_metrics, metrics=["t_all", "success"])
    assert table.height == 2 * 2 * 2
    assert table.filter(pl.col("env") == "babyai").select("metric", "stage").rows() == [
        ("t_all", "depo"), ("t_all", "depo_penalty"), ("success", "depo"), ("success", "depo_penalty")]
    assert _row(table, env="babyai", stage="depo_penalty", metric="t_all")["relative_improvement"] == 0.5
    assert _row(table, env="babyai", stage="depo_penalty", metric="success")["relative_improvement"] == pytest.approx(-0.2)
    assert _row(table, env="webshop", stage="depo", metric="t_all")["relative_improvement"] == 0.25
    with pytest.raises(ValueError, match=r"no rows for reference stage\(s\) \['depo'\]"):
        penalty_table(penalty_metrics, evaluation_metrics.filter(pl.col("stage") != "depo"))
    with pytest.raises(ValueError, match="evaluated on 5 test tasks but 'bc' in evaluation_metrics on 10"):
        penalty_table(penalty_metrics.with_columns(n_tasks=pl.lit(5)), evaluation_metrics)


def test_bonus_table_puts_the_variants_beside_depo_and_kto_with_their_settings(evaluation_metrics):
    study = metrics_frame([
        ("babyai", "depo_alpha1_only", 0.5, 160.0, 10.0),
        ("babyai", "depo_margin", 0.55, 190.0, 9.5),
    ])
    shared = {"alpha_tokens": 3.0, "alpha_steps": 3.0, "bonus_placement": "log_ratio"}
    settings = {"kto": {**shared, "alpha_tokens": 0.0, "alpha_steps": 0.0}, "depo": shared,
                "depo_margin": {**shared, "bonus_placement": "margin"}, "depo_alpha1_only": {**shared, "alpha_steps": 0.0}}
    table = bonus_table(study, evaluation_metrics, settings)
    assert table["stage"].to_list() == ["kto", "depo", "depo_margin", "depo_alpha1_only"]  # webshop was not studied
    assert table["origin"].to_list() == ["default run"] * 2 + ["study"] * 2
    margin = _row(table, stage="depo_margin")
    assert (margin["alpha_tokens"], margin["alpha_steps"], margin["bonus_placement"]) == (3.0, 3.0, "margin")
    assert margin["t_all_vs_bc"] == 0.05 and margin["success_vs_bc"] == pytest.approx(0.1)
    assert margin["t_all_ci_high"] == pytest.approx(209.0)
    assert _row(table, stage="kto")["s_all_vs_bc"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"no bonus settings given for stage\(s\) \['depo_alpha1_only'\]"):
        bonus_table(study, evaluation_metrics, {k: v for k, v in settings.items() if k != "depo_alpha1_only"})


def test_study_evaluation_keeps_the_default_tasks_and_refuses_unevaluated_envs():
    evaluation = {"stages": ["bc"], "envs": ["babyai", "webshop", "math"], "n_tasks": {"babyai": 30}, "seed": 3}
    settings = study_evaluation(evaluation, ["babyai"], ["depo_fraction_1"])
    assert settings == {**evaluation, "envs": ["babyai"], "stages": ["depo_fraction_1"]}
    with pytest.raises(ValueError, match=r"study evaluation.envs \['webshop'\] are not in the default run's"):
        study_evaluation({**evaluation, "envs": ["babyai"]}, ["babyai", "webshop"], ["x"])


def test_study_metric_names(evaluation_metrics):
    table = data_fraction_table(evaluation_metrics.filter(pl.col("stage") == "depo"), {"depo": 0.5},
                                evaluation_metrics, ["t_all"])
    assert study_metric_names(table, "data_fraction", "data_fraction") == {
        "study/data_fraction/0.5/babyai/t_all": 150.0, "study/data_fraction/0.5/babyai/t_all_vs_bc": 0.25,
        "study/data_fraction/0.5/webshop/t_all": 300.0, "study/data_fraction/0.5/webshop/t_all_vs_bc": 0.25,
    }


def test_the_study_figures_have_one_panel_per_env_and_a_series_per_metric_or_stage(evaluation_metrics, penalty_metrics):
    stages = pl.concat([
        metrics_frame([(env, f"depo_fraction_{i}", 0.5, 200.0 - 20 * i, 10.0 - i) for env in ("babyai", "webshop")])
        for i in (1, 2, 3)
    ])
    fractions = data_fraction_table(stages, {"depo_fraction_1": 0.25, "depo_fraction_2": 0.5, "depo_fraction_3": 1.0},
                                    evaluation_metrics)
    figure = plot_data_fraction(fractions)
    axes = figure.get_axes()
    assert [axis.get_title() for axis in axes] == ["babyai", "webshop"]
    assert [line.get_label() for line in axes[0].get_lines() if not line.get_label().startswith("_")] == [
        "Succ.", "T@All", "S@All"]
    t_all = next(line for line in axes[0].get_lines() if line.get_label() == "T@All")
    assert list(t_all.get_xdata()) == [25.0, 50.0, 100.0]
    assert list(t_all.get_ydata()) == pytest.approx([10.0, 20.0, 30.0])

    figure = plot_penalty(penalty_table(penalty_metrics, evaluation_metrics))
    axes = figure.get_axes()
    assert [axis.get_title() for axis in axes] == ["babyai", "webshop"]
    assert len(axes[0].patches) == 2 * 3  # a bar per stage and metric
    assert [label.get_text() for label in axes[0].get_xticklabels()] == ["Succ.", "T@All", "S@All"]
    assert [text.get_text() for text in axes[1].texts] == ["n/a", "n/a"]  # webshop's BC success is 0

    settings = {stage: {"alpha_tokens": 3.0, "alpha_steps": 3.0, "bonus_placement": "log_ratio"}
                for stage in ("kto", "depo", "depo_margin")}
    study = metrics_frame([("babyai", "depo_margin", 0.5, 190.0, 9.0)])
    figure = plot_stage_metrics(bonus_table(study, evaluation_metrics, settings), METRICS)
    assert [axis.get_title() for axis in figure.get_axes()] == list(METRICS)
    with pytest.raises(ValueError, match="the table is empty"):
        plot_penalty(fractions.clear())


@pytest.fixture(scope="module")
def study_params() -> dict:
    params = yaml.safe_load((REPO / "conf" / "base" / "parameters.yml").read_text())
    params.update(yaml.safe_load((REPO / "conf" / "base" / "parameters_studies.yml").read_text()))
    return params


def test_the_shipped_study_parameters_are_valid_and_match_the_pipelines(study_params):
    validate_parameters(study_params, set(study_params))
    study = study_params["study_data_fraction"]
    assert [study[slot]["variant"]["data_fraction"] for slot in DATA_FRACTION_SLOTS] == [0.25, 0.5, 0.75, 1.0]
    assert set(BONUS_VARIANTS) <= set(study_params["study_bonus"])
    assert set(PENALTY_VARIANTS) <= set(study_params["study_penalty"])


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("study_data_fraction.fraction_2.variant.data_fraction", 1.5, "study_data_fraction.fraction_2.variant"),
        ("study_data_fraction.fraction_2.variant.data_fraction", None, "fraction_2.variant.data_fraction missing"),
        ("study_data_fraction.fraction_3.variant.data_fraction", 0.25, "data_fraction must differ"),
        ("study_data_fraction.metrics", ["succes"], "study_data_fraction.metrics.0"),
        ("study_bonus.evaluation.envs", ["math"], "study_bonus.evaluation.envs.0"),
        ("study_bonus.depo_margin.variant.bonus_placement", "outside", "study_bonus.depo_margin.variant"),
        ("study_bonus.depo_alpha1_only.variant.alpha_steps", -1.0, "alpha_steps must be >= 0"),
        ("study_bonus.depo_alpha2_only.variant.name", "kto", "'kto' is a stage of the default run"),
        ("study_bonus.depo_alpha2_only.variant.output_dir",
         "data/06_models/checkpoints/study_bonus/depo_margin", "output_dir must differ"),
        ("study_penalty.depo_penalty.variant.penalize_undesirable", False, "must set penalize_undesirable: true"),
        ("study_penalty.depo_penalty", None, "study_penalty.depo_penalty"),
    ],
)
def test_bad_study_parameters_are_rejected_naming_the_parameter(study_params, path, value, named):
    params = copy.deepcopy(study_params)
    *parents, last = path.split(".")
    node = params
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    with pytest.raises(ParameterError, match=named.replace(".", r"\.").replace("(", r"\(")):
        validate_parameters(params, {path.split(".")[0]})


def test_the_default_run_leaves_the_studies_out():
    from kedro.framework.project import configure_project

    from depo.pipeline_registry import register_pipelines

    configure_project("depo")
    pipelines = register_pipelines()
    default = {node.name for node in pipelines["__default__"].nodes}
    for name in ("study_data_fraction", "study_penalty", "study_bonus"):
        nodes = {node.name for node in pipelines[name].nodes}
        assert nodes and not nodes & default, name
    training = {node.name for node in pipelines["study_data_fraction"].nodes if node.name.endswith("train_preference_model")}
    assert training == {f"study_data_fraction.{slot}.train_preference_model" for slot in DATA_FRACTION_SLOTS}


def _newest(project: Path, relative: str) -> Path:
    folder = project / "data" / relative
    versions = sorted(p for p in folder.iterdir() if p.is_dir())
    assert versions, f"no version of {relative}"
    return versions[-1] / folder.name


@pytest.mark.slow
def test_the_studies_run_after_a_default_run(dag_project, tmp_path):
    assert not (dag_project / "data" / "08_reporting" / "study_penalty.parquet").exists()  # not in the default run
    project = Path(shutil.copytree(dag_project, tmp_path / "p"))
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines", "study_data_fraction,study_penalty,study_bonus"],
        cwd=project, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    long_columns = ["env", "stage", "metric", "n_tasks", "value", "ci_low", "ci_high", "bc_value", "relative_change",
                    "relative_improvement"]
    fractions = pl.read_parquet(_newest(project, "08_reporting/study_data_fraction.parquet"))
    assert set(long_columns + ["data_fraction"]) == set(fractions.columns)
    assert fractions.height == 2 * 4 * 3
    assert sorted(set(fractions["data_fraction"])) == [0.25, 0.5, 0.75, 1.0]
    assert set(fractions["env"]) == {"babyai", "webshop"} and set(fractions["metric"]) == set(METRICS)
    evaluation = pl.read_parquet(_newest(project, "08_reporting/evaluation_metrics.parquet"))
    bc = {r["env"]: r for r in evaluation.filter(pl.col("stage") == "bc").to_dicts()}
    assert all(r["bc_value"] == bc[r["env"]][r["metric"]] for r in fractions.to_dicts())

    penalty = pl.read_parquet(_newest(project, "08_reporting/study_penalty.parquet"))
    assert set(long_columns) == set(penalty.columns) and penalty.height == 2 * 2 * 3
    assert set(penalty["stage"]) == {"depo", "depo_penalty"}

    bonus = pl.read_parquet(_newest(project, "08_reporting/study_bonus.parquet"))
    assert bonus.height == 2 * 5
    assert bonus.filter(pl.col("env") == "babyai")["stage"].to_list() == ["kto", "depo", *BONUS_VARIANTS]
    assert {"origin", "alpha_tokens", "alpha_steps", "bonus_placement", "t_all_ci_low", "s_all_vs_bc"} <= set(bonus.columns)
    assert _row(bonus, env="babyai", stage="depo_alpha2_only")["alpha_tokens"] == 0.0

    for figure in ("study_data_fraction.png", "study_penalty.png", "study_bonus.png"):
        assert _newest(project, f"08_reporting/{figure}").stat().st_size > 0, figure
    for model in [f"study_data_fraction/{slot}" for slot in DATA_FRACTION_SLOTS] + [
            f"study_bonus/{variant}" for variant in BONUS_VARIANTS] + ["study_penalty/depo_penalty"]:
        assert (_newest(project, f"06_models/{model}") / "config.json").is_file(), model

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    [study_run, _default_run] = client.search_runs([client.get_experiment_by_name("depo").experiment_id],
                                                  order_by=["attributes.start_time DESC"])
    logged = study_run.data.metrics
    for name in ("study/data_fraction/0.5/babyai/t_all", "study/data_fraction/1.0/webshop/s_all_vs_bc",
                 "study/penalty/depo_penalty/babyai/t_all", "study/bonus/depo_margin/webshop/success"):
        assert name in logged, name
