"""Prefect tasks of the embeddings stage: one method, network and day; checkpoint + embeddings partitions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import GNN_METHODS, Config
from darkembed.embed.chain import chain_record, chain_start, continue_chain
from darkembed.embed.w2v import IDarkVec
from darkembed.layout import Layout
from darkembed.schemas import embeddings_table
from darkembed.stages.read import CORPUS_FILE, day_graphs
from darkembed.store import is_complete, read_manifest, write_partition


@task(name="embed-idarkvec", task_run_name="idarkvec[{network}/{day}]", cache_policy=NO_CACHE, tags=["embed"])
def embed_idarkvec(config: Config, network: str, day: dt.date) -> dict:
    """Update i-DarkVec with the day's corpus (continuing d-1's checkpoint) and export the active hosts."""
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


def _export_idarkvec(model: IDarkVec, corpus_dir) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings of the day's active hosts (every host of the day's corpus)."""
    active = (
        pl.read_parquet(corpus_dir / "sentences.parquet", columns=["tokens"])
        .explode("tokens")
        .unique()
        .sort("tokens")["tokens"]
        .to_numpy()
        .astype(np.uint32)
    )
    return model.embed(active)


def _write_day(config: Config, lay: Layout, method: str, network: str, day: dt.date, inputs: list,
               prev, start: dt.date, save, ips: np.ndarray, x: np.ndarray) -> None:  # fmt: skip
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
        w.write_table("embeddings.parquet", embeddings_table(ips, x))


def parse_gnn_method(name: str) -> tuple[str, bool]:
    """`igcngru-nofeat` -> ("igcngru", False)."""
    base, _, suffix = name.partition("-")
    if base not in ("gcn", "igcn", "gcngru", "igcngru") or suffix not in ("", "nofeat"):
        raise ValueError(f"unknown GNN method {name!r}; known: {', '.join(GNN_METHODS)}")
    return base, suffix != "nofeat"


def _chain_length(lay: Layout, method: str, network: str, day: dt.date, start: dt.date) -> int:
    """Consecutive days of the chain (from `start`) with a checkpoint just before `day` (0 when the chain starts
    on `day`)."""
    have = set(lay.days("models", network, method))
    n, d = 0, day - dt.timedelta(days=1)
    while d in have and d >= start:
        n, d = n + 1, d - dt.timedelta(days=1)
    return n


@task(name="embed-gnn", task_run_name="{method}[{network}/{day}]", cache_policy=NO_CACHE, tags=["embed"])
def embed_gnn(config: Config, network: str, day: dt.date, method: str) -> dict:
    """Train (or update) a GNN on the day's graph (or window) and export the day's host embeddings.

    GCN starts fresh each day; i-GCN and i-GCN-GRU continue day d-1's checkpoint; GCN-GRU is fit once on the days
    available when its chain starts (up to `gnn.train_days`) and stays frozen afterwards.
    """
    from darkembed.embed.gnn import GnnTrainer
    from darkembed.torchutil import set_default_device

    # the GNN trains on the configured device (auto: CUDA when present)
    set_default_device(config.compute.device)
    base, features = parse_gnn_method(method)
    lay = Layout(config.data_path)
    window = config.gnn.history + 1 if base in ("gcngru", "igcngru") else 1
    start = chain_start(config)
    with continue_chain(lay, method, network, day, start) as prev:
        # GCN-GRU: while the chain is within its first `train_days` days it is refit on all of them each day;
        # from then on the model fit on days 1..M stays frozen ([GNN]: trained on days 1-20, frozen for the test
        # days).
        chain_day = _chain_length(lay, method, network, day, start) + 1
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
