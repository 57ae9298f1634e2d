"""The per-network report stage: a network-day's activity-pattern figure.

Reads: the day's `packets` and `labels` partitions. Writes: `reports/network=<n>/day=<d>/activity.png`.
"""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

import polars as pl

from darkembed.config import Config
from darkembed.layout import Layout
from darkembed.report.activity import activity_figure, activity_frame
from darkembed.stages.read import LABELS_FILE, packets_lazy
from darkembed.store import write_partition


class ActivityResult(TypedDict):
    """The activity figure of a network-day and the dots it draws."""

    network: str
    day: str
    figure: str
    dots: int


def report_activity(config: Config, network: str, day: dt.date) -> ActivityResult:
    """Activity patterns of the day (senders and ports against time, coloured by label) as a PNG."""
    lay = Layout(config.data_path)
    labels = pl.read_parquet(lay.labels(network, day) / LABELS_FILE, columns=["src_ip", "label"])
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
