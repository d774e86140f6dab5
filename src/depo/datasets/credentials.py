"""An endpoint API key as a catalog entry, so it reaches nodes without ever being a parameter.

Parameters are logged to MLflow; credentials are not. The key comes from `conf/local/credentials.yml`
(`endpoint: {api_key: …}`) or, when that is absent or empty, from an environment variable.
"""
from __future__ import annotations

import os
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class Secret:
    """A string that never shows itself in `repr`, `str` or logs; `.reveal()` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def __bool__(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return f"Secret({'set' if self._value else 'unset'})"

    __str__ = __repr__


class ApiKeyDataset(AbstractDataset[None, Secret]):
    """Loads `credentials["api_key"]`, else the environment variable `env_var`; read-only."""

    def __init__(self, env_var: str = "DEPO_ENDPOINT_API_KEY", credentials: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None):
        self._env_var = env_var
        self._from_credentials = (credentials or {}).get("api_key")
        self.metadata = metadata

    def load(self) -> Secret:
        return Secret(self._from_credentials or os.environ.get(self._env_var))

    def save(self, data: None) -> None:
        raise DatasetError("ApiKeyDataset is read-only: put the key in conf/local/credentials.yml")

    def _describe(self) -> dict[str, Any]:
        return {"env_var": self._env_var, "api_key": "set" if self._from_credentials else "unset"}
