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
    # kedro-mlflow adds this pattern in its own hook; TrackingCheckHook reads mlflow.yml before that.
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}

from depo.hooks import (  # noqa: E402
    ArtifactLoggingHook,
    InputCheckHook,
    NodeTimingHook,
    ParameterValidationHook,
    TrackingCheckHook,
    tracking_enabled,
)

# kedro-mlflow's own hook is registered by its plugin entry point; these run beside it. The `tryfirst`
# hooks run last-registered first: parameters are validated before inputs are checked.
# `DEPO_TRACKING=off kedro run …` runs without MLflow: the plugin's hooks and ArtifactLoggingHook are
# not registered.
if tracking_enabled():
    HOOKS = (TrackingCheckHook(), InputCheckHook(), ParameterValidationHook(), NodeTimingHook(), ArtifactLoggingHook())
else:
    HOOKS = (InputCheckHook(), ParameterValidationHook(), NodeTimingHook())
    DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")
