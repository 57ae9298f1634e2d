"""Prefect task of the per-network report (`darkembed.stages.report`): the day's activity-pattern figure."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.stages import report
from darkembed.stages.report import ActivityResult


@task(name="report-activity", task_run_name="activity[{network}/{day}]", cache_policy=NO_CACHE)
def report_activity(config: Config, network: str, day: dt.date) -> ActivityResult:
    """Activity patterns of the day (senders and ports against time, coloured by label) as a PNG."""
    return report.report_activity(config, network, day)
