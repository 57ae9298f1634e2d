"""Prefect task of the adaptation stage: one provider-customer pair on one day (`darkembed.stages.adapt`)."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.stages import adapt as stage


@task(name="adapt", task_run_name="adapt[{provider}~{customer}/{day}]", cache_policy=NO_CACHE)
def adapt_pair(
    config: Config,
    provider: str,
    customer: str,
    day: dt.date,
    method: str = "idarkvec",
    last_day: bool = True,
) -> stage.AdaptResult:
    """Every [TNSM] setting for the pair's day, clustering, figures and the exchange bundles.

    `last_day`: whether this is the last day of a backfill (the t-SNE maps are drawn there with `report.tsne:
    last`).
    """
    return stage.adapt_pair(config, provider, customer, day, method, last_day)
