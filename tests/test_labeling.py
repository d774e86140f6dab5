"""Thought rewriting, efficiency labels, the DEPO dataset and its KTO JSON interchange."""
from __future__ import annotations

import json

import polars as pl
import pytest

from depo.envs import build_suite, system_prompts
from depo.labeling import (
    LabelThresholds,
    RuleRewriter,
    ThoughtToRewrite,
    build_depo_dataset,
    export_kto_json,
    import_kto_json,
    label_trajectory,
    labeling_summary,
    rewrite_desirable,
    take_fraction,
    thresholds_from_params,
)
from depo.labeling.labels import DEPO_DATASET_SCHEMA
from depo.policy.tokenizer import train_tokenizer
from depo.search import ExpertProposer, MCTSConfig, search_tasks

BABYAI = LabelThresholds(desirable_min_reward=0.9, undesirable_reward_range=(0.7, 0.9))
WEBSHOP = LabelThresholds(desirable_min_reward=1.0, undesirable_reward_range=(0.7, 1.0), step_limit=7)


@pytest.mark.parametrize(
    ("reward", "steps", "thresholds", "label"),
    [
        (0.9, 3, BABYAI, True),  # κ0 itself is desirable
        (0.8999, 3, BABYAI, False),  # just below κ0, inside [κ2, κ1)
        (0.7, 3, BABYAI, False),  # κ2 itself is undesirable
        (0.6999, 3, BABYAI, None),  # below κ2: dropped
        (0.0, 3, BABYAI, None),
        (1.0, 6, WEBSHOP, True),  # under the step limit
        (1.0, 7, WEBSHOP, False),  # at the step limit: successful but long
        (0.75, 3, WEBSHOP, False),
        (0.5, 9, WEBSHOP, None),  # long and poor: dropped, not a KTO example
    ],
)
def test_labels_at_the_threshold_boundaries(reward, steps, thresholds, label):
    assert label_trajectory(reward, steps, thresholds) is label


def test_thresholds_from_parameters_name_the_bad_block():
    parsed = thresholds_from_params({"babyai": {"desirable_min_reward": 0.9, "undesirable_reward_range": [0.7, 0.9]}})
    assert parsed["babyai"] == BABYAI
    with pytest.raises(ValueError, match="thresholds.webshop"):
        thresholds_from_params({"webshop": {"desirable_min_reward": 0.5, "undesirable_reward_range": [0.7, 0.9]}})
    with pytest.raises(ValueError, match="unknown key"):
        thresholds_from_params({"babyai": {"desirable_min_reward": 0.9, "undesirable_reward_range": [0.7, 0.9], "kappa": 1}})


def test_rule_rewriter_drops_filler_and_keeps_the_decision():
    item = ThoughtToRewrite(
        observation="Your goal: go to the red ball\nThere is a red ball 2 steps in front of you.",
        thought="Let me restate what I observe. There is a red ball 2 steps in front of you. "
        "I could turn left or go to red ball 1. The red ball is my goal, so I go to red ball 1. "
        "Wait, let me re-check this once more.",
        action="go to red ball 1",
    )
    assert RuleRewriter().rewrite_one(item) == "The red ball is my goal, so I go to red ball 1."


@pytest.fixture(scope="module")
def searched():
    suite = build_suite("babyai", {"max_steps": 20})
    tasks = suite.make_tasks("train", 6, seed=0)
    return search_tasks(suite, tasks, ExpertProposer(), MCTSConfig(simulations=12, seed=0), progress=False)


@pytest.fixture(scope="module")
def tokenizer(searched):
    texts = searched["observation"].to_list() + searched["thought"].to_list() + searched["action"].to_list()
    return train_tokenizer(texts, vocab_size=500)


THRESHOLDS = {"babyai": LabelThresholds(desirable_min_reward=0.8, undesirable_reward_range=(0.5, 0.8))}


