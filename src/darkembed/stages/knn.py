"""The [GNN] Table 3 evaluation: leave-one-out 3-NN F1 per class and method, mean and std over days.

Reads: `embeddings/method=<m>/network=<net>/day=<d>` and `labels/network=<net>/day=<d>` partitions. Writes
nothing (the flows log the scores, the CLI prints them and `darkembed report` renders them, in the layout of
`darkembed.evaluate.knn_report.table3_markdown`).

Per day: the embeddings of the hosts active that day with their labels, classes with at most 10 hosts that day
folded into `unknown`, every labelled host predicted by its 3 nearest other hosts (cosine, standardised), and
per-class F1 over the classes present (`metrics.score`). Across days: mean and sample std (NaN-skipping), as the
paper's table. Note docs/method.md 7.3: this is transductive (the other hosts' labels of the same day are used).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TypedDict

import polars as pl

from darkembed.config import Config
from darkembed.evaluate.classifiers import knn_loo
from darkembed.evaluate.metrics import Scores, score, summarize
from darkembed.layout import Layout
from darkembed.stages.read import labelled_embeddings
from darkembed.store import is_complete

log = logging.getLogger(__name__)


class KnnResult(TypedDict):
    """One method's leave-one-out kNN on a network-day: macro F1, and F1 and support per class."""

    method: str
    network: str
    day: str
    macro_f1: float
    f1: dict[str, float]
    support: dict[str, int]


def knn_scores(config: Config, method: str, network: str, day: dt.date) -> Scores | None:
    """Leave-one-out kNN scores of one method, network and day (None when the partitions are missing or hold
    no more hosts than `evaluate.knn_k`)."""
    lay = Layout(config.data_path)
    if not (is_complete(lay.embeddings(method, network, day)) and is_complete(lay.labels(network, day))):
        return None
    _, X, frame = labelled_embeddings(config, method, network, day)
    if X.shape[0] <= config.evaluate.knn_k:
        return None
    y = frame["label"].to_numpy().astype(object)
    res = knn_loo(X, y, k=config.evaluate.knn_k, min_class_size=config.evaluate.min_class_size)
    return score(res.y_true, res.y_pred)


def knn_day(config: Config, method: str, network: str, day: dt.date) -> KnnResult | None:
    """Per-class and macro F1 of the day's 3-NN leave-one-out (None when there is nothing to score)."""
    s = knn_scores(config, method, network, day)
    if s is None:
        return None
    return {
        "method": method,
        "network": network,
        "day": day.isoformat(),
        "macro_f1": s.macro["f1"],
        "f1": {c: float(v) for c, v in zip(s.classes, s.f1, strict=True)},
        "support": {c: int(v) for c, v in zip(s.classes, s.support, strict=True)},
    }


def knn_table(config: Config, network: str, methods: list[str], days: list[dt.date]) -> pl.DataFrame:
    """Per method and class (plus `macro`): F1 mean and std over the days, support summed over days."""
    frames = []
    for m in methods:
        runs = [s for d in days if (s := knn_scores(config, m, network, d)) is not None]
        if not runs:
            log.warning("knn: no day of %s on %s has embeddings and labels", m, network)
            continue
        frames.append(
            summarize(runs).with_columns(pl.lit(m).alias("method"), pl.lit(len(runs)).alias("days"))
        )
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")
