"""The [TNSM] evaluation settings over embedding matrices (docs/method.md 5.3, 5.4, 5.6, 7.3, 7.6).

Every setting runs the same consistent folds (`darkembed.evaluate.folds`): for test fold k the classifier trains
on the provider's hosts of the other folds minus the validation hosts, selects its epoch on the validation hosts
(a stratified share of the other folds, never fold k), and is tested on the customer's hosts of fold k.

* `no_adaptation`: customer embeddings fed as they are.
* `align`: an aligner (`linear`, `nonlinear`, `procrustes`) fit on the anchors of the training folds maps the
  customer's test hosts to provider space first.
* `transfer`: the customer embeddings are already in provider space (canonical transfer): same as no adaptation.
* `independent`: the customer trains and tests on its own embeddings and labels (the reference).

`anchor_sweep` repeats `align` with stratified anchor samples (docs/method.md 5.4). Pure functions: nothing is read
or written; the flows store predictions and log metrics.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import polars as pl

from darkembed.adapt.aligners import Aligner, aligner_from_config
from darkembed.adapt.anchors import LabelsLike, anchor_samples, check_ips, find_anchors, label_vector
from darkembed.config import AdaptConfig, EvaluateConfig
from darkembed.evaluate.abstain import Abstainer, ActivityGate, fit_abstainer, open_set_scores
from darkembed.evaluate.classifiers import DNNClassifier
from darkembed.evaluate.folds import Folds, consistent_folds
from darkembed.evaluate.metrics import Scores, score, summarize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkDay:
    """One network's embeddings and labels of one day.

    Attributes:
        ips: uint32 addresses, shape (n,), no repeats.
        X: float32 embeddings, shape (n, e).
        labels: label per host, object (n,) (`unknown` = none).
        activity: the hosts' activity features of the day (the graph stage's per-host features), float64
            (n, f), for the open-set answers' activity gate (`evaluate.abstain_activity`); None = not available.
    """

    ips: np.ndarray
    X: np.ndarray
    labels: np.ndarray
    activity: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        ips: np.ndarray,
        X: np.ndarray,
        labels: LabelsLike | None = None,
        activity: np.ndarray | None = None,
    ) -> NetworkDay:
        """Check and bundle `(ips, X)` with labels given as a mapping, a frame or an aligned array, and
        optionally the hosts' activity features (row for row)."""
        ips = check_ips(ips)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] != ips.shape[0]:
            raise ValueError(f"{ips.shape[0]} addresses but embeddings of shape {X.shape}")
        if activity is not None:
            activity = np.asarray(activity, dtype=np.float64)
            if activity.ndim != 2 or activity.shape[0] != ips.shape[0]:
                raise ValueError(f"{ips.shape[0]} addresses but activity features of shape {activity.shape}")
        return cls(ips, X, label_vector(ips, labels), activity)

    @property
    def dim(self) -> int:
        return int(self.X.shape[1])


@dataclass
class FoldResult:
    """One test fold of one setting.

    Attributes:
        fold: the test fold index.
        ips: the customer hosts tested (every host of the fold, unknown included), uint32 (t,).
        y_true: their labels (small classes folded), object (t,).
        y_pred: predictions, object (t,).
        scores: metrics over the labelled test hosts.
        classifier_seconds: classifier training time (s).
        aligner_seconds: aligner fit + transform time (s); 0 without aligner.
        aligner_anchors: addresses of the anchors the aligner was fit on, uint32.
        anchor_cosine: mean cosine similarity between the aligned customer vectors of the test fold's anchors
            (never seen by the aligner) and their provider vectors; NaN without aligner. A label-free check of
            the alignment that a customer can compute.
        anchor_p10: the share of those anchors whose own provider vector is among the 10 nearest (cosine) of
            the provider vectors of the fold's anchors to its aligned vector (`anchor_retrieval`); NaN without
            aligner. Unlike the mean cosine it is not fooled by an anisotropic space, where every vector lies in
            a narrow cone (i-DarkVec's Mirai hosts do) and a high cosine does not mean the right neighbourhood.
        confidence: open-set confidence of each prediction (`evaluate.abstain`), float64 (t,); None when off.
        answer: the open-set answer, `y_pred` or `unknown` below the class's threshold, object (t,); None when off.
        thresholds: the fold's confidence threshold per predicted class, `*` for every other class (the
            pooled one: the only entry with `pooled` thresholds); None when off.
    """

    fold: int
    ips: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    scores: Scores
    classifier_seconds: float
    aligner_seconds: float = 0.0
    aligner_anchors: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    anchor_cosine: float = float("nan")
    anchor_p10: float = float("nan")
    confidence: np.ndarray | None = None
    answer: np.ndarray | None = None
    thresholds: dict[str, float] | None = None


