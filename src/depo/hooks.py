"""Kedro hooks: what is checked before a run starts, and node wall times for the run's budget.

Before anything is logged or computed (`tryfirst`, so ahead of kedro-mlflow's own hooks):

- `TrackingCheckHook`: the MLflow tracking server is reachable, else the run fails at once with
  the URI in the message (MLflow itself would retry for minutes, then fail mid-run).
- `ParameterValidationHook`: the parameters blocks the pipeline reads are valid (`depo.params`).
- `InputCheckHook`: every catalog entry the pipeline reads but does not make exists and is
  readable (parquet footers, model directories with config and weight headers, pretrained model
  paths), and the files parameters point at (WebShop product files, math JSONL files) parse, so a
  corrupt or missing input fails before the first node, naming the entry or path and what is wrong,
  and no output version is written.

During the run, `ArtifactLoggingHook` logs what a saved catalog entry wrote to the active MLflow run,
chosen by dataset type: model directories (`ModelDirectoryDataset`) under `models/<entry>/`, figures
(`matplotlib.MatplotlibDataset`) and reports (`text.TextDataset`) under `reporting/<file>`. Model
directories can be switched off (`mlflow_artifacts.model_directories: false`, as in conf/paper).

Tracking off: `DEPO_TRACKING=off kedro run …` runs without MLflow (see `tracking_enabled`).
"""
from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from depo.params import validate_parameters

TRACKING_SWITCH = "DEPO_TRACKING"
TRACKING_CHECK_TIMEOUT = 5.0  # seconds to wait for the tracking server to answer


def tracking_enabled() -> bool:
    """False when the environment variable DEPO_TRACKING is `off` (or `0`, `false`, `no`).

    Read once, when the project settings are imported (`depo.settings`): with tracking off the
    kedro-mlflow plugin's hooks are not registered at all, so no MLflow run is opened, nothing is
    logged (`depo.tracking` logs only into an active run) and no tracking server is contacted.
    """
    return os.environ.get(TRACKING_SWITCH, "on").strip().lower() not in {"off", "0", "false", "no"}


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking server does not answer."""


def check_tracking_uri(uri: str, timeout: float = TRACKING_CHECK_TIMEOUT) -> None:
    """Raise TrackingUnavailableError when an http(s) tracking URI does not answer within `timeout`.

    Any HTTP answer (even 401 or 404) counts as reachable; local stores (sqlite, file) need no server.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingUnavailableError(
            f"MLflow tracking server {uri} is unreachable ({reason}). Start it, point MLFLOW_TRACKING_URI (or "
            f"server.mlflow_tracking_uri in conf/<env>/mlflow.yml) at a reachable one, or run without tracking: "
            f"{TRACKING_SWITCH}=off kedro run"
        ) from None


class TrackingCheckHook:
    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        # The same URI kedro-mlflow will use: mlflow.yml's server block (which reads MLFLOW_TRACKING_URI).
        try:
            server = (context.config_loader["mlflow"] or {}).get("server") or {}
        except Exception:  # no mlflow.yml in this environment: kedro-mlflow's defaults
            server = {}
        uri = server.get("mlflow_tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI", "")
        check_tracking_uri(str(uri))


def parameter_blocks(pipeline) -> set[str]:
    """Top-level parameter names the pipeline's nodes read (`params:mcts` and `params:kto.variant` → mcts, kto)."""
    names = set()
    for dataset in pipeline.inputs():
        if dataset.startswith("params:"):
            names.add(dataset.removeprefix("params:").split(".")[0])
    return names


class ParameterValidationHook:
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        params = catalog.load("parameters")
        validate_parameters(params, parameter_blocks(pipeline))


class InputError(ValueError):
    """An input of the run is missing or unreadable."""


def check_catalog_input(name: str, dataset) -> None:
    """Raise InputError when catalog entry `name` cannot be loaded: no saved version, an unreadable
    parquet file, a model directory without config or weights, a wrong pretrained model path."""
    from kedro.io.core import AbstractVersionedDataset, get_filepath_str

    from depo.datasets.pretrained import SMOLLM2, PretrainedModelDataset
    from depo.policy.loading import check_model_source

    try:
        if isinstance(dataset, PretrainedModelDataset):
            if dataset._name_or_path != SMOLLM2:
                check_model_source(dataset._name_or_path)
            return
        if hasattr(dataset, "check"):  # ModelDirectoryDataset
            dataset.check()
            return
        if not isinstance(dataset, AbstractVersionedDataset) and not hasattr(dataset, "_filepath"):
            return  # in-memory, credentials, …: nothing on disk to check
        path = Path(get_filepath_str(dataset._get_load_path(), getattr(dataset, "_protocol", "file")))
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if getattr(dataset, "_file_format", None) == "parquet" or path.suffix == ".parquet":
            import pyarrow.parquet

            try:
                pyarrow.parquet.read_metadata(path)
            except Exception as error:
                raise ValueError(f"{path} is not a readable parquet file, truncated or corrupt ({error})") from None
    except Exception as error:
        raise InputError(
            f"catalog entry {name!r} ({type(dataset).__name__}): {error}. Nothing was run; fix or re-make the input "
            f"(e.g. run the pipeline that writes {name!r})."
        ) from None


