"""The port-histogram baseline: how hard is a network-day to classify from destination ports alone?

The protocol (docs/realism.md, "Port baseline"), after the DarkVec authors' baseline that reaches macro F1 0.50 on
real darknet traffic:

* TCP packets only; hosts with at least `MIN_TCP_PACKETS` TCP packets that day;
* true classes (each scanner organisation its own class); `unknown` is not a class;
* the vocabulary is the union over the labelled classes of each class's `top` most-hit TCP destination ports
  (ties by port number); a host's features are the fractions of its TCP packets sent to each of those ports;
* leave-one-out k-NN (k = 3, cosine) majority vote among the labelled hosts (ties go to the nearest tied
  neighbour); precision, recall and F1 per class, macro-averaged over the classes with more than
  `MIN_CLASS_HOSTS` hosts that day.

A second score lets every host vote (unknown hosts vote `unknown`, which counts as a miss): it shows how much the
unlabelled hosts that behave like a class blur it.

`port_baseline` works on packet arrays so that `darkembed simulate --check` scores the captures it has already
read; `baseline_day` reads a network-day of a written world itself (the benchmark's entry point).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

#: Hosts with fewer TCP packets in the day are left out (the papers' activity filter).
MIN_TCP_PACKETS = 5
#: Classes with at most this many hosts in the day are not scored (REFERENCE choice of [GNN]'s code).
MIN_CLASS_HOSTS = 10
UNKNOWN = "unknown"


@dataclass
class BaselineResult:
    """The baseline on one network-day.

    Attributes:
        hosts: hosts with at least `MIN_TCP_PACKETS` TCP packets.
        labelled: of those, hosts of a scored class.
        classes: the scored classes.
        ports: size of the port vocabulary.
        precision, recall, f1: macro averages over the scored classes, labelled hosts voting.
        f1_all: macro F1 when every host votes (unknown hosts vote `unknown`).
        per_class: F1 per scored class (labelled hosts voting).
    """

    hosts: int = 0
    labelled: int = 0
    classes: list[str] = field(default_factory=list)
    ports: int = 0
    precision: float = float("nan")
    recall: float = float("nan")
    f1: float = float("nan")
    f1_all: float = float("nan")
    per_class: dict[str, float] = field(default_factory=dict)


def knn_loo(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Leave-one-out k-NN majority vote with cosine distance; ties go to the nearest tied neighbour.

    A host whose features are all zero is at distance 1 from every host.
    """
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    pred = np.empty(n, dtype=object)
    if n < 2:
        return pred
    nn = NearestNeighbors(n_neighbors=min(k + 1, n), metric="cosine", algorithm="brute").fit(x)
    _, idx = nn.kneighbors(x)
    for i, row in enumerate(idx):
        row = [j for j in row if j != i][:k]
        votes = Counter(y[j] for j in row)
        best = max(votes.values())
        pred[i] = next(y[j] for j in row if votes[y[j]] == best)
    return pred


def macro_scores(
    y: np.ndarray, pred: np.ndarray, classes: list[str]
) -> tuple[float, float, float, dict[str, float]]:
    """Macro precision, recall, F1 over `classes` and the F1 of each."""
    per = {}
    ps, rs, fs = [], [], []
    for c in classes:
        tp = float(np.sum((pred == c) & (y == c)))
        p = tp / max(float(np.sum(pred == c)), 1.0)
        r = tp / max(float(np.sum(y == c)), 1.0)
        f = 2 * p * r / (p + r) if p + r else 0.0
        ps.append(p)
        rs.append(r)
        fs.append(f)
        per[c] = f
    return float(np.mean(ps)), float(np.mean(rs)), float(np.mean(fs)), per


def port_features(
    src: np.ndarray, proto: np.ndarray, dport: np.ndarray, class_of: dict[int, str], top: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-host port histograms over the classes' top ports.

    Args:
        src, proto, dport: one network-day's IPv4 packets (any order).
        class_of: true class per source address; sources it lacks are `unknown`.
        top: most-hit ports taken per class.

    Returns:
        (hosts (H,), classes (H,), features (H, T) float64, ports (T,)) for the hosts with at least
        `MIN_TCP_PACKETS` TCP packets, sorted by address.
    """
    tcp = proto == 6
    hosts, inv, counts = np.unique(src[tcp], return_inverse=True, return_counts=True)
    ports_tcp = dport[tcp]
    keep = counts >= MIN_TCP_PACKETS
    classes = np.array([class_of.get(int(h), UNKNOWN) for h in hosts], dtype=object)
    pk_keep = keep[inv]
    pk_cls = classes[inv]
    vocab: set[int] = set()
    for c in sorted(set(classes[keep]) - {UNKNOWN}):
        p, n = np.unique(ports_tcp[pk_keep & (pk_cls == c)], return_counts=True)
        vocab.update(p[np.argsort(-n, kind="stable")][:top].tolist())
    ports = np.array(sorted(vocab), dtype=np.int64)
    col = np.searchsorted(ports, ports_tcp)
    col = np.minimum(col, max(len(ports) - 1, 0))
    hit = (ports[col] == ports_tcp) if len(ports) else np.zeros(len(ports_tcp), dtype=bool)
    x = np.zeros((len(hosts), len(ports)))
    np.add.at(x, (inv[hit], col[hit]), 1.0)
    x /= counts[:, None]
    return hosts[keep], classes[keep], x[keep], ports


def port_baseline(
    src: np.ndarray,
    proto: np.ndarray,
    dport: np.ndarray,
    class_of: dict[int, str],
    *,
    k: int = 3,
    top: int = 5,
) -> BaselineResult:
    """The baseline of the module docstring on one network-day's packets (see `port_features` for the args)."""
    hosts, y, x, ports = port_features(src, proto, dport, class_of, top)
    counts = Counter(y.tolist())
    classes = sorted(c for c, n in counts.items() if c != UNKNOWN and n > MIN_CLASS_HOSTS)
    res = BaselineResult(hosts=len(hosts), classes=classes, ports=len(ports))
    lab = np.isin(y, classes)
    res.labelled = int(lab.sum())
    if not classes or res.labelled < 2:
        return res
    pred = knn_loo(x[lab], y[lab], k)
    res.precision, res.recall, res.f1, res.per_class = macro_scores(y[lab], pred, classes)
    y_all = np.where(lab, y, UNKNOWN)
    pred_all = knn_loo(x, y_all, k)[lab]
    res.f1_all = macro_scores(y[lab], pred_all, classes)[2]
    return res


def truth_classes(world: str | Path, network: str, day: str) -> dict[int, str]:
    """True class per source address of one network-day, from `<world>/truth/truth.parquet`."""
    t = pq.read_table(Path(world) / "truth" / "truth.parquet", columns=["src_ip", "day", "network", "class"])
    net = t.column("network").to_numpy(zero_copy_only=False)
    days = t.column("day").cast("string").to_numpy(zero_copy_only=False)
    m = (net == network) & (days == day)
    src = t.column("src_ip").to_numpy()[m]
    cls = t.column("class").to_numpy(zero_copy_only=False)[m]
    return dict(zip(src.astype(np.int64).tolist(), cls.tolist(), strict=True))


def baseline_day(world: str | Path, network: str, day: str, *, k: int = 3, top: int = 5) -> BaselineResult:
    """The baseline on one network-day of a written world (`<world>/<network>/<day>/*.pcap.gz`)."""
    from darkembed.simulate.check import read_day

    cap = read_day(world, network, day).columns
    return port_baseline(
        cap["src_ip"], cap["proto"], cap["dst_port"], truth_classes(world, network, day), k=k, top=top
    )