@dataclass
class ProtocolResult:
    """All folds of one setting (`no_adaptation`, `align/<kind>`, `transfer`, `independent`)."""

    setting: str
    folds: list[FoldResult]

    def summary(self) -> pl.DataFrame:
        """Mean and std over folds per class and macro (see `metrics.summarize`), with the setting, the mean
        held-out anchor cosine and retrieval P@10 (NaN without aligner) and the mean seconds per fold
        (`timings`)."""
        return summarize([f.scores for f in self.folds]).with_columns(
            pl.lit(self.setting).alias("setting"),
            pl.lit(self.anchor_cosine).alias("anchor_cosine"),
            pl.lit(self.anchor_p10).alias("anchor_p10"),
            *(pl.lit(v).alias(k) for k, v in self.timings().items()),
            *(pl.lit(v).alias(k) for k, v in self.open_set().items()),
        )

    def open_set(self) -> dict[str, float]:
        """Open-set figures, means over folds (empty without abstention): `coverage` (share of tested hosts
        answered), `answered_precision` (right answers among the answered labelled hosts), `labelled_coverage`
        and `open_f1` (macro F1 of the answers, an abstention counting as a miss)."""
        if any(f.answer is None for f in self.folds):
            return {}
        per = [open_set_scores(f.y_true, f.answer) for f in self.folds]
        out = {k: float(np.nanmean([getattr(p, k) for p in per])) for k in ("coverage", "answered_precision",
                                                                             "labelled_coverage")}  # fmt: skip
        out["open_f1"] = float(np.nanmean([score(f.y_true, f.answer).macro["f1"] for f in self.folds]))
        return out

    @property
    def anchor_cosine(self) -> float:
        """Mean over folds of `FoldResult.anchor_cosine` (NaN without aligner)."""
        return self._fold_mean("anchor_cosine")

    @property
    def anchor_p10(self) -> float:
        """Mean over folds of `FoldResult.anchor_p10` (NaN without aligner)."""
        return self._fold_mean("anchor_p10")

    def _fold_mean(self, attr: str) -> float:
        vals = [v for f in self.folds if not np.isnan(v := getattr(f, attr))]
        return float(np.mean(vals)) if vals else float("nan")

    def predictions(self) -> pl.DataFrame:
        """fold, src_ip, label, prediction of every tested host (and with abstention its confidence and open-set
        `answer`)."""
        cols = {
            "fold": np.concatenate([np.full(f.ips.size, f.fold, np.int16) for f in self.folds]),
            "src_ip": np.concatenate([f.ips for f in self.folds]).astype(np.uint32),
            "label": np.concatenate([f.y_true for f in self.folds]).astype(str),
            "prediction": np.concatenate([f.y_pred for f in self.folds]).astype(str),
        }
        if self.folds and all(f.answer is not None for f in self.folds):
            cols["confidence"] = np.concatenate([f.confidence for f in self.folds]).astype(np.float64)
            cols["answer"] = np.concatenate([f.answer for f in self.folds]).astype(str)
        return pl.DataFrame(cols)

    def timings(self) -> dict[str, float]:
        """Mean seconds per fold of classifier training and of the aligner."""
        return {
            "classifier_seconds": float(np.mean([f.classifier_seconds for f in self.folds])),
            "aligner_seconds": float(np.mean([f.aligner_seconds for f in self.folds])),
        }

    @property
    def macro_f1(self) -> float:
        return float(np.nanmean([f.scores.macro["f1"] for f in self.folds]))


def make_folds(provider: NetworkDay, customer: NetworkDay, cfg: EvaluateConfig) -> Folds:
    """The consistent folds of a provider-customer pair with the settings of `cfg`."""
    return consistent_folds(
        provider.ips, provider.labels, customer.ips, customer.labels,
        n_folds=cfg.folds, seed=cfg.seed, val_fraction=cfg.val_fraction,
    )  # fmt: skip


