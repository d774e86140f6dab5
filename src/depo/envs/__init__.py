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
    suite = suite_class(name)
    if name == "webshop":
        return suite(products=resources.get("products"), **settings)
    if name == "math":
        return suite(problems=resources.get("problems"), **settings)
    return suite(**settings)


def suite_class(name: str) -> type[TaskSuite]:
    """The TaskSuite class of environment `name` (imported on demand: each pulls in its own deps)."""
    if name == "babyai":
        from depo.envs.babyai import BabyAISuite

        return BabyAISuite
    if name == "webshop":
        from depo.envs.webshop import WebShopSuite

        return WebShopSuite
    if name == "math":
        from depo.envs.math import MathSuite

        return MathSuite
    raise ValueError(f"unknown environment {name!r}; expected one of {ENV_NAMES}")


def system_prompts(names: list[str] | None = None) -> dict[str, str]:
    """Each environment's system prompt, the first message of every conversation it yields."""
    return {name: suite_class(name).system_prompt for name in (names or ENV_NAMES)}


def build_suites(
    env_settings: dict[str, dict[str, Any]], names: list[str] | None = None, **resources: Any
) -> dict[str, TaskSuite]:
    """Suites for `names` (default: every env in `env_settings`), each with its own settings block."""
    names = list(env_settings) if names is None else names
    unknown = [n for n in names if n not in env_settings]
    if unknown:
        raise ValueError(f"environment(s) {unknown} have no settings under `envs` in parameters")
    return {name: build_suite(name, env_settings[name], **resources) for name in names}


__all__ = ["ENV_NAMES", "StepResult", "Task", "TaskSuite", "TextEnv", "build_suite", "build_suites", "suite_class", "system_prompts"]
