"""Prefect task of the labels stage (`darkembed.stages.labels`): one network-day's `labels` partition."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.stages import labels
from darkembed.stages.labels import LabelsResult


@task(name="labels", task_run_name="labels[{network}/{day}]", cache_policy=NO_CACHE)
def label_day(config: Config, network: str, day: dt.date) -> LabelsResult:
    """Label the network's active sources of `day`; returns counts per label and source."""
    return labels.label_day(config, network, day)
