"""Prefect tasks of the embeddings stage: one method, network and day (`darkembed.stages.embed`)."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.stages import embed as stage


@task(name="embed-idarkvec", task_run_name="idarkvec[{network}/{day}]", cache_policy=NO_CACHE, tags=["embed"])
def embed_idarkvec(config: Config, network: str, day: dt.date) -> stage.IDarkVecResult:
    """Update i-DarkVec with the day's corpus (continuing d-1's checkpoint) and export the active hosts."""
    return stage.embed_idarkvec(config, network, day)


@task(name="embed-gnn", task_run_name="{method}[{network}/{day}]", cache_policy=NO_CACHE, tags=["embed"])
def embed_gnn(config: Config, network: str, day: dt.date, method: str) -> stage.GnnResult:
    """Train (or update) a GNN on the day's graph (or window) and export the day's host embeddings."""
    return stage.embed_gnn(config, network, day, method)
