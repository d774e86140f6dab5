"""The `rollouts` pipeline through a real KedroSession in the `test` env."""
from __future__ import annotations

import polars as pl
import pytest

from depo.schema import TRAJECTORY_SCHEMA, validate_frame
from tests.conftest import run_kedro

pytestmark = pytest.mark.slow


def _only_version(folder):
    versions = [p for p in folder.iterdir() if p.is_dir()]
    assert len(versions) == 1, versions
    return versions[0] / folder.name


def test_rollouts_pipeline_writes_versioned_trajectories(kedro_project):
    run_kedro(kedro_project, ["rollouts"])

    data = kedro_project / "data"
    expert = pl.read_parquet(_only_version(data / "02_intermediate" / "expert_trajectories.parquet"))
    random = pl.read_parquet(_only_version(data / "02_intermediate" / "random_trajectories.parquet"))
    for frame in (expert, random):
        validate_frame(frame)
        assert list(frame.columns)[: len(TRAJECTORY_SCHEMA)] == list(TRAJECTORY_SCHEMA)
        assert set(frame["env"]) == {"babyai", "webshop"}
        assert set(frame["split"]) == {"train", "test"}

    tasks = pl.read_parquet(_only_version(data / "02_intermediate" / "tasks.parquet"))
    for env in ("babyai", "webshop"):
        env_tasks = tasks.filter(pl.col("env") == env)
        train = set(env_tasks.filter(pl.col("split") == "train")["spec"])
        test = set(env_tasks.filter(pl.col("split") == "test")["spec"])
        assert train and test and not train & test

    summary = pl.read_parquet(_only_version(data / "08_reporting" / "rollout_summary.parquet"))
    by_policy = {
        (row["env"], row["source"]): row["success_rate"]
        for row in summary.filter(pl.col("split") == "test").to_dicts()
    }
    assert by_policy[("babyai", "expert")] > by_policy[("babyai", "random")]
    assert summary["n_tasks"].min() > 0
