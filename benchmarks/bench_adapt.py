"""Seconds per fold of the [TNSM] classifier and aligners, and of the leave-one-out kNN, at paper scale.

Run: `python benchmarks/bench_adapt.py [--hosts 10000] [--dims 128] [--threads 2] [--epochs 50]`. A synthetic
provider of `hosts` hosts (10 classes with the [TNSM] Table I shares, one third unknown) and a customer that sees
73 % of them through a random rotation plus noise. Times one fold (training folds = 80 %): the DNN classifier
(e -> 512 -> 256 -> |C|, 50 epochs, batch 128), the linear and non-linear DNN aligners (3 x 1024, 50 epochs,
batch 32) on the training-fold anchors, Procrustes, and the kNN leave-one-out over all hosts. Reference for the
ratio: the paper's V100 figures (24 s/fold classifier, 60 s/fold aligner, REFERENCE.md 5.2 and 5.5).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from scipy.stats import special_ortho_group

from darkembed.adapt.aligners import make_aligner
from darkembed.config import AdaptConfig, EvaluateConfig
from darkembed.evaluate.classifiers import DNNClassifier, knn_loo
from darkembed.evaluate.protocol import NetworkDay, make_folds

SHARES = {"zombie": 9127, "shadowserver": 289, "driftnet": 252, "internetcensus": 208, "spammer": 25, "onyphe": 96,
          "rapid7": 29, "censys": 24, "shodan": 30, "securitytrails": 18, "unknown": 4809}  # fmt: skip


def world(hosts: int, dims: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    total = sum(SHARES.values())
    labels = np.concatenate([[c] * max(5, round(n / total * hosts)) for c, n in SHARES.items()]).astype(
        object
    )
    centres = {c: rng.normal(size=dims) for c in SHARES}
    X = np.stack([centres[c] for c in labels]) + 1.5 * rng.normal(size=(labels.size, dims))
    X = X.astype(np.float32)
    ips = rng.choice(2**31, size=labels.size, replace=False).astype(np.uint32)
    rot = special_ortho_group.rvs(dims, random_state=1).astype(np.float32)
    seen = rng.random(labels.size) < 0.73
    Xc = X[seen] @ rot.T + 0.1 * rng.normal(size=(int(seen.sum()), dims)).astype(np.float32)
    return NetworkDay.of(ips, X, labels), NetworkDay.of(ips[seen], Xc, labels[seen])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=10000)
    ap.add_argument("--dims", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument(
        "--aligner-epochs", type=int, default=None, help="default --epochs; the time scales linearly"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    provider, customer = world(args.hosts, args.dims)
    cfg = EvaluateConfig(dnn_epochs=args.epochs)
    adapt = AdaptConfig(epochs=args.aligner_epochs or args.epochs)
    folds = make_folds(provider, customer, cfg)
    s = folds.split(0, provider.ips)
    lab = folds.relabel(provider.labels)
    print(
        f"provider {provider.ips.size} hosts ({(lab != 'unknown').sum()} labelled), customer {customer.ips.size}, "
        f"e = {args.dims}, {args.threads} threads, device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    clf = DNNClassifier.from_config(cfg).fit(provider.X[s.train], lab[s.train], provider.X[s.val], lab[s.val])
    print(
        f"DNN classifier   {clf.fit_seconds:8.2f} s/fold  ({int((lab[s.train] != 'unknown').sum())} training "
        f"hosts, {args.epochs} epochs; paper V100: 24 s)"
    )
    shared, p_rows, c_rows = np.intersect1d(provider.ips, customer.ips, return_indices=True)
    train = folds.fold[folds.rows(shared)] != 0
    yc, yp = customer.X[c_rows[train]], provider.X[p_rows[train]]
    for kind in ("procrustes", "linear", "nonlinear"):
        params = {} if kind == "procrustes" else {"epochs": adapt.epochs, "width": adapt.width}
        t0 = time.perf_counter()
        a = make_aligner(kind, **params).fit(yc, yp)
        out = a.transform(customer.X)
        dt = time.perf_counter() - t0
        cos = float(np.mean((out[c_rows] * provider.X[p_rows]).sum(1) / np.linalg.norm(out[c_rows], axis=1)
                            / np.linalg.norm(provider.X[p_rows], axis=1)))  # fmt: skip
        print(
            f"{kind:<16} {dt:8.2f} s/fold  ({int(train.sum())} anchor pairs; mean cosine to provider {cos:.3f})"
        )
    t0 = time.perf_counter()
    res = knn_loo(provider.X, provider.labels)
    print(
        f"kNN LOO          {time.perf_counter() - t0:8.2f} s/day   ({res.rows.size} scored hosts of {provider.ips.size})"
    )


if __name__ == "__main__":
    main()