def train_classifiers(
    net: NetworkDay, folds: Folds, cfg: EvaluateConfig, *, device: str | None = None
) -> list[DNNClassifier]:
    """One DNN per test fold, trained on `net`'s training hosts and validated on its validation hosts.

    Unknown hosts (and classes folded by `folds`) are left out. Fold k's classifier is seeded `cfg.seed + k`; its
    training time is in `fit_seconds`.
    """
    labels = folds.relabel(net.labels)
    out = []
    for k in range(folds.n_folds):
        s = folds.split(k, net.ips)
        clf = DNNClassifier.from_config(cfg, seed=cfg.seed + k, device=device)
        clf.fit(net.X[s.train], labels[s.train], net.X[s.val], labels[s.val])
        out.append(clf)
    return out


#: Abstainers per fitted classifier: the settings sharing the provider's classifiers share their thresholds.
_ABSTAINERS: WeakKeyDictionary[DNNClassifier, tuple[tuple, Abstainer]] = WeakKeyDictionary()


def fold_abstainer(
    reference: NetworkDay,
    folds: Folds,
    k: int,
    classifier: DNNClassifier,
    cfg: EvaluateConfig,
    calibration: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    activity: ActivityGate | None = None,
) -> Abstainer:
    """The open-set confidence and thresholds of test fold `k` (`darkembed.evaluate.abstain`), from hosts of the
    training folds only: the neighbours are `reference`'s training hosts; the thresholds come from `calibration`
    (validation vectors as the classifier sees them, their labels and, with an `activity` gate, their activity
    features) or, without it, from `reference`'s validation hosts. No host of fold `k` is read. The
    reference-calibrated abstainer is cached per classifier."""
    pooled = cfg.abstain_thresholds == "pooled"
    key = (id(reference), k, cfg.abstain_k, cfg.abstain_quantile, cfg.abstain_score, pooled)
    if classifier in _ABSTAINERS and _ABSTAINERS[classifier][0] == key:
        base = _ABSTAINERS[classifier][1]
    else:
        s = folds.split(k, reference.ips)
        labels = folds.relabel(reference.labels)
        val = s.val & (labels.astype(str) != folds.unknown)
        X_val = reference.X[val]
        pred_val = classifier.predict(X_val) if X_val.shape[0] else np.zeros(0, object)
        base = fit_abstainer(reference.X[s.train], labels[s.train], X_val, labels[val], pred_val,
                             k=cfg.abstain_k, quantile=cfg.abstain_quantile, unknown=folds.unknown,
                             score=cfg.abstain_score, pooled=pooled)  # fmt: skip
        _ABSTAINERS[classifier] = (key, base)
    if calibration is None or calibration[0].shape[0] == 0:
        return base
    X_cal, y_cal, F_cal = calibration
    return base.recalibrated(
        X_cal,
        y_cal,
        classifier.predict(X_cal),
        cfg.abstain_quantile,
        F_cal,
        activity if F_cal is not None else None,
    )


#: Activity gates per tested network (its feature matrix and labels), folds and test fold, by identity and held
#: weakly: the settings of one customer share them.
_GATES: dict[tuple, tuple[tuple[weakref.ref, ...], ActivityGate | None]] = {}


def fold_activity_gate(network: NetworkDay, folds: Folds, k: int, cfg: EvaluateConfig) -> ActivityGate | None:
    """The activity gate of `network`'s test fold `k` (`darkembed.evaluate.abstain.ActivityGate`), trained on its
    hosts of the training folds only (neither fold `k` nor the validation hosts, which calibrate the
    thresholds); None without activity features, or when those hosts are all labelled or all unlabelled."""
    if network.activity is None:
        return None
    for stale in [key for key, (refs, _) in _GATES.items() if any(r() is None for r in refs)]:
        del _GATES[stale]
    inputs = (network.activity, network.labels, folds)
    key = (*map(id, inputs), k, cfg.seed)
    if key in _GATES and all(r() is x for r, x in zip(_GATES[key][0], inputs, strict=True)):
        return _GATES[key][1]
    train = folds.split(k, network.ips).train
    known = folds.relabel(network.labels)[train].astype(str) != folds.unknown
    gate = None
    if known.all() or not known.any():
        log.warning(
            "fold %d: no activity gate (%d labelled of %d training hosts)", k, known.sum(), known.size
        )
    else:
        gate = ActivityGate(network.activity[train], known, seed=cfg.seed)
    _GATES[key] = (tuple(map(weakref.ref, inputs)), gate)
    return gate


