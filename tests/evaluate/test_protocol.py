import numpy as np
import pytest
from scipy.stats import special_ortho_group

from darkembed.adapt.anchors import find_anchors
from darkembed.config import AdaptConfig, EvaluateConfig
from darkembed.evaluate.protocol import (
    NetworkDay,
    align,
    anchor_retrieval,
    anchor_sweep,
    fit_aligner,
    independent,
    make_folds,
    mean_cosine,
    no_adaptation,
    sweep_curve,
    train_classifiers,
    transfer,
)

from .conftest import blobs

CFG = EvaluateConfig(dnn_hidden=[32, 16], dnn_epochs=20, dnn_batch_size=32, dnn_lr=0.01)
ADAPT = AdaptConfig(epochs=40, min_steps=0, width=64, batch_size=32, lr=3e-3)


@pytest.fixture(scope="module")
def world():
    """900 hosts in 4 classes (+ unknown); the provider sees 700, the customer 600 (400 anchors).

    The customer's space is a random rotation of the provider's plus noise, so a provider classifier fails on raw
    customer vectors and succeeds after alignment.
    """
    import torch

    torch.set_num_threads(1)
    X, y = blobs({"mirai": 300, "censys": 150, "shodan": 100, "driftnet": 50, "unknown": 300}, e=16, spread=0.8,
                 seed=5)  # fmt: skip
    rng = np.random.default_rng(5)
    ips = rng.choice(2**31, size=y.size, replace=False).astype(np.uint32)
    perm = rng.permutation(y.size)
    p_idx, c_idx = np.sort(perm[:700]), np.sort(perm[300:])  # overlap: perm[300:700]
    rot = special_ortho_group.rvs(16, random_state=2).astype(np.float32)
    Xc = X @ rot.T + 0.05 * rng.normal(size=X.shape).astype(np.float32)
    provider = NetworkDay.of(ips[p_idx], X[p_idx], y[p_idx])
    customer = NetworkDay.of(
        ips[c_idx], Xc[c_idx], {int(i): lab for i, lab in zip(ips[c_idx], y[c_idx], strict=True)}
    )
    customer_in_p = NetworkDay.of(ips[c_idx], X[c_idx], y[c_idx])
    folds = make_folds(provider, customer, CFG)
    clfs = train_classifiers(provider, folds, CFG)
    return provider, customer, customer_in_p, folds, clfs


def test_no_adaptation_fails_and_alignment_recovers(world):
    provider, customer, _, folds, clfs = world
    raw = no_adaptation(provider, customer, folds, CFG, classifiers=clfs)
    proc = align(provider, customer, folds, "procrustes", CFG, ADAPT, classifiers=clfs)
    assert raw.macro_f1 < 0.6
    assert proc.macro_f1 > 0.95
    assert len(proc.folds) == 5 and proc.setting == "align/procrustes"
    # the label-free check: the test fold's anchors, never seen by the aligner, land on their provider vectors
    assert proc.anchor_cosine > 0.95 and np.isnan(raw.anchor_cosine)
    assert proc.anchor_p10 > 0.9 and np.isnan(raw.anchor_p10)
    a = find_anchors(provider.ips, customer.ips)
    assert mean_cosine(customer.X[a.customer_rows], provider.X[a.provider_rows]) < 0.5  # before alignment
    assert proc.summary()["anchor_cosine"].unique().to_list() == [pytest.approx(proc.anchor_cosine)]
    t = proc.timings()
    assert t["classifier_seconds"] > 0 and t["aligner_seconds"] > 0
    assert raw.timings()["aligner_seconds"] == 0
    row = proc.summary().row(0, named=True)  # the report's seconds per fold come from the summary
    assert row["aligner_seconds"] == pytest.approx(t["aligner_seconds"])
    assert row["classifier_seconds"] == pytest.approx(t["classifier_seconds"])


def test_nonlinear_alignment_recovers(world):
    provider, customer, _, folds, clfs = world
    res = align(provider, customer, folds, "nonlinear", CFG, ADAPT, classifiers=clfs)
    assert res.macro_f1 > 0.9


def test_every_customer_host_is_tested_once_on_its_fold_and_never_trains_the_aligner(world):
    provider, customer, _, folds, clfs = world
    res = align(provider, customer, folds, "procrustes", CFG, ADAPT, classifiers=clfs)
    tested = np.concatenate([f.ips for f in res.folds])
    assert np.array_equal(np.sort(tested), np.sort(customer.ips))
    shared = np.intersect1d(provider.ips, customer.ips)
    for f in res.folds:
        assert (folds.fold[folds.rows(f.ips)] == f.fold).all()
        assert not np.intersect1d(f.aligner_anchors, f.ips).size  # no test host trains the aligner
        assert np.isin(f.aligner_anchors, shared).all()
        assert f.aligner_anchors.size == (folds.fold[folds.rows(shared)] != f.fold).sum()
        assert "unknown" not in f.scores.classes
    pred = res.predictions()
    assert pred.height == customer.ips.size and set(pred.columns) == {"fold", "src_ip", "label", "prediction",
                                                            "confidence", "answer"}  # fmt: skip
    s = res.summary()
    assert s["class"].to_list() == ["censys", "driftnet", "mirai", "shodan", "macro"]


