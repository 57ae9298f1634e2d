import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, homogeneity_score, silhouette_samples

from darkembed.cluster import (
    cluster_embeddings,
    cluster_from_config,
    cluster_metrics,
    explain_clusters,
    knowledge_gain,
    l2_normalise,
    unknown_clusters,
)
from darkembed.config import ClusterConfig


def _sphere_blobs(sizes, dims=64, spread=0.3, background=0, seed=0):
    rng = np.random.default_rng(seed)
    xs, truth = [], []
    for c, s in enumerate(sizes):
        centre = rng.normal(size=dims)
        xs.append(centre / np.linalg.norm(centre) + spread * rng.normal(size=(s, dims)) / np.sqrt(dims))
        truth += [c] * s
    if background:
        xs.append(rng.normal(size=(background, dims)))
        truth += [-1] * background
    return np.concatenate(xs).astype(np.float32), np.array(truth)


def test_hdbscan_finds_planted_blobs():
    X, truth = _sphere_blobs([60, 40, 30, 20, 10], dims=32)
    # scale rows arbitrarily: clustering is on directions only
    X = X * np.random.default_rng(1).uniform(0.5, 5, size=(X.shape[0], 1)).astype(np.float32)
    res = cluster_embeddings(X, min_cluster_size=5, reduce_dims=None)
    assert res.n_clusters == 5
    assert adjusted_rand_score(truth, res.labels) > 0.95
    assert res.reduced_dims is None and res.explained_variance is None


def test_pca_first_agrees_with_the_full_clustering():
    X, truth = _sphere_blobs([5, 8, 12, 20, 30, 50, 80, 120, 200, 300], dims=128, spread=0.5, background=400)
    full = cluster_embeddings(X, reduce_dims=None)
    red = cluster_embeddings(X, reduce_dims=16)
    assert red.reduced_dims == 16 and 0 < red.explained_variance < 1
    assert adjusted_rand_score(full.labels, red.labels) > 0.9
    assert adjusted_rand_score(truth, red.labels) > 0.85
    cfg = cluster_from_config(X, ClusterConfig(reduce_dims=16))
    np.testing.assert_array_equal(cfg.labels, red.labels)


def test_homogeneity_ignores_unknown_and_noise():
    clusters = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1, -1])
    labels = np.array(
        ["a", "a", "unknown", "unknown", "b", "b", "unknown", "unknown", "a", "b"], dtype=object
    )
    m = cluster_metrics(np.eye(10, dtype=np.float32), clusters, labels)
    assert m["homogeneity"] == pytest.approx(1.0)  # unknown hosts and noise would make it < 1
    assert homogeneity_score(labels.astype(str), clusters) < 0.9
    assert m["clusters"] == 2 and m["noise_share"] == pytest.approx(0.2) and m["hosts"] == 10


def test_silhouette_ignores_noise():
    X, truth = _sphere_blobs([30, 30, 30], dims=8, spread=0.2, seed=3)
    noise = np.random.default_rng(4).normal(size=(20, 8)).astype(np.float32)
    X = np.concatenate([X, noise])
    clusters = np.concatenate([truth, -np.ones(20, dtype=int)])
    m = cluster_metrics(X, clusters, np.full(X.shape[0], "unknown", dtype=object))
    ref = silhouette_samples(X[:90], truth, metric="cosine")
    assert m["silhouette_mean"] == pytest.approx(ref.mean(), rel=1e-5)
    assert m["silhouette_std"] == pytest.approx(ref.std(), rel=1e-5)
    with_noise = silhouette_samples(X, clusters, metric="cosine").mean()
    assert abs(with_noise - m["silhouette_mean"]) > 0.05
    assert np.isnan(m["homogeneity"])  # no labelled host
    one = cluster_metrics(X, np.zeros(X.shape[0], dtype=int), np.full(X.shape[0], "a", dtype=object))
    assert np.isnan(one["silhouette_mean"])


