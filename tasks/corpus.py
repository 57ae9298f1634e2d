"""Prefect task of the corpus stage: one network-day's i-DarkVec corpus partition (`darkembed.stages.corpus`)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.stages import corpus

build_corpus = task(
    corpus.build_corpus, name="corpus", task_run_name="corpus[{network}/{day}]", cache_policy=NO_CACHE
)
