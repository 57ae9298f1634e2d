"""HDBSCAN on a network's host embeddings, cluster metrics and the knowledge gained (docs/method.md 5.7, 7.6).

Pure functions over `X` float32 (n, e) and per-host labels (object (n,), `unknown` = none); the cluster flow reads
the day's embeddings and labels and stores what these return.

Clustering runs on L2-normalised vectors (Euclidean distance between unit vectors is monotone in cosine distance),
optionally after PCA to `reduce_dims` components: HDBSCAN's tree-based neighbour search degrades towards brute
force in high dimensions (128-d i-DarkVec vectors), while PCA on unit vectors keeps the pairwise distances that
matter (the clusters' directions carry most of the variance); `benchmarks/bench_cluster.py` and the tests measure
the agreement (adjusted Rand index) between reduced and full clusterings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from darkembed.vocabulary import UNKNOWN

log = logging.getLogger(__name__)

NOISE = -1


@dataclass(frozen=True)
class Clustering:
    """HDBSCAN output.

    Attributes:
        labels: cluster id per host, int64 (n,); -1 = noise.
        reduced_dims: PCA components clustered, None when the full vectors were.
        explained_variance: share of the (normalised) variance the PCA components keep; None without PCA.
        seconds: wall time of reduction plus HDBSCAN (s).
    """

    labels: np.ndarray
    reduced_dims: int | None
    explained_variance: float | None
    seconds: float

    @property
    def n_clusters(self) -> int:
        return int(np.unique(self.labels[self.labels != NOISE]).size)


def l2_normalise(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32 (n, e)."""
    X = np.asarray(X, dtype=np.float32)
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norm > 0, norm, 1)


