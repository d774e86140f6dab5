"""Thought styles: the concise expert thought padded into a verbose one, as instruct models write.

Verbose thoughts restate the observation, weigh other options and re-check before acting. MCTS's
expert proposer and the base model's corpus use them so the data holds the same action with short
and long thoughts; the rule-based rewriter (`depo.labeling.rewrite`) removes exactly these parts.
"""
from __future__ import annotations

import random
import re
from collections.abc import Sequence

_ACTIONS_LINE = re.compile(r"^\s*available actions\s*:", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def observation_sentences(observation: str) -> list[str]:
    """The observation's sentences, without the `Available actions: [...]` line."""
    sentences = []
    for line in observation.splitlines():
        if not line.strip() or _ACTIONS_LINE.match(line):
            continue
        sentences += [s.strip() for s in _SENTENCE_END.split(line.strip()) if s.strip()]
    return sentences


def _as_sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


SHORT_ALTERNATIVE = ("I will {action}.", "Next: {action}.", "I {action} now.")
_RESTATE = (
    "Let me restate what I observe. {sentences}",
    "First, let me go over the observation again. {sentences}",
    "To recap the situation: {sentences}",
)
_WEIGH = (
    "I could {options}. Each of these leads somewhere different, so I should weigh them carefully.",
    "Maybe I should {options}; it is not obvious which option is best, so let me think it through.",
    "There are several possibilities: {options}. Perhaps one of them is better than the others.",
)
_RECHECK = (
    "Let me double-check before acting: the goal has not changed, so {action} still makes sense.",
    "Wait, let me re-check this once more. Yes, I think {action} is the right choice here.",
    "To be sure, I reconsider my plan again, and {action} still seems reasonable.",
)


def verbose_thought(core: str, action: str, observation: str, options: Sequence[str], rng: random.Random) -> str:
    """`core` (the decisive reasoning) padded with a random subset of restating, weighing and re-checking."""
    sentences = observation_sentences(observation)
    parts: list[str] = []
    if sentences and rng.random() < 0.7:
        picked = sentences[: rng.randint(1, min(2, len(sentences)))]
        parts.append(rng.choice(_RESTATE).format(sentences=" ".join(_as_sentence(s) for s in picked)))
    others = [o for o in options if o != action]
    if others and rng.random() < 0.7:
        shown = rng.sample(others, min(len(others), rng.randint(1, 3))) + [action]
        listed = ", ".join(shown[:-1]) + f" or {shown[-1]}"
        parts.append(rng.choice(_WEIGH).format(options=listed))
    parts.append(_as_sentence(core))
    if not parts[:-1] or rng.random() < 0.6:
        parts.append(rng.choice(_RECHECK).format(action=action))
    return " ".join(parts)
