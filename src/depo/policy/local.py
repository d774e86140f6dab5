"""Batched generation with a local transformers model: the `Generator` every stage uses on CPU/GPU.

Prompts are rendered with the tokenizer's chat template, grouped into batches of at most
`max_batch_size` rows, and decoded with a KV cache until every row has emitted a stop token.

Two decoders give the same greedy tokens: `cached_loop` (default) and `hf_generate`, one plain
`model.generate` call per left-padded batch. `cached_loop` keeps each row's keys and values
contiguous in one preallocated buffer per layer and attends each row over its own length only
(the `depo_ragged` attention it registers with transformers), so no pad is computed or masked:
- prefill: the longest prefix already computed (the system prompt, the episode's previous step,
  another row of the batch) is copied; the remaining tokens of all rows go through the model
  packed into one sequence;
- decode: one forward per token for all unfinished rows, runs of rows of similar length attended
  together, the prefix every row shares read once; a finished row just stops being attended.
For small models on CPU it is several times faster than `generate`, which recomputes every prompt,
masks every pad and copies its growing cache every step.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from transformers import AttentionInterface

from depo.agent.prompting import Message
from depo.policy.attention import attention_implementation
from depo.policy.base import Completion, GenerationConfig, PolicyModel
from depo.policy.tokenizer import END
from depo.policy.tokens import generated_length

DECODERS = ("cached_loop", "hf_generate")
RAGGED_ATTENTION = "depo_ragged"
# New tokens per packed prefill forward: bounds its activations, not the batch size.
PREFILL_TOKENS = 8192


class LocalGenerator:
    """`Generator` over a `PolicyModel` in this process."""

    def __init__(
        self,
        policy: PolicyModel,
        max_batch_size: int = 32,
        name: str | None = None,
        decoder: str = "cached_loop",
        prefix_cache_mb: float = 512.0,
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        tokenizer, model = policy.tokenizer, policy.model
        if decoder == "cached_loop" and _uses_sliding_window(model.config.get_text_config()):
            raise ValueError(f"model {_model_name(model)!r} uses sliding-window attention, which decoder='cached_loop' "
                             "does not implement; use decoder='hf_generate'")
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"tokenizer of {_model_name(model)!r} has no chat template; a chat model is required")
        self.policy = policy
        self.max_batch_size = max_batch_size
        self.decoder = decoder
        self.name = name or _model_name(model)
        self.stop_ids = _stop_ids(policy)
        if not self.stop_ids:
            raise ValueError(f"model {self.name!r} has no eos token id to stop generation at")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.stop_ids)
        # A rollout step needs the previous step's sequences of every episode in the batch.
        self._prefix_store = _PrefixStore(max_bytes=int(prefix_cache_mb * 2**20), max_entries=2 * max_batch_size)
        self._prompt_encoder = _PromptEncoder(tokenizer, max_entries=2 * max_batch_size)

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The chat-template tokens of `messages` followed by the assistant generation prompt."""
        return self._prompt_encoder(messages)

    def generate(self, prompts: list[list[Message]], config: GenerationConfig) -> list[list[Completion]]:
        _check_config(config)
        k = config.num_return_sequences
        rows = [ids for ids in (self.prompt_ids(messages) for messages in prompts) for _ in range(k)]
        rng = torch.Generator(device="cpu").manual_seed(config.seed)
        self._prefix_store.check_weights(self.policy.model)
        generated: list[list[int]] = []
        for start in range(0, len(rows), self.max_batch_size):
            batch = rows[start : start + self.max_batch_size]
            if self.decoder == "cached_loop":
                generated.extend(self._decode_cached(batch, config, rng))
            else:
                generated.extend(self._decode_hf(batch, config, rng))
        tokenizer = self.policy.tokenizer
        completions = []
        for ids in generated:
            n_tokens = generated_length(ids, self.stop_ids)
            completions.append(
                Completion(text=tokenizer.decode(ids[:n_tokens], skip_special_tokens=True), n_tokens=n_tokens)
            )
        return [completions[i * k : (i + 1) * k] for i in range(len(prompts))]

    def _left_padded(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.policy.model.device
        width = max(len(ids) for ids in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[i, width - len(ids) :] = 1
        return input_ids.to(device), attention_mask.to(device)

    @torch.inference_mode()
    def _decode_cached(
        self, rows: Sequence[list[int]], config: GenerationConfig, rng: torch.Generator
    ) -> list[list[int]]:
        model = self.policy.model
        # Cache rows in prompt-length order: neighbouring rows then have similar lengths, and a
        # decode step attends over runs of them at once with little padding.
        order = sorted(range(len(rows)), key=lambda row: len(rows[row]))
        rows = [rows[row] for row in order]
        lengths = [len(ids) for ids in rows]  # keys and values in the cache, per row
        cache = _RowCache(model, lengths, capacity=lengths[-1] + config.max_new_tokens)
        outputs: list[list[int]] = [[] for _ in rows]
        active = list(range(len(rows)))  # rows still decoding, in cache order
        # The prompts' common prefix (the system prompt) has the same keys and values in every row
        # (up to rounding where rows computed it in separate forwards): a decode step reads one copy.
        shared = int(_common_prefix_lengths(_id_table([torch.tensor(ids) for ids in rows]), rows[0],
                                            lengths[0] - 1).min())
        forward = None  # the last decode step's
        with attention_implementation(model, RAGGED_ATTENTION):
            logits = self._prefill(cache, rows)
            for step in range(config.max_new_tokens):
                next_ids = _next_tokens(logits, config, rng)
                kept = []
                for index, (row, token) in enumerate(zip(active, next_ids.tolist())):
                    outputs[row].append(token)
                    if token in self.stop_ids or step == config.max_new_tokens - 1:
                        # The tokens fed so far are this row's sequence; they can seed a later prompt.
                        self._prefix_store.add(list(rows[row]) + outputs[row][:-1], cache.row_states(row, lengths[row]))
                    else:
                        kept.append(index)
                if not kept:
                    break
                if len(kept) < len(active):
                    # A finished row only stops being attended: nothing in the cache moves.
                    active = [active[index] for index in kept]
                    next_ids = next_ids[torch.tensor(kept, device=next_ids.device)]
                    forward = None
                # The same rows as the last step: each one position further, in the same blocks.
                forward = _Forward.decode(active, lengths, shared, model.device) if forward is None else forward.advanced()
                logits = self._forward(cache, forward, next_ids[:, None], forward.positions[:, None], 1)[:, -1]
                for row in active:
                    lengths[row] += 1
        unordered = [[] for _ in rows]
        for position, row in enumerate(order):
            unordered[row] = outputs[position]
        return unordered

    def _prefill(self, cache: _RowCache, rows: Sequence[list[int]]) -> torch.Tensor:
        """Logits (rows, vocab) of every prompt's last position, with its keys and values in `cache`.

        A prompt computes only what no earlier sequence covers: the longest prefix in the prefix
        store, or shared with an earlier prompt of this batch (the system prompt at an episode's
        first step, the K copies of an MCTS prompt), is copied. Rows reusing another row of the
        batch go in a second wave, after that row; each wave is packed into forwards of at most
        `PREFILL_TOKENS` new tokens.
        """
        model = self.policy.model
        stored = [self._prefix_store.longest_prefix(ids) for ids in rows]
        waves, sources = [0] * len(rows), [-1] * len(rows)  # source: the batch row a prefix is copied from
        reused = [length for length, _ in stored]
        table = _id_table([torch.tensor(ids, dtype=torch.long) for ids in rows])
        for row in range(1, len(rows)):
            # Only first-wave rows are sources, so there are at most two waves.
            candidates = [other for other in range(row) if waves[other] == 0]
            shared = _common_prefix_lengths(table[candidates], rows[row], len(rows[row]) - 1)
            best = int(shared.argmax())
            if int(shared[best]) > reused[row]:
                waves[row], sources[row], reused[row] = 1, candidates[best], int(shared[best])
        logits: torch.Tensor | None = None
        for wave in (0, 1):
            members = [row for row in range(len(rows)) if waves[row] == wave]
            for row in members:
                if sources[row] >= 0:
                    cache.copy_from_row(row, sources[row], reused[row])
                elif reused[row]:
                    cache.copy_from_states(row, stored[row][1], reused[row])
            for chunk in _token_chunks(members, [len(rows[row]) - reused[row] for row in members], PREFILL_TOKENS):
                new_ids = [token for row in chunk for token in rows[row][reused[row] :]]
                forward = _Forward.prefill(chunk, [reused[row] for row in chunk], [len(rows[row]) for row in chunk],
                                           model.device)
                last_positions = torch.tensor([first + count - 1 for _, first, count, _ in forward.segments],
                                              device=model.device)
                out = self._forward(cache, forward, torch.tensor([new_ids], device=model.device),
                                    forward.positions[None], last_positions)
                if logits is None:
                    logits = out.new_empty((len(rows), out.shape[-1]))
                logits[chunk] = out[0]
        return logits

    def _forward(self, cache: _RowCache, forward: _Forward, input_ids: torch.Tensor, position_ids: torch.Tensor,
                 logits_to_keep: int | torch.Tensor) -> torch.Tensor:
        cache.forward = forward
        logits = self.policy.model(
            input_ids=input_ids, position_ids=position_ids, cache=cache, use_cache=True,
            logits_to_keep=logits_to_keep, ragged_forward=forward,
        ).logits
        if forward.attention_calls != forward.cache_updates or not forward.attention_calls:
            raise RuntimeError(
                f"model {self.name!r} does not run its attention through transformers' attention interface "
                f"({forward.attention_calls} ragged attention calls for {forward.cache_updates} cache updates); "
                "use decoder='hf_generate'"
            )
        return logits

    @torch.inference_mode()
    def _decode_hf(self, rows: Sequence[list[int]], config: GenerationConfig, rng: torch.Generator) -> list[list[int]]:
        input_ids, attention_mask = self._left_padded(rows)
        sampling = (
            {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p, "top_k": 0}
            if config.do_sample
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        # `generate` samples from the global RNG; seed it from `rng` without disturbing the caller's.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=rng)))
            sequences = self.policy.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=config.max_new_tokens,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=self.pad_id,
                **sampling,
            )
        return sequences[:, input_ids.shape[1] :].tolist()


class _Block(NamedTuple):
    """Consecutive cache rows of a decode step, attended together up to the longest one's length."""

    first: int  # the block's first token (one token per row)
    row: int  # its first cache row
    rows: int
    length: int  # positions attended: the longest row's length
    padded_from: int  # the shortest row's length: positions from here on are padding for some rows
    padding: torch.Tensor | None  # (rows, 1, 1, length - padded_from), True past a row's own length


@dataclass
class _Forward:
    """Where the tokens of one model call go in a `_RowCache`, and what each of them attends to.

    Token i (batch-major order) is written to cache row `rows[i]` at position `positions[i]`. A
    prefill lists per cache row (row, its first token, its number of tokens, its length after this
    call); a row's tokens are consecutive and are its last positions. A decode step (one token per
    row) lists `blocks` of consecutive cache rows instead.
    """

    rows: torch.Tensor
    positions: torch.Tensor
    segments: list[tuple[int, int, int, int]] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    shared: tuple[int, int] = (0, 0)  # (a cache row, length) of a prefix all rows of a decode step share
    write_index: torch.Tensor | None = None  # flat (token, kv head) slots in the cache, set by the first layer
    cache_updates: int = 0
    attention_calls: int = 0

    @classmethod
    def prefill(cls, rows: list[int], starts: list[int], ends: list[int], device) -> _Forward:
        """Positions starts[i]..ends[i]-1 of each of `rows`, packed into one sequence."""
        counts = [end - start for start, end in zip(starts, ends)]
        firsts = [sum(counts[:i]) for i in range(len(counts))]
        counts_tensor = torch.tensor(counts, device=device)
        # Position of packed token t of row i: starts[i] + (t - firsts[i]).
        offsets = torch.tensor([start - first for start, first in zip(starts, firsts)], device=device)
        return cls(
            rows=torch.tensor(rows, device=device).repeat_interleave(counts_tensor),
            positions=torch.arange(sum(counts), device=device) + offsets.repeat_interleave(counts_tensor),
            segments=list(zip(rows, firsts, counts, ends)),
        )

    @classmethod
    def decode(cls, rows: list[int], lengths: list[int], shared: int, device) -> _Forward:
        """One token per row (rows in cache order), at the row's next position; the rows' first
        `shared` positions hold the same keys and values."""
        blocks, start = [], 0
        for end in range(1, len(rows) + 1):
            if end < len(rows) and rows[end] == rows[end - 1] + 1:
                # Rows are in length order: a longer neighbour joins while padding stays under 1/8.
                widest = lengths[rows[end]] + 1
                if widest * (end + 1 - start) <= 1.125 * sum(lengths[row] + 1 for row in rows[start : end + 1]):
                    continue
            block_lengths = [lengths[row] + 1 for row in rows[start:end]]
            shortest, widest = block_lengths[0], block_lengths[-1]
            padding = None
            if shortest != widest:
                padding = (torch.arange(shortest, widest, device=device)
                           >= torch.tensor(block_lengths, device=device)[:, None])[:, None, None, :]
            blocks.append(_Block(start, rows[start], end - start, widest, shortest, padding))
            start = end
        return cls(
            rows=torch.tensor(rows, device=device),
            positions=torch.tensor([lengths[row] for row in rows], device=device),
            blocks=blocks,
            shared=(rows[0], shared if len(rows) > 1 else 0),
        )


    def advanced(self) -> _Forward:
        """This decode step's rows and blocks one position further (every row grew by one token)."""
        return _Forward(
            rows=self.rows,
            positions=self.positions + 1,
            blocks=[block._replace(length=block.length + 1, padded_from=block.padded_from + 1)
                    for block in self.blocks],
            shared=self.shared,
            write_index=None if self.write_index is None else self.write_index + 1,
        )


class _RowCache:
    """Keys and values of a batch's rows: one (rows, kv heads, capacity, head dim) buffer per layer.

    Row r's positions are contiguous from 0. Before each model call `forward` says where the new
    tokens go; `update` writes them there and hands the whole buffers to `_ragged_attention`, which
    reads each row only up to its own length (or, in a decode step, up to the longest length of a
    run of similar rows). Nothing moves when a row finishes.
    """

    def __init__(self, model, prompt_lengths: list[int], capacity: int):
        config = model.config.get_text_config()
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        shape = (len(prompt_lengths), kv_heads, capacity, head_dim)
        self.keys = [torch.empty(shape, dtype=model.dtype, device=model.device)
                     for _ in range(config.num_hidden_layers)]
        self.values = [torch.empty_like(keys) for keys in self.keys]
        # Padding read by a decode step gets zero weight, which needs finite values behind it.
        for buffer in self.values:
            for row, length in enumerate(prompt_lengths):
                buffer[row, :, length:].zero_()
        self.forward: _Forward | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        rows, kv_heads, capacity, head_dim = keys.shape
        if key_states.shape[1] != kv_heads or key_states.shape[3] != head_dim:
            raise RuntimeError(f"layer {layer_idx} produced keys of shape {tuple(key_states.shape)}; the cache "
                               f"expected {kv_heads} kv heads of size {head_dim} from the model config")
        forward = self.forward
        forward.cache_updates += 1
        if forward.write_index is None:
            heads = torch.arange(kv_heads, device=keys.device)
            forward.write_index = ((forward.rows[:, None] * kv_heads + heads) * capacity
                                   + forward.positions[:, None]).flatten()
        # (batch, kv heads, tokens, dim) -> one (dim,) slice per (token, kv head), batch-major like `forward.rows`.
        keys.view(-1, head_dim).index_copy_(0, forward.write_index, key_states.transpose(1, 2).reshape(-1, head_dim))
        values.view(-1, head_dim).index_copy_(0, forward.write_index,
                                              value_states.transpose(1, 2).reshape(-1, head_dim))
        return keys, values

    def row_states(self, row: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (1, kv heads, length, head dim) views of one row's first `length` positions."""
        return [(keys[row : row + 1, :, :length], values[row : row + 1, :, :length])
                for keys, values in zip(self.keys, self.values)]

    def copy_from_row(self, row: int, source: int, length: int) -> None:
        for buffer in (*self.keys, *self.values):
            buffer[row, :, :length] = buffer[source, :, :length]

    def copy_from_states(self, row: int, states: list[tuple[torch.Tensor, torch.Tensor]], length: int) -> None:
        for keys, values, (stored_keys, stored_values) in zip(self.keys, self.values, states):
            keys[row, :, :length] = stored_keys[0, :, :length]
            values[row, :, :length] = stored_values[0, :, :length]


def _ragged_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask,
                      scaling: float, dropout: float = 0.0, ragged_forward: _Forward | None = None, **kwargs):
    """Attention of each row's new tokens over that row's own keys (a `_RowCache` buffer), causal.

    A decode step reads each row's keys and values once (plus the little padding of its block),
    which is what its time is made of once a batch's contexts outgrow the CPU caches. Plain
    matmuls: on CPU, `scaled_dot_product_attention` is several times slower for one query per row
    or with a mask.
    """
    if ragged_forward is None:
        raise RuntimeError(f"the {RAGGED_ATTENTION!r} attention only runs inside LocalGenerator's cached_loop decoder")
    ragged_forward.attention_calls += 1
    batch, heads, n_queries, head_dim = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    queries = query.transpose(1, 2).reshape(batch * n_queries, heads, head_dim) * scaling  # batch-major tokens
    output = torch.empty_like(queries)
    if ragged_forward.blocks:
        _decode_attention(queries, key, value, ragged_forward, output)
    for row, first, count, length in ragged_forward.segments:
        row_queries = queries[first : first + count].transpose(0, 1).reshape(kv_heads, groups * count, head_dim)
        weights = torch.bmm(row_queries, key[row, :, :length].transpose(1, 2))
        if count > 1:
            # New token i of the row sees its first length - count + i + 1 positions.
            causal = torch.ones((count, count), dtype=torch.bool, device=query.device).triu(1)
            weights.view(kv_heads, groups, count, length)[..., length - count :].masked_fill_(causal, float("-inf"))
        weights = _softmax(weights)
        output[first : first + count] = (
            torch.bmm(weights, value[row, :, :length]).view(heads, count, head_dim).transpose(0, 1)
        )
    return output.view(batch, n_queries, heads, head_dim), None


def _softmax(weights: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, computed in float32 (as transformers' eager attention)."""
    if weights.dtype == torch.float32:
        return weights.softmax(-1)
    return weights.softmax(-1, dtype=torch.float32).to(weights.dtype)


def _decode_attention(queries: torch.Tensor, key: torch.Tensor, value: torch.Tensor, forward: _Forward,
                      output: torch.Tensor) -> None:
    """One query per row, written to `output` (rows, heads, head dim); see `_Forward.blocks`.

    The prefix every row shares (the system prompt) is read once for all rows, not once per row.
    """
    n_tokens, heads, head_dim = queries.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    shared_row, shared = forward.shared
    if shared:
        # (kv heads, rows x group heads, shared positions) in one product, then viewed per row.
        by_head = queries.view(n_tokens, kv_heads, groups, head_dim).transpose(0, 1)
        shared_weights = torch.bmm(by_head.reshape(kv_heads, n_tokens * groups, head_dim),
                                   key[shared_row, :, :shared].transpose(1, 2))
        shared_weights = shared_weights.view(kv_heads, n_tokens, groups, shared).transpose(0, 1)
        shared_probabilities = queries.new_empty((n_tokens, kv_heads, groups, shared))
    for first, row, n_rows, length, padded_from, padding in forward.blocks:
        # (rows x kv heads, group heads, positions): each kv head serves its group of query heads.
        block_queries = queries[first : first + n_rows].view(n_rows * kv_heads, groups, head_dim)
        weights = torch.bmm(block_queries, key[row : row + n_rows, :, shared:length].flatten(0, 1).transpose(1, 2))
        if shared:
            weights = torch.cat(
                (shared_weights[first : first + n_rows].reshape(n_rows * kv_heads, groups, shared), weights), dim=-1
            )
        if padding is not None:
            weights.view(n_rows, kv_heads, groups, length)[..., padded_from:].masked_fill_(padding, float("-inf"))
        weights = _softmax(weights)
        torch.bmm(weights[..., shared:], value[row : row + n_rows, :, shared:length].flatten(0, 1),
                  out=output[first : first + n_rows].view(n_rows * kv_heads, groups, head_dim))
        if shared:
            shared_probabilities[first : first + n_rows] = weights[..., :shared].view(n_rows, kv_heads, groups, shared)
    if shared:
        shared_output = torch.bmm(shared_probabilities.transpose(0, 1).reshape(kv_heads, n_tokens * groups, shared),
                                  value[shared_row, :, :shared])
        output += shared_output.view(kv_heads, n_tokens, heads // kv_heads, head_dim).transpose(0, 1).reshape(
            n_tokens, heads, head_dim)


AttentionInterface.register(RAGGED_ATTENTION, _ragged_attention)


def _id_table(sequences: list[torch.Tensor]) -> torch.Tensor:
    """(sequences, longest) token ids, -1 (never a token) after each sequence's end."""
    table = torch.full((len(sequences), max(len(ids) for ids in sequences)), -1, dtype=torch.long)
    for i, ids in enumerate(sequences):
        table[i, : len(ids)] = ids
    return table


def _common_prefix_lengths(table: torch.Tensor, ids: list[int], limit: int) -> torch.Tensor:
    """How many leading tokens each row of `table` shares with `ids`, at most `limit`."""
    limit = min(limit, table.shape[1])
    if limit <= 0:
        return torch.zeros(len(table), dtype=torch.long)
    matches = table[:, :limit] == torch.tensor(ids[:limit], dtype=torch.long)
    return matches.cumprod(dim=1).sum(dim=1)


def _token_chunks(rows: list[int], counts: list[int], budget: int) -> Iterator[list[int]]:
    """`rows` in order, grouped so that each group's `counts` add up to at most `budget` (or one row)."""
    chunk, total = [], 0
    for row, count in zip(rows, counts):
        if chunk and total + count > budget:
            yield chunk
            chunk, total = [], 0
        chunk.append(row)
        total += count
    if chunk:
        yield chunk


class _PrefixStore:
    """Keys and values of recently computed token sequences, so a prompt that extends one skips it.

    In a rollout the next prompt of an episode extends its previous prompt, and all prompts share
    the system prompt. Entries hold only for the weights they were computed with: any in-place
    parameter update, adapter switch or train/eval change empties the store. The oldest entries
    are dropped beyond `max_bytes` or `max_entries`.
    """

    def __init__(self, max_bytes: int, max_entries: int):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        # (token ids, per-layer keys and values, bytes, the ids as a list), oldest first
        self._entries: list[tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], int, list[int]]] = []
        self._stored_bytes = 0
        self._weights_state: tuple | None = None
        self._table: torch.Tensor | None = None  # `_id_table` of the entries, rebuilt after a change

    def check_weights(self, model) -> None:
        state = _weights_state(model)
        if state != self._weights_state:
            self._entries.clear()
            self._table = None
            self._stored_bytes = 0
            self._weights_state = state

    def longest_prefix(self, ids: list[int]) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
        """(length, per-layer states) of the longest stored prefix of `ids`, at most `len(ids) - 1`.

        The last prompt token is always recomputed: its logits pick the first generated token.
        """
        if not self._entries:
            return 0, []
        if self._table is None:
            self._table = _id_table([entry[0] for entry in self._entries])
        common = _common_prefix_lengths(self._table, ids, len(ids) - 1)
        best = int(common.argmax())
        length = int(common[best])
        return (length, self._entries[best][1]) if length else (0, [])

    def add(self, ids: list[int], states: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        entry_bytes = sum(t.numel() * t.element_size() for pair in states for t in pair)
        if entry_bytes > self.max_bytes:
            return
        # A stored prefix of the new sequence is redundant: the new entry covers it. (Comparing the
        # last token first rules out almost every other episode's entry without a full comparison.)
        self._entries = [
            entry
            for entry in self._entries
            if not (len(entry[3]) <= len(ids) and entry[3][-1] == ids[len(entry[3]) - 1]
                    and entry[3] == ids[: len(entry[3])])
        ]
        self._entries.append((torch.tensor(ids, dtype=torch.long),
                              [(keys.clone(), values.clone()) for keys, values in states], entry_bytes, list(ids)))
        self._stored_bytes = sum(entry[2] for entry in self._entries)
        while self._stored_bytes > self.max_bytes or len(self._entries) > self.max_entries:
            self._stored_bytes -= self._entries.pop(0)[2]
        self._table = None


class _PromptEncoder:
    """Chat-template token ids of prompts, encoding only the text an earlier prompt does not cover.

    An episode's next prompt is its previous prompt plus the reply and a new observation. Tokenizers
    split special tokens off before anything else, so the ids of a prompt's text up to a special token
    do not depend on the text after it: a prompt extending a stored one reuses the stored ids up to
    their last special token and encodes only the rest (from that token on, so its lstrip/rstrip apply
    as in a whole encode). The first `CHECKS` reuses are compared with a whole encode; a tokenizer
    that gives different ids is encoded whole from then on.
    """

    CHECKS = 8

    def __init__(self, tokenizer, max_entries: int):
        self.tokenizer = tokenizer
        self.max_entries = max_entries
        self._special_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in tokenizer.all_special_tokens}
        # text -> (ids, characters up to the end of its last special token, ids up to it), oldest first
        self._entries: dict[str, tuple[list[int], int, int]] = {}
        self._checks_left = self.CHECKS
        self.reusing = bool(self._special_ids)

    def __call__(self, messages: list[Message]) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = self._extended(text) if self.reusing else None
        if ids is None or self._checks_left:
            whole = list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                            return_dict=False))
            if ids is not None:
                self._checks_left -= 1
                self.reusing = ids == whole
            ids = whole
        self._store(text, ids)
        return ids

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _extended(self, text: str) -> list[int] | None:
        stored = [prefix for prefix in self._entries if text.startswith(prefix)]
        if not stored:
            return None
        ids, char_cut, token_cut = self._entries[max(stored, key=len)]
        special = ids[token_cut - 1]
        rest = self._encode(self.tokenizer.convert_ids_to_tokens(special) + text[char_cut:])
        if not rest or rest[0] != special:
            return None
        return ids[:token_cut] + rest[1:]

    def _store(self, text: str, ids: list[int]) -> None:
        # The special token that ends last in the text (the longest one where several end together).
        char_cut, token = max(((text.rfind(token) + len(token), token) for token in self._special_ids
                               if token in text), default=(0, None), key=lambda found: (found[0], len(found[1])))
        if token is None or self._special_ids[token] not in ids:
            return
        token_cut = len(ids) - ids[::-1].index(self._special_ids[token])
        self._entries.pop(text, None)
        self._entries[text] = (ids, char_cut, token_cut)
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]


