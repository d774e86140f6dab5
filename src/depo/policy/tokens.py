"""Token accounting, one definition for every stage.

`gen_tokens` of a step is the number of tokens the policy generated for that turn, excluding
padding and the end-of-turn token. For scripted trajectories (no generation happened) it is
`count_text_tokens` of the formatted turn: the tokens a model emits when it writes exactly that
text in the tokenizer's own segmentation. Per trajectory, `total_tokens` (T@All) is the sum over
its steps and `avg_tokens_per_step` the mean.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence

import polars as pl

from depo.agent.react import AgentTurn, format_turn
from depo.schema import TOKEN_COLUMNS


def count_text_tokens(tokenizer, text: str) -> int:
    """Tokens of `text` alone, without special tokens (no bos, no end-of-turn)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def count_turn_tokens(tokenizer, turn: AgentTurn) -> int:
    """`gen_tokens` of a scripted turn, as the model would write it (`Thought: …\\nAction: …`)."""
    return count_text_tokens(tokenizer, format_turn(turn))


def generated_length(token_ids: Sequence[int], stop_ids: Collection[int]) -> int:
    """Generated tokens before the first stop token; padding only ever follows a stop token."""
    for position, token_id in enumerate(token_ids):
        if token_id in stop_ids:
            return position
    return len(token_ids)


def trajectory_token_totals(gen_tokens: Sequence[int]) -> tuple[int, float]:
    """(total_tokens, avg_tokens_per_step) of one trajectory's per-step counts."""
    if not gen_tokens:
        raise ValueError("gen_tokens is empty: a trajectory has at least one step")
    total = int(sum(gen_tokens))
    return total, total / len(gen_tokens)


def with_token_totals(frame: pl.DataFrame) -> pl.DataFrame:
    """Add `total_tokens` and `avg_tokens_per_step` per trajectory from a `gen_tokens` column."""
    if "gen_tokens" not in frame.columns:
        raise ValueError("frame has no 'gen_tokens' column to total per trajectory")
    return frame.with_columns(
        pl.col("gen_tokens").sum().over("trajectory_id").cast(TOKEN_COLUMNS["total_tokens"]).alias("total_tokens"),
        pl.col("gen_tokens").mean().over("trajectory_id").cast(TOKEN_COLUMNS["avg_tokens_per_step"]).alias(
            "avg_tokens_per_step"
        ),
    )