def _check_dims(provider: NetworkDay, customer: NetworkDay, what: str) -> None:
    if provider.dim != customer.dim:
        raise ValueError(
            f"{what}: provider embeddings are {provider.dim}-dimensional, customer {customer.dim}; the classifier "
            "takes provider-space vectors (use an aligner, or embeddings of the same size)"
        )


def _evaluate(
    setting: str,
    customer: NetworkDay,
    folds: Folds,
    classifiers: list[DNNClassifier],
    mapper: Any = None,
    reference: NetworkDay | None = None,
    cfg: EvaluateConfig | None = None,
) -> ProtocolResult:
    """Score `classifiers` on each test fold of `customer` (mapped by `mapper`); with `reference` (the network the
    classifiers were trained on) and `cfg.abstain`, also the open-set answers (`evaluate.abstain`)."""
    labels = folds.relabel(customer.labels)
    open_set = reference is not None and cfg is not None and cfg.abstain
    own_val = open_set and cfg.abstain_calibration == "customer"  # type: ignore[union-attr]
    results = []
    for k in range(folds.n_folds):
        split = folds.split(k, customer.ips)
        test = split.test
        # the customer's labelled validation hosts (training folds) calibrate the thresholds, mapped as the test
        # hosts are: they carry the same shift from the provider's space
        cal = split.val & (labels.astype(str) != folds.unknown) if own_val else np.zeros_like(test)
        gate = fold_activity_gate(customer, folds, k, cfg) if own_val and cfg.abstain_activity else None  # type: ignore[union-attr,arg-type]
        X = customer.X[test | cal]
        al_s, al_anchors, cos, p10 = 0.0, np.zeros(0, np.uint32), float("nan"), float("nan")
        if mapper is not None:
            t0 = time.perf_counter()
            X, al_anchors, cos, p10 = mapper(k, X)
            al_s = time.perf_counter() - t0
        in_test = test[test | cal]
        X, X_cal = X[in_test], X[~in_test]
        clf = classifiers[k]
        pred = clf.predict(X)
        res = FoldResult(k, customer.ips[test], labels[test], pred, score(labels[test], pred),
                         clf.fit_seconds, al_s, al_anchors, cos, p10)  # fmt: skip
        if open_set:
            F = customer.activity if gate is not None else None
            calibration = (X_cal, labels[cal], None if F is None else F[cal]) if own_val else None
            abstainer = fold_abstainer(reference, folds, k, clf, cfg, calibration, gate)  # type: ignore[arg-type]
            res.thresholds = {**abstainer.thresholds, "*": abstainer.default}
            res.confidence = abstainer.confidence(X, None if F is None else F[test])
            res.answer = abstainer.answer(pred, res.confidence)
        log.info("%s fold %d: macro F1 %.3f (%d test hosts)", setting, k, res.scores.macro["f1"], test.sum())
        results.append(res)
    return ProtocolResult(setting, results)


def no_adaptation(
    provider: NetworkDay,
    customer: NetworkDay,
    folds: Folds,
    cfg: EvaluateConfig,
    *,
    classifiers: list[DNNClassifier] | None = None,
    setting: str = "no_adaptation",
    device: str | None = None,
) -> ProtocolResult:
    """Provider classifier applied to the customer's embeddings as they are.

    Args:
        provider: the provider's day (has labels).
        customer: the customer's day (labels only for scoring).
        folds: consistent folds of the pair (`make_folds`).
        cfg: evaluation settings.
        classifiers: per-fold provider classifiers from `train_classifiers` (trained here when None); pass them to
            share the training between settings.
        setting: name of the result.
        device: torch device.
    """
    _check_dims(provider, customer, setting)
    clfs = classifiers or train_classifiers(provider, folds, cfg, device=device)
    return _evaluate(setting, customer, folds, clfs, reference=provider, cfg=cfg)