def test_explained_clusters_need_half_of_all_hosts():
    clusters = np.array([0] * 4 + [1] * 4 + [2] * 3 + [-1])
    labels = np.array(["a", "a", "unknown", "unknown", "b", "c", "unknown", "unknown"] + ["unknown"] * 3 + ["a"],
                      dtype=object)  # fmt: skip
    t = explain_clusters(clusters, labels)
    assert t["cluster"].to_list() == [0, 1, 2]
    assert t["explained"].to_list() == [True, False, False]
    assert t["top_label"].to_list()[0] == "a" and t["top_label"].to_list()[2] is None
    assert t["unknown_count"].to_list() == [2, 2, 3]


def test_knowledge_gain_credits_the_first_source_and_counts_newly_explained_hosts():
    clusters = np.array([0] * 4 + [1] * 4 + [2] * 4 + [-1] * 3)
    own = np.array(["a", "a", "a", "unknown"] + ["unknown"] * 4 + ["unknown"] * 4 + ["a", "unknown", "unknown"],
                   dtype=object)  # fmt: skip
    provider = np.array(["a"] * 4 + ["brute", "brute", "unknown", "unknown"] + ["unknown"] * 4 + ["unknown"] * 3,
                        dtype=object)  # fmt: skip
    table, per_cluster = knowledge_gain(clusters, {"own": own, "provider": provider})
    rows = {r["source"]: r for r in table.iter_rows(named=True)}
    assert (rows["own"]["clusters"], rows["own"]["hosts"], rows["own"]["labelled"]) == (1, 4, 3)
    assert rows["own"]["extended"] == 0  # the unknown host of cluster 0 is labelled by the provider
    assert (rows["provider"]["clusters"], rows["provider"]["hosts"], rows["provider"]["extended"]) == (
        1,
        4,
        2,
    )
    assert (rows["unexplained"]["clusters"], rows["unexplained"]["hosts"]) == (1, 4 + 3)
    assert table["hosts"].sum() == clusters.size and table["clusters"].sum() == 3
    assert per_cluster["source"].to_list() == ["own", "provider", "unexplained"]
    assert per_cluster["label"].to_list() == ["a", "brute", None]


def test_unknown_clusters_are_ranked_by_size():
    clusters = np.array([0] * 3 + [1] * 6 + [2] * 5 + [3] * 4 + [-1] * 2)
    labels = np.array(["unknown"] * 3 + ["unknown"] * 4 + ["a"] * 2 + ["a"] * 5 + ["unknown"] * 2 + ["b"] * 2
                      + ["unknown"] * 2, dtype=object)  # fmt: skip
    got = unknown_clusters(clusters, labels, min_unknown_share=0.5, top=2)
    assert [(c.cluster, c.size) for c in got] == [(1, 6), (3, 4)]
    assert got[0].members.tolist() == list(range(3, 9))
    assert got[0].unknown_share == pytest.approx(4 / 6)
    assert len(unknown_clusters(clusters, labels, top=None)) == 3


def test_l2_normalise_keeps_zero_rows():
    out = l2_normalise(np.array([[3, 4], [0, 0]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0]])


def test_leaf_selection_splits_what_eom_merges():
    # two tight groups of bots close to each other (one family, two variants) and a distant scanner group
    rng = np.random.default_rng(3)
    family = rng.normal(size=32)
    family /= np.linalg.norm(family)
    offset = rng.normal(size=32)
    offset = 0.15 * offset / np.linalg.norm(offset)
    a1 = family + 0.01 * rng.normal(size=(80, 32))
    a2 = family + offset + 0.01 * rng.normal(size=(80, 32))
    far = rng.normal(size=32)
    b = far / np.linalg.norm(far) + 0.01 * rng.normal(size=(40, 32))
    X = np.concatenate([a1, a2, b]).astype(np.float32)
    truth = np.repeat([0, 1, 2], [80, 80, 40])
    leaf = cluster_embeddings(X, reduce_dims=None, selection="leaf")
    eom = cluster_embeddings(X, reduce_dims=None, selection="eom")
    assert leaf.n_clusters == 3 and adjusted_rand_score(truth, leaf.labels) > 0.95
    assert eom.n_clusters == 2  # the two variants in one cluster
    assert ClusterConfig().selection == "leaf"
    np.testing.assert_array_equal(cluster_from_config(X, ClusterConfig(reduce_dims=None, selection="eom")).labels,
                                  eom.labels)  # fmt: skip
