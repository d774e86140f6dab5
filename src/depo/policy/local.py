"""Batched generation with a local transformers model: the `Generator` every stage uses on CPU/GPU.

Prompts are rendered with the tokenizer's chat template, grouped into batches of at most
`max_batch_size` rows, and decoded with a KV cache until every row has emitted a stop token.

Two decoders give the same greedy tokens: `cached_loop` (default) prefills each prompt unpadded,
reusing the stored keys and values of any prefix it has already computed (the system prompt, the
episode's previous step), then decodes all rows together, left-padded, in a preallocated cache,
dropping finished rows from the batch; `hf_generate` is one plain `model.generate` call per
left-padded batch. For small models on CPU the loop is several times faster: `generate` recomputes
every prompt, pays a padding mask over the whole prompt, and copies its growing cache every step.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DynamicCache, StaticCache

from depo.agent.prompting import Message
from depo.policy.base import Completion, GenerationConfig, PolicyModel
from depo.policy.tokenizer import END
from depo.policy.tokens import generated_length

DECODERS = ("cached_loop", "hf_generate")


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

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The chat-template tokens of `messages` followed by the assistant generation prompt."""
        return list(
            self.policy.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )

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
        # Each prompt is prefilled on its own, without padding: padded batched prefill pays for an
        # explicit attention mask over every pad, which on CPU costs more than the whole decode.
        first_logits, prompt_states = [], []
        for ids in rows:
            logits, states = self._prefill(ids)
            first_logits.append(logits)
            prompt_states.append(states)
        lengths = [len(ids) for ids in rows]
        width = max(lengths)
        # A preallocated cache, written in place: a growing cache copies all keys and values every step.
        cache = StaticCache(config=model.config, max_cache_len=width + config.max_new_tokens)
        for layer_index in range(len(prompt_states[0])):
            keys, values = (
                torch.cat([_left_pad(states[layer_index][part], width) for states in prompt_states])
                for part in (0, 1)
            )
            cache.update(keys, values, layer_index)
        attention_mask = torch.zeros((len(rows), width + config.max_new_tokens), dtype=torch.long)
        for i, length in enumerate(lengths):
            attention_mask[i, width - length : width] = 1
        attention_mask = attention_mask.to(model.device)
        next_positions = torch.tensor(lengths, device=model.device)[:, None]
        stop_ids = torch.tensor(sorted(self.stop_ids), device=model.device)
        outputs: list[list[int]] = [[] for _ in rows]
        active = torch.arange(len(rows))  # original row of each row still in the batch
        logits = torch.stack(first_logits)
        for step in range(config.max_new_tokens):
            next_ids = _next_tokens(logits, config, rng)
            for row, token in zip(active.tolist(), next_ids.tolist()):
                outputs[row].append(token)
            keep = ~torch.isin(next_ids, stop_ids)
            if step == config.max_new_tokens - 1:
                keep[:] = False
            # The tokens fed so far are this row's sequence; its keys and values can seed later prompts.
            for batch_index in (~keep).nonzero().squeeze(-1).tolist():
                row = int(active[batch_index])
                states = [
                    (layer.keys[batch_index : batch_index + 1, :, width - lengths[row] : width + step],
                     layer.values[batch_index : batch_index + 1, :, width - lengths[row] : width + step])
                    for layer in cache.layers
                ]
                self._prefix_store.add(list(rows[row]) + outputs[row][:-1], states)
            if not keep.any():
                break
            if not keep.all():
                # Finished rows leave the batch: later steps only compute the unfinished ones.
                kept = keep.nonzero().squeeze(-1)
                cache.reorder_cache(kept)
                active, next_ids = active[kept.cpu()], next_ids[kept]
                attention_mask, next_positions = attention_mask[kept], next_positions[kept]
            attention_mask[:, width + step] = 1
            out = model(
                input_ids=next_ids[:, None],
                attention_mask=attention_mask[:, : width + step + 1],
                position_ids=next_positions + step,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            logits = out.logits[:, -1, :]
        return outputs

    def _prefill(self, ids: list[int]) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Last-position logits and per-layer (keys, values) of one unpadded prompt.

        The longest prefix already in the prefix store (the shared system prompt, or the previous
        step of the same episode) is not recomputed.
        """
        model = self.policy.model
        prompt = torch.tensor(ids, dtype=torch.long, device=model.device)
        reused, states = self._prefix_store.longest_prefix(ids)
        cache = DynamicCache(config=model.config)
        for layer_index, (keys, values) in enumerate(states):
            cache.update(keys[:, :, :reused], values[:, :, :reused], layer_index)
        out = model(
            input_ids=prompt[None, reused:],
            position_ids=torch.arange(reused, len(ids), device=model.device)[None],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        states = [(layer.keys, layer.values) for layer in out.cache.layers]
        self._prefix_store.add(ids, states)
        return out.logits[0, -1, :], states

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


class _PrefixStore:
    """Keys and values of recently computed token sequences, so a prompt that extends one skips it.

    In a rollout the next prompt of an episode extends its previous prompt and completion, and all
    prompts share the system prompt. Entries hold only for the weights they were computed with:
    any in-place parameter update, adapter switch or train/eval change empties the store. The
    oldest entries are dropped beyond `max_bytes` or `max_entries` (each lookup scans them all).
    """

    def __init__(self, max_bytes: int, max_entries: int):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        # (token ids, per-layer keys and values, bytes), oldest first
        self._entries: list[tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], int]] = []
        self._stored_bytes = 0
        self._weights_state: tuple | None = None

    def check_weights(self, model) -> None:
        state = _weights_state(model)
        if state != self._weights_state:
            self._entries.clear()
            self._stored_bytes = 0
            self._weights_state = state

    def longest_prefix(self, ids: list[int]) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
        """(length, per-layer states) of the longest stored prefix of `ids`, at most `len(ids) - 1`.

        The last prompt token is always recomputed: its logits pick the first generated token.
        """
        query = torch.tensor(ids, dtype=torch.long)
        best, best_states = 0, []
        for entry_ids, states, _ in self._entries:
            limit = min(len(entry_ids), len(ids) - 1)
            if limit <= best:
                continue
            mismatches = (entry_ids[:limit] != query[:limit]).nonzero()
            common = int(mismatches[0]) if len(mismatches) else limit
            if common > best:
                best, best_states = common, states
        return best, best_states

    def add(self, ids: list[int], states: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        entry_bytes = sum(t.numel() * t.element_size() for pair in states for t in pair)
        if entry_bytes > self.max_bytes:
            return
        entry_ids = torch.tensor(ids, dtype=torch.long)
        # A stored prefix of the new sequence is redundant: the new entry covers it.
        self._entries = [
            entry
            for entry in self._entries
            if not (len(entry[0]) <= len(ids) and torch.equal(entry[0], entry_ids[: len(entry[0])]))
        ]
        self._entries.append((entry_ids, [(keys.clone(), values.clone()) for keys, values in states], entry_bytes))
        self._stored_bytes = sum(entry[2] for entry in self._entries)
        while self._stored_bytes > self.max_bytes or len(self._entries) > self.max_entries:
            self._stored_bytes -= self._entries.pop(0)[2]


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


def _left_pad(states: torch.Tensor, width: int) -> torch.Tensor:
    """(1, heads, length, dim) keys or values, zero-padded on the left to `width` positions."""
    return torch.nn.functional.pad(states, (0, 0, width - states.shape[2], 0))


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


def _model_name(model) -> str:
    return model.config.name_or_path or type(model).__name__