def transfer(
    provider: NetworkDay,
    customer_transferred: NetworkDay,
    folds: Folds,
    cfg: EvaluateConfig,
    *,
    classifiers: list[DNNClassifier] | None = None,
    device: str | None = None,
) -> ProtocolResult:
    """Canonical transfer: the customer embeddings were fine-tuned from provider vectors, so they are already in
    provider space and are evaluated exactly as `no_adaptation`."""
    return no_adaptation(provider, customer_transferred, folds, cfg, classifiers=classifiers, setting="transfer",
                         device=device)  # fmt: skip


def align(
    provider: NetworkDay,
    customer: NetworkDay,
    folds: Folds,
    kind: str,
    cfg: EvaluateConfig,
    adapt: AdaptConfig,
    *,
    classifiers: list[DNNClassifier] | None = None,
    anchor_ips: np.ndarray | None = None,
    device: str | None = None,
) -> ProtocolResult:
    """Explicit alignment: per fold, fit an aligner on the training-fold anchors and map the customer test hosts.

    Args:
        provider, customer, folds, cfg, classifiers, device: as in `no_adaptation`.
        kind: `linear`, `nonlinear` or `procrustes`.
        adapt: aligner hyper-parameters.
        anchor_ips: the transferred anchors `Ŵ*` (uint32); None = every anchor `W*`. Only those in the training
            folds are used, so no test host's pair ever trains the aligner.
    """
    anchors = find_anchors(provider.ips, customer.ips)
    if anchor_ips is not None:
        anchors = anchors.subset(np.isin(anchors.ips, np.asarray(anchor_ips, dtype=np.uint32)))
    anchor_fold = folds.fold[folds.rows(anchors.ips)]
    clfs = classifiers or train_classifiers(provider, folds, cfg, device=device)

    held_out = find_anchors(provider.ips, customer.ips)  # every anchor, sampled or not, for the check
    held_fold = folds.fold[folds.rows(held_out.ips)]

    def mapper(k: int, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        a = anchors.subset(anchor_fold != k)
        aligner = aligner_from_config(kind, adapt, seed=cfg.seed + k, device=device)
        aligner.fit(customer.X[a.customer_rows], provider.X[a.provider_rows])
        t = held_out.subset(held_fold == k)
        mapped, target = aligner.transform(customer.X[t.customer_rows]), provider.X[t.provider_rows]
        return aligner.transform(X), a.ips, mean_cosine(mapped, target), anchor_retrieval(mapped, target)

    return _evaluate(f"align/{kind}", customer, folds, clfs, mapper, reference=provider, cfg=cfg)


def mean_cosine(A: np.ndarray, B: np.ndarray) -> float:
    """Mean row-wise cosine similarity of two (n, e) matrices (NaN when n = 0)."""
    if A.shape[0] == 0:
        return float("nan")
    num = (A * B).sum(1)
    den = np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-12)))


def anchor_retrieval(mapped: np.ndarray, target: np.ndarray, k: int = 10) -> float:
    """Share of rows i whose `target[i]` is among the `k` rows of `target` nearest (cosine) to `mapped[i]`.

    The bilingual-lexicon-induction precision@k of cross-lingual embedding alignment, over the held-out anchors:
    label-free, and robust to spaces where all vectors share one direction (there every cosine is high). The
    candidates are the `n` rows of `target`, so the value depends on `n` (chance level `k / n`); NaN when n = 0.

    Args:
        mapped: aligned customer vectors of the anchors, (n, e).
        target: their provider vectors, same order, (n, e).
        k: neighbours considered.
    """
    n = mapped.shape[0]
    if n == 0:
        return float("nan")
    a = mapped / np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12)
    b = target / np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
    sim = a @ b.T
    own = np.diag(sim)
    # rank of the own vector = how many candidates are strictly more similar (ties count in its favour)
    better = (sim > own[:, None]).sum(1)
    return float(np.mean(better < k))


def fit_aligner(
    provider: NetworkDay,
    customer: NetworkDay,
    kind: str,
    adapt: AdaptConfig,
    *,
    seed: int = 15,
    anchor_ips: np.ndarray | None = None,
    device: str | None = None,
) -> tuple[Aligner, np.ndarray]:
    """An aligner fit on all anchors of the day (or on `anchor_ips`), outside any fold: the clustering setting
    of [TNSM] §VIII and the model a provider ships to a customer.

    Returns:
        (fitted aligner, the customer's embeddings mapped to provider space, float32 (n_c, e_p)).
    """
    anchors = find_anchors(provider.ips, customer.ips)
    if anchor_ips is not None:
        anchors = anchors.subset(np.isin(anchors.ips, np.asarray(anchor_ips, dtype=np.uint32)))
    aligner = aligner_from_config(kind, adapt, seed=seed, device=device)
    aligner.fit(customer.X[anchors.customer_rows], provider.X[anchors.provider_rows])
    return aligner, aligner.transform(customer.X)


