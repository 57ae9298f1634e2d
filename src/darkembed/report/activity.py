"""Activity-pattern figures of a network-day (docs/method.md 5.9): who sends when, and to which ports.

Reads: the day's `packets` and `labels` partitions. Writes: a PNG (returned path).

One dot per first packet of a (source, destination address, destination port) per hour, x = time of day,
y = rank of the source (hosts ordered by label, then by first appearance), coloured by label; a second panel
plots the destination-port rank against time. Coordinated scanners show as bands, Mirai-like bots as a dense
cloud on a few ports, backscatter as isolated specks.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl


def activity_frame(packets: pl.LazyFrame, labels: pl.DataFrame, max_hosts: int = 3000) -> pl.DataFrame:
    """First packet per (src, dst, port, hour) with the source's label, host rank and port rank.

    Args:
        packets: the day's packets (needs `ts`, `src_ip`, `dst_ip`, `dst_port`).
        labels: `src_ip`, `label` of the day.
        max_hosts: keep the most active hosts only (readability), by packets.
    """
    first = (
        packets.select("ts", "src_ip", "dst_ip", "dst_port")
        .with_columns(pl.col("ts").dt.truncate("1h").alias("hour"))
        .group_by(["src_ip", "dst_ip", "dst_port", "hour"])
        .agg(pl.col("ts").min())
        .collect()
    )
    top = first.group_by("src_ip").len().sort(["len", "src_ip"], descending=[True, False]).head(max_hosts)
    df = first.join(top.select("src_ip"), on="src_ip").join(
        labels.select("src_ip", "label"), on="src_ip", how="left"
    )
    df = df.with_columns(pl.col("label").fill_null("unknown"))
    hosts = (
        df.group_by("src_ip", "label")
        .agg(pl.col("ts").min().alias("first"))
        .sort(["label", "first", "src_ip"])
        .with_row_index("host_rank")
    )
    ports = (
        df.group_by("dst_port")
        .len()
        .sort(["len", "dst_port"], descending=[True, False])
        .with_row_index("port_rank")
    )
    return df.join(hosts.select("src_ip", "host_rank"), on="src_ip").join(
        ports.select("dst_port", "port_rank"), on="dst_port", how="left"
    )


def activity_figure(frame: pl.DataFrame, path: str | Path, title: str) -> Path:
    """Plot `activity_frame` output to a PNG with two panels (host rank and port rank against time)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from darkembed.report.figures import save_figure

    fig = Figure(figsize=(13, 5.5))
    axes = fig.subplots(1, 2, sharex=True)
    # unknown first, so labelled hosts are drawn on top of it
    labels = sorted(frame["label"].unique().to_list(), key=lambda s: (s != "unknown", s))
    cmap = colormaps["tab20"]
    for i, lab in enumerate(labels):
        sub = frame.filter(pl.col("label") == lab)
        hours = sub["ts"].dt.hour().cast(pl.Float64) + sub["ts"].dt.minute().cast(pl.Float64) / 60
        color = "lightgrey" if lab == "unknown" else cmap(i % 20)
        kw = {"s": 1.5, "color": color, "rasterized": True}
        axes[0].scatter(
            hours.to_numpy(), sub["host_rank"].to_numpy(), label=f"{lab} ({sub['src_ip'].n_unique()})", **kw
        )
        axes[1].scatter(hours.to_numpy(), sub["port_rank"].to_numpy(), **kw)
    axes[0].set(xlabel="hour of day (UTC)", ylabel="host rank (by label, then first seen)", title="senders")
    axes[1].set(
        xlabel="hour of day (UTC)", ylabel="destination port rank (by flows)", title="ports", yscale="symlog"
    )
    # the legend to the right of both panels (over the ports panel it hid the busiest ports)
    fig.legend(*axes[0].get_legend_handles_labels(), markerscale=6, fontsize=7, loc="center right")
    fig.subplots_adjust(right=0.84, wspace=0.25)
    fig.suptitle(title)
    return save_figure(fig, path)
