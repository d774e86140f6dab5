"""Text environments behind one interface (`depo.envs.base`), built by name from parameters."""
from __future__ import annotations

from typing import Any

from depo.envs.base import StepResult, Task, TaskSuite, TextEnv

ENV_NAMES = ("babyai", "webshop", "math")


def build_suite(name: str, settings: dict[str, Any] | None = None, **resources: Any) -> TaskSuite:
    """The task suite called `name`, configured by `settings` (its parameters block).

    `resources` carries data a suite needs from the catalog (WebShop's `products`, math `problems`).
    """
    settings = dict(settings or {})
    if name == "babyai":
        from depo.envs.babyai import BabyAISuite

        return BabyAISuite(**settings)
    if name == "webshop":
        from depo.envs.webshop import WebShopSuite

        return WebShopSuite(products=resources.get("products"), **settings)
    if name == "math":
        from depo.envs.math import MathSuite

        return MathSuite(problems=resources.get("problems"), **settings)
    raise ValueError(f"unknown environment {name!r}; expected one of {ENV_NAMES}")


__all__ = ["ENV_NAMES", "StepResult", "Task", "TaskSuite", "TextEnv", "build_suite"]
