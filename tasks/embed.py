"""Prefect tasks of the embeddings stage: one method, network and day (`darkembed.stages.embed`)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.stages import embed

embed_idarkvec = task(
    embed.embed_idarkvec,
    name="embed-idarkvec",
    task_run_name="idarkvec[{network}/{day}]",
    cache_policy=NO_CACHE,
    tags=["embed"],
)
embed_gnn = task(
    embed.embed_gnn,
    name="embed-gnn",
    task_run_name="{method}[{network}/{day}]",
    cache_policy=NO_CACHE,
    tags=["embed"],
)
