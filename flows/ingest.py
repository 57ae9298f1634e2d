"""The ingest flow: every configured network's captures of one day into `packets` partitions, logged to MLflow."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from darkembed import tracking
from flows.common import config_from, flow_tags, network_names, progress, resolve_day
from tasks.ingest import commit_packets, discard_staging, ingest_source, plan_day


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


def submit_ingest(cfg, network: str, day):
    """Fan a network-day's files out as one task each, then commit them; returns the commit future."""
    plan = plan_day(cfg, network, day)
    futures = [
        ingest_source.submit(cfg, network, day, f, n, plan["staging"])
        for f, n in zip(plan["files"], plan["names"], strict=True)
    ]
    return _Commit(cfg, network, day, plan, futures)


class _Commit:
    """Waits for a day's file tasks, then commits (or discards the staging directory if any failed)."""

    def __init__(self, cfg, network, day, plan, futures):
        self.cfg, self.network, self.day, self.plan, self.futures = cfg, network, day, plan, futures
        self._result = None

    def result(self) -> dict:
        if self._result is None:
            try:
                reports = [f.result() for f in self.futures]
            except BaseException:
                discard_staging(self.plan)
                raise
            self._result = commit_packets(self.cfg, self.network, self.day, self.plan, reports)
        return self._result


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
