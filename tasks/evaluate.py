"""Prefect task of the per-network evaluation (`darkembed.stages.knn`): leave-one-out kNN of one method's
embeddings on one day."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.stages import knn
from darkembed.stages.knn import KnnResult


@task(name="knn", task_run_name="knn[{method}/{network}/{day}]", cache_policy=NO_CACHE)
def knn_day(config: Config, method: str, network: str, day: dt.date) -> KnnResult | None:
    """Per-class and macro F1 of the day's 3-NN leave-one-out (None when there is nothing to score)."""
    return knn.knn_day(config, method, network, day)
