"""Trajectories as token ids with an assistant-only loss mask, and the fixed length-bucketed batch plan.

Masks come from prefix diffs of the chat template: the tokens between rendering `messages[:i]` with a
generation prompt and rendering `messages[:i+1]` are assistant turn i, end-of-turn token included so
the model learns to stop. Everything else (system prompt, observations, role headers) is context.

Over-long trajectories are dropped and counted, never truncated: a cut trajectory loses its ending,
so its label (success) and its efficiency counts (T̄tok, Tstep) would describe text the model never sees.

Batches are planned once: rows are shuffled (seeded), cut into buckets of `BUCKET_BATCHES` batches,
sorted by length inside a bucket (small padding) and split into batches. For DEPO the sort is per label
and the two sorted lists are spread evenly over the bucket: successful trajectories are the short ones,
so a plain length sort would make label-pure batches, while this way every batch holds both labels in
the bucket's proportion, each of a similar length rank.
The rows are stored in planned order so batch k is rows [k·B, (k+1)·B); each epoch only the order
of the batches changes (`BatchBlockSampler`). Batch contents never change, so DEPO's mismatched
pairs, and the reference log-probs computed for them once before training, stay valid every epoch.

A DEPO batch packs each row's matched and mismatched sequences, which share the prompt, into one
sequence (prompt | completion | partner's completion), attended so that the two completions never see
each other (`DEPOCollator`, `depo.training.attention`): the prompt (system prompt and first observation)
runs once, not twice.
"""
from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import torch
from torch.utils.data import Sampler

from depo.training.losses import IGNORE_INDEX

logger = logging.getLogger(__name__)

BUCKET_BATCHES = 8  # batches per length bucket: larger buckets pad less but shuffle less


def render_ids(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False) -> list[int]:
    """Token ids of `messages` rendered by the tokenizer's chat template."""
    return list(
        tokenizer.apply_chat_template(
            list(messages), tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=True
        )["input_ids"]
    )


@dataclass(frozen=True)
class TokenizedConversation:
    input_ids: list[int]
    assistant_mask: list[int]  # 1 on assistant tokens (the supervised ones), 0 elsewhere
    prompt_length: int  # tokens before the first assistant turn: the prompt x of KTO/DEPO


def tokenize_conversation(messages: Sequence[dict], tokenizer) -> TokenizedConversation:
    """Ids of the whole conversation and the mask of its assistant tokens (by chat-template prefix diff)."""
    roles = [message["role"] for message in messages]
    if not roles or roles[-1] != "assistant":
        raise ValueError(f"messages must end with an assistant turn, got roles {roles}")
    if roles[0] == "assistant":
        raise ValueError("messages must start with a system or user turn: the prompt x would be empty")
    input_ids = render_ids(tokenizer, messages)
    assistant_mask = [0] * len(input_ids)
    prompt_length = None
    for i, role in enumerate(roles):
        if role != "assistant":
            continue
        start = render_ids(tokenizer, messages[:i], add_generation_prompt=True)
        # the last turn ends the conversation: its prefix is the whole rendering
        end = input_ids if i == len(roles) - 1 else render_ids(tokenizer, messages[: i + 1])
        if input_ids[: len(start)] != start or input_ids[: len(end)] != end:
            raise ValueError(
                f"the tokenizer's chat template is not prefix-stable at message {i}: rendering a prefix of the "
                "conversation does not give a token prefix of the whole, so assistant tokens cannot be located"
            )
        assistant_mask[len(start) : len(end)] = [1] * (len(end) - len(start))
        if prompt_length is None:
            prompt_length = len(start)
    return TokenizedConversation(input_ids, assistant_mask, prompt_length)


def select_data_fraction(frame: pl.DataFrame, data_fraction: float) -> pl.DataFrame:
    """The first ⌊fraction·n + ½⌋ rows by `data_fraction_rank`: the k% training subset."""
    if not 0 < data_fraction <= 1:
        raise ValueError(f"data_fraction must be in (0, 1], got {data_fraction}")
    if data_fraction == 1:
        return frame
    if "data_fraction_rank" not in frame.columns:
        raise ValueError("data_fraction < 1 needs a data_fraction_rank column in the dataset")
    n_keep = math.floor(data_fraction * frame.height + 0.5)
    return frame.sort("data_fraction_rank").head(n_keep)


