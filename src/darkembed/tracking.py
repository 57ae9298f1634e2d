"""MLflow tracking: the only module of the library that talks to MLflow.

One parent run per flow run, nested runs per stage. Runs record params (the flattened stage config), metrics
(counts, timings, evaluation figures) and artifacts (resolved config, report tables, figures). Large tables stay in
the data root; runs record their paths.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from darkembed.config import Config, TrackingConfig

log = logging.getLogger(__name__)


def _mlflow():
    import mlflow  # heavy import (~1 s): only when tracking is used

    return mlflow


def _local_sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :])
    return None


@contextmanager
def _store_lock(db: Path | None) -> Iterator[None]:
    """An exclusive lock beside a local SQLite store while it is created or migrated: MLflow creates the tables of
    a fresh store on first use, and two processes doing so at once fail (`table ... already exists`)."""
    if db is None:
        yield
        return
    import fcntl

    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def setup(cfg: TrackingConfig) -> str:
    """Point MLflow at `cfg.uri` and make sure the experiment exists; returns the experiment id.

    A local SQLite store gets its directory created and its artifacts under `cfg.artifacts`; its first
    initialisation is serialised across processes by a lock file beside it. Runs of this machine left `RUNNING` by
    a process that no longer exists (killed with SIGKILL, power loss) are marked `FAILED` (`mark_interrupted`).
    """
    mlflow = _mlflow()
    db = _local_sqlite_path(cfg.uri)
    with _store_lock(db):
        mlflow.set_tracking_uri(cfg.uri)
        exp = mlflow.get_experiment_by_name(cfg.experiment)
        if exp is None:
            location = None
            if db is not None or cfg.uri.startswith("file:"):
                art = Path(cfg.artifacts).resolve()
                art.mkdir(parents=True, exist_ok=True)
                location = art.as_uri()
            exp_id = _create_experiment(cfg.experiment, location)
        else:
            exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    mark_interrupted(exp_id)
    return exp_id


def _create_experiment(name: str, location: str | None) -> str:
    """Create the experiment (or take the one another process created meanwhile on a server store)."""
    from mlflow.exceptions import MlflowException

    mlflow = _mlflow()
    try:
        # A classic ML experiment: the UI shows its training runs, metrics and artifacts (not the GenAI views).
        return mlflow.create_experiment(
            name, artifact_location=location, tags={"mlflow.experimentKind": "custom_model_development"}
        )
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
        return mlflow.get_experiment_by_name(name).experiment_id


#: Tags naming the process that runs a run, so that a later start can tell a live run from a killed one.
HOST_TAG, PID_TAG, PID_START_TAG = "darkembed.host", "darkembed.pid", "darkembed.pid_start"


def _process_start(pid: int) -> str | None:
    """The start time of a live process of this machine (clock ticks since boot; None when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _process_tags() -> dict[str, str]:
    import os
    import socket

    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: str(_process_start(pid) or "")}


def mark_interrupted(experiment_id: str) -> list[str]:
    """Mark `FAILED` the runs of this machine that are still `RUNNING` though their process is gone; returns
    their ids. Runs of other machines are left alone (their processes cannot be checked from here), and so is
    everything on a system without /proc."""
    import os
    import socket

    from mlflow import MlflowClient

    if (
        _process_start(os.getpid()) is None
    ):  # no /proc (not Linux): a live process cannot be told from a dead one
        return []
    client = MlflowClient()
    host = socket.gethostname()
    stale = []
    flt = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    for r in client.search_runs([experiment_id], filter_string=flt, max_results=1000):
        tags = r.data.tags
        try:
            pid = int(tags.get(PID_TAG, ""))
        except ValueError:
            continue
        start = _process_start(pid)
        if start is not None and start == tags.get(PID_START_TAG):
            continue  # the process that runs it is alive (the same pid and start time)
        client.set_tag(
            r.info.run_id, "darkembed.interrupted", "the process running it ended without closing it"
        )
        client.set_terminated(r.info.run_id, status="FAILED")
        stale.append(r.info.run_id)
    if stale:
        log.warning("marked %d run(s) FAILED whose process was killed: %s", len(stale), ", ".join(stale))
    return stale


@contextmanager
def run(
    name: str,
    *,
    config: Config | None = None,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    nested: bool = False,
    started: float | None = None,
) -> Iterator[Any]:
    """Open an MLflow run (nested under the active one when `nested`, or when one is active), tagged, with params.

    The tags always include the config hash and the code version when a config is given, and the process that
    runs it (`mark_interrupted` uses them).

    Args:
        started: when the work this run records began (seconds since the epoch, `time.time()`), for a run opened
            after the work to log its results: its start time is set to it, so that its duration is the work's.
    """
    mlflow = _mlflow()
    if config is not None and not nested:
        if mlflow.active_run() is not None:
            nested = (
                True  # a flow run inside another's run (the experiments flow's backfill) becomes its child
            )
        else:
            setup(config.tracking)
    all_tags = {k: str(v) for k, v in (tags or {}).items() if v is not None} | _process_tags()
    if config is not None:
        from darkembed.store import code_version

        all_tags.setdefault("config_hash", config.hash())
        sha = code_version()["git_sha"]
        if sha:
            all_tags.setdefault("git_sha", sha)
    parent = mlflow.active_run()
    if started is not None and parent is not None:
        from mlflow import MlflowClient

        if nested:
            all_tags["mlflow.parentRunId"] = parent.info.run_id
        created = MlflowClient().create_run(
            parent.info.experiment_id, start_time=int(started * 1000), tags=all_tags, run_name=name
        )
        context = mlflow.start_run(run_id=created.info.run_id, nested=True)
    else:
        context = mlflow.start_run(run_name=name, nested=nested, tags=all_tags)
    with context as active:
        if params:
            log_params(params)
        yield active


