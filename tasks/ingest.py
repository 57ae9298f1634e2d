"""Prefect tasks of the ingest stage (`darkembed.stages.ingest`): one task per source file (fanned out over threads
or a Dask cluster), then one commit per network-day that moves the staged part files into the `packets` partition
atomically (a failed file, passed to it with `allow_failure`, discards them all and fails the commit with its
error)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.stages import ingest
from tasks.common import io_errors_only

ingest_source = task(
    ingest.ingest_source,
    name="ingest-file",
    task_run_name="ingest[{network}/{day}/{name}]",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=io_errors_only,
    cache_policy=NO_CACHE,
    tags=["io"],
)
commit_packets = task(
    ingest.commit_packets,
    name="ingest-commit",
    task_run_name="commit[{network}/{day}]",
    cache_policy=NO_CACHE,
    tags=["io"],
)
