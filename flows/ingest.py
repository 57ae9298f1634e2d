"""The ingest flow: every configured network's captures of one day into `packets` partitions, logged to MLflow."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prefect import flow

from flows.common import ConfigParam, Day, config_from, network_names, resolve_day, use_task_runner
from flows.log import flow_run, log_ingest
from tasks.ingest import commit_packets, discard_staging, ingest_source, plan_day


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


@flow(name="ingest", flow_run_name="ingest[{day}]")
def ingest_flow(
    day: Day | None = None, networks: Sequence[str] | None = None, config: ConfigParam = None
) -> list[dict]:
    """Ingest one day (default: yesterday UTC) of the given networks (default: all configured)."""
    cfg = config_from(config)
    d = resolve_day(day)
    names = network_names(cfg, networks)
    ingest_params = cfg.flat("ingest")
    with (
        flow_run("ingest", f"ingest[{d}]", cfg, params=ingest_params, day=d, networks=names),
        use_task_runner(cfg),
    ):
        started = time.time()
        commits = [submit_ingest(cfg, n, d) for n in names]
        results = []
        for fut in commits:
            res = fut.result()
            log_ingest(res, started)
            results.append(res)
    return results
