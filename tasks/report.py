"""Prefect task of the per-network report: the day's activity-pattern figure."""

from __future__ import annotations

import datetime as dt

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.layout import Layout
from darkembed.report.activity import activity_figure, activity_frame
from darkembed.stages.read import packets_lazy
from darkembed.store import write_partition


@task(name="report-activity", task_run_name="activity[{network}/{day}]", cache_policy=NO_CACHE)
def report_activity(config: Config, network: str, day: dt.date) -> dict:
    """Activity patterns of the day (senders and ports against time, coloured by label) as a PNG."""
    lay = Layout(config.data_path)
    labels = pl.read_parquet(lay.labels(network, day) / "labels.parquet", columns=["src_ip", "label"])
    frame = activity_frame(packets_lazy(config, network, day), labels)
    part = lay.partition("reports", day, network)
    with write_partition(
        part,
        dataset="reports",
        config_hash=config.stage_hash("reports", network),
        inputs=[lay.packets(network, day), lay.labels(network, day)],
    ) as w:
        activity_figure(frame, w.path("activity.png"), f"{network} {day}: activity patterns")
    return {
        "network": network,
        "day": day.isoformat(),
        "figure": str(part / "activity.png"),
        "dots": frame.height,
    }
