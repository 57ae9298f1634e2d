"""Prefect task of the per-network evaluation: leave-one-out kNN of one method's embeddings on one day."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.evaluate.knn_report import knn_day as _knn_day


@task(name="knn", task_run_name="knn[{method}/{network}/{day}]", cache_policy=NO_CACHE)
def knn_day(config: Config, method: str, network: str, day: dt.date) -> dict | None:
    """Per-class and macro F1 of the day's 3-NN leave-one-out (None when there is nothing to score)."""
    s = _knn_day(config, method, network, day)
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
