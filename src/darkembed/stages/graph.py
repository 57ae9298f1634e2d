"""The graph stage: a network-day's bipartite host-port graph.

Reads: the day's `packets` partition (its active packets) and, with `graph.edges: first_seen`, the `graph`
partitions of the month's earlier days. Writes: `graph/network=<n>/day=<d>/{edges,hosts,ports}.parquet` (edges,
host and port nodes with their raw features). See docs/method.md for the graph and its first-seen edges.
"""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

import polars as pl

from darkembed.config import Config
from darkembed.embed.chain import ChainGapError
from darkembed.graph import EDGES, HOSTS, PORTS, first_seen_edges
from darkembed.graph import build_graph as _build_graph
from darkembed.layout import Layout
from darkembed.stages.read import active_lazy, is_current
from darkembed.store import write_partition


class GraphResult(TypedDict):
    """A `graph` partition: its host and port nodes, edges, and the packets its edges carry."""

    network: str
    day: str
    partition: str
    hosts: int
    ports: int
    edges: int
    packets: int


def build_graph(config: Config, network: str, day: dt.date) -> GraphResult:
    """Edges, host and port nodes with their 37 raw features.

    Raises:
        ChainGapError: with `graph.edges: first_seen`, an earlier day of the month has no current graph.
    """
    g = _build_graph(active_lazy(config, network, day))
    lay = Layout(config.data_path)
    inputs = [lay.packets(network, day)]
    if config.graph.edges == "first_seen":
        g["edges"] = first_seen_edges(g["edges"], _month_edges(config, lay, network, day))
        inputs += [lay.graph(network, day.replace(day=i)) for i in range(1, day.day)]
    part = lay.graph(network, day)
    with write_partition(
        part, dataset="graph", config_hash=config.stage_hash("graph", network), inputs=inputs
    ) as w:
        for name, schema in (("edges", EDGES), ("hosts", HOSTS), ("ports", PORTS)):
            w.write_table(f"{name}.parquet", g[name].to_arrow(), schema)
    return {
        "network": network,
        "day": day.isoformat(),
        "partition": str(part),
        "hosts": g["hosts"].height,
        "ports": g["ports"].height,
        "edges": g["edges"].height,
        "packets": int(g["edges"]["packets"].sum() or 0),
    }


def _month_edges(config: Config, lay: Layout, network: str, day: dt.date) -> pl.DataFrame:
    """The edges of the month's earlier days (each must be complete and current: the parity edges are a chain)."""
    frames = []
    d = day.replace(day=1)
    while d < day:
        if not is_current(config, "graph", network, d):
            raise ChainGapError(
                f"graph of {network} on {d} is missing or was made with other settings; graph.edges=first_seen "
                f"needs every earlier day of the month: run {d} .. {day - dt.timedelta(days=1)} first"
            )
        frames.append(pl.read_parquet(lay.graph(network, d) / "edges.parquet", columns=["src_ip", "service"]))
        d += dt.timedelta(days=1)
    return pl.concat(frames) if frames else pl.DataFrame(schema={"src_ip": pl.UInt32, "service": pl.Int32})
