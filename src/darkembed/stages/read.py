"""What several stages read the same way: a network-day's packets, its embeddings joined with its labels, the
graphs of a window of days, whether a partition is current, and the file names inside partitions."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from darkembed.config import Config
from darkembed.layout import Layout
from darkembed.lineage import partition_stale
from darkembed.store import partition_files, read_manifest

log = logging.getLogger(__name__)

#: The LineSentence file of a `corpus` partition (what Word2Vec trains from).
CORPUS_FILE = "corpus.txt"
#: The sentences table of a `corpus` partition.
SENTENCES_FILE = "sentences.parquet"
#: The table of a `labels` partition.
LABELS_FILE = "labels.parquet"
#: The table of an `embeddings` partition.
EMBEDDINGS_FILE = "embeddings.parquet"

#: Label sources a customer darknet knows by itself; honeypot-derived labels come from the provider.
OWN_SOURCE_PREFIXES = ("scanner:", "fingerprint:", "external:")


def pair_name(provider: str, customer: str) -> str:
    """The `network` of a pair's `results` partitions: `<provider>~<customer>`."""
    return f"{provider}~{customer}"


def packets_lazy(config: Config, network: str, day: dt.date) -> pl.LazyFrame:
    """The day's `packets` partition of a network as a polars LazyFrame (empty when it holds no file)."""
    files = partition_files(Layout(config.data_path).packets(network, day))
    if not files:
        from darkembed.schemas import PACKETS

        return pl.from_arrow(PACKETS.empty_table()).lazy()
    return pl.scan_parquet(files)


def active_lazy(config: Config, network: str, day: dt.date) -> pl.LazyFrame:
    """The day's active packets of a network (`activity.active_packets` with the network's SYN rule)."""
    from darkembed.activity import active_packets

    net = config.network(network)
    syn_only = net.kind == "honeypot" and config.activity.honeypot_syn_only
    return active_packets(packets_lazy(config, network, day), config.activity, syn_only=syn_only)


def is_current(config: Config, stage: str, network: str, day: dt.date, method: str | None = None) -> bool:
    """Whether the stage's partition of the network-day is complete and current (`lineage.partition_stale`: made
    with the configuration sections it depends on, from unchanged inputs, on the configured chain); `method` names
    the embedding method of `embeddings`, `models` and `results`."""
    return partition_stale(config, stage, network, day, method) is None


def labelled_embeddings(
    config: Config, method: str, network: str, day: dt.date
) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """The day's embeddings of the network's active hosts (addresses, matrix) and, row for row, their `label` and
    `source` ("unknown" and "none" for a host without a label).

    Raises:
        PartitionMissingError: the embeddings partition of the day is not complete.
    """
    from darkembed.schemas import embeddings_arrays

    lay = Layout(config.data_path)
    part = lay.embeddings(method, network, day)
    read_manifest(part)
    ips, X = embeddings_arrays(pq.read_table(part / EMBEDDINGS_FILE))
    labels = pl.read_parquet(lay.labels(network, day) / LABELS_FILE, columns=["src_ip", "label", "source"])
    frame = pl.DataFrame({"src_ip": ips}).join(labels, on="src_ip", how="left", maintain_order="left")
    frame = frame.with_columns(pl.col("label").fill_null("unknown"), pl.col("source").fill_null("none"))
    return ips, X, frame


def load_network_day(
    config: Config, method: str, network: str, day: dt.date, *, activity: bool = False
) -> tuple[Any, np.ndarray]:
    """Embeddings of the day's active hosts with their labels (a `NetworkDay`), and, row for row, the labels the
    network knows by itself (`OWN_SOURCE_PREFIXES`; "unknown" elsewhere). With `activity` (the customer of a pair)
    and the open-set activity gate configured, also the hosts' activity features (`host_activity`)."""
    from darkembed.evaluate.protocol import NetworkDay

    ips, X, frame = labelled_embeddings(config, method, network, day)
    own_source = pl.col("source").str.contains(
        "^(" + "|".join(p.rstrip(":") for p in OWN_SOURCE_PREFIXES) + "):"
    )
    own = (
        frame.select(pl.when(own_source).then(pl.col("label")).otherwise(pl.lit("unknown")))
        .to_series()
        .to_numpy()
    )
    ev = config.evaluate
    features = (
        host_activity(config, network, day, ips) if activity and ev.abstain and ev.abstain_activity else None
    )
    return NetworkDay.of(ips, X, frame["label"].to_numpy(), features), own.astype(object)


def host_activity(config: Config, network: str, day: dt.date, ips: np.ndarray) -> np.ndarray | None:
    """The graph stage's per-host activity features of the day (`darkembed.graph.FEATURES`), row for row with
    `ips` (zeros for a host the graph lacks); None, with a warning, when the day's graph partition is not complete
    (the open-set answers then use the embeddings' confidence alone)."""
    from darkembed.graph import FEATURES
    from darkembed.store import is_complete

    part = Layout(config.data_path).graph(network, day)
    if not is_complete(part):
        log.warning("%s %s: no complete graph partition at %s: open-set answers without the activity gate",
                    network, day, part)  # fmt: skip
        return None
    hosts = pl.read_parquet(part / "hosts.parquet", columns=["src_ip", *FEATURES])
    rows = pl.DataFrame({"src_ip": np.asarray(ips, dtype=np.uint32)}).join(hosts, on="src_ip", how="left")
    return rows.select(FEATURES).fill_null(0.0).to_numpy().astype(np.float64)


def day_graphs(config: Config, network: str, day: dt.date, days: int, features: bool) -> list:
    """PyG graphs of the `days` days ending at `day` that have a complete graph partition (oldest first).

    Raises:
        PartitionMissingError: the day's own graph is not complete.
    """
    from darkembed.graph import to_pyg
    from darkembed.store import is_complete

    lay = Layout(config.data_path)
    out = []
    for back in range(days - 1, -1, -1):
        d = day - dt.timedelta(days=back)
        part = lay.graph(network, d)
        if is_complete(part):
            out.append(to_pyg(part, features=features, node_type_indicator=config.graph.node_type_indicator))
        elif back == 0:
            read_manifest(part)  # raises: the day's own graph is required
    return out