def reduce(X: np.ndarray, dims: int, seed: int = 15) -> tuple[np.ndarray, float]:
    """PCA of `X` (n, e) to `dims` components: (float32 (n, dims), kept variance share)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=dims, random_state=seed, svd_solver="auto")
    Z = pca.fit_transform(X).astype(np.float32)
    return Z, float(pca.explained_variance_ratio_.sum())


def cluster_embeddings(
    X: np.ndarray,
    *,
    min_cluster_size: int = 5,
    min_samples: int | None = None,
    reduce_dims: int | None = 32,
    selection: str = "leaf",
    seed: int = 15,
    n_jobs: int = 1,
) -> Clustering:
    """HDBSCAN over L2-normalised embeddings, Euclidean, optionally after PCA.

    Args:
        X: embeddings, float32 (n, e).
        min_cluster_size: HDBSCAN's smallest cluster.
        min_samples: core-distance neighbours; None = `min_cluster_size`.
        reduce_dims: PCA components before HDBSCAN; None (or >= e) clusters the normalised vectors as they are.
        selection: HDBSCAN's cluster selection from the condensed tree: `leaf` (the finest clusters) or `eom`
            (excess of mass, HDBSCAN's default, which on i-DarkVec spaces tends to merge Mirai bots, look-alike
            unknown bots and scanners into one cluster of most hosts).
        seed: PCA seed (randomised solvers).
        n_jobs: threads of HDBSCAN's core-distance computation.
    """
    import hdbscan

    t0 = time.perf_counter()
    Z = l2_normalise(X)
    kept = None
    dims = None
    if reduce_dims is not None and reduce_dims < Z.shape[1] and reduce_dims < Z.shape[0]:
        Z, kept = reduce(Z, reduce_dims, seed)
        dims = reduce_dims
    model = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        metric="euclidean",
        cluster_selection_method=selection,
        core_dist_n_jobs=n_jobs,
    )
    labels = model.fit_predict(Z.astype(np.float64)).astype(np.int64)
    out = Clustering(labels, dims, kept, time.perf_counter() - t0)
    log.info(
        "HDBSCAN: %d hosts, %d clusters, %.1f %% noise, %s dims, %.2f s",
        labels.size, out.n_clusters, 100 * float((labels == NOISE).mean()) if labels.size else 0.0,
        dims or Z.shape[1], out.seconds,
    )  # fmt: skip
    return out


def cluster_from_config(X: np.ndarray, cfg: Any, *, seed: int = 15, n_jobs: int = 1) -> Clustering:
    """`cluster_embeddings` with the settings of a `ClusterConfig`."""
    return cluster_embeddings(
        X, min_cluster_size=cfg.min_cluster_size, min_samples=cfg.min_samples, reduce_dims=cfg.reduce_dims,
        selection=cfg.selection, seed=seed, n_jobs=n_jobs,
    )  # fmt: skip


def cluster_metrics(
    X: np.ndarray,
    clusters: np.ndarray,
    labels: np.ndarray,
    *,
    unknown: str = UNKNOWN,
    silhouette_sample: int | None = None,
    seed: int = 15,
) -> dict[str, float]:
    """The [TNSM] Table V metrics of one clustering.

    Args:
        X: the embeddings that were clustered (full, not reduced), float32 (n, e).
        clusters: cluster id per host (n,), -1 = noise.
        labels: label per host (n,).
        unknown: the no-label value.
        silhouette_sample: compute the silhouette over a random sample of this many non-noise hosts (exact is
            O(n^2)); None = all.
        seed: seed of that sample.

    Returns:
        hosts; clusters; noise_share (0..1); homogeneity of the clusters with respect to the labels over hosts
        that are neither `unknown` nor noise (NaN if none); silhouette_mean and silhouette_std of the per-host
        cosine silhouette over non-noise hosts (NaN with fewer than 2 clusters).
    """
    from sklearn.metrics import homogeneity_score, silhouette_samples

    clusters = np.asarray(clusters, dtype=np.int64)
    labels = np.asarray(labels, dtype=object).astype(str)
    n = clusters.size
    in_cluster = clusters != NOISE
    n_clusters = int(np.unique(clusters[in_cluster]).size)
    out: dict[str, float] = {
        "hosts": float(n),
        "clusters": float(n_clusters),
        "noise_share": float((~in_cluster).mean()) if n else float("nan"),
    }
    scored = in_cluster & (labels != unknown)
    out["homogeneity"] = (
        float(homogeneity_score(labels[scored], clusters[scored])) if scored.any() else float("nan")
    )
    idx = np.flatnonzero(in_cluster)
    if silhouette_sample is not None and idx.size > silhouette_sample:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=silhouette_sample, replace=False))
    if 2 <= np.unique(clusters[idx]).size < idx.size:
        s = silhouette_samples(np.asarray(X, dtype=np.float32)[idx], clusters[idx], metric="cosine")
        out["silhouette_mean"], out["silhouette_std"] = float(s.mean()), float(s.std())
    else:
        out["silhouette_mean"] = out["silhouette_std"] = float("nan")
    return out


def explain_clusters(
    clusters: np.ndarray,
    labels: np.ndarray,
    *,
    share: float = 0.5,
    unknown: str = UNKNOWN,
) -> pl.DataFrame:
    """Per cluster: its most common known label and whether it explains the cluster.

    A cluster is explained when at least `share` of **all** its hosts (unknown included) carry one label.

    Returns:
        cluster, size, top_label (null if no host is labelled), top_count, top_share, unknown_count, explained;
        sorted by cluster id; noise excluded.
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    labels = np.asarray(labels, dtype=object).astype(str)
    frame = pl.DataFrame({"cluster": clusters, "label": labels}).filter(pl.col("cluster") != NOISE)
    sizes = frame.group_by("cluster").agg(
        pl.len().alias("size"), (pl.col("label") == unknown).sum().alias("unknown_count")
    )
    top = (
        frame.filter(pl.col("label") != unknown)
        .group_by("cluster", "label")
        .agg(pl.len().alias("top_count"))
        .sort(["cluster", "top_count", "label"], descending=[False, True, False])
        .group_by("cluster", maintain_order=True)
        .first()
        .rename({"label": "top_label"})
    )
    out = sizes.join(top, on="cluster", how="left").with_columns(pl.col("top_count").fill_null(0))
    return (
        out.with_columns((pl.col("top_count") / pl.col("size")).alias("top_share"))
        .with_columns((pl.col("top_share") >= share).alias("explained"))
        .select("cluster", "size", "top_label", "top_count", "top_share", "unknown_count", "explained")
        .sort("cluster")
    )


