"""Every table schema of darkembed, and the validation each writer applies.

IPv4 addresses are `uint32` everywhere inside; dotted strings only at the edges (reports, CSV export).
"""

from __future__ import annotations

import pyarrow as pa


class SchemaError(ValueError):
    """A table does not match the schema of the dataset it is written to."""


#: One row per IPv4 packet received. Null where a field does not apply (ports of ICMP or of a non-first
#: fragment, TCP options the packet does not carry).
PACKETS = pa.schema(
    [
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=True),  # null only for pcapng simple blocks
        pa.field("src_ip", pa.uint32(), nullable=False),
        pa.field("dst_ip", pa.uint32(), nullable=True),  # null only for DarkVec legacy logs
        pa.field("proto", pa.uint8(), nullable=False),
        pa.field("ip_len", pa.uint16(), nullable=True),
        pa.field("ttl", pa.uint8(), nullable=True),
        pa.field("ip_id", pa.uint16(), nullable=True),
        pa.field("frag_off", pa.uint16(), nullable=True),  # fragment offset in 8-byte units
        pa.field("ip_flags", pa.uint8(), nullable=True),  # bit 1 = DF, bit 0 = MF
        pa.field("src_port", pa.uint16(), nullable=True),
        pa.field("dst_port", pa.uint16(), nullable=True),
        pa.field("tcp_flags", pa.uint16(), nullable=True),  # 9 bits: NS CWR ECE URG ACK PSH RST SYN FIN
        pa.field("tcp_seq", pa.uint32(), nullable=True),
        pa.field("tcp_ack", pa.uint32(), nullable=True),
        pa.field("tcp_win", pa.uint16(), nullable=True),
        pa.field("tcp_mss", pa.uint16(), nullable=True),
        pa.field("tcp_wscale", pa.uint8(), nullable=True),
        pa.field("tcp_sackp", pa.bool_(), nullable=True),
        pa.field("tcp_tsval", pa.uint32(), nullable=True),
        pa.field("icmp_type", pa.uint8(), nullable=True),
        pa.field("icmp_code", pa.uint8(), nullable=True),
    ]
)

#: TCP flag bits as stored in `packets.tcp_flags`.
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR, TCP_NS = (1 << i for i in range(9))

#: One row per source host of a network's day (`labels/network=<net>/day=<d>/labels.parquet`), sorted by
#: `src_ip`: the label chosen by precedence, its source, and the evidence an analyst needs to see why. Written by
#: `darkembed.labels.label_day`; source strings are documented in `darkembed.labels.assign`.
LABELS = pa.schema(
    [
        pa.field("src_ip", pa.uint32(), nullable=False),
        pa.field("label", pa.string(), nullable=False),  # a scanner class, mirai, exploiter, ... or unknown
        pa.field("source", pa.string(), nullable=False),  # the source of `label`, e.g. scanner:<list>; none
        pa.field("sources", pa.list_(pa.string()), nullable=False),  # every source that matched, fixed order
        pa.field("scanner_class", pa.string(), nullable=True),  # class of the matched scanner prefix
        pa.field("org", pa.string(), nullable=True),  # organisation as written in the scanner list
        pa.field("scanner_list", pa.string(), nullable=True),  # name of the list of the matched prefix
        pa.field("prefix", pa.uint32(), nullable=True),  # matched prefix: network address ...
        pa.field("prefix_len", pa.uint8(), nullable=True),  # ... and length (longest match)
        pa.field("packets", pa.int64(), nullable=False),  # packets of the host that day
        pa.field("mirai_packets", pa.int64(), nullable=False),  # SYNs with tcp_seq == dst_ip
        pa.field("zmap_packets", pa.int64(), nullable=False),  # SYNs with ZMap's IP ID (and window)
        pa.field("masscan_packets", pa.int64(), nullable=False),  # SYNs with masscan's IP ID relation
        pa.field("backscatter_packets", pa.int64(), nullable=False),  # SYN-ACK, RST, ICMP unreachable
        pa.field("login_attempts", pa.int64(), nullable=False),  # Cowrie failed + successful logins
        pa.field("logins", pa.int64(), nullable=False),  # Cowrie successful logins
        pa.field("downloads", pa.int64(), nullable=False),  # Cowrie file downloads that qualify
        pa.field("smtp_requests", pa.int64(), nullable=False),  # Cowrie direct-tcpip requests to SMTP ports
    ]
)

#: The simulator's answer key (`<world>/truth/truth.parquet`, written by `darkembed.simulate`): one row per host,
#: day and network where the host sent at least one packet or Cowrie event.
TRUTH = pa.schema(
    [
        pa.field("src_ip", pa.uint32(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("network", pa.string(), nullable=False),
        pa.field("class", pa.string(), nullable=False),  # true class (scanner classes: the organisation)
        pa.field("behaviour", pa.string(), nullable=False),  # e.g. mirai:classic, unknown:backscatter
        pa.field("tool", pa.string(), nullable=False),  # probe fingerprint: mirai, zmap, masscan, linux, ...
        pa.field("packets", pa.uint32(), nullable=False),  # IPv4 packets in this network's capture that day
        pa.field("logins", pa.uint32(), nullable=False),  # Cowrie login attempts (honeypots)
        pa.field("downloads", pa.uint32(), nullable=False),  # Cowrie file downloads (honeypots)
    ]
)


def conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """Return `table` with exactly `schema`'s columns, order and types, or raise a `SchemaError`.

    Columns are cast safely (no overflow, no truncation); nulls in a non-nullable column are refused.

    Args:
        table: the table about to be written.
        schema: the dataset schema.
        where: the file or partition the table goes to, named in errors.
    """
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise SchemaError(f"{where}: missing columns {missing}")
    extra = [c for c in table.column_names if c not in schema.names]
    if extra:
        raise SchemaError(f"{where}: unexpected columns {extra}")
    cols = []
    for f in schema:
        col = table.column(f.name)
        if not col.type.equals(f.type):
            try:
                col = col.cast(f.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(f"{where}: column {f.name!r} cannot be {f.type}: {exc}") from exc
        if not f.nullable and col.null_count:
            raise SchemaError(f"{where}: column {f.name!r} has {col.null_count} nulls but may have none")
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


def embeddings_schema(dim: int) -> pa.Schema:
    """`embeddings.parquet`: one row per host active that day, its vector as a fixed-size float32 list."""
    return pa.schema(
        [
            pa.field("src_ip", pa.uint32(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def embeddings_table(ips, vectors) -> pa.Table:
    """An embeddings table from (n,) uint32 addresses and an (n, dim) float32 matrix."""
    import numpy as np

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = x.shape[1] if x.ndim == 2 else 0
    flat = pa.array(x.reshape(-1), type=pa.float32())
    vec = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.Table.from_arrays(
        [pa.array(np.asarray(ips, dtype=np.uint32)), vec], schema=embeddings_schema(dim)
    )


def embeddings_arrays(table: pa.Table):
    """(n,) uint32 addresses and the (n, dim) float32 matrix of an embeddings table."""
    import numpy as np

    vec = table.column("vector").combine_chunks()
    dim = vec.type.list_size
    x = vec.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    return table.column("src_ip").to_numpy().astype(np.uint32), x