def tokenize_frame(
    frame: pl.DataFrame, tokenizer, max_length: int | None, columns: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], int]:
    """One row dict per trajectory (ids, mask, prompt length, `columns` copied) and how many were dropped.

    Rows longer than `max_length` tokens are dropped (see the module docstring); None keeps all.
    """
    missing = [name for name in ("messages", *columns) if name not in frame.columns]
    if missing:
        raise ValueError(f"dataset is missing column(s) {missing}")
    if max_length is not None and max_length < 2:
        raise ValueError(f"max_length must be >= 2 tokens or None, got {max_length}")
    rows: list[dict[str, Any]] = []
    dropped = 0
    for row_index, record in enumerate(frame.select("messages", *columns).iter_rows(named=True)):
        conversation = tokenize_conversation(record["messages"], tokenizer)
        if max_length is not None and len(conversation.input_ids) > max_length:
            dropped += 1
            continue
        rows.append(
            {
                "row_index": row_index,
                "input_ids": conversation.input_ids,
                "assistant_mask": conversation.assistant_mask,
                "prompt_length": conversation.prompt_length,
                **{name: record[name] for name in columns},
            }
        )
    if dropped:
        logger.warning("dropped %d of %d trajectories longer than max_length=%s", dropped, frame.height, max_length)
    if not rows:
        raise ValueError(f"no trajectory fits max_length={max_length}: raise it")
    return rows, dropped


def _length_sorted(chunk: list[int], lengths: Sequence[int], labels: Sequence[bool] | None) -> list[int]:
    """`chunk` longest first within each label, the labels interleaved at even spacing (see the module docstring)."""
    groups = [chunk] if labels is None else [[i for i in chunk if labels[i]], [i for i in chunk if not labels[i]]]
    spread = []
    for group in groups:
        ranked = sorted(group, key=lambda index: lengths[index], reverse=True)
        spread += [((rank + 0.5) / len(ranked), index) for rank, index in enumerate(ranked)]
    return [index for _, index in sorted(spread)]


def plan_batches(lengths: Sequence[int], batch_size: int, seed: int, min_batch_size: int = 1,
                 labels: Sequence[bool] | None = None) -> list[list[int]]:
    """Length-bucketed batches of row indices; a short batch comes last; a last batch below
    `min_batch_size` is dropped (DEPO needs 2 rows per batch for its mismatched pairs). With `labels`
    every batch mixes both labels in its bucket's proportion."""
    if batch_size < min_batch_size:
        raise ValueError(f"batch size {batch_size} is below the minimum {min_batch_size}")
    if labels is not None and len(labels) != len(lengths):
        raise ValueError(f"got {len(labels)} labels for {len(lengths)} rows")
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    bucket = batch_size * BUCKET_BATCHES
    full, short = [], []
    for start in range(0, len(order), bucket):
        chunk = _length_sorted(order[start : start + bucket], lengths, labels)
        for offset in range(0, len(chunk), batch_size):
            batch = chunk[offset : offset + batch_size]
            (full if len(batch) == batch_size else short).append(batch)
    leftover = [index for batch in short for index in batch]  # at most one short batch: only the last bucket has one
    if 0 < len(leftover) < min_batch_size:
        logger.warning("dropped %d trajectory(ies) left over after batching by %d", len(leftover), batch_size)
    elif leftover:
        full.append(leftover)
    return full


class BatchBlockSampler(Sampler[int]):
    """Indices of rows stored in batch order: each block of `batch_size` is one planned batch.

    Every epoch shuffles the order of the full blocks with `seed + epoch` (the short block stays last
    so a DataLoader with the same batch size cuts exactly the planned batches). The order depends only
    on the epoch, which the Trainer sets, so a run resumed mid-epoch sees the same batches.
    """

    def __init__(self, n_rows: int, batch_size: int, seed: int):
        self.n_rows, self.batch_size, self.seed, self.epoch = n_rows, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_rows

    def __iter__(self):
        n_full = self.n_rows // self.batch_size
        blocks = list(range(n_full))
        random.Random(self.seed + self.epoch).shuffle(blocks)
        for block in blocks:
            yield from range(block * self.batch_size, (block + 1) * self.batch_size)
        yield from range(n_full * self.batch_size, self.n_rows)


def in_planned_order(rows: list[dict[str, Any]], batches: list[list[int]]) -> list[dict[str, Any]]:
    return [rows[index] for batch in batches for index in batch]


def add_mismatched_pairs(
    rows: list[dict[str, Any]], batches: list[list[int]], max_length: int | None
) -> list[dict[str, Any]]:
    """Rows in planned order, each with a KL sequence: its prompt + the completion of the previous row in
    its batch (the first row takes the last one's), the rotation TRL's KTOTrainer uses. A KL sequence
    longer than `max_length` is cut on the right, as TRL does: it only feeds the batch-mean estimate z0."""
    paired = []
    for batch in batches:
        for position, index in enumerate(batch):
            row, partner = rows[index], rows[batch[position - 1]]
            prompt = row["input_ids"][: row["prompt_length"]]
            completion = partner["input_ids"][partner["prompt_length"] :]
            completion_mask = partner["assistant_mask"][partner["prompt_length"] :]
            paired.append(
                {
                    **row,
                    "kl_input_ids": (prompt + completion)[:max_length],
                    "kl_assistant_mask": ([0] * len(prompt) + completion_mask)[:max_length],
                    "kl_partner_row_index": partner["row_index"],
                }
            )
    return paired


