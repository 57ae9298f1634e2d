"""Seconds per fold of the [TNSM] classifier and aligners, and of the leave-one-out kNN, at paper scale.

Run: `python benchmarks/bench_adapt.py [--hosts 10000] [--dims 128] [--threads 2] [--epochs 50]`. A synthetic
provider of `hosts` hosts (10 classes with the [TNSM] Table I shares, one third unknown) and a customer that sees
73 % of them through a random rotation plus noise. Times one fold (training folds = 80 %): the DNN classifier
(e -> 512 -> 256 -> |C|, 50 epochs, batch 128), the configured aligners (closed-form linear, non-linear DNN
3 x 256 at batch 64) on the training-fold anchors, Procrustes, with `--paper` the paper's 3 x 1024 DNN aligners
at batch 32, and the kNN leave-one-out over all hosts. Reference for the
ratio: the paper's V100 figures (24 s/fold classifier, 60 s/fold aligner, docs/method.md 5.2 and 5.5).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from gpu_adapt import synthetic  # the same synthetic world (benchmarks/ is the script's directory)

from darkembed.adapt.aligners import aligner_from_config
from darkembed.config import AdaptConfig, EvaluateConfig
from darkembed.evaluate.classifiers import DNNClassifier, knn_loo
from darkembed.evaluate.protocol import NetworkDay, make_folds


def world(hosts: int, dims: int, seed: int = 0):
    X, labels, Xc, seen = synthetic(hosts, dims, seed)
    ips = np.random.default_rng(seed).choice(2**31, size=labels.size, replace=False).astype(np.uint32)
    return NetworkDay.of(ips, X, labels), NetworkDay.of(ips[seen], Xc[seen], labels[seen])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=10000)
    ap.add_argument("--dims", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument(
        "--aligner-epochs", type=int, default=None, help="default --epochs; the time scales linearly"
    )
    ap.add_argument(
        "--paper", action="store_true", help="also time the paper's 3 x 1024 DNN aligners (minutes)"
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
    paper = adapt.model_copy(update={"width": 1024, "batch_size": 32, "lr": 1e-3, "linear_solver": "dnn"})
    runs = [("procrustes", adapt), ("linear", adapt), ("nonlinear", adapt)]
    if args.paper:
        runs += [("linear", paper), ("nonlinear", paper)]
    for kind, acfg in runs:
        t0 = time.perf_counter()
        a = aligner_from_config(kind, acfg, seed=15).fit(yc, yp)
        out = a.transform(customer.X)
        dt = time.perf_counter() - t0
        cos = float(np.mean((out[c_rows] * provider.X[p_rows]).sum(1) / np.linalg.norm(out[c_rows], axis=1)
                            / np.linalg.norm(provider.X[p_rows], axis=1)))  # fmt: skip
        label = kind + (" (paper DNN)" if acfg is paper else "")
        print(
            f"{label:<24} {dt:8.2f} s/fold  ({int(train.sum())} anchor pairs; mean cosine to provider {cos:.3f})"
        )
    t0 = time.perf_counter()
    res = knn_loo(provider.X, provider.labels)
    print(
        f"kNN LOO          {time.perf_counter() - t0:8.2f} s/day   ({res.rows.size} scored hosts of {provider.ips.size})"
    )


if __name__ == "__main__":
    main()
