"""A causal LM and its tokenizer as one catalog entry: a `save_pretrained` directory.

With `versioned: true` each save goes to `<path>/<timestamp>/<name>` like any Kedro versioned
dataset, and a load picks the newest. A LoRA-wrapped model is saved merged, so every saved
directory loads with plain `from_pretrained` and the in-memory model keeps its adapter.
"""
from __future__ import annotations

import shutil
import tempfile
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_filepath_str, get_protocol_and_path

from depo.policy.base import PolicyModel
from depo.policy.loading import check_model_source, load_policy
from depo.policy.lora import merged_copy


class ModelDirectoryDataset(AbstractVersionedDataset[PolicyModel, PolicyModel]):
    """Saves a `PolicyModel` with `save_pretrained`; loads it with `depo.policy.loading.load_policy`.

    `load_args` go to `load_policy` (`dtype`, `device`); `save_args` to the model's
    `save_pretrained` (e.g. `max_shard_size`).
    """

    def __init__(
        self,
        *,
        path: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        protocol, local_path = get_protocol_and_path(path, version)
        if protocol != "file":
            raise DatasetError(f"ModelDirectoryDataset saves to local directories only; got path {path!r}")
        self._protocol = protocol
        self._load_args = deepcopy(load_args) or {}
        self._save_args = deepcopy(save_args) or {}
        self.metadata = metadata
        super().__init__(filepath=PurePosixPath(local_path), version=version)

    def load(self) -> PolicyModel:
        return load_policy(get_filepath_str(self._get_load_path(), self._protocol), **self._load_args)

    def check(self) -> str:
        """The directory a load would read, checked without reading weights (config, weight files and
        their headers; see `depo.policy.loading.check_model_source`); errors name the directory."""
        return check_model_source(get_filepath_str(self._get_load_path(), self._protocol))

    def save(self, data: PolicyModel) -> None:
        if not isinstance(data, PolicyModel):
            raise DatasetError(f"{self} saves a depo.policy.base.PolicyModel, got {type(data).__name__}")
        target = Path(get_filepath_str(self._get_save_path(), self._protocol))
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written next to the target and moved into place, so a failed save never leaves a
        # half-written directory that a later load (or the newest-version lookup) would pick up.
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            merged_copy(data.model).save_pretrained(staging, **self._save_args)
            data.tokenizer.save_pretrained(staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _exists(self) -> bool:
        load_path = Path(get_filepath_str(self._get_load_path(), self._protocol))
        return (load_path / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "path": str(self._filepath),
            "load_args": self._load_args,
            "save_args": self._save_args,
            "version": self._version,
        }
