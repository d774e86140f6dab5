"""Switching a transformers model to one of the project's own attention functions for a block of code."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def attention_implementation(model, name: str) -> Iterator[None]:
    """`model` (and every sub-model with a config) attends with the registered attention `name` inside
    the block; a transformers model reads its implementation from its config at every call, and the
    previous setting is restored on exit."""
    configs = {id(config): config for config in (getattr(module, "config", None) for module in model.modules())
               if hasattr(config, "_attn_implementation")}
    previous = {key: config._attn_implementation for key, config in configs.items()}
    try:
        for config in configs.values():
            config._attn_implementation = name
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = previous[key]
