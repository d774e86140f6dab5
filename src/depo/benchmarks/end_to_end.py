"""Wall time of a whole `kedro run`, by pipeline, from what its MLflow run recorded.

Every run logs `time/<node>` per node (`depo.hooks.NodeTimingHook`); the newest finished run of the
experiment that also logged evaluation metrics (`eval/...`) is the newest run that went all the way
through. Nothing is re-run here, and with no such run the figure is missing, never estimated.
"""
from __future__ import annotations

from collections.abc import Mapping

from depo.benchmarks.measurement import Measurement

TIME_PREFIX = "time/"
EVALUATION_PREFIX = "eval/"


def newest_complete_run(client, experiment_name: str):
    """The newest FINISHED run of `experiment_name` with an `eval/` metric, or None (`client`: an MlflowClient)."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    page_token = None
    while True:
        page = client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time DESC"], max_results=100, page_token=page_token)
        for run in page:
            if any(key.startswith(EVALUATION_PREFIX) for key in run.data.metrics):
                return run
        if not page.token:
            return None
        page_token = page.token


def end_to_end(pipeline_of_node: Mapping[str, str], tracking_uri: str, experiment_name: str) -> list[Measurement]:
    """The run's wall time (`end_to_end`) and the summed node times of each pipeline (`end_to_end/<pipeline>`).

    `pipeline_of_node` maps node names to their pipeline; nodes it does not know (renamed since the
    run) are summed under `other`.
    """
    from mlflow import MlflowClient

    run = newest_complete_run(MlflowClient(tracking_uri=tracking_uri), experiment_name)
    source = {"experiment": experiment_name, "tracking_uri": tracking_uri}
    if run is None:
        return [Measurement("end_to_end", "s", (), details={
            **source, "note": "no finished run with evaluation metrics: run kedro run first"})]
    node_seconds = {k.removeprefix(TIME_PREFIX): v for k, v in run.data.metrics.items() if k.startswith(TIME_PREFIX)}
    by_pipeline: dict[str, dict[str, float]] = {}
    for node, seconds in node_seconds.items():
        by_pipeline.setdefault(pipeline_of_node.get(node, "other"), {})[node] = seconds
    wall_seconds = (run.info.end_time - run.info.start_time) / 1000
    rows = [Measurement("end_to_end", "s", (wall_seconds,), details={
        **source, "run_id": run.info.run_id, "run_name": run.info.run_name,
        "kedro_command": run.data.tags.get("kedro_command"), "node_seconds_total": sum(node_seconds.values()),
        "pipeline_seconds": {name: sum(nodes.values()) for name, nodes in by_pipeline.items()},
    })]
    ordered = [p for p in dict.fromkeys(pipeline_of_node.values()) if p in by_pipeline]
    ordered += ["other"] if "other" in by_pipeline else []
    for name in ordered:
        rows.append(Measurement(f"end_to_end/{name}", "s", (sum(by_pipeline[name].values()),),
                                details={"run_id": run.info.run_id, "node_seconds": by_pipeline[name]}))
    return rows
