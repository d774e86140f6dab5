"""ReAct turns: the model writes `Thought: …` then `Action: …`; `parse_turn` is the one parser.

Only the first `Action:` line counts, so an action-like string inside a thought (`click[buy now]`)
or a second `Action:` is never executed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_THOUGHT = re.compile(r"^\s*Thought\s*:\s*", re.IGNORECASE)
_ACTION = re.compile(r"^[^\S\n]*Action\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
MAX_ACTION_CHARS = 300


@dataclass(frozen=True)
class AgentTurn:
    thought: str
    action: str


def format_turn(turn: AgentTurn) -> str:
    return f"Thought: {turn.thought}\nAction: {turn.action}"


def parse_turn(text: str) -> AgentTurn | None:
    """Split a model completion into (thought, action); None when no non-empty action line exists."""
    match = _ACTION.search(text)
    if match is None:
        return None
    action = match.group(1).strip()
    if not action or len(action) > MAX_ACTION_CHARS:
        return None
    thought = _THOUGHT.sub("", text[: match.start()], count=1).strip()
    return AgentTurn(thought=thought, action=action)
