"""Prefect tasks of the embeddings stage: one method, network and day; checkpoint + embeddings partitions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.embed.chain import resume_from
from darkembed.embed.w2v import IDarkVec
from darkembed.layout import Layout
from darkembed.schemas import embeddings_table
from darkembed.store import read_manifest, write_partition
from tasks.corpus import CORPUS_FILE


@task(name="embed-idarkvec", task_run_name="idarkvec[{network}/{day}]", cache_policy=NO_CACHE, tags=["embed"])
def embed_idarkvec(config: Config, network: str, day: dt.date) -> dict:
    """Update i-DarkVec with the day's corpus (continuing d-1's checkpoint) and export the active hosts."""
    lay = Layout(config.data_path)
    corpus_dir = lay.corpus(network, day)
    read_manifest(corpus_dir)
    prev = resume_from(lay, "idarkvec", network, day)
    model = IDarkVec.load(prev, config.w2v) if prev else IDarkVec(config.w2v)
    stats = model.update(corpus_dir / CORPUS_FILE)
    active = (
        pl.read_parquet(corpus_dir / "sentences.parquet", columns=["tokens"])
        .explode("tokens")
        .unique()
        .sort("tokens")["tokens"]
        .to_numpy()
        .astype(np.uint32)
    )
    ips, x = model.embed(active)
    with write_partition(
        lay.models("idarkvec", network, day),
        dataset="models",
        config_hash=config.hash(),
        extra={"continues": str(prev) if prev else None},
    ) as w:
        model.save(w.tmp)
    with write_partition(
        lay.embeddings("idarkvec", network, day), dataset="embeddings", config_hash=config.hash()
    ) as w:
        w.write_table("embeddings.parquet", embeddings_table(ips, x))
    return {
        "method": "idarkvec",
        "network": network,
        "day": day.isoformat(),
        "hosts": int(ips.size),
        "vocab": stats.vocab,
        "new_hosts": stats.new_words,
        "words": stats.words,
        "sentences": stats.sentences,
        "epochs": stats.epochs,
        "loss": stats.loss,
        "seconds": stats.seconds,
        "continues": str(prev) if prev else None,
    }