def knowledge_gain(
    clusters: np.ndarray,
    sources: dict[str, np.ndarray],
    *,
    share: float = 0.5,
    unknown: str = UNKNOWN,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The [TNSM] Table VI: hosts and clusters explained by each label source.

    Sources are tried in the given order (e.g. `{"GT11": own labels, "GT13": provider labels, "CTI": ...}`); a
    cluster is credited to the first source under which one label covers at least `share` of its hosts.

    Args:
        clusters: cluster id per host (n,), -1 = noise.
        sources: source name -> label per host (n,), `unknown` where that source says nothing.
        share: explanation threshold.
        unknown: the no-label value.

    Returns:
        (table, per_cluster). `table` has one row per source then `unexplained`: source, clusters, hosts (in those
        clusters), labelled (hosts carrying the explaining label), extended (hosts of those clusters that no source
        labels: newly explained), hosts_share, clusters_share. Its `hosts` sum to n (noise is counted in
        `unexplained`) and its `clusters` to the number of clusters. `per_cluster`: cluster, size, source, label.
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    n = clusters.size
    names = list(sources)
    lab = {k: np.asarray(v, dtype=object).astype(str) for k, v in sources.items()}
    for k, v in lab.items():
        if v.shape != clusters.shape:
            raise ValueError(f"labels of source {k!r} have shape {v.shape}, clusters {clusters.shape}")
    any_label = np.zeros(n, dtype=bool)
    for v in lab.values():
        any_label |= v != unknown
    explained_by = {
        k: {
            r["cluster"]: r
            for r in explain_clusters(clusters, v, share=share, unknown=unknown).iter_rows(named=True)
        }
        for k, v in lab.items()
    }
    ids = np.unique(clusters[clusters != NOISE])
    per_cluster = []
    stats = {k: {"clusters": 0, "hosts": 0, "labelled": 0, "extended": 0} for k in [*names, "unexplained"]}
    for cid in ids:
        members = clusters == cid
        src, label = "unexplained", None
        for k in names:
            row = explained_by[k][int(cid)]
            if row["explained"]:
                src, label = k, row["top_label"]
                break
        st = stats[src]
        st["clusters"] += 1
        st["hosts"] += int(members.sum())
        if label is not None:
            st["labelled"] += int((members & (lab[src] == label)).sum())
            st["extended"] += int((members & ~any_label).sum())
        per_cluster.append({"cluster": int(cid), "size": int(members.sum()), "source": src, "label": label})
    stats["unexplained"]["hosts"] += int((clusters == NOISE).sum())
    n_clusters = max(ids.size, 1)
    table = pl.DataFrame(
        [
            {
                "source": k, **v, "hosts_share": v["hosts"] / n if n else float("nan"),
                "clusters_share": v["clusters"] / n_clusters,
            }
            for k, v in stats.items()
        ]
    )  # fmt: skip
    pc_schema = {"cluster": pl.Int64, "size": pl.Int64, "source": pl.String, "label": pl.String}
    return table, pl.DataFrame(per_cluster, schema=pc_schema)


@dataclass(frozen=True)
class UnknownCluster:
    """A cluster made mostly of unknown hosts: a candidate new class for an analyst to inspect.

    Attributes:
        cluster: cluster id.
        size: hosts.
        unknown_share: share of its hosts without a label.
        members: positions of its hosts in the input, int64 (size,).
    """

    cluster: int
    size: int
    unknown_share: float
    members: np.ndarray


def unknown_clusters(
    clusters: np.ndarray,
    labels: np.ndarray,
    *,
    min_unknown_share: float = 0.5,
    top: int | None = 20,
    unknown: str = UNKNOWN,
) -> list[UnknownCluster]:
    """The largest clusters in which at least `min_unknown_share` of the hosts are unknown, largest first.

    The caller joins `members` with per-host port and timing profiles for the activity plots.
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    is_unknown = np.asarray(labels, dtype=object).astype(str) == unknown
    out = []
    for cid in np.unique(clusters[clusters != NOISE]):
        members = np.flatnonzero(clusters == cid)
        u = float(is_unknown[members].mean())
        if u >= min_unknown_share:
            out.append(UnknownCluster(int(cid), int(members.size), u, members))
    out.sort(key=lambda c: (-c.size, c.cluster))
    return out if top is None else out[:top]