def test_rewriting_shortens_desirable_thoughts_and_never_changes_actions(searched, tokenizer):
    rewritten = rewrite_desirable(searched, RuleRewriter(), tokenizer, THRESHOLDS)
    assert rewritten["action"].equals(searched["action"])
    assert rewritten["original_thought"].equals(searched["thought"])
    changed = rewritten.filter(pl.col("rewritten"))
    assert changed.height > 0
    assert (changed["gen_tokens"] < changed["gen_tokens_before"]).all()
    # Only desirable trajectories are rewritten.
    undesirable = rewritten.filter(pl.col("final_reward") < 0.8)
    assert not undesirable["rewritten"].any()
    assert undesirable["thought"].equals(undesirable["original_thought"])


def test_depo_dataset_labels_counts_and_is_deterministic(searched, tokenizer):
    first = build_depo_dataset(searched, tokenizer, system_prompts(["babyai"]), THRESHOLDS, seed=0)
    again = build_depo_dataset(searched, tokenizer, system_prompts(["babyai"]), THRESHOLDS, seed=0)
    assert first.schema == pl.Schema(DEPO_DATASET_SCHEMA)
    assert first.equals(again)
    assert set(first["label"]) == {True, False}
    assert sorted(first["data_fraction_rank"].to_list()) == list(range(first.height))
    row = first.row(0, named=True)
    roles = [m["role"] for m in row["messages"]]
    assert roles[0] == "system" and roles[-1] == "assistant"
    assert roles.count("assistant") == row["steps"]
    assert row["avg_tokens_per_step"] == pytest.approx(row["total_tokens"] / row["steps"])
    for reward, label in zip(first["reward"], first["label"], strict=True):
        assert label is (reward >= 0.8)
    other_seed = build_depo_dataset(searched, tokenizer, system_prompts(["babyai"]), THRESHOLDS, seed=1)
    assert not other_seed["data_fraction_rank"].equals(first["data_fraction_rank"])
    summary = labeling_summary(first)
    assert summary["count"].sum() == first.height


def test_data_fractions_are_nested_and_keep_both_labels(searched, tokenizer):
    dataset = build_depo_dataset(searched, tokenizer, system_prompts(["babyai"]), THRESHOLDS, seed=0)
    quarter, half = take_fraction(dataset, 0.25), take_fraction(dataset, 0.5)
    assert set(quarter["trajectory_id"]) <= set(half["trajectory_id"])
    assert half.height == round(0.5 * dataset.height)
    assert set(half["label"]) == {True, False}
    with pytest.raises(ValueError, match="fraction"):
        take_fraction(dataset, 0.0)


def test_kto_json_round_trip_is_lossless(searched, tokenizer, tmp_path):
    dataset = build_depo_dataset(searched, tokenizer, system_prompts(["babyai"]), THRESHOLDS, seed=0)
    path = export_kto_json(dataset, tmp_path / "depo.json")
    records = json.loads(path.read_text())
    assert {"messages", "label", "steps", "avg_tokens_per_step", "total_tokens"} <= set(records[0])
    assert import_kto_json(path).equals(dataset)


def test_importing_a_foreign_kto_file_fills_counts_and_names_bad_records(tokenizer, tmp_path):
    record = {
        "messages": [
            {"role": "system", "content": "You are an agent."},
            {"role": "user", "content": "Your goal: go to the red ball"},
            {"role": "assistant", "content": "Thought: It is ahead.\nAction: go to red ball 1"},
        ],
        "label": True,
    }
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps([record, record]))
    imported = import_kto_json(path, tokenizer=tokenizer)
    assert imported["steps"].to_list() == [1, 1]
    assert imported["total_tokens"][0] == len(tokenizer(record["messages"][-1]["content"], add_special_tokens=False)["input_ids"])
    bad = dict(record, label="yes")
    path.write_text(json.dumps([record, bad]))
    with pytest.raises(ValueError, match=r"foreign.json record 1: 'label'"):
        import_kto_json(path)
