"""Attention over DEPO's packed rows (prompt | completion | KL completion) as two causal attentions per row.

A packed row holds two sequences that share their prompt (`depo.training.data.DEPOCollator`). As one
masked attention, every query meets every key of the row: on CPU `scaled_dot_product_attention` with a
mask skips no block and converts the mask in every layer, and with the two completions about half a row
each that is four times the work the two sequences need. On the long WebShop rows of the default data
it was 77 % of a training step. Here each row runs prompt + completion and prompt + KL completion as two
plain causal attentions, each as long as its own sequence, so the kernel skips the blocks above the
diagonal and nothing is padded or masked. Short rows are cheaper the other way (one call for the batch
instead of two per row): for them `PackedPairs.mask` carries the dense mask and one masked call runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AttentionInterface

PACKED_ATTENTION = "depo_packed_pairs"


@dataclass
class PackedPairs:
    """Per packed row, the lengths of its prompt, completion and KL completion (in that order, then padding),
    counted after the prefix the rows share through a key/value cache; `attention_calls` counts the layers
    that attended with `packed_pair_attention`."""

    prompt: list[int]
    completion: list[int]
    kl_completion: list[int]
    mask: torch.Tensor | None = None  # (rows, 1, length, keys), True where attended: one masked call instead
    attention_calls: int = 0

    @classmethod
    def from_segments(cls, segment_ids: torch.Tensor, prompt: int, completion: int, kl_completion: int) -> PackedPairs:
        """Lengths from a (rows, length) tensor of segment ids, given the ids of the three segments."""
        return cls(*((segment_ids == segment).sum(1).tolist() for segment in (prompt, completion, kl_completion)))


def _causal(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float, dropout: float) -> torch.Tensor:
    """Causal attention of the last `query.shape[1]` positions of a sequence over all of its `key.shape[1]`.

    The positions before the queries (the cached prefix, the prompt) have no query here; zero stand-ins
    make the attention square, so the kernel's causal mode applies, and their outputs are dropped.
    """
    missing = key.shape[1] - query.shape[1]
    if missing:
        query = torch.cat((query.new_zeros(query.shape[0], missing, query.shape[2]), query), dim=1)
    # 4-D inputs: with 3-D ones CPU falls back to the unfused kernel that materialises the weights
    output = F.scaled_dot_product_attention(query[None], key[None], value[None], dropout_p=dropout, is_causal=True,
                                            scale=scaling)
    return output[0, :, missing:]


def packed_pair_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask,
                          scaling: float, dropout: float = 0.0, packed_pairs: PackedPairs | None = None, **kwargs):
    """(rows, heads, length, head dim) queries of packed rows over their keys, the shared cached prefix first;
    returns (rows, length, heads, head dim), as transformers' attention functions do."""
    if packed_pairs is None:
        raise RuntimeError(f"the {PACKED_ATTENTION!r} attention needs the rows' segment lengths (packed_pairs=...)")
    packed_pairs.attention_calls += 1
    rows, heads, length, head_dim = query.shape
    prefix = key.shape[2] - length
    groups = heads // key.shape[1]
    if groups > 1:  # grouped-query attention: each K/V head serves `groups` query heads in turn
        key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    if packed_pairs.mask is not None:
        output = F.scaled_dot_product_attention(query, key, value, attn_mask=packed_pairs.mask, dropout_p=dropout,
                                                scale=scaling)
        return output.transpose(1, 2), None
    outputs = []
    for row in range(rows):
        prompt, completion = packed_pairs.prompt[row], packed_pairs.completion[row]
        kl_completion = packed_pairs.kl_completion[row]
        keys, values = key[row], value[row]
        matched_end = prefix + prompt + completion
        parts = [_causal(query[row, :, : prompt + completion], keys[:, :matched_end], values[:, :matched_end],
                         scaling, dropout)]
        if kl_completion:
            shared = prefix + prompt
            parts.append(_causal(
                query[row, :, prompt + completion : prompt + completion + kl_completion],
                torch.cat((keys[:, :shared], keys[:, matched_end : matched_end + kl_completion]), dim=1),
                torch.cat((values[:, :shared], values[:, matched_end : matched_end + kl_completion]), dim=1),
                scaling, dropout,
            ))
        padding = length - prompt - completion - kl_completion
        if padding:
            parts.append(query.new_zeros(heads, padding, head_dim))
        outputs.append(torch.cat(parts, dim=1))
    return torch.stack(outputs).transpose(1, 2), None


# No mask function is registered with it: transformers then builds no mask for this implementation.
AttentionInterface.register(PACKED_ATTENTION, packed_pair_attention)
