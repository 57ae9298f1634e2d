import numpy as np
import pytest

from darkembed.adapt.aligners import (
    AlignmentError,
    DNNAligner,
    LinearAligner,
    ProcrustesAligner,
    aligner_from_config,
    aligner_from_state,
    make_aligner,
)
from darkembed.config import AdaptConfig

from .conftest import mean_cosine

FAST = {"epochs": 60, "width": 128}


def test_procrustes_undoes_a_rotation_on_held_out_hosts(rotated):
    yc, yp, rot = rotated
    a = ProcrustesAligner().fit(yc[:400], yp[:400])
    assert mean_cosine(yc[400:], yp[400:]) < 0.2  # unaligned: unrelated directions
    assert mean_cosine(a.transform(yc[400:]), yp[400:]) > 0.99
    # yc = yp R^T, so the map back is R (up to noise)
    np.testing.assert_allclose(a.rotation, rot, atol=0.02)
    np.testing.assert_allclose(a.rotation @ a.rotation.T, np.eye(16), atol=1e-5)


def test_procrustes_centring_and_scaling_recover_a_similarity_transform(rotated):
    yc, yp, _ = rotated
    shifted = 3.0 * yc + 5.0  # scaled and translated customer space
    plain = ProcrustesAligner(center=False, scale=False).fit(shifted[:400], yp[:400])
    full = ProcrustesAligner(center=True, scale=True).fit(shifted[:400], yp[:400])
    err_plain = np.abs(plain.transform(shifted[400:]) - yp[400:]).mean()
    err_full = np.abs(full.transform(shifted[400:]) - yp[400:]).mean()
    assert full.s == pytest.approx(1 / 3, rel=0.02)
    assert err_full < 0.06 < err_plain


@pytest.mark.parametrize("kind", ["nonlinear", "linear"])
def test_dnn_aligners_undo_a_rotation_on_held_out_hosts(rotated, kind):
    yc, yp, _ = rotated
    a = make_aligner(kind, seed=3, **FAST).fit(yc[:400], yp[:400])
    assert a.kind == kind
    assert a.losses[-1] < a.losses[0]
    assert mean_cosine(a.transform(yc[400:]), yp[400:]) > 0.9


def test_dnn_aligner_is_deterministic_and_seed_dependent(rotated):
    yc, yp, _ = rotated
    kw = {"epochs": 3, "width": 32}
    a = make_aligner("nonlinear", seed=7, **kw).fit(yc[:100], yp[:100]).transform(yc[400:])
    b = make_aligner("nonlinear", seed=7, **kw).fit(yc[:100], yp[:100]).transform(yc[400:])
    c = make_aligner("nonlinear", seed=8, **kw).fit(yc[:100], yp[:100]).transform(yc[400:])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_dnn_architecture_follows_the_reference():
    a = DNNAligner("sigmoid", epochs=1, width=8, depth=3).fit(
        np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32)
    )
    names = [type(m).__name__ for m in a.model.net]
    assert names == ["LayerNorm", "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]
    lin = DNNAligner("linear", epochs=1, width=8, depth=3).fit(
        np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32)
    )
    assert [type(m).__name__ for m in lin.model.net] == ["LayerNorm", "Linear", "Linear", "Linear", "Linear"]


@pytest.mark.parametrize("kind", ["linear", "nonlinear", "procrustes", "lstsq"])
def test_state_round_trip_gives_the_same_map(rotated, kind):
    yc, yp, _ = rotated
    if kind == "lstsq":
        a = make_aligner("linear")
    else:
        a = make_aligner(kind, seed=1, **({} if kind == "procrustes" else {"epochs": 2, "width": 16}))
    a.fit(yc[:200], yp[:200])
    tensors, meta = a.state()
    assert all(isinstance(v, np.ndarray) for v in tensors.values())
    import json

    meta = json.loads(json.dumps(meta))  # JSON-able
    b = aligner_from_state(tensors, meta)
    np.testing.assert_allclose(b.transform(yc[400:]), a.transform(yc[400:]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "nonlinear", "procrustes"])
def test_dimension_mismatch_is_refused(rotated, kind):
    yc, yp, _ = rotated
    a = make_aligner(kind, **({} if kind == "procrustes" else {"epochs": 1, "width": 8}))
    with pytest.raises(AlignmentError, match="anchor pairs do not match"):
        a.fit(yc[:100], yp[:99])
    with pytest.raises(AlignmentError, match="before transform"):
        a.transform(yc)
    a.fit(yc[:100], yp[:100])
    with pytest.raises(AlignmentError, match=r"16-dimensional .* got 8 dimensions"):
        a.transform(yc[:, :8])


def test_procrustes_refuses_different_space_sizes(rotated):
    yc, yp, _ = rotated
    with pytest.raises(AlignmentError, match="same dimension"):
        ProcrustesAligner().fit(yc[:100], yp[:100, :8])
    # a DNN can map between sizes
    out = make_aligner("linear", epochs=1, width=8).fit(yc[:100], yp[:100, :8]).transform(yc[:5])
    assert out.shape == (5, 8)