def independent(
    customer: NetworkDay,
    folds: Folds,
    cfg: EvaluateConfig,
    *,
    device: str | None = None,
) -> ProtocolResult:
    """The reference: the customer's own classifier on its own embeddings and labels, same folds."""
    clfs = train_classifiers(customer, folds, cfg, device=device)
    return _evaluate("independent", customer, folds, clfs, reference=customer, cfg=cfg)


def anchor_sweep(
    provider: NetworkDay,
    customer: NetworkDay,
    folds: Folds,
    kind: str,
    cfg: EvaluateConfig,
    adapt: AdaptConfig,
    *,
    classifiers: list[DNNClassifier] | None = None,
    fractions: list[float] | None = None,
    repeats: int | None = None,
    transfer_fn: Callable[[np.ndarray], NetworkDay] | None = None,
    device: str | None = None,
) -> pl.DataFrame:
    """Macro scores of `align` (or of canonical `transfer`) with stratified anchor samples (docs/method.md 5.4).

    For each fraction (default `adapt.anchor_fractions`) draw `repeats` (default `adapt.anchor_repeats`)
    stratified samples of the anchors (by label, `unknown` a stratum; one sample at 100 %) and run `align` with
    each, or, with `kind="transfer"`, score the customer embeddings `transfer_fn(sample)` returns (the customer
    model seeded with only those anchors' provider vectors). The provider classifiers are trained once and shared.

    Returns:
        One row per fraction, repeat and fold: fraction, repeat, fold, anchors (used by the aligner, or
        transferred), macro_precision, macro_recall, macro_f1, aligner_seconds. `sweep_curve` averages it.
    """
    if kind == "transfer" and transfer_fn is None:
        raise ValueError("the transfer anchor sweep needs transfer_fn (anchor sample -> customer embeddings)")
    fractions = list(adapt.anchor_fractions if fractions is None else fractions)
    repeats = adapt.anchor_repeats if repeats is None else repeats
    clfs = classifiers or train_classifiers(provider, folds, cfg, device=device)
    all_anchors = find_anchors(provider.ips, customer.ips)
    strata = folds.labels[folds.rows(all_anchors.ips)]
    rows = []
    for fraction in fractions:
        for r, idx in enumerate(anchor_samples(strata, fraction, repeats, cfg.seed)):
            sample = all_anchors.ips[idx]
            if kind == "transfer":
                t0 = time.perf_counter()
                seeded = transfer_fn(sample)
                spent = time.perf_counter() - t0
                res = transfer(provider, seeded, folds, cfg, classifiers=clfs, device=device)
                used = {f.fold: (sample.size, spent) for f in res.folds}
            else:
                res = align(provider, customer, folds, kind, cfg, adapt, classifiers=clfs, anchor_ips=sample,
                            device=device)  # fmt: skip
                used = {f.fold: (f.aligner_anchors.size, f.aligner_seconds) for f in res.folds}
            for f in res.folds:
                m = f.scores.macro
                rows.append({
                    "fraction": float(fraction), "repeat": r, "fold": f.fold, "anchors": int(used[f.fold][0]),
                    "macro_precision": m["precision"], "macro_recall": m["recall"], "macro_f1": m["f1"],
                    "aligner_seconds": float(used[f.fold][1]),
                })  # fmt: skip
    return pl.DataFrame(rows)


def sweep_curve(sweep: pl.DataFrame) -> pl.DataFrame:
    """Per fraction: mean and std (ddof 1) of the macro F1 over repeats x folds, and the mean anchors used."""
    return (
        sweep.group_by("fraction")
        .agg(
            pl.col("macro_f1").mean().alias("f1_mean"),
            pl.col("macro_f1").std().alias("f1_std"),
            pl.col("anchors").mean().alias("anchors_mean"),
            pl.len().alias("runs"),
        )
        .sort("fraction")
    )