def log_params(params: Mapping[str, Any]) -> None:
    """Log params, stringified and cut to MLflow's value limit."""
    mlflow = _mlflow()
    clean = {
        _metric_key(k): (json.dumps(v) if isinstance(v, list | dict) else str(v))[:6000]
        for k, v in params.items()
    }
    items = list(clean.items())
    for i in range(0, len(items), 100):
        mlflow.log_params(dict(items[i : i + 100]))


def log_metrics(metrics: Mapping[str, float | int | None], step: int | None = None) -> None:
    """Log numeric metrics, skipping None and NaN (MLflow refuses neither but plots them badly)."""
    mlflow = _mlflow()
    clean = {}
    for k, v in metrics.items():
        if v is None:
            continue
        fv = float(v)
        if math.isnan(fv):
            continue
        clean[_metric_key(k)] = fv
    if clean:
        mlflow.log_metrics(clean, step=step)


def _metric_key(key: str) -> str:
    # MLflow keys allow alphanumerics, _ - . space / : only.
    return "".join(c if (c.isalnum() or c in "_-. /:") else "_" for c in key)


def log_dict(obj: Any, artifact_file: str) -> None:
    _mlflow().log_dict(obj, artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    _mlflow().log_text(text, artifact_file)


def log_table(table: Any, artifact_file: str) -> None:
    """Log a table (polars or pandas DataFrame, or pyarrow Table) as a JSON table artifact browsable in the UI."""
    mlflow = _mlflow()
    if hasattr(table, "to_pandas"):
        table = table.to_pandas()
    mlflow.log_table(table, artifact_file)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    _mlflow().log_artifact(str(path), artifact_path)


def log_config(config: Config) -> None:
    """The resolved configuration as an artifact (`config/resolved.yaml`) and as params, flattened to dotted keys
    (`w2v.size`, `networks.0.name`, ...), so that runs can be compared and searched by any setting."""
    import yaml

    log_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), "config/resolved.yaml")
    log_params(config.flat())


def register_bundle(
    local_dir: str | Path, artifact_path: str, name: str, tags: Mapping[str, Any] | None = None
) -> str:
    """Log an exchange bundle (safetensors + manifest) in the active run and register it as a new version of the
    model `name`; returns the version. A customer fetches it with `fetch_bundle(name, version)` and loads it with
    `darkembed.adapt.exchange` (tensors only: nothing is unpickled or executed)."""
    mlflow = _mlflow()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.log_artifacts(str(local_dir), artifact_path)
    run = mlflow.active_run()
    client = MlflowClient()
    try:
        client.create_registered_model(name, description="darkembed exchange bundle (safetensors + manifest)")
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    mv = client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/{artifact_path}",
        run_id=run.info.run_id,
        tags={k: str(v) for k, v in (tags or {}).items()},
    )
    return str(mv.version)


def fetch_bundle(name: str, version: str | int | None = None, dst: str | Path | None = None) -> Path:
    """Download a registered bundle (latest version when None) and return its local directory."""
    mlflow = _mlflow()
    from mlflow import MlflowClient

    if version is None:
        versions = MlflowClient().search_model_versions(f"name='{name}'")
        if not versions:
            raise LookupError(f"no registered model {name!r}")
        version = max(int(v.version) for v in versions)
    out = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(dst) if dst else None)
    return Path(out)


def latest_run(cfg: TrackingConfig, tags: Mapping[str, str]) -> Any | None:
    """The most recent finished run of `cfg.experiment` carrying every tag in `tags` (None if there is none)."""
    setup(cfg)
    from mlflow import MlflowClient

    exp = _mlflow().get_experiment_by_name(cfg.experiment)
    flt = " and ".join([f"tags.`{k}` = '{v}'" for k, v in tags.items()] + ["attributes.status = 'FINISHED'"])
    runs = MlflowClient().search_runs([exp.experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"],
                                      max_results=1)  # fmt: skip
    return runs[0] if runs else None


def download_run_artifacts(run_id: str, path: str, dst: str | Path) -> Path:
    """Download the artifact folder `path` of a run into `dst` (created) and return the local folder."""
    Path(dst).mkdir(parents=True, exist_ok=True)
    return Path(_mlflow().artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst)))
