"""Prefect task of the per-network evaluation: leave-one-out kNN of one method's embeddings on one day
(`darkembed.stages.knn`)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.stages import knn

knn_day = task(knn.knn_day, name="knn", task_run_name="knn[{method}/{network}/{day}]", cache_policy=NO_CACHE)
