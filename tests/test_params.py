"""Bad parameters are rejected when a pipeline starts, with a message naming the parameter."""
from __future__ import annotations

import copy

import pytest
import yaml

from depo.params import ParameterError, validate_parameters
from tests.conftest import REPO, run_kedro


@pytest.fixture(scope="module")
def base_params() -> dict:
    return yaml.safe_load((REPO / "conf" / "base" / "parameters.yml").read_text())


def _with(params: dict, path: str, value) -> dict:
    changed = copy.deepcopy(params)
    *parents, last = path.split(".")
    node = changed
    for key in parents:
        node = node[key]
    node[last] = value
    return changed


def test_the_shipped_parameters_are_valid(base_params):
    validate_parameters(base_params, set(base_params))


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("mcts.simulations", -1, "mcts.simulations"),
        ("mcts.envs", ["babyai", "minecraft"], "mcts.envs"),
        ("mcts.proposer.type", "oracle", "mcts.proposer.type"),
        ("envs.babyai.levels", ["GoToRedBall", "GoToMoon"], "GoToMoon"),
        ("evaluation.stages", ["bc", "sft"], "evaluation.stages"),
        ("labeling.thresholds.babyai.undesirable_reward_range", [0.95, 0.99], "labeling.thresholds"),
        ("tiny_model.num_heads", 3, "tiny_model"),
        ("tiny_model.num_key_value_heads", 3, "num_key_value_heads"),
        ("preference_training.beta", 0.0, "beta"),
        ("preference_training.per_device_train_batch_size", 1, "per_device_train_batch_size"),
        ("bc.training.finetuning", "half", "finetuning"),
        ("rollouts.n_test_tasks", {"babyai": 0, "webshop": 5}, "n_test_tasks.babyai"),
        ("mcts.simulation", 8, "mcts.simulation"),  # a typo is an unknown key
    ],
)
def test_bad_values_are_rejected_naming_the_parameter(base_params, path, value, named):
    with pytest.raises(ParameterError, match=named.replace(".", r"\.")):
        validate_parameters(_with(base_params, path, value), set(base_params))


def test_only_the_blocks_a_pipeline_reads_are_checked(base_params):
    broken = _with(base_params, "mcts.simulations", -1)
    validate_parameters(broken, {"rollouts", "envs"})


@pytest.mark.slow
def test_a_run_with_a_bad_parameter_fails_before_any_node_writes(kedro_project):
    with pytest.raises(ParameterError, match=r"rollouts: n_train_tasks\.babyai must be a positive"):
        run_kedro(kedro_project, ["rollouts"], params={"rollouts": {"n_train_tasks": {"babyai": -3}}})
    written = [p for p in (kedro_project / "data").rglob("*") if p.is_file()]
    assert written == []
