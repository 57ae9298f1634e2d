"""The day's active traffic: protocol filter, per-host activity filter and top-port bucketing.

Reads: a day's `packets` partition (as a polars LazyFrame). Writes: nothing; `corpus.py` and `graph.py` build
their datasets from `active_packets`.

Defaults follow docs/method.md section 7.6: TCP only (TCP SYN only for honeypots), hosts with at least 5 packets in
the day (the authors' code keeps `> 5`: `min_packets_rule: gt`), the 2,500 most contacted destination services of
the day by packet count (ties by service key) and one `other` bucket for the rest.

A *service* is `proto << 16 | dst_port` (ICMP and other port-less protocols use port 0), so TCP/23 is 6 << 16 | 23;
`OTHER` (-1) is the bucket of the services outside the top list.
"""

from __future__ import annotations

import polars as pl

from darkembed.config import ActivityConfig

OTHER = -1
_PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp"}


def proto_name(proto: int) -> str:
    """`tcp`, `udp` or `icmp` for those IP protocol numbers, the number as text for the others."""
    return _PROTO_NAMES.get(proto, str(proto))


def active_packets(
    packets: pl.LazyFrame | pl.DataFrame, cfg: ActivityConfig, *, syn_only: bool = False
) -> pl.LazyFrame:
    """Packets of active hosts, with their bucketed destination service.

    Args:
        packets: rows of the `packets` schema (one day).
        cfg: filters.
        syn_only: keep only TCP SYNs (SYN set, ACK clear); the honeypot default.

    Returns:
        LazyFrame with columns `ts, src_ip, dst_ip, ip_len, ttl, tcp_mss, tcp_win, tcp_tsval, service` (Int32,
        `OTHER` for services outside the day's top list), rows of hosts passing the activity filter only.
    """
    lf = packets.lazy()
    lf = lf.filter(pl.col("proto").is_in(cfg.protocols))
    if syn_only:
        lf = lf.filter((pl.col("tcp_flags") & 0x12) == 0x02)
    lf = lf.with_columns(
        ((pl.col("proto").cast(pl.Int32) * 65536) + pl.col("dst_port").fill_null(0).cast(pl.Int32)).alias(
            "raw_service"
        )
    )
    counts = pl.len().over("src_ip")
    keep = counts >= cfg.min_packets if cfg.min_packets_rule == "ge" else counts > cfg.min_packets
    lf = lf.filter(keep)
    top = (
        lf.group_by("raw_service")
        .agg(pl.len().alias("n"))
        .sort(["n", "raw_service"], descending=[True, False])
        .head(cfg.top_ports)
        .select("raw_service", pl.lit(True).alias("is_top"))
    )
    lf = lf.join(top, on="raw_service", how="left", maintain_order="left").with_columns(
        pl.when(pl.col("is_top"))
        .then(pl.col("raw_service"))
        .otherwise(pl.lit(OTHER))
        .cast(pl.Int32)
        .alias("service")
    )
    return lf.select(
        "ts",
        "src_ip",
        "dst_ip",
        "ip_len",
        "ttl",
        "tcp_mss",
        "tcp_win",
        "tcp_tsval",
        "service",
    )
