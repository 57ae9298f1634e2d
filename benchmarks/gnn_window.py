"""i-GCN-GRU against its window H on a small world (docs/results.md, "i-GCN-GRU and the window").

Leave-one-out 3-NN macro F1 on the true classes of darknet-a, mean of days 3-5, per model variant, window H and
seed; also the F1 of hosts active on every day of the window and of the rest, and how well the embedding predicts
the number of days a host was active in the window (the cause of the drop). Variants: `igcngru`, `igcngru:rep`
(day t repeated H + 1 times: same depth, no history), `igcngru:init` (learning rate 0: untrained), `igcngru:skip`
(`gnn.absent_days: skip`: a host's state passes unchanged through the days it was absent), `igcn`.

Prepare a world and its graph partitions (data root D), then run:

    darkembed simulate --out var/w --days 5 --scale 0.05 --seed 15
    darkembed -c overlay.yaml backfill 2023-01-01 2023-01-05   # overlay: data_root D, networks' captures in var/w
    python benchmarks/gnn_window.py var/w D 15,16 0,1,2,4 igcngru,igcngru:rep,igcngru:init,igcn

Prints one JSON line per (variant, H, seed). An experiment script, not a throughput benchmark.
"""

import datetime as dt
import json
import sys
import time

import numpy as np
import torch

from darkembed.config import GnnConfig
from darkembed.embed.gnn import GnnTrainer
from darkembed.evaluate.classifiers import knn_loo
from darkembed.graph import to_pyg
from darkembed.layout import Layout
from darkembed.simulate.baseline import UNKNOWN, macro_scores, truth_classes

torch.set_num_threads(1)
W, D = sys.argv[1], sys.argv[2]
seeds = [int(s) for s in sys.argv[3].split(",")]
hs = [int(h) for h in sys.argv[4].split(",")]
methods = sys.argv[5].split(",")
days = [dt.date(2023, 1, 1) + dt.timedelta(days=i) for i in range(5)]
lay = Layout(D)
graphs = [to_pyg(lay.graph("darknet-a", d)) for d in days]
truth = [truth_classes(W, "darknet-a", d.isoformat()) for d in days]
EVAL = [2, 3, 4]


def f1(i, ips, X, mask=None):
    lab = np.array([truth[i].get(int(a), UNKNOWN) for a in ips], dtype=object)
    res = knn_loo(X, lab)
    y, p = res.y_true, res.y_pred
    classes = sorted(set(y.tolist()) - {UNKNOWN})
    sel = np.ones(len(y), bool) if mask is None else mask[res.rows]
    return macro_scores(y[sel], p[sel], classes)[2]


def present_all(i, h, ips):
    """hosts of day i active on every day of [i-h, i]"""
    ok = np.ones(len(ips), bool)
    for j in range(max(0, i - h), i):
        ok &= np.isin(ips, graphs[j].host_ip.numpy())
    return ok


out = []
for m in methods:
    base, _, variant = m.partition(":")
    for h in hs if "gru" in m else [0]:
        for s in seeds:
            cfg = GnnConfig(history=h)
            if variant == "init":
                cfg = cfg.model_copy(update={"lr": 0.0})  # untrained: the initial weights, BN recalibrated
            if variant == "skip":
                cfg = cfg.model_copy(update={"absent_days": "skip"})
            tr = GnnTrainer(base, True, cfg, "cpu", seed=s)
            t0 = time.time()
            row = {"method": m, "H": h, "seed": s, "f1": [], "f1_full": [], "f1_part": [], "share_full": []}
            for i in range(5):
                win = graphs[max(0, i - h) : i + 1]
                if variant == "rep":
                    win = [graphs[i]] * len(win)
                tr.update(win)
                if i in EVAL:
                    ips, X = tr.embed(win)
                    full = present_all(i, 4, ips)
                    row["f1"].append(f1(i, ips, X))
                    row["share_full"].append(float(full.mean()))
                    cnt = sum(
                        np.isin(ips, graphs[j].host_ip.numpy()).astype(int)
                        for j in range(max(0, i - 4), i + 1)
                    )
                    rp = knn_loo(X, np.array([f"d{c}" for c in cnt], dtype=object), min_class_size=0)
                    row.setdefault("presence_f1", []).append(
                        macro_scores(rp.y_true, rp.y_pred, sorted(set(rp.y_true.tolist())))[2]
                    )
                    row["f1_full"].append(f1(i, ips, X, full))
                    row["f1_part"].append(f1(i, ips, X, ~full) if (~full).any() else float("nan"))
            row = {k: (float(np.mean(v)) if isinstance(v, list) else v) for k, v in row.items()}
            row["sec"] = round(time.time() - t0, 1)
            print(json.dumps(row), flush=True)
            out.append(row)
