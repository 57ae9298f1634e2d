"""Report figures as PNG files: t-SNE maps, per-class F1 bars, confusion matrices, anchor-fraction curves.

Figures are drawn on `matplotlib.figure.Figure` objects rendered by the Agg canvas, without pyplot: no global
state, no display needed, safe in worker threads. Every function writes one PNG and returns its path; the tracking
layer logs it as an artifact.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from darkembed.report import FIGURE_LOCK, is_number, sweep_positions

log = logging.getLogger(__name__)

#: Categories drawn in grey, under the others: HDBSCAN noise and hosts without a label.
BACKGROUND = ("-1", "noise", "unknown")

#: Colours of the categories of a map, largest category first.
PALETTE = [f"C{i}" for i in range(10)] + ["#8c564b", "#17becf", "#bcbd22", "#7f7f7f"]


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with FIGURE_LOCK:  # text layout (mathtext) shares module state across threads
        fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    log.info("figure %s", path)
    return path


def tsne_embedding(X: np.ndarray, *, perplexity: float = 30, seed: int = 15, n_jobs: int = 1) -> np.ndarray:
    """2-D openTSNE map with cosine affinities ([TNSM] Fig. 6, docs/method.md 5.9 and 7.6).

    Args:
        X: embeddings, float32 (n, e).
        perplexity: t-SNE perplexity (capped at (n - 1) / 3 for tiny inputs).
        seed: random state.
        n_jobs: threads.

    Returns:
        Coordinates, float32 (n, 2).
    """
    from openTSNE import TSNE

    X = np.asarray(X, dtype=np.float32)
    perp = min(perplexity, max(1.0, (X.shape[0] - 1) / 3))
    tsne = TSNE(
        n_components=2, perplexity=perp, metric="cosine", random_state=seed, n_jobs=n_jobs, verbose=False
    )
    return np.asarray(tsne.fit(X), dtype=np.float32)


def tsne_scatter(
    coords: np.ndarray,
    colour_by: Sequence[object] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str = "t-SNE of host embeddings",
    legend_title: str = "cluster",
    max_categories: int = 12,
) -> Path:
    """Scatter of a 2-D map coloured by cluster or label.

    The `max_categories` largest categories get a colour and a legend entry; smaller ones are drawn as `other`;
    noise (`-1`) and `unknown` in light grey underneath.

    Args:
        coords: float (n, 2), e.g. from `tsne_embedding`.
        colour_by: cluster id or label per host (n,).
        path: PNG file to write.
        title: figure title.
        legend_title: legend heading.
        max_categories: coloured categories at most.
    """
    coords = np.asarray(coords)
    cats = np.asarray(colour_by).astype(str)
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] != cats.size:
        raise ValueError(f"coords must be (n, 2) matching {cats.size} categories, got {coords.shape}")
    names, counts = np.unique(cats, return_counts=True)
    order = [
        n
        for n, _ in sorted(zip(names, counts, strict=True), key=lambda t: (-t[1], t[0]))
        if n not in BACKGROUND
    ]
    shown = order[:max_categories]
    fig = Figure(figsize=(7.5, 6))
    ax = fig.add_subplot()
    bg = np.isin(cats, BACKGROUND)
    if bg.any():
        ax.scatter(coords[bg, 0], coords[bg, 1], s=3, c="#cccccc", label="noise / unknown", linewidths=0)
    other = ~bg & ~np.isin(cats, shown)
    if other.any():
        ax.scatter(coords[other, 0], coords[other, 1], s=3, c="#888888", label="other", linewidths=0)
    for i, name in enumerate(shown):
        m = cats == name
        ax.scatter(coords[m, 0], coords[m, 1], s=5, color=PALETTE[i % len(PALETTE)], label=f"{name} ({m.sum()})",
                   linewidths=0)  # fmt: skip
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(title=legend_title, fontsize=7, markerscale=3, loc="center left", bbox_to_anchor=(1, 0.5))
    return save_figure(fig, path)


def f1_bars(
    per_method: Mapping[str, Mapping[str, float]],
    path: str | os.PathLike[str],
    *,
    title: str = "Per-class F1 by method",
    errors: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Grouped bars: one group per class, one bar per method.

    Args:
        per_method: method -> class -> F1 (e.g. from `metrics.summarize` f1_mean).
        path: PNG file.
        title: figure title.
        errors: method -> class -> std, drawn as error bars.
    """
    methods = list(per_method)
    classes = sorted({c for m in per_method.values() for c in m})
    if not methods or not classes:
        raise ValueError("nothing to plot: no method or no class")
    width = 0.8 / len(methods)
    x = np.arange(len(classes))
    fig = Figure(figsize=(max(6.0, 0.6 * len(classes) * max(1, len(methods) / 2) + 2), 4.5))
    ax = fig.add_subplot()
    for i, m in enumerate(methods):
        vals = [per_method[m].get(c, np.nan) for c in classes]
        err = [errors[m].get(c, 0.0) for c in classes] if errors and m in errors else None
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, vals, width, yerr=err, label=m, capsize=2)
    ax.set_xticks(x, classes, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.set_xlabel("class")
    ax.set_title(title)
    ax.legend(title="method", fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    return save_figure(fig, path)


def confusion_plot(
    counts: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str = "Confusion matrix",
    normalise: bool = True,
) -> Path:
    """Heat map of a confusion matrix (rows = true class, columns = predicted), e.g. from `metrics.confusion`.

    Args:
        counts: int (r, c).
        rows: true class names (r,).
        cols: predicted class names (c,).
        path: PNG file.
        title: figure title.
        normalise: show row shares (recall per cell) instead of counts; counts are still written in the cells.
    """
    counts = np.asarray(counts)
    if counts.shape != (len(rows), len(cols)):
        raise ValueError(f"counts have shape {counts.shape}, names {len(rows)} x {len(cols)}")
    shown = counts / np.maximum(counts.sum(1, keepdims=True), 1) if normalise else counts
    fig = Figure(figsize=(1.0 + 0.55 * len(cols), 1.0 + 0.5 * len(rows)))
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalise else None, aspect="auto")
    fig.colorbar(im, ax=ax, label="share of true class" if normalise else "hosts")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if counts.size <= 400:
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                if counts[i, j]:
                    dark = shown[i, j] > (0.5 if normalise else shown.max() / 2)
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")  # fmt: skip
    return save_figure(fig, path)


def anchor_curve(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    path: str | os.PathLike[str],
    *,
    title: str = "Impact of the anchors",
) -> Path:
    """Macro F1 against the share of anchors kept, mean ± std band per method ([TNSM] anchor figure).

    Args:
        curves: method -> (fractions, f1 means, f1 stds), e.g. the columns of `protocol.sweep_curve`.
        path: PNG file.
        title: figure title.
    """
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    for name, (fr, mean, std) in curves.items():
        fr_a = 100 * np.asarray(fr, dtype=float)
        mean_a = np.asarray(mean, dtype=float)
        std_a = np.nan_to_num(np.asarray(std, dtype=float))
        ax.plot(fr_a, mean_a, marker="o", label=name)
        ax.fill_between(fr_a, mean_a - std_a, mean_a + std_a, alpha=0.2)
    ax.set_xlabel("anchors kept [%]")
    ax.set_ylabel("macro F1")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, 102)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def sweep_plot(macro: pl.DataFrame, key: str, paper: Mapping[str, str], path: str | os.PathLike[str]) -> Path:
    """Macro F1 (mean ± std over the test days) against a swept setting, per method, with the paper's points.

    Args:
        macro: rows of `knn_table` output for class `macro` with a `value` column (the setting's value, text).
        key: the setting's dotted name (x label).
        paper: value -> the paper's macro F1 (text, e.g. ".79"), drawn as crosses.
        path: PNG file.
    """
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    xs, numeric = sweep_positions(macro["value"].to_list())
    values = list(xs)
    for (method,), g in macro.group_by("method", maintain_order=True):
        x = np.array([xs[v] for v in g["value"]])
        order = np.argsort(x)
        mean = g["f1_mean"].to_numpy().astype(float)[order]
        std = np.nan_to_num(g["f1_std"].to_numpy().astype(float))[order]
        ax.plot(x[order], mean, marker="o", label=str(method))
        ax.fill_between(x[order], mean - std, mean + std, alpha=0.2)
    ref = [(xs[v], float(paper[v])) for v in values if v in paper and is_number(paper[v])]
    if ref:
        ax.scatter(*zip(*ref, strict=True), marker="x", color="black", label="paper", zorder=3)
    if not numeric:
        ax.set_xticks(list(xs.values()), values)
    ax.set_xlabel(key)
    ax.set_ylabel("macro F1 (3-NN)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
