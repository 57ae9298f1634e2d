"""Open-set answers: the confidence, the per-class thresholds, and that the test fold never sets them."""

import numpy as np
import pytest

from darkembed.config import EvaluateConfig
from darkembed.evaluate.abstain import (
    ActivityGate,
    GateScore,
    NeighbourScore,
    class_thresholds,
    fit_abstainer,
    forced_share,
    open_set_scores,
)
from darkembed.evaluate.protocol import (
    NetworkDay,
    fold_abstainer,
    fold_activity_gate,
    make_folds,
    no_adaptation,
    train_classifiers,
)

from .conftest import blobs

CFG = EvaluateConfig(dnn_hidden=[32, 16], dnn_epochs=20, dnn_batch_size=32, dnn_lr=0.01, val_fraction=0.3)


@pytest.fixture(scope="module")
def world():
    """Three labelled classes and a background ("novel", never labelled) in both networks, same space.

    The provider's background hosts are unlabelled; the customer's are the truly unknown hosts to abstain on.
    """
    import torch

    torch.set_num_threads(1)
    X, y = blobs({"mirai": 300, "censys": 240, "shodan": 200, "novel": 300}, e=16, spread=0.6, seed=7)
    truth = y.copy()
    y = np.where(y == "novel", "unknown", y).astype(object)
    rng = np.random.default_rng(7)
    ips = rng.choice(2**31, size=y.size, replace=False).astype(np.uint32)
    perm = rng.permutation(y.size)
    p_idx, c_idx = np.sort(perm[:800]), np.sort(perm[300:])
    provider = NetworkDay.of(ips[p_idx], X[p_idx], y[p_idx])
    customer = NetworkDay.of(ips[c_idx], X[c_idx] + 0.05 * rng.normal(size=X[c_idx].shape), y[c_idx])
    folds = make_folds(provider, customer, CFG)
    clfs = train_classifiers(provider, folds, CFG)
    return provider, customer, truth[c_idx], folds, clfs


def test_class_thresholds_use_the_correct_validation_answers_only():
    conf = np.array([1.0, 2.0, 3.0, 4.0, -5.0, 10.0, 0.5])
    y = np.array(["a", "a", "a", "a", "a", "b", "unknown"], dtype=object)
    pred = np.array(["a", "a", "a", "a", "b", "b", "a"], dtype=object)  # the -5 is wrong, the 0.5 unlabelled
    thr, default = class_thresholds(
        conf, y, pred, quantile=0.05
    )  # 4 correct "a": too few for a 5 % threshold
    assert thr == {"a": -np.inf, "b": -np.inf} and default == -np.inf
    thr, _ = class_thresholds(conf, y, pred, quantile=0.4)  # floor(0.4 * 5) = 2: the second smallest
    assert thr["a"] == 2.0 and thr["b"] == 2.0  # b (1 answer) takes the threshold pooled over a and b
    many = np.arange(1.0, 40.0)  # 39 correct "a" answers: floor(0.05 * 40) = 2, the second smallest
    y2 = np.r_[np.full(39, "a", object), ["b"]].astype(object)
    thr, default = class_thresholds(np.r_[many, 0.5], y2, y2, quantile=0.05)
    assert thr["a"] == 2.0 and thr["b"] == 1.0 == default  # b alone is too small: pooled, 2nd smallest of 40


def test_score_prefers_hosts_near_the_labelled_ones():
    rng = np.random.default_rng(0)
    lab = rng.normal(size=(50, 8)) + np.r_[5, np.zeros(7)]
    bg = rng.normal(size=(50, 8)) + np.r_[0, 5, np.zeros(6)]
    s = NeighbourScore(lab, bg, k=5)
    near_lab, near_bg = s(lab[:5] + 0.01), s(bg[:5] + 0.01)
    assert (near_lab > 0).all() and (near_bg < 0).all()
    with pytest.raises(ValueError, match="no labelled training host"):
        NeighbourScore(np.zeros((0, 8)), bg)


