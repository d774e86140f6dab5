"""Kedro project settings."""
from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (test, paper, smollm2) overrides only the keys it names.
    "merge_strategy": {"parameters": "soft"},
}
