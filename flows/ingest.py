"""The ingest flow: every configured network's captures of one day into `packets` partitions, logged to MLflow."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import ClassVar

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from darkembed import tracking
from darkembed.config import Config
from darkembed.stages.ingest import PacketsResult, discard_staging, plan_day
from flows.common import config_from, flow_tags, network_names, progress, resolve_day
from tasks.ingest import commit_packets, ingest_source


def log_ingest_result(result: dict) -> None:
    """Metrics and the per-file report table of one network-day, in the active MLflow run."""
    reports = result["reports"]
    kept = sum(r["kept"] for r in reports)
    records = sum(r["records"] for r in reports)
    seconds = sum(r["seconds"] for r in reports)
    skipped: dict[str, int] = {}
    for r in reports:
        for k, v in r["skipped"].items():
            skipped[k] = skipped.get(k, 0) + v
    tracking.log_metrics(
        {
            "ingest.files": len(reports),
            "ingest.records": records,
            "ingest.packets": kept,
            "ingest.bytes": sum(r["bytes"] for r in reports),
            "ingest.seconds": seconds,
            "ingest.packets_per_s": kept / seconds if seconds else None,
            "ingest.files_with_errors": sum(1 for r in reports if r["error"]),
            **{f"ingest.skipped.{k}": v for k, v in skipped.items()},
        }
    )
    rows = [{**r, "skipped": ", ".join(f"{k}={v}" for k, v in r["skipped"].items())} for r in reports]
    for r in rows:
        r["bad"] = "; ".join(f"{reason}@{off}" for off, reason in r["bad"])
    import pandas as pd

    tracking.log_table(pd.DataFrame(rows), f"ingest/{result['network']}/{result['day']}/reports.json")


class _AllowFailure(allow_failure):
    """`allow_failure` that also reaches a Dask worker intact: Dask rebuilds namedtuples but turns any other tuple
    subclass (Prefect's annotations are tuples) into a plain tuple, which Prefect would then neither unwrap nor
    exempt from its upstream-failure check. The namedtuple members below are what Dask looks for."""

    _fields = ("value",)
    _field_defaults: ClassVar[dict] = {}

    def __getnewargs__(self) -> tuple:
        return (self[0],)

    @classmethod
    def _make(cls, values: Sequence) -> _AllowFailure:
        return cls(*values)

    def _asdict(self) -> dict:
        return {"value": self[0]}

    def _replace(self, **kwargs: object) -> _AllowFailure:
        return type(self)(kwargs.get("value", self[0]))


def submit_ingest(cfg: Config, network: str, day: dt.date) -> PrefectFuture[PacketsResult]:
    """Fan a network-day's files out as one task each and submit their commit, which runs once every file is done
    (a failed file discards the staging directory and fails the commit with its error); returns the commit future.
    """
    plan = plan_day(cfg, network, day)
    files = [
        ingest_source.submit(cfg, network, day, f, n, plan["staging"])
        for f, n in zip(plan["files"], plan["names"], strict=True)
    ]
    commit = commit_packets.submit(cfg, network, day, plan, [_AllowFailure(f) for f in files])
    # This process took the staging lease (plan_day); on a Dask cluster the commit runs in another process.
    commit.add_done_callback(lambda _: discard_staging(plan))
    return commit


@flow(name="ingest", flow_run_name="ingest[{day}]", task_runner=ThreadPoolTaskRunner(max_workers=4))
def ingest_flow(
    day: str | None = None, networks: Sequence[str] | None = None, config: Sequence[str] | None = None
) -> list[dict]:
    """Ingest one day (default: yesterday UTC) of the given networks (default: all configured)."""
    cfg = config_from(config)
    d = resolve_day(day)
    names = network_names(cfg, networks)
    with tracking.run(f"ingest[{d}]", config=cfg, tags=flow_tags("ingest", day=d, networks=names)):
        tracking.log_config(cfg)
        tracking.log_params(cfg.flat("ingest"))
        started = time.time()
        commits = [submit_ingest(cfg, n, d) for n in names]
        results = []
        for n, fut in zip(names, commits, strict=True):
            res = fut.result()
            name = f"ingest[{n}/{d}]"
            tags = {"stage": "ingest", "network": n, "day": d}
            with tracking.run(name, nested=True, started=started, tags=tags):
                log_ingest_result(res)
            packets = sum(r["kept"] for r in res["reports"])
            progress(name, {"files": len(res["reports"]), "packets": packets}, started)
            results.append(res)
    return results