@pytest.mark.parametrize("score", ["neighbour", "gate"])
def test_abstains_on_the_background_and_answers_the_known(world, score):
    provider, customer, truth, folds, clfs = world
    res = no_adaptation(
        provider, customer, folds, CFG.model_copy(update={"abstain_score": score}), classifiers=clfs
    )
    preds = res.predictions()
    assert {"confidence", "answer"} <= set(preds.columns)
    true_of = dict(zip(customer.ips.tolist(), truth.tolist(), strict=True))
    tc = np.array([true_of[int(ip)] for f in res.folds for ip in f.ips], dtype=object)
    tc = np.where(tc == "novel", "unknown", tc)
    assert (
        forced_share(tc, preds["prediction"].to_numpy()) == 1.0
    )  # closed world: every novel host gets a class
    assert forced_share(tc, preds["answer"].to_numpy()) < 0.3
    o = res.open_set()
    assert o["labelled_coverage"] > 0.85 and o["answered_precision"] > 0.9
    assert o["open_f1"] > res.macro_f1 - 0.05
    summ = res.summary()
    assert {"coverage", "answered_precision", "open_f1"} <= set(summ.columns)


def test_abstention_leaves_the_closed_world_scores_alone(world):
    provider, customer, _, folds, clfs = world
    on = no_adaptation(provider, customer, folds, CFG, classifiers=clfs)
    off = no_adaptation(
        provider, customer, folds, CFG.model_copy(update={"abstain": False}), classifiers=clfs
    )
    assert on.macro_f1 == off.macro_f1
    assert off.open_set() == {} and "answer" not in off.predictions().columns


@pytest.mark.parametrize("score", ["neighbour", "gate"])
def test_thresholds_never_see_the_test_fold(world, score):
    provider, _, _, folds, clfs = world
    k = 2
    cfg = CFG.model_copy(update={"abstain_score": score})
    before = fold_abstainer(provider, folds, k, clfs[k], cfg)
    test = folds.split(k, provider.ips).test
    rng = np.random.default_rng(1)
    X = provider.X.copy()
    X[test] = rng.normal(size=X[test].shape) * 10  # the test fold's hosts changed beyond recognition
    labels = provider.labels.copy()
    labels[test] = np.where(labels[test] == "unknown", "mirai", "unknown")
    changed = NetworkDay(provider.ips, X, labels)
    after = fold_abstainer(changed, folds, k, clfs[k], cfg)
    assert after is not before
    assert after.thresholds == before.thresholds and after.default == before.default
    probe = provider.X[~test][:50]
    np.testing.assert_array_equal(after.confidence(probe), before.confidence(probe))
    # and the validation hosts do set them
    val = folds.split(k, provider.ips).val
    X[val] += 3.0
    moved = fold_abstainer(NetworkDay(provider.ips, X, labels), folds, k, clfs[k], cfg)
    assert (moved.thresholds, moved.default) != (before.thresholds, before.default)


def test_open_set_scores():
    y = np.array(["a", "a", "b", "unknown", "unknown"], dtype=object)
    ans = np.array(["a", "unknown", "a", "a", "unknown"], dtype=object)
    o = open_set_scores(y, ans)
    assert o.coverage == pytest.approx(0.6)
    assert o.answered_precision == pytest.approx(0.5)
    assert o.labelled_coverage == pytest.approx(2 / 3)
    assert forced_share(np.array(["unknown", "unknown", "a"]), np.array(["a", "unknown", "a"])) == 0.5


def test_fit_abstainer_needs_labelled_hosts():
    with pytest.raises(ValueError, match="no labelled"):
        fit_abstainer(np.zeros((3, 4)), np.array(["unknown"] * 3), np.zeros((0, 4)), np.zeros(0), np.zeros(0))


