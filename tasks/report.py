"""Prefect task of the per-network report: the day's activity-pattern figure (`darkembed.stages.report`)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.stages import report

report_activity = task(
    report.report_activity,
    name="report-activity",
    task_run_name="activity[{network}/{day}]",
    cache_policy=NO_CACHE,
)
