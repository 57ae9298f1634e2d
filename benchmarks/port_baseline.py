"""How hard is the simulated world? The port-histogram baseline of REFERENCE.md section 5.8 on it.

For one darknet and day of a simulated world: keep hosts with at least 5 packets; for each true class (not
unknown) take its `--top` most-hit `port/proto` tokens and union them; a host's features are the fractions of its
packets sent to each token; classify each labelled host by a 7-NN majority vote (cosine, leave-one-out) and report
macro precision/recall/F1 over the classes with more than 10 hosts (docs/method.md 2.3, 7.6). Two pools of
neighbours: labelled hosts only, and all hosts (unknown hosts vote as `unknown`, which is not a target class).

    python benchmarks/port_baseline.py [WORLD] [--network darknet-a] [--top 5] [--k 7]

WORLD defaults to a fresh world of the embedded default config written to a temporary folder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from darkembed.simulate.check import read_day  # noqa: E402


def features(world: Path, network: str, day: str, top: int):
    """(hosts (H,), classes (H,), feature matrix (H, T), tokens) for hosts with >= 5 packets."""
    cap = read_day(world, network, day).columns
    src = cap["src_ip"]
    proto = cap["proto"]
    port = cap["dst_port"]  # 0 for ICMP
    token = port * 256 + proto
    t = pq.read_table(world / "truth" / "truth.parquet").to_pandas()
    t = t[(t["network"] == network) & (t["day"].astype(str) == day)]
    cls_of = dict(zip(t["src_ip"].astype(np.int64), t["class"], strict=True))
    hosts, inv, counts = np.unique(src, return_inverse=True, return_counts=True)
    keep = counts >= 5
    classes = np.array([cls_of[int(h)] for h in hosts], dtype=object)
    pk_cls = classes[inv]
    vocab: list[int] = []
    for c in sorted(set(classes[keep]) - {"unknown"}):
        m = (pk_cls == c) & keep[inv]
        toks, n = np.unique(token[m], return_counts=True)
        vocab += toks[np.argsort(-n, kind="stable")][:top].tolist()
    vocab = sorted(set(vocab))
    col = {tok: i for i, tok in enumerate(vocab)}
    x = np.zeros((len(hosts), len(vocab)))
    pos = np.array([col.get(int(tok), -1) for tok in token])
    sel = pos >= 0
    np.add.at(x, (inv[sel], pos[sel]), 1.0)
    x /= counts[:, None]
    names = [f"{tok // 256}/{ {6: 'tcp', 17: 'udp', 1: 'icmp'}.get(tok % 256, tok % 256) }" for tok in vocab]
    return hosts[keep], classes[keep], x[keep], names


def knn_loo(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Leave-one-out k-NN majority vote with cosine distance; ties go to the nearest tied neighbour."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=min(k + 1, len(x)), metric="cosine", algorithm="brute").fit(x)
    _, idx = nn.kneighbors(x)
    pred = np.empty(len(x), dtype=object)
    for i, row in enumerate(idx):
        row = [j for j in row if j != i][:k]
        votes = Counter(y[j] for j in row)
        best = max(votes.values())
        pred[i] = next(y[j] for j in row if votes[y[j]] == best)
    return pred


def macro(
    y: np.ndarray, pred: np.ndarray, classes: list[str]
) -> tuple[float, float, float, dict[str, float]]:
    per = {}
    ps, rs, fs = [], [], []
    for c in classes:
        tp = np.sum((pred == c) & (y == c))
        p = tp / max(np.sum(pred == c), 1)
        r = tp / max(np.sum(y == c), 1)
        f = 2 * p * r / (p + r) if p + r else 0.0
        ps.append(p)
        rs.append(r)
        fs.append(f)
        per[c] = f
    return float(np.mean(ps)), float(np.mean(rs)), float(np.mean(fs)), per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("world", nargs="?", type=Path)
    ap.add_argument("--network", default="darknet-a")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--k", type=int, default=7)
    args = ap.parse_args()
    tmp = None
    world = args.world
    if world is None:
        from darkembed.config import load_config
        from darkembed.simulate import simulate

        tmp = Path(tempfile.mkdtemp(prefix="darkembed-world-"))
        simulate(load_config(), out=tmp)
        world = tmp
    try:
        days = sorted(p.name for p in (world / args.network).iterdir() if p.name[:2] == "20")
        f1_lab, f1_all = [], []
        for day in days:
            hosts, y, x, names = features(world, args.network, day, args.top)
            counts = Counter(y)
            targets = sorted(c for c, n in counts.items() if c != "unknown" and n > 10)
            lab = np.isin(y, targets)
            pred = knn_loo(x[lab], y[lab], args.k)
            p, r, f, per = macro(y[lab], pred, targets)
            y_all = np.where(lab, y, "unknown")
            pred_all = knn_loo(x, y_all, args.k)[lab]
            p2, r2, f2, _ = macro(y[lab], pred_all, targets)
            f1_lab.append(f)
            f1_all.append(f2)
            print(f"{args.network} {day}: {len(hosts)} hosts (>=5 pkts), {int(lab.sum())} labelled in "
                  f"{len(targets)} classes, {len(names)} port tokens")  # fmt: skip
            print(f"  7-NN labelled pool  macro P/R/F1 {p:.2f}/{r:.2f}/{f:.2f}")
            print(f"  7-NN with unknowns  macro P/R/F1 {p2:.2f}/{r2:.2f}/{f2:.2f}")
            print("  per-class F1 (labelled pool): " + ", ".join(f"{c} {v:.2f}" for c, v in per.items()))
        print(f"mean over {len(days)} day(s): macro F1 {np.mean(f1_lab):.3f} (labelled pool), "
              f"{np.mean(f1_all):.3f} (with unknowns)")  # fmt: skip
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
