import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_distances
from sklearn.preprocessing import StandardScaler

from darkembed.config import EvaluateConfig
from darkembed.evaluate.classifiers import DNNClassifier, knn_loo, vote

from .conftest import blobs

SMALL = {"hidden": [32, 16], "epochs": 15, "batch_size": 32}


def _ring(spec: dict[float, str]):
    """Unit vectors at the given angles (degrees) and at their 90/180/270-degree turns, same labels.

    The 4-fold symmetry makes the mean zero and the covariance isotropic, so StandardScaler only rescales
    uniformly and cosine distances between the hand-placed points stay as designed.
    """
    xs, ys = [], []
    for turn in (0, 90, 180, 270):
        for angle, label in spec.items():
            a = np.deg2rad(angle + turn)
            xs.append([np.cos(a), np.sin(a)])
            ys.append(label)
    return np.array(xs, dtype=np.float32), np.array(ys, dtype=object)


def test_knn_excludes_the_host_itself_and_breaks_ties_by_the_nearest_neighbour():
    # host at 0 deg ("a"): nearest others 10 deg (b), 20 deg (c), -30 deg (a) -> one vote each -> the nearest, b.
    # Counting itself would give a; the alphabetical tie-break of the reference code would give a too.
    X, y = _ring({0: "a", 10: "b", 20: "c", -30: "a"})
    res = knn_loo(X, y, k=3, min_class_size=1)
    pred = dict(zip(res.rows.tolist(), res.y_pred.tolist(), strict=True))
    for q in (0, 4, 8, 12):  # the host at 0 deg and its turns
        assert pred[q] == "b"
        assert q not in res.neighbours[res.rows.tolist().index(q)]
    # host at 10 deg ("b"): neighbours 0 (a), 20 (c), -30 (a) -> a by majority
    assert pred[1] == "a"


def test_vote_majority_then_nearest_tied():
    votes = np.array(
        [
            ["b", "b", "a"],
            ["a", "b", "b"],
            ["c", "b", "a"],
            ["unknown", "x", "x"],
            ["z", "unknown", "unknown"],
        ],
        dtype=object,
    )
    assert vote(votes).tolist() == ["b", "b", "c", "x", "unknown"]


def test_knn_matches_a_brute_force_reference_and_folds_small_classes():
    X, y = blobs({"mirai": 40, "censys": 15, "tiny": 5, "unknown": 60}, e=8, spread=1.5, seed=2)
    res = knn_loo(X, y, k=3, min_class_size=11)
    assert res.folded == {"tiny": 5}
    assert set(res.y_true.tolist()) == {"mirai", "censys"}
    lab = np.where(y == "tiny", "unknown", y).astype(object)
    d = cosine_distances(StandardScaler().fit_transform(X))
    np.fill_diagonal(d, np.inf)
    for i, row in enumerate(res.rows):
        nearest = np.argsort(d[row], kind="stable")[:3]
        assert set(nearest.tolist()) == set(res.neighbours[i].tolist())
        assert res.y_pred[i] == vote(lab[res.neighbours[i]][None, :])[0]
    # a vote for unknown is kept as the prediction (scored as a miss), not replaced by a class
    assert "unknown" in set(res.y_pred.tolist())


def test_dnn_learns_blobs_without_unknown_and_keeps_the_best_validation_epoch():
    X, y = blobs({"a": 150, "b": 150, "c": 80, "unknown": 200}, e=16, spread=1.0, seed=1)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    tr, va, te = order[:350], order[350:420], order[420:]
    clf = DNNClassifier(seed=3, **{**SMALL, "epochs": 40}).fit(X[tr], y[tr], X[va], y[va])
    assert clf.classes_ == ["a", "b", "c"]
    val_losses = [v for _, v in clf.history]
    assert clf.best_epoch == int(np.argmin(val_losses))
    known = y[te] != "unknown"
    acc = (clf.predict(X[te][known]) == y[te][known]).mean()
    assert acc > 0.95
    proba = clf.predict_proba(X[te])
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)


def test_dnn_is_deterministic_and_round_trips_its_state():
    X, y = blobs({"a": 60, "b": 60}, e=8, seed=4)
    a = DNNClassifier(seed=5, **SMALL).fit(X, y, X[:20], y[:20])
    b = DNNClassifier(seed=5, **SMALL).fit(X, y, X[:20], y[:20])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    tensors, meta = a.state()
    c = DNNClassifier.from_state(tensors, meta)
    np.testing.assert_allclose(c.predict_proba(X), a.predict_proba(X), rtol=1e-6)
    with pytest.raises(ValueError, match="expects 8-dimensional"):
        a.predict(X[:, :4])
    with pytest.raises(ValueError, match="all unknown"):
        DNNClassifier(**SMALL).fit(X, np.array(["unknown"] * len(X), dtype=object))


def test_dnn_architecture_and_config():
    clf = DNNClassifier.from_config(EvaluateConfig(dnn_epochs=1), seed=1)
    X, y = blobs({"a": 10, "b": 10}, e=8)
    clf.fit(X, y, X, y)
    names = [type(m).__name__ for m in clf.model.net]
    assert names == ["Linear", "ReLU", "SeededDropout", "Linear", "ReLU", "SeededDropout", "Linear"]
    assert [m.out_features for m in clf.model.net if hasattr(m, "out_features")] == [512, 256, 2]
    assert clf.model.net[2].p == pytest.approx(0.3)


def test_approximate_neighbours_agree_with_exact_ones_on_a_small_day():
    """Above `exact_max` hosts the kNN search is NN-descent; forced on a small day it finds (nearly) the exact
    neighbours and the same votes."""
    from darkembed.evaluate.classifiers import nearest_neighbours

    X, y = blobs({"a": 300, "b": 250, "c": 150, "unknown": 300}, e=16, spread=1.0, seed=4)
    q = np.arange(0, X.shape[0], 3)
    exact = nearest_neighbours(X, q, 4)
    approx = nearest_neighbours(X, q, 4, exact_max=0)
    assert approx.shape == exact.shape == (q.size, 4)
    overlap = np.mean([len(set(a) & set(b)) / 4 for a, b in zip(exact, approx, strict=True)])
    assert overlap > 0.95
    assert (exact[:, 0] == q).all() and (approx[:, 0] == q).mean() > 0.99  # a host is its own nearest
    ex = knn_loo(X, y)
    ap = knn_loo(X, y, exact_max=0)
    np.testing.assert_array_equal(ex.rows, ap.rows)
    assert (ex.y_pred == ap.y_pred).mean() > 0.98
    assert not (ap.neighbours == ap.rows[:, None]).any()  # leave-one-out holds with the approximate search
