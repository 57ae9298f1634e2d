"""Prefect task of the corpus stage: one network-day's i-DarkVec corpus partition."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.corpus import CORPUS, write_line_sentences
from darkembed.corpus import build_corpus as _build_corpus
from darkembed.layout import Layout
from darkembed.stages.read import CORPUS_FILE, active_lazy
from darkembed.store import write_partition


@task(name="corpus", task_run_name="corpus[{network}/{day}]", cache_policy=NO_CACHE)
def build_corpus(config: Config, network: str, day: dt.date) -> dict:
    """Sentences of the day (sentences.parquet) and the LineSentence file Word2Vec trains from."""
    corpus = _build_corpus(active_lazy(config, network, day), config.corpus)
    part = Layout(config.data_path).corpus(network, day)
    with write_partition(
        part,
        dataset="corpus",
        config_hash=config.stage_hash("corpus", network),
        inputs=[Layout(config.data_path).packets(network, day)],
    ) as w:
        w.write_table("sentences.parquet", corpus.to_arrow(), CORPUS)
        sentences, tokens = write_line_sentences(corpus, w.path(CORPUS_FILE))
    hosts = corpus.select("tokens").explode("tokens").n_unique() if corpus.height else 0
    return {
        "network": network,
        "day": day.isoformat(),
        "partition": str(part),
        "sentences": sentences,
        "tokens": tokens,
        "hosts": hosts,
    }