def pad_right(sequences: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(sequence) for sequence in sequences)
    return torch.tensor([list(sequence) + [value] * (width - len(sequence)) for sequence in sequences])


@dataclass
class SFTCollator:
    """input_ids, attention_mask and labels (−100 off the assistant tokens), right-padded."""

    pad_token_id: int

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [row["input_ids"] for row in rows]
        labels = [[t if m else -100 for t, m in zip(row["input_ids"], row["assistant_mask"])] for row in rows]
        return {
            "input_ids": pad_right(ids, self.pad_token_id),
            "attention_mask": pad_right([[1] * len(sequence) for sequence in ids], 0),
            "labels": pad_right(labels, -100),
        }


# Segments of a packed DEPO row (see DEPOCollator).
PROMPT, COMPLETION, KL_COMPLETION, PADDING = 0, 1, 2, 3


def pack_with_mismatched_completion(row: dict[str, Any]) -> dict[str, list[int]]:
    """One row of `add_mismatched_pairs` as prompt | completion | KL completion: ids, segments, position ids,
    and the token each position is scored on for the matched (`labels`) and the KL (`kl_labels`) sequence.

    The KL completion's positions restart after the prompt, and its first token is scored at the last prompt
    position, so with `depo.training.attention.packed_pair_attention` every scored token sees exactly its own
    sequence.
    """
    prompt_length = row["prompt_length"]
    ids, mask = row["input_ids"], row["assistant_mask"]
    kl_ids, kl_mask = row["kl_input_ids"][prompt_length:], row["kl_assistant_mask"][prompt_length:]
    n, k = len(ids), len(kl_ids)
    labels = [token if scored else IGNORE_INDEX for token, scored in zip(ids[1:], mask[1:])]
    labels += [IGNORE_INDEX] * (k + 1)
    kl_labels = [IGNORE_INDEX] * (n + k)
    for j, (token, scored) in enumerate(zip(kl_ids, kl_mask)):
        if scored:
            kl_labels[prompt_length - 1 if j == 0 else n + j - 1] = token
    return {
        "input_ids": ids + kl_ids,
        "segment_ids": [PROMPT] * prompt_length + [COMPLETION] * (n - prompt_length) + [KL_COMPLETION] * k,
        "position_ids": list(range(n)) + list(range(prompt_length, prompt_length + k)),
        "labels": labels,
        "kl_labels": kl_labels,
    }


def shared_prompt_attention_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """(rows, 1, length, length), True where a position may attend to another: causally, and only to the
    prompt or its own segment, so the completion and the KL completion never see each other."""
    index = torch.arange(segment_ids.shape[1], device=segment_ids.device)
    causal = index[None, :] <= index[:, None]
    keys = segment_ids[:, None, :]
    return (causal & ((keys == PROMPT) | (keys == segment_ids[:, :, None])))[:, None]


def shared_prefix_length(input_ids: torch.Tensor, segment_ids: torch.Tensor) -> int:
    """How many leading tokens all packed rows have in common (the environment's system prompt), stopping
    before the last token of the shortest prompt: that one scores the first completion token of its row."""
    limit = int((segment_ids == PROMPT).sum(1).min()) - 1
    differs = (input_ids[:, :limit] != input_ids[:1, :limit]).any(0).nonzero()
    return int(differs[0, 0]) if len(differs) else limit


@dataclass
class DEPOCollator:
    """Matched and mismatched (KL) sequences packed into one row each, with labels and efficiency counts.

    x_i y_i and x_i y_{i−1} share the prompt x_i (a long system prompt and the first observation), so each
    row is packed as x_i | y_i | y_{i−1} (`pack_with_mismatched_completion`) and the prompt goes through the
    model once instead of twice. `attention_mask` marks the real tokens; `segment_ids` tell the attention
    (`depo.training.attention.packed_pair_attention`) where each part of a row lies.
    """

    pad_token_id: int

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        packed = [pack_with_mismatched_completion(row) for row in rows]
        batch: dict[str, torch.Tensor] = {
            "input_ids": pad_right([p["input_ids"] for p in packed], self.pad_token_id),
            "attention_mask": pad_right([[1] * len(p["input_ids"]) for p in packed], 0),
            "segment_ids": pad_right([p["segment_ids"] for p in packed], PADDING),
            "position_ids": pad_right([p["position_ids"] for p in packed], 0),
            "labels": pad_right([p["labels"] for p in packed], IGNORE_INDEX),
            "kl_labels": pad_right([p["kl_labels"] for p in packed], IGNORE_INDEX),
        }
        batch["label"] = torch.tensor([bool(row["label"]) for row in rows])
        batch["steps"] = torch.tensor([float(row["steps"]) for row in rows])
        batch["avg_tokens_per_step"] = torch.tensor([float(row["avg_tokens_per_step"]) for row in rows])
        for name in ("reference_logps", "reference_kl_logps"):
            if name in rows[0]:
                batch[name] = torch.tensor([row[name] for row in rows], dtype=torch.float32)
        return batch
