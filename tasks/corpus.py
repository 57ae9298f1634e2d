"""Prefect task of the corpus stage (`darkembed.stages.corpus`): one network-day's i-DarkVec corpus partition."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.stages import corpus
from darkembed.stages.corpus import CorpusResult


@task(name="corpus", task_run_name="corpus[{network}/{day}]", cache_policy=NO_CACHE)
def build_corpus(config: Config, network: str, day: dt.date) -> CorpusResult:
    """Sentences of the day (sentences.parquet) and the LineSentence file Word2Vec trains from."""
    return corpus.build_corpus(config, network, day)
