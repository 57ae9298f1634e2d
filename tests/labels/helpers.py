"""Hand-built packet tables conforming to `PACKETS`."""

from __future__ import annotations

import datetime as dt
import ipaddress

import polars as pl
import pyarrow as pa

from darkembed.schemas import PACKETS, TCP_ACK, TCP_RST, TCP_SYN, conform

SYN, SYNACK, RST = TCP_SYN, TCP_SYN | TCP_ACK, TCP_RST | TCP_ACK
DAY = dt.date(2023, 1, 1)


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def pkt(src: str, dst: str = "198.51.100.7", **fields) -> dict:
    """One packet row; TCP SYN to port 23 unless fields say otherwise."""
    row = {
        "ts": dt.datetime(2023, 1, 1, 12, tzinfo=dt.UTC),
        "src_ip": ip(src),
        "dst_ip": ip(dst) if dst is not None else None,
        "proto": 6,
        "ttl": 64,
        "ip_id": 1,
        "src_port": 40000,
        "dst_port": 23,
        "tcp_flags": SYN,
        "tcp_seq": 12345,
        "tcp_win": 5840,
    }
    row.update(fields)
    if row["proto"] != 6:  # not TCP: no ports or TCP fields unless the caller sets them
        for k in ("src_port", "dst_port", "tcp_flags", "tcp_seq", "tcp_win"):
            if k not in fields:
                row.pop(k)
    return row


def packets(rows: list[dict]) -> pl.DataFrame:
    """A polars frame with exactly the `PACKETS` schema."""
    table = conform(pa.Table.from_pylist(rows, schema=PACKETS), PACKETS, "test packets")
    return pl.from_arrow(table)
