"""The agent's turn format, shared by every environment and stage."""
from depo.agent.react import AgentTurn, format_turn, parse_turn

__all__ = ["AgentTurn", "format_turn", "parse_turn"]