def _weights_state(model) -> tuple:
    """Changes whenever the model's outputs may: an in-place update bumps a tensor's version."""
    parameters = tuple((p.data_ptr(), p._version) for p in model.parameters())
    # peft's adapter layers expose these as plain values (transformers' models as methods).
    adapters = tuple(
        (name, module.disable_adapters, tuple(module.active_adapters))
        for name, module in model.named_modules()
        if isinstance(getattr(module, "disable_adapters", None), bool)
    )
    return model.training, parameters, adapters


def _next_tokens(logits: torch.Tensor, config: GenerationConfig, rng: torch.Generator) -> torch.Tensor:
    if not config.do_sample:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / config.temperature, dim=-1)
    if config.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (always at least the top token).
        outside = sorted_probs.cumsum(-1) - sorted_probs >= config.top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs.cpu(), 1, generator=rng).squeeze(-1).to(logits.device)


def _check_config(config: GenerationConfig) -> None:
    if config.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {config.max_new_tokens}")
    if config.num_return_sequences < 1:
        raise ValueError(f"num_return_sequences must be at least 1, got {config.num_return_sequences}")
    if config.do_sample and config.temperature <= 0:
        raise ValueError(f"temperature must be positive when sampling, got {config.temperature}")
    if not 0 < config.top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {config.top_p}")


def _stop_ids(policy: PolicyModel) -> set[int]:
    """The tokenizer's eos, the model's own eos ids, and the project's `<|end|>` when it has one."""
    ids: set[int] = set()
    tokenizer = policy.tokenizer
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    for config in (getattr(policy.model, "generation_config", None), policy.model.config):
        eos = getattr(config, "eos_token_id", None)
        if eos is not None:
            ids.update([eos] if isinstance(eos, int) else eos)
    end_id = tokenizer.get_vocab().get(END)
    if end_id is not None:
        ids.add(end_id)
    return ids


def _uses_sliding_window(config) -> bool:
    layer_types = getattr(config, "layer_types", None) or []
    return getattr(config, "sliding_window", None) is not None or any(t != "full_attention" for t in layer_types)


def _model_name(model) -> str:
    return model.config.name_or_path or type(model).__name__
