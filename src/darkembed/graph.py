"""The daily bipartite host-port graph and its node features (docs/method.md 4.1-4.3, 7.6).

Reads: a day's `packets` partition (through `activity.active_packets`). Writes:
`<root>/graph/network=<net>/day=<d>/{edges,hosts,ports}.parquet`.

* Nodes: the day's active hosts (ids 0..H-1 in ascending address order) and its services (top ports plus the
  `other` bucket; ids 0..P-1 in ascending service key, `other` = -1 first). Ids are stable within a day.
* Edges: (host, service, packets of the day) — per-day counts by default; `graph.edges: first_seen` is the
  authors' parity mode (an edge only on the first day of the month it appears, docs/method.md 7.1 item 1).
* Features: the 37 host and 37 port features of docs/method.md 4.3 (pandas semantics: sample std, empty
  statistics 0), stored raw; `to_pyg` normalises them per day and node type by the column maximum (0/0 -> 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

N_FEATURES = 37
FEATURES = [f"f{i:02d}" for i in range(N_FEATURES)]
#: What each feature column means, host side | port side.
FEATURE_NAMES = [
    "distinct ports | distinct hosts",
    *(f"pkts per (host,port) {s}" for s in ("min", "max", "sum", "mean", "std")),
    "distinct darknet IPs | 0",
    *(f"pkts per (host,dst) {s} | 0" for s in ("min", "max", "sum", "mean", "std")),
    *(
        f"{v} {s}"
        for v in ("pck_len", "ttl", "t_mss", "t_win", "t_ts")
        for s in ("sum", "min", "max", "mean", "std")
    ),
]

EDGES = pa.schema(
    [
        pa.field("host_id", pa.uint32(), nullable=False),
        pa.field("port_id", pa.uint32(), nullable=False),
        pa.field("src_ip", pa.uint32(), nullable=False),
        pa.field("service", pa.int32(), nullable=False),
        pa.field("packets", pa.uint32(), nullable=False),
    ]
)
HOSTS = pa.schema(
    [pa.field("host_id", pa.uint32(), nullable=False), pa.field("src_ip", pa.uint32(), nullable=False)]
    + [pa.field(f, pa.float64(), nullable=False) for f in FEATURES]
)
PORTS = pa.schema(
    [pa.field("port_id", pa.uint32(), nullable=False), pa.field("service", pa.int32(), nullable=False)]
    + [pa.field(f, pa.float64(), nullable=False) for f in FEATURES]
)


def _stats(col: pl.Expr | str, order: tuple[str, ...]) -> list[pl.Expr]:
    c = pl.col(col) if isinstance(col, str) else col
    exprs = {
        "min": c.min(),
        "max": c.max(),
        "sum": c.sum(),
        "mean": c.mean(),
        "std": c.std(ddof=1),
    }
    return [exprs[s].cast(pl.Float64) for s in order]


_PAIR = ("min", "max", "sum", "mean", "std")
_VALUE = ("sum", "min", "max", "mean", "std")
_VALUE_COLS = ("ip_len", "ttl", "tcp_mss", "tcp_win", "tcp_tsval")


def build_graph(active: pl.LazyFrame) -> dict[str, pl.DataFrame]:
    """Edges, host nodes and port nodes of a day.

    Args:
        active: output of `activity.active_packets`.

    Returns:
        `{"edges": ..., "hosts": ..., "ports": ...}` with the schemas `EDGES`, `HOSTS`, `PORTS`.
    """
    lf = active.with_columns(
        [pl.col(c).cast(pl.Float64).fill_null(0.0) for c in _VALUE_COLS]  # '-' -> 0, as the authors do
    )
    pairs = lf.group_by(["src_ip", "service"]).agg(pl.len().alias("packets"))
    # One 64-bit key groups ~4x faster than the (src_ip, dst_ip) pair.
    pair_key = pl.col("src_ip").cast(pl.UInt64) * (1 << 32) + pl.col("dst_ip").fill_null(0).cast(pl.UInt64)
    dsts = (
        lf.group_by(pair_key.alias("k"))
        .agg(pl.len().alias("n"))
        .select((pl.col("k") // (1 << 32)).cast(pl.UInt32).alias("src_ip"), "n")
    )

    host_pair = pairs.group_by("src_ip").agg(
        pl.len().cast(pl.Float64).alias("f00"),
        *[e.alias(f"f{1 + i:02d}") for i, e in enumerate(_stats("packets", _PAIR))],
    )
    host_dst = dsts.group_by("src_ip").agg(
        pl.len().cast(pl.Float64).alias("f06"),
        *[e.alias(f"f{7 + i:02d}") for i, e in enumerate(_stats("n", _PAIR))],
    )
    value_aggs = [
        e.alias(f"f{12 + 5 * j + i:02d}")
        for j, c in enumerate(_VALUE_COLS)
        for i, e in enumerate(_stats(c, _VALUE))
    ]
    host_val = lf.group_by("src_ip").agg(value_aggs)
    hosts = (
        host_pair.join(host_dst, on="src_ip")
        .join(host_val, on="src_ip")
        .sort("src_ip")
        .with_row_index("host_id")
        .with_columns(pl.col(FEATURES).fill_null(0.0).fill_nan(0.0))
        .select(pl.col("host_id").cast(pl.UInt32), pl.col("src_ip").cast(pl.UInt32), *FEATURES)
    )
    port_pair = pairs.group_by("service").agg(
        pl.len().cast(pl.Float64).alias("f00"),
        *[e.alias(f"f{1 + i:02d}") for i, e in enumerate(_stats("packets", _PAIR))],
    )
    port_val = lf.group_by("service").agg(value_aggs)
    ports = (
        port_pair.join(port_val, on="service")
        .with_columns([pl.lit(0.0).alias(f"f{i:02d}") for i in range(6, 12)])
        .sort("service")
        .with_row_index("port_id")
        .with_columns(pl.col(FEATURES).fill_null(0.0).fill_nan(0.0))
        .select(pl.col("port_id").cast(pl.UInt32), pl.col("service").cast(pl.Int32), *FEATURES)
    )
    hosts_df, ports_df = pl.collect_all([hosts, ports])
    edges = (
        pairs.join(hosts_df.lazy().select("host_id", "src_ip"), on="src_ip")
        .join(ports_df.lazy().select("port_id", "service"), on="service")
        .sort(["host_id", "port_id"])
        .select(
            "host_id",
            "port_id",
            pl.col("src_ip").cast(pl.UInt32),
            "service",
            pl.col("packets").cast(pl.UInt32),
        )
        .collect()
    )
    return {"edges": edges, "hosts": hosts_df, "ports": ports_df}


def first_seen_edges(edges: pl.DataFrame, earlier: pl.DataFrame) -> pl.DataFrame:
    """The authors' parity edges (docs/method.md 7.1 item 1): keep a (host, service) edge only on the first day of
    the month it appears; `earlier` holds the `src_ip`, `service` of the edges of the month's earlier days (their
    own first-seen edges, whose union is every pair seen so far). Nodes and features are not touched: a host that
    only repeats yesterday's ports keeps its features but has no edge.

    Unlike the authors' code the kept edge carries that day's packets, not the month's total (a nightly pipeline
    cannot see the rest of the month).
    """
    if earlier.height == 0:
        return edges
    seen = earlier.select(pl.col("src_ip").cast(pl.UInt32), pl.col("service").cast(pl.Int32)).unique()
    return edges.join(seen, on=["src_ip", "service"], how="anti", maintain_order="left")


def normalise(features: np.ndarray) -> np.ndarray:
    """Divide each column by its maximum over the rows (0/0 -> 0); shape (n, f) float32."""
    f = features.astype(np.float32, copy=True)
    if f.shape[0] == 0:
        return f
    m = f.max(axis=0)
    m[m == 0] = 1.0
    return f / m


def load_graph(path: Path | Mapping[str, Any]) -> dict[str, pl.DataFrame]:
    """The three tables of a graph partition (a directory), or pass through a `build_graph` result."""
    if isinstance(path, Mapping):
        return dict(path)
    p = Path(path)
    return {name: pl.read_parquet(p / f"{name}.parquet") for name in ("edges", "hosts", "ports")}


def to_pyg(graph: Path | Mapping[str, Any], *, features: bool = True, node_type_indicator: bool = True):
    """A homogeneous PyG `Data` of the day: hosts are nodes 0..H-1, ports H..H+P-1.

    Attributes of the result: `x` (N x 37 features normalised per node type, plus a node-type column when
    `node_type_indicator`; None when `features` is False), `edge_index` (2 x 2E, both directions),
    `edge_weight` (2E packets), `num_hosts` (H), `host_ip` (H, int64 addresses), `service` (P, port keys),
    `pos_edge_index` (2 x E host->port, ports offset by H: the link-prediction positives).
    """
    import torch
    from torch_geometric.data import Data

    g = load_graph(graph)
    hosts, ports, edges = g["hosts"], g["ports"], g["edges"]
    h, p = hosts.height, ports.height
    src = torch.from_numpy(edges["host_id"].to_numpy().astype(np.int64))
    dst = torch.from_numpy(edges["port_id"].to_numpy().astype(np.int64) + h)
    w = torch.from_numpy(edges["packets"].to_numpy().astype(np.float32))
    data = Data(
        edge_index=torch.stack([torch.cat([src, dst]), torch.cat([dst, src])]),
        edge_weight=torch.cat([w, w]),
        num_nodes=h + p,
    )
    data.pos_edge_index = torch.stack([src, dst])
    data.num_hosts = h
    data.host_ip = torch.from_numpy(hosts["src_ip"].to_numpy().astype(np.int64))
    data.service = torch.from_numpy(ports["service"].to_numpy().astype(np.int64))
    if features:
        xh = normalise(hosts.select(FEATURES).to_numpy())
        xp = normalise(ports.select(FEATURES).to_numpy())
        x = np.vstack([xh, xp]) if h + p else np.zeros((0, N_FEATURES), np.float32)
        if node_type_indicator:
            x = np.hstack([x, np.r_[np.zeros(h), np.ones(p)].astype(np.float32)[:, None]])
        data.x = torch.from_numpy(np.ascontiguousarray(x))
    return data