@pytest.mark.parametrize("score", ["neighbour", "gate"])
def test_customer_calibrated_thresholds_never_see_the_test_fold(world, score):
    """With `abstain_calibration: customer` the thresholds come from the customer's validation hosts: changing
    every vector and label of the customer's test fold k leaves fold k's thresholds as they were."""
    provider, customer, _, folds, clfs = world
    cfg = CFG.model_copy(update={"abstain_calibration": "customer", "abstain_score": score})
    before = no_adaptation(provider, customer, folds, cfg, classifiers=clfs)
    k = 1
    test = folds.split(k, customer.ips).test
    X = customer.X.copy()
    X[test] = np.random.default_rng(2).normal(size=X[test].shape) * 10
    labels = customer.labels.copy()
    labels[test] = "mirai"
    after = no_adaptation(provider, NetworkDay(customer.ips, X, labels), folds, cfg, classifiers=clfs)
    assert after.folds[k].thresholds == before.folds[k].thresholds
    assert not np.array_equal(
        after.folds[k].confidence, before.folds[k].confidence
    )  # the test hosts did change
    # the validation hosts do set them
    val = folds.split(k, customer.ips).val
    X2 = customer.X.copy()
    X2[val] += 2.0
    moved = no_adaptation(
        provider, NetworkDay(customer.ips, X2, customer.labels), folds, cfg, classifiers=clfs
    )
    assert moved.folds[k].thresholds != before.folds[k].thresholds


def test_gate_learns_known_from_the_labelled_and_unknown_from_the_background():
    rng = np.random.default_rng(3)
    lab = rng.normal(size=(80, 8)) + np.r_[5, np.zeros(7)]
    bg = rng.normal(size=(80, 8)) + np.r_[0, 5, np.zeros(6)]
    g = GateScore(lab, bg, k=5)
    near_lab = g(rng.normal(size=(20, 8)) + np.r_[5, np.zeros(7)])
    near_bg = g(rng.normal(size=(20, 8)) + np.r_[0, 5, np.zeros(6)])
    assert (near_lab > 0).all() and (near_bg < 0).all()  # log-odds of "known"
    # a training host is left out of its own neighbours: its distance features are those of a new host there
    without = NeighbourScore(lab[1:], bg, k=5).log_distances(lab[:1])
    np.testing.assert_allclose(g.neighbours.log_distances(lab[:1], np.ones(1, bool)), without, rtol=1e-5)
    without = NeighbourScore(lab, bg[1:], k=5).log_distances(bg[:1])
    np.testing.assert_allclose(g.neighbours.log_distances(bg[:1], np.zeros(1, bool)), without, rtol=1e-5)
    with pytest.raises(ValueError, match="no unlabelled training host"):
        GateScore(lab, np.zeros((0, 8)))
    y = np.r_[np.full(80, "a", object), np.full(80, "unknown", object)]
    with pytest.raises(ValueError, match="abstention score must be"):
        fit_abstainer(np.r_[lab, bg], y, lab[:5], y[:5], y[:5], score="softmax")


def _activity(truth: np.ndarray, seed: int) -> np.ndarray:
    """Traffic features per host: the novel hosts' differ from every known class's (as a prober's or a
    backscatter source's packet counts and port spread differ from a scanner's), with noise."""
    rng = np.random.default_rng(seed)
    means = {"mirai": 3.0, "censys": 4.0, "shodan": 5.0, "novel": 0.0}
    base = np.array([means[str(t)] for t in truth])
    return np.c_[base + rng.normal(scale=0.5, size=base.size), rng.normal(size=(base.size, 3))]


def test_activity_gate_learns_known_from_the_hosts_own_traffic():
    truth = np.array(["mirai"] * 60 + ["novel"] * 60, dtype=object)
    gate = ActivityGate(_activity(truth, 0), truth != "novel", seed=1)
    probe = _activity(np.array(["shodan"] * 20 + ["novel"] * 20, dtype=object), 1)
    logodds = gate(probe)
    assert np.median(logodds[:20]) > 0 > np.median(logodds[20:])
    assert gate(np.zeros((0, 4))).shape == (0,)
    with pytest.raises(ValueError, match="labelled and unlabelled"):
        ActivityGate(_activity(truth, 0), np.ones(truth.size, bool))


