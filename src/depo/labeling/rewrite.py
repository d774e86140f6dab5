"""Shorten the thoughts of desirable trajectories; actions are never changed.

The paper rewrote thoughts with an LLM. `RuleRewriter` (the default) is deterministic: it drops
sentences that restate the observation, hedge, weigh options or re-check, and keeps the decisive
clause. `ModelRewriter` asks any `Generator` (a local model or an endpoint) with a rewrite prompt.
Either way `rewrite_desirable` keeps the original thought when a rewrite is empty, changes the
action, or is not shorter in policy tokens.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from depo.agent.react import AgentTurn, format_turn, parse_turn
from depo.labeling.labels import LabelThresholds, label_trajectory
from depo.policy.base import GenerationConfig, Generator
from depo.policy.tokens import count_turn_tokens
from depo.schema import TOKEN_COLUMNS, validate_frame

# Sentences carrying no decision: hedges, re-checks, deliberation about options, restatements.
_FILLER = re.compile(
    r"\b(let me|double-check|re-?check|once more|again|to be sure|make sure|i think|maybe|perhaps|"
    r"probably|it seems|carefully|restate|recap|weigh|i could|think it through|not obvious|possibilities|"
    r"reconsider|hmm|wait|to summari[sz]e)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9]+")
_THOUGHT_LABEL = re.compile(r"^\s*Thought\s*:\s*", re.IGNORECASE)
_ACTION_LABEL = re.compile(r"^\s*Action\s*:", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class ThoughtToRewrite:
    observation: str  # what the agent saw before this turn
    thought: str
    action: str


class Rewriter(Protocol):
    def rewrite(self, items: Sequence[ThoughtToRewrite]) -> list[str]:
        """A (hopefully shorter) thought per item, in order; "" means no usable rewrite."""
        ...


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class RuleRewriter:
    """Keeps sentences that decide (name the action or are not filler), at most `max_words` words.

    A sentence restates the observation when at least `restate_overlap` of its words occur in the
    observation and it does not mention the action. When every sentence is filler, the one sharing
    most words with the action is kept, so a thought never becomes empty.
    """

    max_words: int = 40
    restate_overlap: float = 1.0

    def __post_init__(self) -> None:
        if self.max_words < 1:
            raise ValueError(f"max_words must be positive, got {self.max_words}")
        if not 0.0 < self.restate_overlap <= 1.0:
            raise ValueError(f"restate_overlap must be in (0, 1], got {self.restate_overlap}")

    def rewrite_one(self, item: ThoughtToRewrite) -> str:
        sentences = [s.strip() for s in _SENTENCE_END.split(item.thought.strip()) if s.strip()]
        if not sentences:
            return ""
        action_words = _words(item.action)
        observation_words = _words(item.observation)

        def restates(sentence: str) -> bool:
            words = _words(sentence)
            if not words or item.action.lower() in sentence.lower():
                return False
            return len(words & observation_words) / len(words) >= self.restate_overlap

        kept = [s for s in sentences if not _FILLER.search(s) and not restates(s)]
        if not kept:
            kept = [max(sentences, key=lambda s: len(_words(s) & action_words))]
        shortened: list[str] = []
        n_words = 0
        for sentence in kept:
            length = len(sentence.split())
            if shortened and n_words + length > self.max_words:
                break
            shortened.append(sentence)
            n_words += length
        text = " ".join(shortened)
        words = text.split()
        return text if len(words) <= self.max_words else " ".join(words[: self.max_words])

    def rewrite(self, items: Sequence[ThoughtToRewrite]) -> list[str]:
        return [self.rewrite_one(item) for item in items]


REWRITE_PROMPT = (
    "You shorten the reasoning of an agent. Given what the agent observed, its thought and its action, "
    "write the shortest thought that still justifies exactly the same action: drop restatements of the "
    "observation, hedging and re-checking. Answer as `Thought: <short thought>` then `Action: <the same action>`."
)


@dataclass
class ModelRewriter:
    """Greedy rewrites by a `Generator` (a local model, or an endpoint via `EndpointGenerator`)."""

    generator: Generator
    prompt: str = REWRITE_PROMPT
    max_new_tokens: int = 96
    batch_size: int = 16

    def rewrite(self, items: Sequence[ThoughtToRewrite]) -> list[str]:
        config = GenerationConfig(max_new_tokens=self.max_new_tokens, do_sample=False)
        thoughts: list[str] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            prompts = [
                [
                    {"role": "system", "content": self.prompt},
                    {
                        "role": "user",
                        "content": f"Observation:\n{item.observation}\n\n"
                        f"{format_turn(AgentTurn(item.thought, item.action))}",
                    },
                ]
                for item in batch
            ]
            for item, [completion] in zip(batch, self.generator.generate(prompts, config), strict=True):
                thoughts.append(_rewritten_thought(completion.text, item.action))
        return thoughts


def _rewritten_thought(text: str, action: str) -> str:
    """The thought of a rewrite answer; "" when it names another action or a broken one."""
    turn = parse_turn(text)
    if turn is not None:
        # The action must stay as it was; a rewrite that changes it is unusable.
        return turn.thought if turn.action == action else ""
    if _ACTION_LABEL.search(text):
        return ""
    return _THOUGHT_LABEL.sub("", text, count=1).strip()


def rewrite_desirable(
    trajectories: pl.DataFrame,
    rewriter: Rewriter,
    tokenizer,
    thresholds: Mapping[str, LabelThresholds],
) -> pl.DataFrame:
    """Rewrite the thoughts of desirable trajectories; other rows keep theirs.

    Adds `original_thought`, `gen_tokens_before` (policy tokens of the original turn), `gen_tokens`
    (of the turn now in the row) and `rewritten`. Actions and all other columns are unchanged.
    """
    validate_frame(trajectories, "trajectories")
    missing = sorted(set(trajectories["env"].unique()) - set(thresholds))
    if missing:
        raise ValueError(f"thresholds has no entry for environment(s) {missing}")
    desirable = [
        label_trajectory(reward, n_steps, thresholds[env]) is True
        for env, reward, n_steps in zip(
            trajectories["env"], trajectories["final_reward"], trajectories["n_steps"], strict=True
        )
    ]
    rows = [i for i, flag in enumerate(desirable) if flag]
    thoughts = trajectories["thought"].to_list()
    actions = trajectories["action"].to_list()
    observations = trajectories["observation"].to_list()
    before = [count_turn_tokens(tokenizer, AgentTurn(t, a)) for t, a in zip(thoughts, actions, strict=True)]
    after = list(before)
    new_thoughts = list(thoughts)
    rewritten = [False] * trajectories.height
    candidates = rewriter.rewrite([ThoughtToRewrite(observations[i], thoughts[i], actions[i]) for i in rows])
    for i, candidate in zip(rows, candidates, strict=True):
        candidate = candidate.strip()
        if not candidate:
            continue
        tokens = count_turn_tokens(tokenizer, AgentTurn(candidate, actions[i]))
        if tokens < before[i]:
            new_thoughts[i], after[i], rewritten[i] = candidate, tokens, True
    token_dtype = TOKEN_COLUMNS["gen_tokens"]
    return trajectories.drop([c for c in TOKEN_COLUMNS if c in trajectories.columns]).with_columns(
        pl.Series("original_thought", thoughts, dtype=pl.String),
        pl.Series("thought", new_thoughts, dtype=pl.String),
        pl.Series("gen_tokens_before", before, dtype=token_dtype),
        pl.Series("gen_tokens", after, dtype=token_dtype),
        pl.Series("rewritten", rewritten, dtype=pl.Boolean),
    )