def test_state_with_wrong_tensors_is_refused(rotated):
    yc, yp, _ = rotated
    tensors, meta = make_aligner("nonlinear", epochs=1, width=8).fit(yc[:50], yp[:50]).state()
    bad = dict(tensors)
    bad.pop("net.1.weight")
    with pytest.raises(AlignmentError, match=r"missing \['net.1.weight'\]"):
        aligner_from_state(bad, meta)
    bad = dict(tensors, **{"net.1.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(AlignmentError, match=r"net\.1\.weight has shape"):
        aligner_from_state(bad, meta)
    with pytest.raises(AlignmentError, match="unknown aligner kind"):
        aligner_from_state(tensors, {**meta, "kind": "magic"})


def test_aligner_from_config_uses_the_section():
    cfg = AdaptConfig(epochs=2, min_steps=5, width=16, depth=2, batch_size=8, lr=0.01, procrustes_scale=True)
    dnn = aligner_from_config("nonlinear", cfg, seed=4)
    assert (dnn.epochs, dnn.min_steps, dnn.width, dnn.depth, dnn.batch_size, dnn.lr, dnn.seed) == (
        2, 5, 16, 2, 8, 0.01, 4)  # fmt: skip
    assert aligner_from_config("procrustes", cfg, seed=4).scale is True
    closed = aligner_from_config("linear", cfg.model_copy(update={"linear_ridge": 0.5}), seed=4)
    assert isinstance(closed, LinearAligner) and closed.ridge == 0.5  # the default solver
    paper = aligner_from_config("linear", cfg.model_copy(update={"linear_solver": "dnn"}), seed=4)
    assert isinstance(paper, DNNAligner) and paper.kind == "linear" and paper.width == 16
    with pytest.raises(ValueError, match="unknown aligner kind"):
        make_aligner("rotation")


def test_min_steps_trains_a_few_anchors_longer_and_better(rotated):
    yc, yp, _ = rotated
    few = slice(0, 40)  # 40 anchors in batches of 32: 2 steps an epoch
    kw = {"epochs": 5, "width": 128, "batch_size": 32}
    short = make_aligner("nonlinear", seed=3, **kw).fit(yc[few], yp[few])
    long = make_aligner("nonlinear", seed=3, min_steps=300, **kw).fit(yc[few], yp[few])
    assert len(short.losses) == 5 and len(long.losses) == 150  # 300 steps / 2 per epoch
    assert mean_cosine(long.transform(yc[400:]), yp[400:]) > mean_cosine(short.transform(yc[400:]), yp[400:])
    many = make_aligner("nonlinear", seed=3, min_steps=300, **kw).fit(yc[:400], yp[:400])
    assert len(many.losses) == 24  # 13 steps an epoch: ceil(300 / 13) epochs
    tensors, meta = long.state()
    assert meta["min_steps"] == 300 and aligner_from_state(tensors, meta).min_steps == 300
    del meta["min_steps"]  # a bundle written before the option existed: exactly its epochs
    assert aligner_from_state(tensors, meta).min_steps == 0


def test_closed_form_linear_aligner_is_the_optimum_the_linear_dnn_approaches(rotated):
    """The closed form reaches at most the DNN's training MSE (same model class: affine map of LayerNorm(y)),
    maps held-out hosts as well, and is exact on a noiseless affine map of layer-normalised vectors."""
    yc, yp, _ = rotated
    closed = make_aligner("linear", ridge=0.0).fit(yc[:400], yp[:400])
    dnn = make_aligner("linear", solver="dnn", seed=3, **FAST).fit(yc[:400], yp[:400])
    mse = lambda a: float(np.mean((a.transform(yc[:400]) - yp[:400]) ** 2))  # noqa: E731
    assert mse(closed) <= mse(dnn) + 1e-6
    assert (
        mean_cosine(closed.transform(yc[400:]), yp[400:])
        >= mean_cosine(dnn.transform(yc[400:]), yp[400:]) - 0.01
    )
    rng = np.random.default_rng(4)
    W, b = rng.normal(size=(16, 8)).astype(np.float32), rng.normal(size=8).astype(np.float32)
    target = closed._features(yc).astype(np.float32) @ W + b
    exact = make_aligner("linear", ridge=0.0).fit(yc[:400], target[:400])
    np.testing.assert_allclose(exact.transform(yc[400:]), target[400:], atol=1e-3)
    assert exact.transform(yc[:5]).shape == (5, 8)


def test_linear_solver_choice_and_refused_parameters(rotated):
    yc, yp, _ = rotated
    assert isinstance(make_aligner("linear"), LinearAligner)
    assert isinstance(make_aligner("linear", epochs=3), DNNAligner)  # DNN settings given: the DNN
    with pytest.raises(ValueError, match="takes no epochs"):
        make_aligner("linear", solver="lstsq", epochs=3)
    with pytest.raises(ValueError, match="unknown linear solver"):
        make_aligner("linear", solver="adam")
    with pytest.raises(ValueError, match="ridge must be"):
        LinearAligner(ridge=-1)
    tensors, meta = make_aligner("linear").fit(yc[:50], yp[:50]).state()
    with pytest.raises(AlignmentError, match="tensor weight has shape"):
        aligner_from_state({**tensors, "weight": np.zeros((3, 3), np.float32)}, meta)
    with pytest.raises(AlignmentError, match="tensor bias is missing"):
        aligner_from_state({"weight": tensors["weight"]}, meta)
