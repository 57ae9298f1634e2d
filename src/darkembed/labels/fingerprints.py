"""Packet fingerprints per host and day (docs/data-formats.md section 5, docs/method.md section 1.4).

Reads one day of the `packets` dataset (schema `PACKETS`, as a polars LazyFrame or DataFrame); returns one row
per source host with its packet counts per fingerprint and the fingerprint flags after the per-host thresholds
of `FingerprintConfig`. Everything is one lazy polars aggregation; no Python loop per packet or host.

Fingerprints (a "SYN" is a TCP segment with SYN set and ACK clear; other flags such as ECE/CWR may be set):
    * `mirai`: SYN whose 32-bit sequence number equals the destination address (`tcp_seq == dst_ip`).
    * `zmap`: SYN with IP ID 54321 and (by default) window 65535: ZMap before v4.1.0.
    * `masscan`: SYN with `ip_id == (dst_ip ^ dst_port ^ tcp_seq) & 0xffff` and (by default) window 1024.
    * `backscatter`: the host sent only SYN-ACK, RST or ICMP destination-unreachable packets, i.e. it answers
      spoofed traffic and is a victim, not a scanner. It is recorded as a source; it labels a host only if the
      precedence names it (not by default), since a class of flood victims would pollute scanner classes.
Packets with a null `dst_ip` (DarkVec legacy logs) never match `mirai` or `masscan`.
"""

from __future__ import annotations

import polars as pl

from darkembed.config import FingerprintConfig
from darkembed.schemas import TCP_ACK, TCP_RST, TCP_SYN

#: ICMP type "destination unreachable".
ICMP_UNREACHABLE = 3
#: IP ID that ZMap before v4.1.0 puts in every probe.
ZMAP_IP_ID = 54321

#: Columns of the frame `host_fingerprints` returns, with their polars types.
FINGERPRINT_COLUMNS: dict[str, pl.DataType] = {
    "src_ip": pl.UInt32(),
    "packets": pl.Int64(),
    "mirai_packets": pl.Int64(),
    "zmap_packets": pl.Int64(),
    "masscan_packets": pl.Int64(),
    "backscatter_packets": pl.Int64(),
    "mirai": pl.Boolean(),
    "zmap": pl.Boolean(),
    "masscan": pl.Boolean(),
    "backscatter": pl.Boolean(),
}


def _count(cond: pl.Expr) -> pl.Expr:
    return cond.fill_null(False).cast(pl.Int64).sum()


def host_fingerprints(
    packets: pl.LazyFrame | pl.DataFrame, cfg: FingerprintConfig | None = None
) -> pl.LazyFrame:
    """Per-host fingerprint counts and flags of one day's packets.

    Args:
        packets: rows of the `PACKETS` schema (at least `src_ip, dst_ip, proto, ip_id, dst_port, tcp_flags,
            tcp_seq, tcp_win, icmp_type`), one day of one network.
        cfg: thresholds; defaults to `FingerprintConfig()`.

    Returns:
        A LazyFrame with one row per `src_ip` and the columns of `FINGERPRINT_COLUMNS`: `packets` (all
        packets of the host), `<fp>_packets` (packets matching each fingerprint) and boolean `<fp>` flags,
        true when the count reaches the configured minimum. Sorted by `src_ip`.
    """
    cfg = cfg or FingerprintConfig()
    lf = packets.lazy() if isinstance(packets, pl.DataFrame) else packets
    flags = pl.col("tcp_flags").cast(pl.UInt32)
    tcp = pl.col("proto") == 6
    syn = tcp & ((flags & TCP_SYN) != 0) & ((flags & TCP_ACK) == 0)
    seq = pl.col("tcp_seq").cast(pl.UInt32)
    dst = pl.col("dst_ip").cast(pl.UInt32)
    win = pl.col("tcp_win").cast(pl.Int64)
    ip_id = pl.col("ip_id").cast(pl.UInt32)

    mirai = syn & (seq == dst)
    zmap = syn & (ip_id == ZMAP_IP_ID)
    if cfg.zmap_window is not None:
        zmap = zmap & (win == cfg.zmap_window)
    masscan = syn & (ip_id == ((dst ^ pl.col("dst_port").cast(pl.UInt32) ^ seq) & 0xFFFF))
    if cfg.masscan_window is not None:
        masscan = masscan & (win == cfg.masscan_window)
    synack = tcp & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
    rst = tcp & ((flags & TCP_RST) != 0)
    unreachable = (pl.col("proto") == 1) & (pl.col("icmp_type") == ICMP_UNREACHABLE)
    backscatter = synack | rst | unreachable

    counts = lf.group_by("src_ip").agg(
        pl.len().cast(pl.Int64).alias("packets"),
        _count(mirai).alias("mirai_packets"),
        _count(zmap).alias("zmap_packets"),
        _count(masscan).alias("masscan_packets"),
        _count(backscatter).alias("backscatter_packets"),
    )
    return (
        counts.with_columns(
            pl.col("src_ip").cast(pl.UInt32),
            (pl.col("mirai_packets") >= cfg.mirai_min_packets).alias("mirai"),
            (pl.col("zmap_packets") >= cfg.zmap_min_packets).alias("zmap"),
            (pl.col("masscan_packets") >= cfg.masscan_min_packets).alias("masscan"),
            (
                (pl.col("backscatter_packets") == pl.col("packets"))
                & (pl.col("packets") >= cfg.backscatter_min_packets)
            ).alias("backscatter"),
        )
        .select(list(FINGERPRINT_COLUMNS))
        .sort("src_ip")
    )
