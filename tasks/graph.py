"""Prefect task of the graph stage (`darkembed.stages.graph`): one network-day's bipartite graph partition."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.stages import graph
from darkembed.stages.graph import GraphResult


@task(name="graph", task_run_name="graph[{network}/{day}]", cache_policy=NO_CACHE)
def build_graph(config: Config, network: str, day: dt.date) -> GraphResult:
    """Edges, host and port nodes with their 37 raw features."""
    return graph.build_graph(config, network, day)
