"""Chat messages for an agent episode: system prompt, observations as user turns, turns as assistant.

The same builder serves rollouts (prompt for the next turn), labeling (`messages` column) and
training (assistant turns are the only supervised tokens).
"""
from __future__ import annotations

from collections.abc import Sequence

from depo.agent.react import AgentTurn, format_turn

Message = dict[str, str]


def build_messages(
    system_prompt: str,
    observations: Sequence[str],
    turns: Sequence[AgentTurn],
    history_turns: int | None = None,
) -> list[Message]:
    """Interleave observations and turns: obs0, turn0, obs1, turn1, …

    With `len(observations) == len(turns) + 1` the list ends on a user turn (a prompt for the next
    action); with equal lengths it is a whole trajectory. `history_turns` keeps the first observation
    (it holds the goal) and only the last k (turn, observation) pairs after it.
    """
    if not len(turns) <= len(observations) <= len(turns) + 1:
        raise ValueError(
            f"need one observation per turn (plus one to prompt), got {len(observations)} "
            f"observations for {len(turns)} turns"
        )
    first_kept = 0
    if history_turns is not None and len(turns) > history_turns:
        first_kept = len(turns) - history_turns
    first_user = observations[0]
    if first_kept > 0:
        # The goal is in the first observation, so it stays; the dropped steps are marked.
        first_user = f"{observations[0]}\n\n[{first_kept} earlier steps omitted]\n\n{observations[first_kept]}"
    messages: list[Message] = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": first_user},
    ]
    for i in range(first_kept, len(turns)):
        messages.append({"role": "assistant", "content": format_turn(turns[i])})
        if i + 1 < len(observations):
            messages.append({"role": "user", "content": observations[i + 1]})
    return messages
