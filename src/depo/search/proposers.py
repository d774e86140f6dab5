"""Who proposes the K candidate (thought, action) turns when MCTS expands a node.

`ExpertProposer` (the embedded default) mixes the environment expert's action with sampled
alternatives and gives each a thought of random verbosity, so the trees hold efficient and
wasteful paths and the same action with short and long thoughts. `ModelProposer` samples K
completions from any `Generator`; with an `EndpointGenerator` it is the endpoint proposer (e.g. an
OpenAI-compatible server), no separate class needed.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from depo.agent.prompting import build_messages
from depo.agent.react import AgentTurn, parse_turn
from depo.agent.style import SHORT_ALTERNATIVE, verbose_thought
from depo.envs.base import TextEnv
from depo.policy.base import GenerationConfig, Generator


@dataclass(frozen=True)
class Proposal:
    turn: AgentTurn
    # Tokens the proposing model generated; None for scripted proposals.
    generated_tokens: int | None = None


class Proposer(Protocol):
    def propose(
        self,
        env: TextEnv,
        observations: Sequence[str],
        turns: Sequence[AgentTurn],
        k: int,
        rng: random.Random,
    ) -> list[Proposal]:
        """Up to `k` proposals with distinct actions for the state `env` is in.

        `observations` are the path's observations (the last one is the current), `turns` the turns
        taken so far (one fewer). `env` must not be stepped: it is the tree's copy.
        """
        ...


@dataclass(frozen=True)
class ExpertProposer:
    """The expert's turn plus up to k-1 distinct random available actions, thoughts of mixed verbosity.

    `verbose_probability` is the chance that a proposal's thought is padded (restating, weighing,
    re-checking); otherwise it is the concise expert thought (or a short one for an alternative).
    """

    verbose_probability: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.verbose_probability <= 1.0:
            raise ValueError(f"verbose_probability must be in [0, 1], got {self.verbose_probability}")

    def propose(
        self,
        env: TextEnv,
        observations: Sequence[str],
        turns: Sequence[AgentTurn],
        k: int,
        rng: random.Random,
    ) -> list[Proposal]:
        expert = env.expert_turn()
        options = env.available_actions()
        alternatives = [a for a in options if a != expert.action]
        chosen = [(expert.thought, expert.action)]
        for action in rng.sample(alternatives, min(k - 1, len(alternatives))):
            chosen.append((rng.choice(SHORT_ALTERNATIVE).format(action=action), action))
        observation = observations[-1]
        proposals = []
        for concise, action in chosen:
            thought = concise
            if rng.random() < self.verbose_probability:
                thought = verbose_thought(concise, action, observation, options, rng)
            proposals.append(Proposal(AgentTurn(thought=thought, action=action)))
        return proposals


@dataclass
class ModelProposer:
    """K sampled completions of a policy (local or endpoint `Generator`), parsed as ReAct turns.

    Completions without an `Action:` line are dropped (there is nothing to step), as are repeats of
    an action already proposed, so a node can get fewer than K children.
    """

    generator: Generator
    system_prompt: str
    history_turns: int | None = None
    max_new_tokens: int = 96
    temperature: float = 1.0
    top_p: float = 1.0

    def propose(
        self,
        env: TextEnv,
        observations: Sequence[str],
        turns: Sequence[AgentTurn],
        k: int,
        rng: random.Random,
    ) -> list[Proposal]:
        messages = build_messages(self.system_prompt, observations, turns, self.history_turns)
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=True,
            temperature=self.temperature,
            top_p=self.top_p,
            num_return_sequences=k,
            seed=rng.randrange(2**31),
        )
        [completions] = self.generator.generate([messages], config)
        proposals: list[Proposal] = []
        seen: set[str] = set()
        for completion in completions:
            turn = parse_turn(completion.text)
            if turn is None or turn.action in seen:
                continue
            seen.add(turn.action)
            proposals.append(Proposal(turn, generated_tokens=completion.n_tokens))
        return proposals
