"""The ingest flow: every configured network's captures of one day into `packets` partitions, logged to MLflow."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import ClassVar

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture

from darkembed.config import Config
from darkembed.stages.ingest import PacketsResult, discard_staging, plan_day
from flows.common import ConfigParam, Day, config_from, network_names, resolve_day, use_task_runner
from flows.log import flow_run, log_ingest
from tasks.ingest import commit_packets, ingest_source


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
