import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from darkembed.evaluate.metrics import confusion, score, summarize


def _sk(y_true, y_pred):
    t = np.array(y_true)
    p = np.array(y_pred)
    keep = t != "unknown"
    labels = sorted(set(t[keep]))
    return labels, precision_recall_fscore_support(t[keep], p[keep], labels=labels, zero_division=0)


CASES = [
    # unknown true hosts are ignored; a predicted unknown is a miss; a class never predicted scores 0
    (["a", "a", "b", "b", "c", "unknown", "unknown"], ["a", "b", "b", "unknown", "a", "a", "c"]),
    # a class predicted but absent from y_true ("d") costs precision only to nobody scored
    (["a", "a", "a", "b"], ["d", "a", "a", "d"]),
    (["x"] * 5 + ["y"] * 3, ["x", "x", "y", "y", "y", "y", "x", "unknown"]),
]


@pytest.mark.parametrize("y_true, y_pred", CASES)
def test_scores_match_scikit_learn(y_true, y_pred):
    s = score(y_true, y_pred)
    labels, (p, r, f, sup) = _sk(y_true, y_pred)
    assert s.classes == labels
    np.testing.assert_allclose(s.precision, p)
    np.testing.assert_allclose(s.recall, r)
    np.testing.assert_allclose(s.f1, f)
    np.testing.assert_array_equal(s.support, sup)
    assert s.macro["f1"] == pytest.approx(f.mean())


def test_hand_computed_values():
    s = score(["a", "a", "b", "b", "unknown"], ["a", "b", "b", "unknown", "a"])
    # a: tp 1, predicted 1 (the unknown host's "a" is not counted), support 2
    assert s.classes == ["a", "b"]
    np.testing.assert_allclose(s.precision, [1.0, 0.5])
    np.testing.assert_allclose(s.recall, [0.5, 0.5])
    assert "unknown" not in s.table()["class"].to_list()
    assert s.as_metrics("nonlinear/")["nonlinear/f1/b"] == pytest.approx(0.5)


def test_summary_skips_missing_classes_and_uses_sample_std():
    r1 = score(["a", "a", "b"], ["a", "a", "b"])  # a 1, b 1
    r2 = score(["a", "a"], ["a", "unknown"])  # a: p 1, r .5, f .667; b absent
    t = summarize([r1, r2])
    a = t.filter(t["class"] == "a").row(0, named=True)
    b = t.filter(t["class"] == "b").row(0, named=True)
    assert a["f1_mean"] == pytest.approx((1 + 2 / 3) / 2)
    assert a["f1_std"] == pytest.approx(np.std([1, 2 / 3], ddof=1))
    assert (b["runs"], b["f1_mean"], b["support"]) == (1, 1.0, 1)
    assert np.isnan(b["f1_std"])
    macro = t.filter(t["class"] == "macro").row(0, named=True)
    assert macro["f1_mean"] == pytest.approx((1.0 + 2 / 3) / 2)


def test_confusion_puts_unknown_predictions_in_an_extra_column():
    m, rows, cols = confusion(["a", "b", "b", "unknown"], ["a", "unknown", "a", "b"])
    assert rows == ["a", "b"] and cols == ["a", "b", "unknown"]
    assert m.tolist() == [[1, 0, 0], [1, 0, 1]]
