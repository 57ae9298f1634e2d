"""The [GNN] Table 3 evaluation: leave-one-out 3-NN F1 per class and method, mean and std over days.

Reads: `embeddings/method=<m>/network=<net>/day=<d>` and `labels/network=<net>/day=<d>` partitions. Writes
nothing (the flow logs, the CLI prints and `darkembed report` renders).

Per day: the embeddings of the hosts active that day with their labels, classes with at most 10 hosts that day
folded into `unknown`, every labelled host predicted by its 3 nearest other hosts (cosine, standardised), and
per-class F1 over the classes present (`metrics.score`). Across days: mean and sample std (NaN-skipping), as the
paper's table. Note docs/method.md 7.3: this is transductive (the other hosts' labels of the same day are used).
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from darkembed.config import Config
from darkembed.evaluate.classifiers import knn_loo
from darkembed.evaluate.metrics import Scores, score, summarize
from darkembed.layout import Layout
from darkembed.schemas import embeddings_arrays
from darkembed.store import is_complete

log = logging.getLogger(__name__)


def knn_day(cfg: Config, method: str, network: str, day: dt.date) -> Scores | None:
    """Leave-one-out kNN scores of one method, network and day (None when the partitions are missing)."""
    lay = Layout(cfg.data_path)
    emb, lab = lay.embeddings(method, network, day), lay.labels(network, day)
    if not (is_complete(emb) and is_complete(lab)):
        return None
    ips, X = embeddings_arrays(pq.read_table(emb / "embeddings.parquet"))
    labels = pl.read_parquet(lab / "labels.parquet", columns=["src_ip", "label"])
    y = (
        pl.DataFrame({"src_ip": ips})
        .join(labels, on="src_ip", how="left", maintain_order="left")["label"]
        .fill_null("unknown")
        .to_numpy()
        .astype(object)
    )
    if X.shape[0] <= cfg.evaluate.knn_k:
        return None
    res = knn_loo(X, y, k=cfg.evaluate.knn_k, min_class_size=cfg.evaluate.min_class_size)
    return score(res.y_true, res.y_pred)


def knn_table(cfg: Config, network: str, methods: list[str], days: list[dt.date]) -> pl.DataFrame:
    """Per method and class (plus `macro`): F1 mean and std over the days, support summed over days."""
    frames = []
    for m in methods:
        runs = [s for d in days if (s := knn_day(cfg, m, network, d)) is not None]
        if not runs:
            log.warning("knn: no day of %s on %s has embeddings and labels", m, network)
            continue
        frames.append(
            summarize(runs).with_columns(pl.lit(m).alias("method"), pl.lit(len(runs)).alias("days"))
        )
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")


def table3_markdown(table: pl.DataFrame, title: str, paper: dict[str, dict[str, str]] | None = None) -> str:
    """The table in the [GNN] Table 3 layout: rows = classes (support), columns = methods, cells = mean ± std."""
    methods = list(dict.fromkeys(table["method"].to_list()))
    classes = [c for c in dict.fromkeys(table.sort("class")["class"].to_list()) if c != "macro"] + ["macro"]
    head = "| class (support) | " + " | ".join(methods) + (" | paper" if paper else "") + " |"
    lines = [f"## {title}", "", head, "|---" * (len(methods) + 1 + bool(paper)) + "|"]
    for c in classes:
        sub = table.filter(pl.col("class") == c)
        support = int(sub["support"].max() or 0) if sub.height else 0
        cells = []
        for m in methods:
            r = sub.filter(pl.col("method") == m)
            if r.height == 0 or r["f1_mean"][0] is None or np.isnan(r["f1_mean"][0]):
                cells.append("-")
            else:
                std = r["f1_std"][0]
                cells.append(
                    f"{r['f1_mean'][0]:.2f}" + ("" if std is None or np.isnan(std) else f" ± {std:.2f}")
                )
        row = f"| {c} ({support}) | " + " | ".join(cells)
        if paper:
            row += " | " + paper.get(c, {}).get("all", "")
        lines.append(row + " |")
    return "\n".join(lines) + "\n"
