"""Anchors: the hosts a provider and a customer network both see on a day, and stratified samples of them.

Pure functions over in-memory arrays (docs/method.md 5.4): embeddings come as `(ips, X)` per network and day
(`ips` uint32 of shape (n,), `X` float32 of shape (n, e)), labels as a mapping or frame `src_ip -> label`
(`unknown` = no label). Reads and writes no dataset; the adapt flow stores what it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from darkembed.vocabulary import UNKNOWN

log = logging.getLogger(__name__)

LabelsLike = (
    Mapping[int, str] | Any
)  # a mapping src_ip -> label, or a frame with `src_ip` and `label` columns


def check_ips(ips: np.ndarray, what: str = "ips") -> np.ndarray:
    """`ips` as a 1-D uint32 array without repeats, or a `ValueError` naming `what`."""
    arr = np.asarray(ips)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D array of IPv4 addresses, got shape {arr.shape}")
    if arr.size and (arr.dtype.kind not in "ui" or arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise ValueError(f"{what}: IPv4 addresses must be unsigned 32-bit integers, got dtype {arr.dtype}")
    arr = arr.astype(np.uint32, copy=False)
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{what}: {arr.size - np.unique(arr).size} repeated addresses; one row per host")
    return arr


def label_vector(ips: np.ndarray, labels: LabelsLike | None, unknown: str = UNKNOWN) -> np.ndarray:
    """The label of each address in `ips`, `unknown` where `labels` has none.

    Args:
        ips: uint32 addresses, shape (n,).
        labels: a mapping `src_ip -> label`, a polars/pandas frame (or pyarrow table) with columns `src_ip` and
            `label`, an array of shape (n,) already aligned with `ips`, or None (all unknown).
        unknown: the no-label value.

    Returns:
        Array of Python strings (dtype object), shape (n,).
    """
    ips = np.asarray(ips)
    out = np.full(ips.shape[0], unknown, dtype=object)
    if labels is None:
        return out
    if isinstance(labels, np.ndarray):
        if labels.shape != ips.shape:
            raise ValueError(f"label array has shape {labels.shape}, the addresses {ips.shape}")
        return labels.astype(object)
    if isinstance(labels, Mapping):
        keys = np.fromiter((int(k) for k in labels), dtype=np.int64, count=len(labels))
        vals = np.array(list(labels.values()), dtype=object)
    else:
        cols = getattr(labels, "column_names", None) or list(getattr(labels, "columns", []))
        if "src_ip" not in cols or "label" not in cols:
            raise ValueError(f"labels need columns src_ip and label, got {cols}")
        keys = np.asarray(_column(labels, "src_ip"), dtype=np.int64)
        vals = np.asarray(_column(labels, "label"), dtype=object)
    if keys.size == 0:
        return out
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order]
    pos = np.searchsorted(keys, ips.astype(np.int64))
    pos_c = np.minimum(pos, keys.size - 1)
    hit = keys[pos_c] == ips.astype(np.int64)
    out[hit] = vals[pos_c[hit]]
    return out


def _column(frame: Any, name: str) -> np.ndarray:
    col = frame[name]
    if hasattr(col, "to_numpy"):
        return col.to_numpy()
    return np.asarray(col)


@dataclass(frozen=True)
class Anchors:
    """The hosts active in both networks on a day.

    Attributes:
        ips: uint32 addresses, sorted, shape (m,).
        provider_rows: row of each anchor in the provider's matrix, int64 (m,).
        customer_rows: row of each anchor in the customer's matrix, int64 (m,).
        labels: label of each anchor (object strings, `unknown` where none), shape (m,).
    """

    ips: np.ndarray
    provider_rows: np.ndarray
    customer_rows: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.ips.size)

    def subset(self, idx: np.ndarray) -> Anchors:
        """The anchors at positions (or boolean mask) `idx`."""
        return Anchors(self.ips[idx], self.provider_rows[idx], self.customer_rows[idx], self.labels[idx])


def find_anchors(
    provider_ips: np.ndarray,
    customer_ips: np.ndarray,
    labels: LabelsLike | None = None,
    unknown: str = UNKNOWN,
) -> Anchors:
    """The anchors `W* = W_p ∩ W_c` of a day: addresses present in both networks' embeddings.

    Args:
        provider_ips: uint32 addresses of the provider's embedding rows, shape (n_p,).
        customer_ips: uint32 addresses of the customer's embedding rows, shape (n_c,).
        labels: labels of the anchors (see `label_vector`); None = all unknown.
        unknown: the no-label value.
    """
    p = check_ips(provider_ips, "provider ips")
    c = check_ips(customer_ips, "customer ips")
    ips, p_rows, c_rows = np.intersect1d(p, c, assume_unique=True, return_indices=True)
    log.info("anchors: %d of %d provider and %d customer hosts", ips.size, p.size, c.size)
    return Anchors(ips, p_rows.astype(np.int64), c_rows.astype(np.int64), label_vector(ips, labels, unknown))


def stratified_sample(labels: np.ndarray, fraction: float, seed: int | np.random.SeedSequence) -> np.ndarray:
    """Positions of a stratified sample of `fraction` of the items, by label (`unknown` is its own stratum).

    Each class keeps `round(fraction * n_class)` items, at least one, so that no class vanishes from a small
    sample; `fraction = 1` keeps everything.

    Args:
        labels: label per item, shape (m,).
        fraction: share to keep, in (0, 1].
        seed: seed of the draw.

    Returns:
        Sorted int64 positions into `labels`.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels, dtype=object)
    if fraction == 1:
        return np.arange(labels.size, dtype=np.int64)
    rng = np.random.default_rng(seed)
    keep = []
    classes, inverse = np.unique(labels.astype(str), return_inverse=True)
    for ci in range(classes.size):
        members = np.flatnonzero(inverse == ci)
        k = min(members.size, max(1, round(fraction * members.size)))
        keep.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def anchor_samples(labels: np.ndarray, fraction: float, repeats: int, seed: int) -> list[np.ndarray]:
    """`repeats` independent stratified samples of `fraction` of the anchors (one sample when `fraction = 1`).

    Args:
        labels: label per anchor, shape (m,).
        fraction: share kept, in (0, 1].
        repeats: samples drawn; each gets its own child seed of `seed`.
        seed: base seed.

    Returns:
        A list of sorted position arrays into `labels`.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if fraction == 1:
        return [stratified_sample(labels, 1.0, seed)]
    children = np.random.SeedSequence([seed, round(fraction * 1_000_000)]).spawn(repeats)
    return [stratified_sample(labels, fraction, child) for child in children]
