"""The corpus stage: a network-day's i-DarkVec corpus.

Reads: the day's `packets` partition (its active packets). Writes: `corpus/network=<n>/day=<d>/` with
`sentences.parquet` (senders per destination service) and `corpus.txt` (the LineSentence file Word2Vec trains
from).
"""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from darkembed.config import Config
from darkembed.corpus import CORPUS, write_line_sentences
from darkembed.corpus import build_corpus as _build_corpus
from darkembed.layout import Layout
from darkembed.stages.read import CORPUS_FILE, SENTENCES_FILE, active_lazy
from darkembed.store import write_partition


class CorpusResult(TypedDict):
    """A `corpus` partition: its sentences, tokens and distinct hosts."""

    network: str
    day: str
    partition: str
    sentences: int
    tokens: int
    hosts: int


def build_corpus(config: Config, network: str, day: dt.date) -> CorpusResult:
    """Sentences of the day (sentences.parquet) and the LineSentence file Word2Vec trains from."""
    corpus = _build_corpus(active_lazy(config, network, day), config.corpus)
    part = Layout(config.data_path).corpus(network, day)
    with write_partition(
        part,
        dataset="corpus",
        config_hash=config.stage_hash("corpus", network),
        inputs=[Layout(config.data_path).packets(network, day)],
    ) as w:
        w.write_table(SENTENCES_FILE, corpus.to_arrow(), CORPUS)
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
