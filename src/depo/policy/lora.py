"""LoRA adapters via peft, and the frozen reference model as the same weights with the adapter off.

Preference training needs reference log-probabilities; with LoRA the base weights never change, so
`adapter_disabled(model)` gives the reference without a second copy of the model in memory.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from peft import LoraConfig, PeftModel, get_peft_model


def add_lora(
    model,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
) -> PeftModel:
    """Wrap `model` with a fresh LoRA adapter (B = 0, so outputs are unchanged until trained)."""
    if isinstance(model, PeftModel):
        raise TypeError("model already has a LoRA adapter; merge it (merged_copy) before adding another")
    if r <= 0:
        raise ValueError(f"LoRA rank r must be positive, got {r}")
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules), task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


@contextmanager
def adapter_disabled(model: PeftModel) -> Iterator[PeftModel]:
    """Inside the block `model` computes the base (reference) model's outputs."""
    if not isinstance(model, PeftModel):
        raise TypeError(
            f"adapter_disabled needs a LoRA (peft) model, got {type(model).__name__}; a full fine-tune "
            "needs a separate reference model"
        )
    with model.disable_adapter():
        yield model


def merged_copy(model):
    """A plain transformers model with the adapter folded in; `model` itself keeps its adapter."""
    if not isinstance(model, PeftModel):
        return model
    return copy.deepcopy(model).merge_and_unload()
