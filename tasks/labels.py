"""Prefect task of the labels stage: one network-day's `labels` partition (`darkembed.stages.labels`)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.stages import labels

label_day = task(
    labels.label_day, name="labels", task_run_name="labels[{network}/{day}]", cache_policy=NO_CACHE
)