def test_transfer_and_independent(world):
    provider, customer, customer_in_p, folds, clfs = world
    assert transfer(provider, customer_in_p, folds, CFG, classifiers=clfs).macro_f1 > 0.95
    ind = independent(customer, folds, CFG)
    assert ind.setting == "independent" and ind.macro_f1 > 0.95


def test_dimension_mismatch_is_refused(world):
    provider, customer, _, folds, clfs = world
    small = NetworkDay.of(customer.ips, customer.X[:, :8], customer.labels)
    with pytest.raises(ValueError, match="provider embeddings are 16-dimensional, customer 8"):
        no_adaptation(provider, small, folds, CFG, classifiers=clfs)


def test_anchor_sweep_uses_fewer_anchors_at_lower_fractions(world):
    provider, customer, _, folds, clfs = world
    sweep = anchor_sweep(provider, customer, folds, "procrustes", CFG, ADAPT, classifiers=clfs,
                         fractions=[0.1, 1.0], repeats=2)  # fmt: skip
    assert sweep.height == 2 * 5 + 1 * 5  # 2 repeats at 10 %, one run at 100 %, 5 folds each
    curve = sweep_curve(sweep)
    assert curve["fraction"].to_list() == [0.1, 1.0]
    a10, a100 = curve["anchors_mean"].to_list()
    assert a10 == pytest.approx(0.1 * a100, rel=0.2)
    assert curve["runs"].to_list() == [10, 5]
    assert curve["f1_mean"].to_list()[1] > 0.95


def test_transfer_anchor_sweep_scores_what_the_seeded_model_gives(world):
    provider, customer, customer_in_p, folds, clfs = world
    rng = np.random.default_rng(0)
    seen = []

    def seeded(sample: np.ndarray) -> NetworkDay:
        # a stand-in for the seeded customer model: transferred anchors keep their provider vectors, every other
        # host gets noise (what an untrained vector is)
        seen.append(sample.size)
        X = np.where(np.isin(customer.ips, sample)[:, None], customer_in_p.X,
                     rng.normal(size=customer.X.shape).astype(np.float32))  # fmt: skip
        return NetworkDay(customer.ips, X, customer.labels)

    sweep = anchor_sweep(provider, customer, folds, "transfer", CFG, ADAPT, classifiers=clfs,
                         fractions=[0.2, 1.0], repeats=2, transfer_fn=seeded)  # fmt: skip
    assert len(seen) == 3 and seen[0] < seen[-1] == 400
    curve = sweep_curve(sweep)
    assert curve["anchors_mean"].to_list() == pytest.approx([np.mean(seen[:2]), 400])
    f20, f100 = curve["f1_mean"].to_list()
    assert f20 < f100  # more transferred anchors, more hosts in provider space
    with pytest.raises(ValueError, match="needs transfer_fn"):
        anchor_sweep(provider, customer, folds, "transfer", CFG, ADAPT, classifiers=clfs)


def test_fit_aligner_on_all_anchors_maps_every_customer_host(world):
    provider, customer, customer_in_p, *_ = world
    aligner, mapped = fit_aligner(provider, customer, "procrustes", ADAPT)
    assert aligner.kind == "procrustes" and aligner.dim_in == 16
    assert mapped.shape == customer.X.shape
    cos = (
        (mapped * customer_in_p.X).sum(1)
        / np.linalg.norm(mapped, axis=1)
        / np.linalg.norm(customer_in_p.X, axis=1)
    )
    assert cos.mean() > 0.99  # customer-only hosts too, not just anchors


def test_network_day_checks_its_inputs():
    with pytest.raises(ValueError, match="3 addresses but embeddings of shape"):
        NetworkDay.of(np.array([1, 2, 3], np.uint32), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="1 repeated"):
        NetworkDay.of(np.array([1, 1], np.uint32), np.zeros((2, 4), np.float32))
    day = NetworkDay.of(np.array([1, 2], np.uint32), np.zeros((2, 4)), {2: "mirai"})
    assert day.X.dtype == np.float32 and day.labels.tolist() == ["unknown", "mirai"] and day.dim == 4


def test_anchor_retrieval_counts_the_own_vector_among_the_k_nearest():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(50, 8))
    assert anchor_retrieval(target, target, k=1) == 1.0
    shifted = np.roll(target, 1, axis=0)  # every row lands exactly on its neighbour's vector
    assert anchor_retrieval(shifted, target, k=1) == 0.0
    assert np.isnan(anchor_retrieval(np.zeros((0, 8)), np.zeros((0, 8))))
    # hand-made: row 0 maps between its own vector and row 1's, nearer row 1's: rank 2
    t = np.eye(3)
    m = np.array([[0.4, 0.6, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert anchor_retrieval(m, t, k=1) == pytest.approx(2 / 3)
    assert anchor_retrieval(m, t, k=2) == 1.0


def test_anchor_retrieval_sees_what_a_high_mean_cosine_hides():
    # every vector in a narrow cone (as i-DarkVec's Mirai hosts): scrambling the rows keeps the cosine high
    rng = np.random.default_rng(1)
    cone = np.ones((200, 16)) * 5 + rng.normal(size=(200, 16))
    scrambled = cone[rng.permutation(200)]
    assert mean_cosine(scrambled, cone) > 0.9
    assert anchor_retrieval(scrambled, cone, k=10) < 0.2
    assert anchor_retrieval(cone + 0.01 * rng.normal(size=cone.shape), cone, k=10) == 1.0
