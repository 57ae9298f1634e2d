"""Prefect task of the adaptation stage: one provider-customer pair on one day (`darkembed.stages.adapt`)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.stages import adapt

adapt_pair = task(
    adapt.adapt_pair, name="adapt", task_run_name="adapt[{provider}~{customer}/{day}]", cache_policy=NO_CACHE
)
