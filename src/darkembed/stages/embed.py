"""The embeddings stage: one method, network and day; writes the day's checkpoint (`models`) and the embeddings of
the day's active hosts (`embeddings`).

i-DarkVec continues day d-1's checkpoint with the day's corpus. Of the GNNs, GCN starts fresh each day; i-GCN and
i-GCN-GRU continue day d-1's checkpoint; GCN-GRU is refit on the days of its chain while the chain is within its
first `gnn.train_days` days and stays frozen afterwards (docs/method.md section 4, docs/pipeline.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np
import polars as pl

from darkembed.config import Config, parse_gnn_method
from darkembed.embed.chain import chain_length, chain_record, chain_start, continue_chain
from darkembed.embed.w2v import IDarkVec
from darkembed.layout import Layout
from darkembed.schemas import embeddings_table
from darkembed.stages.read import CORPUS_FILE, EMBEDDINGS_FILE, SENTENCES_FILE, day_graphs
from darkembed.store import is_complete, read_manifest, write_partition


class IDarkVecResult(TypedDict):
    """What `embed_idarkvec` did: the day's hosts and the model update's statistics."""

    method: str
    network: str
    day: str
    hosts: int
    vocab: int
    new_hosts: int
    words: int
    sentences: int
    epochs: int
    loss: float
    seconds: float
    #: the checkpoint the day continued (None: the chain starts on the day)
    continues: str | None


class GnnResult(TypedDict):
    """What `embed_gnn` did: the day's hosts, the training's epochs, last loss and time, the graphs embedded."""

    method: str
    network: str
    day: str
    hosts: int
    epochs: int
    loss: float
    seconds: float
    window_days: int
    continues: str | None


def embed_idarkvec(config: Config, network: str, day: dt.date) -> IDarkVecResult:
    """Update i-DarkVec with the day's corpus (continuing d-1's checkpoint) and export the active hosts.

    Raises:
        PartitionMissingError: the day's corpus is not complete.
        ChainGapError: the day cannot continue its chain (`darkembed.embed.chain`).
    """
    lay = Layout(config.data_path)
    corpus_dir = lay.corpus(network, day)
    read_manifest(corpus_dir)
    start = chain_start(config)
    with continue_chain(lay, "idarkvec", network, day, start) as prev:
        model = IDarkVec.load(prev, config.w2v) if prev else IDarkVec(config.w2v)
        stats = model.update(corpus_dir / CORPUS_FILE)
        ips, x = _export_idarkvec(model, corpus_dir)
        _write_day(config, lay, "idarkvec", network, day, [corpus_dir], prev, start, model.save, ips, x)
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


def gnn_window(config: Config, model: str) -> int:
    """The days of graphs a GNN model embeds a day from: `gnn.history` + 1 for the recurrent models, else 1."""
    return config.gnn.history + 1 if model in ("gcngru", "igcngru") else 1


def embed_gnn(config: Config, network: str, day: dt.date, method: str) -> GnnResult:
    """Train (or update) a GNN on the day's graph (or window) and export the day's host embeddings.

    GCN starts fresh each day; i-GCN and i-GCN-GRU continue day d-1's checkpoint; GCN-GRU is fit once on the days
    available when its chain starts (up to `gnn.train_days`) and stays frozen afterwards.

    Raises:
        ValueError: `method` is not a GNN method.
        PartitionMissingError: the day's graph is not complete.
        ChainGapError: the day cannot continue its chain (`darkembed.embed.chain`).
    """
    from darkembed.embed.gnn import GnnTrainer
    from darkembed.torchutil import set_default_device

    # the GNN trains on the configured device (auto: CUDA when present)
    set_default_device(config.compute.device)
    base, features = parse_gnn_method(method)
    lay = Layout(config.data_path)
    window = gnn_window(config, base)
    start = chain_start(config)
    with continue_chain(lay, method, network, day, start) as prev:
        # GCN-GRU: while the chain is within its first `train_days` days it is refit on all of them each day;
        # from then on the model fit on days 1..M stays frozen ([GNN]: trained on days 1-20, frozen for the test
        # days).
        chain_day = chain_length(lay, method, network, day, start) + 1
        refit = base == "gcngru" and (prev is None or chain_day <= config.gnn.train_days)
        if prev is not None and not refit:
            trainer = GnnTrainer.load(prev, cfg=config.gnn)
        else:
            trainer = GnnTrainer(base, features, config.gnn, seed=config.seed)
        if refit:
            fit_days = min(chain_day, config.gnn.train_days)
            stats = trainer.fit(day_graphs(config, network, day, fit_days, features))
        else:
            stats = trainer.update(day_graphs(config, network, day, window, features))
        graphs = day_graphs(config, network, day, window, features)
        ips, x = trainer.embed(graphs)
        used = max(window, min(chain_day, config.gnn.train_days) if refit else 0)
        parts = [lay.graph(network, day - dt.timedelta(days=b)) for b in range(used)]
        _write_day(config, lay, method, network, day, [p for p in parts if is_complete(p)], prev, start,
                   trainer.save, ips, x)  # fmt: skip
    return {
        "method": method,
        "network": network,
        "day": day.isoformat(),
        "hosts": int(ips.size),
        "epochs": stats.get("epochs", 0),
        "loss": (stats.get("losses") or [float("nan")])[-1],
        "seconds": stats.get("seconds", 0.0),
        "window_days": len(graphs),
        "continues": str(prev) if prev else None,
    }


def _export_idarkvec(model: IDarkVec, corpus_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings of the day's active hosts (every host of the day's corpus)."""
    active = (
        pl.read_parquet(corpus_dir / SENTENCES_FILE, columns=["tokens"])
        .explode("tokens")
        .unique()
        .sort("tokens")["tokens"]
        .to_numpy()
        .astype(np.uint32)
    )
    return model.embed(active)


def _write_day(config: Config, lay: Layout, method: str, network: str, day: dt.date, inputs: list[Path],
               prev: Path | None, start: dt.date, save: Callable[[Path], object], ips: np.ndarray,
               x: np.ndarray) -> None:  # fmt: skip
    """The day's checkpoint (recording its inputs and its place on the chain), then its embeddings."""
    models = lay.models(method, network, day)
    with write_partition(
        models,
        dataset="models",
        config_hash=config.stage_hash("models", network, method),
        inputs=[*inputs, *([prev] if prev else [])],
        extra={"continues": str(prev) if prev else None, "chain": chain_record(day, start, prev)},
    ) as w:
        save(w.tmp)
    with write_partition(
        lay.embeddings(method, network, day),
        dataset="embeddings",
        config_hash=config.stage_hash("embeddings", network, method),
        inputs=[models],
    ) as w:
        w.write_table(EMBEDDINGS_FILE, embeddings_table(ips, x))