def check_parameter_files(params: dict[str, Any], blocks: set[str]) -> None:
    """Parse the input files parameters point at (the same readers the nodes use), so a bad record
    fails now, naming the parameter, the file and the record, rather than after other nodes ran."""
    catalog = params.get("webshop_catalog") or {}
    if "webshop_catalog" in blocks and catalog.get("items_path"):
        from depo.envs.webshop import load_webshop_products

        try:
            load_webshop_products(catalog["items_path"], catalog.get("attributes_path"))
        except Exception as error:
            raise InputError(f"parameters webshop_catalog.items_path: {error}") from None
    math_data = params.get("math_data") or {}
    if "math_data" in blocks and math_data.get("source") == "jsonl":
        from depo.envs.math import load_jsonl

        for benchmark, path in (math_data.get("paths") or {}).items():
            try:
                load_jsonl(benchmark, path)
            except Exception as error:
                raise InputError(f"parameters math_data.paths.{benchmark}: {error}") from None


class InputCheckHook:
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        for name in sorted(pipeline.inputs()):
            if name == "parameters" or name.startswith("params:"):
                continue
            check_catalog_input(name, catalog.get(name))
        check_parameter_files(catalog.load("parameters"), parameter_blocks(pipeline))


class NodeTimingHook:
    """Wall time of every node, logged to MLflow as `time/<node>` (seconds) and kept in `timings`."""

    def __init__(self):
        self.timings: dict[str, float] = {}
        self._started: dict[str, float] = {}

    @hook_impl
    def before_node_run(self, node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node) -> None:
        from depo.tracking import log_metrics

        elapsed = time.perf_counter() - self._started.pop(node.name)
        self.timings[node.name] = elapsed
        log_metrics({f"time/{node.name}": elapsed})


MLFLOW_ARTIFACTS = "mlflow_artifacts"  # the parameters block of ArtifactLoggingHook


def model_directory_logging(params: dict[str, Any]) -> bool:
    """`mlflow_artifacts.model_directories` (default true): whether saved model directories become
    MLflow artifacts. Off for large models, whose weights would be copied into the artifact store."""
    block = params.get(MLFLOW_ARTIFACTS) or {}
    if not isinstance(block, dict) or set(block) - {"model_directories"}:
        raise ValueError(f"parameters {MLFLOW_ARTIFACTS}: expected {{model_directories: true|false}}, got {block!r}")
    value = block.get("model_directories", True)
    if not isinstance(value, bool):
        raise ValueError(f"parameters {MLFLOW_ARTIFACTS}.model_directories: must be true or false, got {value!r}")
    return value


def saved_path(dataset) -> Path | None:
    """The local file or directory the dataset's last save wrote (its version folder when versioned);
    None for a remote filesystem or a dataset without a path."""
    from kedro.io.core import AbstractVersionedDataset, get_filepath_str

    filepath = getattr(dataset, "_filepath", None)
    if filepath is None or getattr(dataset, "_protocol", "file") != "file":
        return None
    # The session fixes one save version for every entry, so this is where save() just wrote
    # (`_get_save_path` itself refuses a path that exists, i.e. after the save).
    version = dataset.resolve_save_version() if isinstance(dataset, AbstractVersionedDataset) else None
    return Path(get_filepath_str(dataset._get_versioned_path(version) if version else filepath, "file"))


def artifact_destination(dataset_name: str, dataset, path: Path, model_directories: bool = True) -> str | None:
    """The run's artifact folder for what `dataset` saved at `path`, or None when it is not logged.

    By dataset type, so every new plot, report or model entry in a catalog is logged without a list
    to keep in sync: model directories → `models/<entry>`, figures and reports → `reporting` (a
    folder of figures → `reporting/<folder>`).
    """
    from kedro_datasets.matplotlib import MatplotlibDataset
    from kedro_datasets.text import TextDataset

    from depo.datasets.model_directory import ModelDirectoryDataset

    if isinstance(dataset, ModelDirectoryDataset):
        return f"models/{dataset_name}" if model_directories else None
    if isinstance(dataset, (MatplotlibDataset, TextDataset)):
        return f"reporting/{path.name}" if path.is_dir() else "reporting"
    return None


class ArtifactLoggingHook:
    """Model directories, figures and reports saved during the run, logged to the active MLflow run
    (see `artifact_destination`). Without an active run nothing is logged."""

    def __init__(self):
        self._catalog = None
        self._model_directories = True

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        self._catalog = catalog
        self._model_directories = model_directory_logging(catalog.load("parameters"))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        from depo.tracking import log_artifact, run_active

        if self._catalog is None or not run_active():
            return
        dataset = self._catalog.get(dataset_name)
        path = saved_path(dataset)
        if path is None:
            return
        destination = artifact_destination(dataset_name, dataset, path, self._model_directories)
        if destination is not None:
            log_artifact(path, destination)
