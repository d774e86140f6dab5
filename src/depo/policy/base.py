"""What every policy backend provides: chat prompts in, completions with token counts out.

A local HF model (batched `generate`) and an OpenAI-compatible endpoint both implement
`Generator`, so rollouts, MCTS proposals and evaluation never care where the model runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from depo.agent.prompting import Message


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 96
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    num_return_sequences: int = 1  # K completions per prompt (MCTS proposals)
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    text: str  # the assistant text, without the end-of-turn token
    n_tokens: int  # tokens the policy generated for it, counted by the policy's tokenizer


class Generator(Protocol):
    name: str

    def generate(self, prompts: list[list[Message]], config: GenerationConfig) -> list[list[Completion]]:
        """One list of `config.num_return_sequences` completions per prompt, in prompt order."""
        ...


@dataclass
class PolicyModel:
    """A causal LM and its tokenizer, as the catalog saves and loads them."""

    model: Any
    tokenizer: Any
