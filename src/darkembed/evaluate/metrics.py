"""Per-class and macro precision, recall and F1 (docs/method.md 5.1, 5.3, 7.6), and their mean/std over folds/days.

`unknown` is never a target: hosts whose true label is `unknown` are left out, the classes scored are those
present in `y_true`, and a prediction of `unknown` (or of any class absent from `y_true`) is a miss for the true
class that costs no other scored class precision, exactly as scikit-learn's `precision_recall_fscore_support`
with `labels=<classes present in y_true>` and `zero_division=0`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from darkembed.vocabulary import UNKNOWN

MACRO = "macro"


@dataclass(frozen=True)
class Scores:
    """Scores of one evaluation (one fold or one day).

    Attributes:
        classes: the scored classes, sorted.
        precision, recall, f1: per class, float64 (c,).
        support: true hosts per class, int64 (c,).
        predicted: predictions per class, int64 (c,).
    """

    classes: list[str]
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    predicted: np.ndarray = field(repr=False)

    @property
    def macro(self) -> dict[str, float]:
        """Unweighted means over the scored classes (NaN when no class is scored)."""
        if not self.classes:
            return {"precision": float("nan"), "recall": float("nan"), "f1": float("nan")}
        return {
            "precision": float(self.precision.mean()),
            "recall": float(self.recall.mean()),
            "f1": float(self.f1.mean()),
        }

    def table(self) -> pl.DataFrame:
        """One row per class plus a `macro` row: class, precision, recall, f1, support."""
        m = self.macro
        return pl.DataFrame(
            {
                "class": [*self.classes, MACRO],
                "precision": [*self.precision.tolist(), m["precision"]],
                "recall": [*self.recall.tolist(), m["recall"]],
                "f1": [*self.f1.tolist(), m["f1"]],
                "support": [*self.support.tolist(), int(self.support.sum())],
            },
            schema={"class": pl.String, "precision": pl.Float64, "recall": pl.Float64, "f1": pl.Float64,
                    "support": pl.Int64},
        )  # fmt: skip

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat `{prefix}macro_f1`, `{prefix}f1/<class>`, ... for a tracker."""
        out = {f"{prefix}macro_{k}": v for k, v in self.macro.items()}
        for i, c in enumerate(self.classes):
            out[f"{prefix}precision/{c}"] = float(self.precision[i])
            out[f"{prefix}recall/{c}"] = float(self.recall[i])
            out[f"{prefix}f1/{c}"] = float(self.f1[i])
        return out


def score(
    y_true: Sequence[str] | np.ndarray, y_pred: Sequence[str] | np.ndarray, unknown: str = UNKNOWN
) -> Scores:
    """Per-class precision, recall and F1 over the hosts whose true label is not `unknown`.

    Args:
        y_true: true label per host, shape (n,).
        y_pred: predicted label per host, shape (n,).
        unknown: the no-label value.

    Returns:
        `Scores` over the classes present in `y_true` (without `unknown`); 0 where a ratio is 0/0.
    """
    t = np.asarray(y_true, dtype=object).astype(str)
    p = np.asarray(y_pred, dtype=object).astype(str)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape}, y_pred {p.shape}")
    keep = t != unknown
    t, p = t[keep], p[keep]
    classes = sorted(set(t.tolist()))
    c = len(classes)
    tp = np.zeros(c, np.int64)
    support = np.zeros(c, np.int64)
    predicted = np.zeros(c, np.int64)
    for i, cls in enumerate(classes):
        is_t, is_p = t == cls, p == cls
        tp[i] = int((is_t & is_p).sum())
        support[i] = int(is_t.sum())
        predicted[i] = int(is_p.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    return Scores(classes, precision, recall, f1, support, predicted)


def summarize(runs: Iterable[Scores]) -> pl.DataFrame:
    """Mean and standard deviation over folds or days, per class and of the macro averages.

    A class absent from a run (no true host that fold/day) is skipped for that run, not counted as 0 (NaN-skipping,
    as the [GNN] tables). The standard deviation is the sample one (ddof = 1), NaN with a single run.

    Args:
        runs: one `Scores` per fold or day.

    Returns:
        Rows per class (sorted) then `macro`: class, precision_mean, precision_std, recall_mean, recall_std,
        f1_mean, f1_std, support (summed over runs), runs (how many runs scored the class).
    """
    runs = list(runs)
    classes = sorted({c for r in runs for c in r.classes})
    rows = []
    for cls in [*classes, MACRO]:
        vals: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
        support = 0
        for r in runs:
            if cls == MACRO:
                if not r.classes:
                    continue
                for k, v in r.macro.items():
                    vals[k].append(v)
                support += int(r.support.sum())
            elif cls in r.classes:
                i = r.classes.index(cls)
                vals["precision"].append(float(r.precision[i]))
                vals["recall"].append(float(r.recall[i]))
                vals["f1"].append(float(r.f1[i]))
                support += int(r.support[i])
        row: dict[str, object] = {"class": cls}
        for k, v in vals.items():
            arr = np.asarray(v, dtype=np.float64)
            row[f"{k}_mean"] = float(arr.mean()) if arr.size else float("nan")
            row[f"{k}_std"] = float(arr.std(ddof=1)) if arr.size > 1 else float("nan")
        row["support"] = support
        row["runs"] = len(vals["f1"])
        rows.append(row)
    return pl.DataFrame(rows)


def confusion(
    y_true: Sequence[str] | np.ndarray,
    y_pred: Sequence[str] | np.ndarray,
    unknown: str = UNKNOWN,
) -> tuple[np.ndarray, list[str], list[str]]:
    """Confusion counts over hosts with a known true label.

    Returns:
        (counts int64 (r, c), row classes = true classes sorted, column classes = the same plus any other
        predicted value, e.g. `unknown`, at the end).
    """
    t = np.asarray(y_true, dtype=object).astype(str)
    p = np.asarray(y_pred, dtype=object).astype(str)
    keep = t != unknown
    t, p = t[keep], p[keep]
    rows = sorted(set(t.tolist()))
    cols = rows + sorted(set(p.tolist()) - set(rows))
    ri = {c: i for i, c in enumerate(rows)}
    ci = {c: i for i, c in enumerate(cols)}
    out = np.zeros((len(rows), len(cols)), np.int64)
    np.add.at(
        out, (np.array([ri[x] for x in t], dtype=np.int64), np.array([ci[x] for x in p], dtype=np.int64)), 1
    )
    return out, rows, cols
