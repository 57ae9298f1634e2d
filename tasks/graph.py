"""Prefect task of the graph stage: one network-day's bipartite graph partition (`darkembed.stages.graph`)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.stages import graph

build_graph = task(
    graph.build_graph, name="graph", task_run_name="graph[{network}/{day}]", cache_policy=NO_CACHE
)
