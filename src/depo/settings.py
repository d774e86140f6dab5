"""Kedro project settings."""
from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (test, paper, smollm2) overrides only the keys it names.
    "merge_strategy": {"parameters": "soft"},
    # `${oc.env:VAR,default}` outside credentials (mlflow.yml's tracking URI) needs registering.
    "custom_resolvers": {"oc.env": oc.env},
}

from depo.hooks import NodeTimingHook, ParameterValidationHook  # noqa: E402

# kedro-mlflow's own hook is registered by its plugin entry point; these run beside it.
HOOKS = (ParameterValidationHook(), NodeTimingHook())
