"""What a network-day produces, and which of it is stale: the nightly flow rebuilds the stale features of a
network, and the backfill skips a day only when everything it produces is current (docs/pipeline.md,
Lineage)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from darkembed.config import Config
from darkembed.lineage import partition_stale
from darkembed.stages.read import pair_name

#: The feature stages of a network-day, built before its embeddings (the activity report is built with them).
FEATURE_STAGES = ("packets", "labels", "corpus", "graph")

#: A partition of a day: (stage, network, embedding method or None).
Part = tuple[str, str, str | None]


def feature_parts(network: str) -> list[Part]:
    """The network-day's feature partitions and its activity report."""
    return [(s, network, None) for s in (*FEATURE_STAGES, "reports")]


def day_parts(
    config: Config, network: str, evaluate: bool = True, networks: Sequence[str] | None = None
) -> list[Part]:
    """Every partition (stage, network, method) a network-day produces: features, report, each method's
    embeddings and checkpoint, and with `evaluate` the results of each pair the network provides for (whose
    customer is among `networks`, when given) and each adapted method."""
    parts = feature_parts(network)
    parts += [(s, network, m) for m in config.embed.methods for s in ("embeddings", "models")]
    if evaluate:
        parts += [
            ("results", pair_name(p.provider, p.customer), m)
            for p in config.pairs
            if p.provider == network and (networks is None or p.customer in networks)
            for m in config.adapt.methods
        ]
    return parts


def day_stale(config: Config, day: dt.date, parts: Sequence[Part]) -> list[str]:
    """Why each of `parts` (see `day_parts`) is not current on `day` (empty when all are)."""
    out = []
    for s, n, m in parts:
        why = partition_stale(config, s, n, day, m)
        if why:
            out.append(f"{s}[{n}{f'/{m}' if m else ''}]: {why}")
    return out


def day_complete(config: Config, network: str, day: dt.date, evaluate: bool = True) -> bool:
    """Whether every partition the network-day produces (`day_parts`) is complete and current."""
    return not day_stale(config, day, day_parts(config, network, evaluate))
