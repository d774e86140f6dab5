"""The model-backed proposer (MCTS) and rewriter (labeling), on a real tiny model and on fixed texts."""
from __future__ import annotations

import random

import polars as pl
import pytest

from depo.envs import build_suite
from depo.labeling import ModelRewriter, ThoughtToRewrite
from depo.policy.base import Completion, GenerationConfig, PolicyModel
from depo.policy.local import LocalGenerator
from depo.policy.tiny import build_tiny_model, environment_corpus
from depo.policy.tokenizer import train_tokenizer
from depo.search import MCTSConfig, ModelProposer, search_tasks


class FixedTexts:
    """A `Generator` that answers every prompt with the same completions: the texts a model would write."""

    name = "fixed"

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.configs: list[GenerationConfig] = []

    def generate(self, prompts, config):
        self.configs.append(config)
        return [[Completion(text, n_tokens=len(text.split())) for text in self.texts[: config.num_return_sequences]]
                for _ in prompts]


@pytest.fixture(scope="module")
def babyai():
    return build_suite("babyai", {"levels": ["GoToRedBallNoDists", "GoToObj"], "max_steps": 8})


def test_model_proposer_parses_samples_and_drops_repeats_and_unparseable_ones(babyai):
    env = babyai.make_env()
    observation = env.reset(babyai.make_tasks("train", 1, seed=0)[0])
    texts = ["Thought: ahead.\nAction: move forward", "no action here", "Thought: again.\nAction: move forward",
             "Thought: turn.\nAction: turn left"]
    generator = FixedTexts(texts)
    proposals = ModelProposer(generator, babyai.system_prompt, temperature=0.7).propose(
        env, [observation], [], 4, random.Random(0))
    assert [p.turn.action for p in proposals] == ["move forward", "turn left"]
    assert [p.generated_tokens for p in proposals] == [5, 5]  # the generator's counts, passed through
    [config] = generator.configs
    assert config.do_sample and config.num_return_sequences == 4 and config.temperature == 0.7


def test_search_with_a_real_tiny_model_proposer_records_its_tokens(babyai):
    tokenizer = train_tokenizer(environment_corpus([babyai], n_tasks_per_env=4), vocab_size=400)
    policy = PolicyModel(build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                         tokenizer)
    proposer = ModelProposer(LocalGenerator(policy), babyai.system_prompt, max_new_tokens=12)
    frame = search_tasks(babyai, babyai.make_tasks("train", 2, seed=0), proposer,
                         MCTSConfig(simulations=4, num_proposals=3, max_depth=4), progress=False)
    # An untrained model rarely writes an `Action:` line; the expert rollouts still make trajectories.
    assert frame.height > 0 and set(frame["source"]) == {"mcts"}
    proposed = frame.filter(pl.col("proposal_tokens").is_not_null())
    assert (proposed["proposal_tokens"] <= 12).all()


def test_model_rewriter_keeps_only_rewrites_of_the_same_action():
    items = [ThoughtToRewrite("obs", "Let me restate everything twice. The ball is ahead.", "move forward")] * 3
    answers = FixedTexts(["Thought: Ball ahead.\nAction: move forward"])
    assert ModelRewriter(answers).rewrite(items) == ["Ball ahead."] * 3
    other_action = FixedTexts(["Thought: Turn instead.\nAction: turn left"])
    assert ModelRewriter(other_action).rewrite(items[:1]) == [""]
    bare = FixedTexts(["Thought: Ball ahead."])
    assert ModelRewriter(bare).rewrite(items[:1]) == ["Ball ahead."]
