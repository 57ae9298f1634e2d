import numpy as np
import pytest

from darkembed.evaluate.metrics import confusion
from darkembed.report.figures import anchor_curve, confusion_plot, f1_bars, tsne_embedding, tsne_scatter
from tests.report.png import assert_png


def test_tsne_keeps_blobs_apart_and_is_seeded(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 3
    X = np.concatenate([c + 0.2 * rng.normal(size=(50, 16)) for c in centres]).astype(np.float32)
    y = np.repeat(["a", "b", "c"], 50)
    a = tsne_embedding(X, seed=15)
    b = tsne_embedding(X, seed=15)
    np.testing.assert_allclose(a, b)
    assert a.shape == (150, 2)
    # each point's nearest 2-D neighbour has its class
    d = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (y[d.argmin(1)] == y).mean() > 0.95
    p = tsne_scatter(a, np.where(np.arange(150) % 10 == 0, "-1", y), tmp_path / "tsne.png", title="t")
    assert_png(p)


def test_bar_confusion_and_curve_figures(tmp_path):
    p = f1_bars({"transfer": {"mirai": 0.9, "censys": 0.7}, "nonlinear": {"mirai": 0.8}}, tmp_path / "f1.png",
                errors={"transfer": {"mirai": 0.05}})  # fmt: skip
    assert_png(p)
    counts, rows, cols = confusion(["a", "a", "b", "b"], ["a", "b", "b", "unknown"])
    assert_png(confusion_plot(counts, rows, cols, tmp_path / "sub" / "cm.png"))
    curve = anchor_curve(
        {"nonlinear": ([0.1, 0.5, 1.0], [0.5, 0.8, 0.9], [0.1, 0.05, np.nan])}, tmp_path / "a.png"
    )
    assert_png(curve)
    with pytest.raises(ValueError, match="counts have shape"):
        confusion_plot(counts, rows[:1], cols, tmp_path / "x.png")
    with pytest.raises(ValueError, match="nothing to plot"):
        f1_bars({}, tmp_path / "y.png")
