"""Prefect task of the ingest stage: one network's captures of one day into its `packets` partition."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.ingest import expand_inputs
from darkembed.ingest import ingest_day as _ingest_day
from darkembed.layout import Layout
from tasks.common import io_errors_only


@task(
    name="ingest",
    task_run_name="ingest[{network}/{day}]",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=io_errors_only,
    cache_policy=NO_CACHE,
    tags=["io"],
)
def ingest_day(config: Config, network: str, day: dt.date) -> dict:
    """Ingest the network's input files of `day`; returns the partition path and the per-file reports."""
    net = config.network(network)
    patterns = net.inputs_for(day)
    files = expand_inputs(patterns["captures"] + patterns["legacy_traces"])
    partition = Layout(config.data_path).packets(network, day)
    if not files:
        raise FileNotFoundError(
            f"ingest[{network}/{day}]: no input files match {patterns['captures'] + patterns['legacy_traces']}"
        )
    reports = _ingest_day(
        partition,
        files,
        day,
        workers=config.ingest.workers,
        keep_outside_day=config.ingest.keep_outside_day,
        max_bad=config.ingest.max_bad_offsets,
        config_hash=config.hash(),
    )
    return {
        "network": network,
        "day": day.isoformat(),
        "partition": str(partition),
        "reports": [r.as_row() | {"bad": r.bad[:20]} for r in reports],
    }
