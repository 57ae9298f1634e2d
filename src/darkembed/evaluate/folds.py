"""Consistent stratified folds over a provider and a customer network (docs/method.md 5.3, 7.3, 7.6).

The folds are drawn once over the **union** of both networks' hosts, by address: `StratifiedKFold(n_folds,
shuffle=True, random_state=seed)` stratified by label, so a host seen by both networks has the same fold in both.
For test fold k the validation set is a stratified `val_fraction` of the union's hosts in the other folds (never
from fold k): unlike the paper's "validate on provider fold k", model selection then never sees the provider-side
vector and label of a host that is tested on the customer side.

The label of a host of the union is the provider's when known, else the customer's (GT is assumed identical in
both networks, docs/method.md 5.3; disagreements are counted and logged). `unknown` hosts are a stratum of their own:
they get folds too, because aligners train on every training-fold anchor, labelled or not.

Classes with fewer than `min_class_size` hosts in the union (default `n_folds`, the least a class needs to appear
in every fold) are **folded into `unknown`** with a warning, and are neither trained on nor scored; `Folds.folded`
lists them with their host counts so a report can say what was left out.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from darkembed.adapt.anchors import check_ips
from darkembed.vocabulary import UNKNOWN

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldSplit:
    """Boolean masks over one network's rows for one fold: train (minus validation), validation, test."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Folds:
    """Fold and label of every host of the union of two networks.

    Attributes:
        ips: uint32 addresses of the union, sorted, shape (u,).
        labels: label per host after folding small classes into `unknown`, object (u,).
        fold: fold index per host in [0, n_folds), int64 (u,).
        n_folds: number of folds.
        seed: seed of the folds and of the validation draws.
        val_fraction: share of each class of the training folds held out for validation.
        folded: classes folded into `unknown` -> their host count in the union.
        unknown: the no-label value.
    """

    ips: np.ndarray
    labels: np.ndarray
    fold: np.ndarray
    n_folds: int
    seed: int
    val_fraction: float
    folded: dict[str, int]
    unknown: str = UNKNOWN

    def rows(self, ips: np.ndarray) -> np.ndarray:
        """Positions in the union of each address of `ips` (all must belong to it), int64 (n,)."""
        ips = np.asarray(ips, dtype=np.uint32)
        pos = np.searchsorted(self.ips, ips)
        pos_c = np.minimum(pos, max(self.ips.size - 1, 0))
        bad = (pos >= self.ips.size) | (self.ips[pos_c] != ips) if self.ips.size else np.ones(ips.size, bool)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} addresses are not in the folds' host union (e.g. {int(ips[bad][0])}); "
                "build the folds from the same embeddings"
            )
        return pos_c.astype(np.int64)

    def val_mask(self, k: int) -> np.ndarray:
        """Validation hosts of test fold `k` over the union, bool (u,): a stratified share of the other folds."""
        if not 0 <= k < self.n_folds:
            raise ValueError(f"fold {k} out of range [0, {self.n_folds})")
        rng = np.random.default_rng([self.seed, k])
        out = np.zeros(self.ips.size, dtype=bool)
        training = self.fold != k
        for cls in sorted(set(self.labels[training].tolist())):
            members = np.flatnonzero(training & (self.labels == cls))
            n_val = round(self.val_fraction * members.size)
            if n_val:
                out[rng.choice(members, size=n_val, replace=False)] = True
        return out

    def split(self, k: int, ips: np.ndarray) -> FoldSplit:
        """Masks over the rows of one network (`ips`, shape (n,)) for test fold `k`."""
        rows = self.rows(ips)
        val_u = self.val_mask(k)
        test = self.fold[rows] == k
        val = val_u[rows]
        return FoldSplit(train=~test & ~val, val=val, test=test)

    def relabel(self, labels: np.ndarray) -> np.ndarray:
        """One network's own labels (object (n,)) with the folded classes made `unknown`."""
        out = np.asarray(labels, dtype=object).copy()
        if self.folded:
            out[np.isin(out.astype(str), list(self.folded))] = self.unknown
        return out


def consistent_folds(
    provider_ips: np.ndarray,
    provider_labels: np.ndarray,
    customer_ips: np.ndarray | None = None,
    customer_labels: np.ndarray | None = None,
    *,
    n_folds: int = 5,
    seed: int = 15,
    val_fraction: float = 0.1,
    min_class_size: int | None = None,
    unknown: str = UNKNOWN,
) -> Folds:
    """Stratified folds over the union of two networks' hosts, consistent by address.

    Args:
        provider_ips: uint32 (n_p,).
        provider_labels: label per provider host, (n_p,) (`unknown` = none).
        customer_ips: uint32 (n_c,); None for a single network.
        customer_labels: label per customer host, (n_c,).
        n_folds: folds.
        seed: seed of `StratifiedKFold` and of the validation draws.
        val_fraction: share of each class of the training folds used for validation.
        min_class_size: classes with fewer hosts in the union become `unknown`; default `n_folds`.
        unknown: the no-label value.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    p_ips = check_ips(provider_ips, "provider ips")
    p_lab = np.asarray(provider_labels, dtype=object)
    if p_lab.shape != p_ips.shape:
        raise ValueError(f"provider labels have shape {p_lab.shape}, addresses {p_ips.shape}")
    if customer_ips is None:
        c_ips, c_lab = np.zeros(0, np.uint32), np.zeros(0, dtype=object)
    else:
        c_ips = check_ips(customer_ips, "customer ips")
        c_lab = np.asarray(
            customer_labels if customer_labels is not None else [unknown] * c_ips.size, dtype=object
        )
        if c_lab.shape != c_ips.shape:
            raise ValueError(f"customer labels have shape {c_lab.shape}, addresses {c_ips.shape}")
    ips = np.union1d(p_ips, c_ips).astype(np.uint32)
    labels = np.full(ips.size, unknown, dtype=object)
    c_pos = np.searchsorted(ips, c_ips)
    labels[c_pos] = c_lab
    p_pos = np.searchsorted(ips, p_ips)
    known_p = p_lab.astype(str) != unknown
    clash = (
        known_p & (labels[p_pos].astype(str) != unknown) & (labels[p_pos].astype(str) != p_lab.astype(str))
    )
    if clash.any():
        log.warning("folds: %d hosts labelled differently by the two networks; the provider's label is used",
                    int(clash.sum()))  # fmt: skip
    labels[p_pos[known_p]] = p_lab[known_p]

    min_size = n_folds if min_class_size is None else min_class_size
    names, counts = np.unique(labels.astype(str), return_counts=True)
    folded = {str(n): int(c) for n, c in zip(names, counts, strict=True) if n != unknown and c < min_size}
    if folded:
        log.warning(
            "folds: classes with fewer than %d hosts folded into %s (neither trained on nor scored): %s",
            min_size, unknown, ", ".join(f"{k} ({v})" for k, v in sorted(folded.items())),
        )  # fmt: skip
        labels[np.isin(labels.astype(str), list(folded))] = unknown
    if ips.size < n_folds:
        raise ValueError(f"{ips.size} hosts cannot be split into {n_folds} folds")
    fold = np.empty(ips.size, dtype=np.int64)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    strata = labels.astype(str)
    # a stratum (e.g. a handful of unknown hosts) smaller than n_folds only leaves some folds without it
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for k, (_, test) in enumerate(skf.split(np.zeros(ips.size), strata)):
            fold[test] = k
    return Folds(ips, labels, fold, n_folds, seed, val_fraction, folded, unknown)
