"""Prefect task of the graph stage: one network-day's bipartite graph partition."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.graph import EDGES, HOSTS, PORTS
from darkembed.graph import build_graph as _build_graph
from darkembed.layout import Layout
from darkembed.store import write_partition
from tasks.common import active_lazy


@task(name="graph", task_run_name="graph[{network}/{day}]", cache_policy=NO_CACHE)
def build_graph(config: Config, network: str, day: dt.date) -> dict:
    """Edges, host and port nodes with their 37 raw features."""
    g = _build_graph(active_lazy(config, network, day))
    part = Layout(config.data_path).graph(network, day)
    with write_partition(part, dataset="graph", config_hash=config.stage_hash("graph", network)) as w:
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
