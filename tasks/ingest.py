"""Prefect tasks of the ingest stage (`darkembed.stages.ingest`): one task per source file (fanned out over threads
or a Dask cluster), then one commit per network-day that moves the staged part files into the `packets` partition
atomically."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.stages import ingest
from darkembed.stages.ingest import DayPlan, PacketsResult, SourceReport
from tasks.common import io_errors_only


@task(
    name="ingest-file",
    task_run_name="ingest[{network}/{day}/{name}]",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=io_errors_only,
    cache_policy=NO_CACHE,
    tags=["io"],
)
def ingest_source(
    config: Config, network: str, day: dt.date, src: str, name: str, staging: str
) -> SourceReport:
    """Parse one source file into `staging/name` (rows of the UTC day only); returns its report."""
    return ingest.ingest_source(config, network, day, src, name, staging)


@task(name="ingest-commit", task_run_name="commit[{network}/{day}]", cache_policy=NO_CACHE, tags=["io"])
def commit_packets(
    config: Config,
    network: str,
    day: dt.date,
    plan: DayPlan,
    reports: list[SourceReport | BaseException],
) -> PacketsResult:
    """Move the staged files of the day into its partition (replacing the previous version whole); a failed file
    (its exception, passed with `allow_failure`) discards them all and fails the commit with its error."""
    return ingest.commit_packets(config, network, day, plan, reports)
