"""HDBSCAN on host embeddings: full vectors vs PCA first, time and agreement.

Run: `python benchmarks/bench_cluster.py [--hosts 20000] [--dims 128] [--reduce 32]`. Generates planted clusters
on the unit sphere (log-uniform sizes, like scanner organisations and botnets) plus unclustered background hosts,
clusters the full L2-normalised vectors and their PCA projection with the same HDBSCAN settings
(`min_cluster_size = 5`), and prints seconds, the speed-up, the adjusted Rand index (ARI) between the two
clusterings and of each with the planted truth (background = noise).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
from sklearn.metrics import adjusted_rand_score

from darkembed.cluster import cluster_embeddings


def planted(hosts: int, dims: int, clusters: int, background: float, spread: float, seed: int):
    """Unit vectors: `clusters` planted groups (log-uniform sizes) and a `background` share of scattered hosts."""
    rng = np.random.default_rng(seed)
    n_bg = int(background * hosts)
    sizes = np.exp(rng.uniform(np.log(5), np.log(2000), clusters))
    sizes = np.maximum(5, np.round(sizes / sizes.sum() * (hosts - n_bg))).astype(int)
    xs, truth = [], []
    for c, s in enumerate(sizes):
        centre = rng.normal(size=dims)
        xs.append(centre / np.linalg.norm(centre) + spread * rng.normal(size=(s, dims)) / np.sqrt(dims))
        truth += [c] * s
    xs.append(rng.normal(size=(n_bg, dims)))
    truth += [-1] * n_bg
    X = np.concatenate(xs).astype(np.float32)
    return X, np.array(truth)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20000)
    ap.add_argument("--dims", type=int, default=128)
    ap.add_argument("--reduce", type=int, default=32)
    ap.add_argument("--clusters", type=int, default=150)
    ap.add_argument("--background", type=float, default=0.4)
    ap.add_argument("--spread", type=float, default=0.5)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    X, truth = planted(args.hosts, args.dims, args.clusters, args.background, args.spread, seed=0)
    full = cluster_embeddings(X, reduce_dims=None, n_jobs=args.jobs)
    red = cluster_embeddings(X, reduce_dims=args.reduce, n_jobs=args.jobs)
    ari = adjusted_rand_score(full.labels, red.labels)
    print(
        f"hosts {X.shape[0]}, dims {X.shape[1]}, planted clusters {args.clusters}, background {args.background}"
    )
    print(
        f"full    {full.seconds:7.2f} s  clusters {full.n_clusters:4d}  noise {np.mean(full.labels < 0):.1%}  "
        f"ARI vs truth {adjusted_rand_score(truth, full.labels):.3f}"
    )
    print(
        f"PCA {args.reduce:<3d} {red.seconds:7.2f} s  clusters {red.n_clusters:4d}  noise {np.mean(red.labels < 0):.1%}  "
        f"ARI vs truth {adjusted_rand_score(truth, red.labels):.3f}  (kept variance {red.explained_variance:.2f})"
    )
    print(f"speed-up {full.seconds / red.seconds:.1f}x, ARI(full, reduced) = {ari:.3f}")


if __name__ == "__main__":
    main()
