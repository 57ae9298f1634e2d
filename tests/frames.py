"""Small hand-made `packets` frames for tests: rows as dicts, typed from the PACKETS schema."""

from __future__ import annotations

import polars as pl

from darkembed.schemas import PACKETS

#: The polars dtypes of the packets schema.
PACKETS_POLARS = dict(pl.from_arrow(PACKETS.empty_table()).schema)

#: The columns the activity filter, the corpus and the graph read.
ACTIVITY_COLUMNS = (
    "ts", "src_ip", "dst_ip", "proto", "dst_port", "tcp_flags", "ip_len", "ttl", "tcp_mss", "tcp_win", "tcp_tsval",
)  # fmt: skip


def packets_frame(rows: list[dict], columns: tuple[str, ...] = ACTIVITY_COLUMNS) -> pl.DataFrame:
    """A frame of `rows` with the PACKETS dtypes of `columns` (missing keys are null)."""
    return pl.DataFrame(rows, schema={c: PACKETS_POLARS[c] for c in columns})
