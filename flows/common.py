"""Helpers shared by the flows: configuration, the day to process, MLflow run tags and stage logging."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from darkembed import tracking
from darkembed.config import Config, load_config
from darkembed.layout import parse_day
from darkembed.lineage import partition_stale

log = logging.getLogger(__name__)


def config_from(paths: Sequence[str] | None) -> Config:
    """The embedded default overlaid with the given files (empty entries, e.g. an unset template, ignored)."""
    return load_config(*[p for p in (paths or []) if p])


def task_runner(cfg: Config):
    """The task runner the configuration asks for: a Dask cluster by address, or local threads."""
    if cfg.orchestration.dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=cfg.orchestration.dask_address)
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=cfg.orchestration.max_workers)


def resolve_day(day: str | dt.date | None) -> dt.date:
    """The day to process: as given, or yesterday (UTC) when None (the nightly default)."""
    if day is None:
        return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    if isinstance(day, dt.date):
        return day
    return parse_day(day)


def network_names(cfg: Config, networks: Sequence[str] | None) -> list[str]:
    """The networks to run (all configured ones by default), validated."""
    names = list(networks or [n.name for n in cfg.networks])
    for n in names:
        cfg.network(n)
    return names


def stage_current(cfg: Config, stage: str, network: str, day: dt.date, method: str | None = None) -> bool:
    """Whether the stage's partition of the network-day is complete and current (`lineage.partition_stale`: made
    with the configuration sections it depends on, from unchanged inputs, on the configured chain); `method` names
    the embedding method of `embeddings`, `models` and `results`."""
    return partition_stale(cfg, stage, network, day, method) is None


def flow_tags(flow: str, **extra: object) -> dict[str, str]:
    """MLflow tags of a flow's parent run: flow name and run id (when run by Prefect), plus `extra`."""
    tags = {"flow": flow}
    try:
        from prefect.runtime import flow_run

        if flow_run.id:
            tags["flow_run_id"] = str(flow_run.id)
            tags["flow_run_name"] = str(flow_run.name)
    except Exception:  # outside a flow run
        pass
    tags.update(
        {k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v) for k, v in extra.items()}
    )
    return tags


def numeric_metrics(prefix: str, result: Mapping[str, Any]) -> dict[str, float]:
    """Numbers of a stage result as `prefix.key` metrics (one level of nested dicts flattened)."""
    out: dict[str, float] = {}
    for k, v in result.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float):
            out[f"{prefix}.{k}"] = float(v)
        elif isinstance(v, Mapping):
            for k2, v2 in v.items():
                if isinstance(v2, int | float) and not isinstance(v2, bool):
                    out[f"{prefix}.{k}.{k2}"] = float(v2)
    return out


#: Result fields worth a word in a stage's progress line, in this order.
_HEADLINE = ("packets", "hosts", "active_hosts", "labelled", "sentences", "edges", "rows", "anchors", "files")


def progress(name: str, result: Mapping[str, Any], started: float | None = None, detail: str = "") -> None:
    """One progress line for a finished stage of one partition: its name, how long it took (from `started`,
    `time.time()` when its work began), its headline counts and `detail`."""
    words = [f"{k} {result[k]:,}" for k in _HEADLINE if isinstance(result.get(k), int)][:3]
    if detail:
        words.append(detail)
    took = f" in {time.time() - started:.1f} s" if started is not None else ""
    log.info("%s done%s%s", name, took, f": {', '.join(words)}" if words else "")


def log_stage(stage: str, result: Mapping[str, Any], started: float | None = None, **tags: Any) -> None:
    """One nested MLflow run for a stage result of one network-day (metrics + the result as JSON), and a progress
    line. `started` (`time.time()` when the stage's work began) makes the run's duration the work's."""
    name = f"{stage}[{result.get('network', '')}/{result.get('day', '')}]"
    with tracking.run(
        name,
        nested=True,
        started=started,
        tags={
            "stage": stage,
            **{k: v for k, v in result.items() if k in ("network", "day", "method")},
            **tags,
        },
    ):
        tracking.log_metrics(numeric_metrics(stage, result))
        tracking.log_dict(dict(result), f"{stage}/result.json")
        if "figure" in result:
            tracking.log_artifact(result["figure"], "figures")
    method = f"{result['method']}/" if result.get("method") else ""
    progress(f"{stage}[{method}{result.get('network', '')}/{result.get('day', '')}]", result, started)
