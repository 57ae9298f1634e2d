"""Prefect task of the graph stage: one network-day's bipartite graph partition."""

from __future__ import annotations

import datetime as dt

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.embed.chain import ChainGapError
from darkembed.graph import EDGES, HOSTS, PORTS, first_seen_edges
from darkembed.graph import build_graph as _build_graph
from darkembed.layout import Layout
from darkembed.stages.read import active_lazy
from darkembed.store import is_complete, read_manifest, write_partition


@task(name="graph", task_run_name="graph[{network}/{day}]", cache_policy=NO_CACHE)
def build_graph(config: Config, network: str, day: dt.date) -> dict:
    """Edges, host and port nodes with their 37 raw features."""
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
        part = lay.graph(network, d)
        if not (
            is_complete(part)
            and read_manifest(part).get("config_hash") == config.stage_hash("graph", network)
        ):
            raise ChainGapError(
                f"graph of {network} on {d} is missing or was made with other settings; graph.edges=first_seen "
                f"needs every earlier day of the month: run {d} .. {day - dt.timedelta(days=1)} first"
            )
        frames.append(pl.read_parquet(part / "edges.parquet", columns=["src_ip", "service"]))
        d += dt.timedelta(days=1)
    return pl.concat(frames) if frames else pl.DataFrame(schema={"src_ip": pl.UInt32, "service": pl.Int32})