def test_pooled_thresholds_are_one_quantile_over_every_correct_answer():
    conf = np.r_[np.arange(1.0, 40.0), -3.0]
    y = np.r_[np.full(39, "a", object), ["b"]].astype(object)
    thr, default = class_thresholds(conf, y, y, quantile=0.05, pooled=True)
    assert thr == {} and default == 1.0  # floor(0.05 * 41) = 2: the second smallest of 40 is 1.0
    ab = fit_abstainer(
        np.random.default_rng(0).normal(size=(30, 4)), np.r_[np.full(20, "a"), np.full(10, "unknown")],
        np.zeros((1, 4)), np.array(["a"]), np.array(["a"]), pooled=True,
    )  # fmt: skip
    assert ab.pooled and ab.thresholds == {} and ab.default == -np.inf  # one answer: too few, always answered


def _with_activity(world):
    provider, customer, truth, folds, clfs = world
    cust = NetworkDay.of(customer.ips, customer.X, customer.labels, _activity(truth, 5))
    return provider, cust, truth, folds, clfs


def test_activity_gate_forces_fewer_unknown_hosts_at_the_same_quantile(world):
    """The customer's novel hosts sit among its Mirai hosts in the embedding space (look-alikes: the embeddings
    cannot tell them apart) but their own traffic differs: the activity gate rejects them."""
    provider, customer, truth, folds, clfs = _with_activity(world)
    X = customer.X.copy()
    novel, mirai = truth == "novel", np.flatnonzero(truth == "mirai")
    rng = np.random.default_rng(11)
    X[novel] = X[rng.choice(mirai, novel.sum())] + 0.05 * rng.normal(size=X[novel].shape)
    customer = NetworkDay.of(customer.ips, X, customer.labels, customer.activity)
    tc = {int(ip): ("unknown" if t == "novel" else t) for ip, t in zip(customer.ips, truth, strict=True)}
    forced = {}
    for activity in (False, True):
        cfg = CFG.model_copy(update={"abstain_activity": activity, "abstain_quantile": 0.02})
        res = no_adaptation(provider, customer, folds, cfg, classifiers=clfs)
        preds = res.predictions()
        t = np.array([tc[int(ip)] for ip in preds["src_ip"]], dtype=object)
        forced[activity] = forced_share(t, preds["answer"].to_numpy())
        assert res.open_set()["open_f1"] > res.macro_f1 - 0.05
        assert all(set(f.thresholds) == {"*"} for f in res.folds)  # pooled: one threshold per fold
    assert forced[False] > 0.5 and forced[True] < 0.1


def test_activity_gate_never_sees_the_test_fold_or_the_calibration_hosts(world):
    """The gate of fold k trains on the customer's training-fold hosts only: changing the activity features and
    labels of fold k's test hosts and of its calibration (validation) hosts leaves its log-odds unchanged; changing
    a training host's does not."""
    _, customer, _, folds, _ = _with_activity(world)
    k = 2
    split = folds.split(k, customer.ips)
    probe = _activity(np.array(["censys", "novel"] * 5, dtype=object), 9)
    before = fold_activity_gate(customer, folds, k, CFG)(probe)
    F, labels = customer.activity.copy(), customer.labels.copy()
    hidden = split.test | split.val
    F[hidden] = np.random.default_rng(3).normal(size=F[hidden].shape) * 10
    labels[hidden] = "mirai"
    after = fold_activity_gate(NetworkDay.of(customer.ips, customer.X, labels, F), folds, k, CFG)(probe)
    np.testing.assert_array_equal(after, before)
    F2 = customer.activity.copy()
    F2[split.train] += np.random.default_rng(4).normal(size=F2[split.train].shape)
    moved = fold_activity_gate(NetworkDay.of(customer.ips, customer.X, customer.labels, F2), folds, k, CFG)(
        probe
    )
    assert not np.array_equal(moved, before)


def test_activity_features_must_match_the_hosts_and_need_customer_calibration():
    with pytest.raises(ValueError, match="activity features of shape"):
        NetworkDay.of(np.array([1, 2], np.uint32), np.zeros((2, 4)), None, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="abstain_calibration: customer"):
        EvaluateConfig(abstain_calibration="provider")
    EvaluateConfig(abstain_calibration="provider", abstain_activity=False)  # the neighbour score alone: fine
