"""Open-set answers: a confidence per prediction and `unknown` below a threshold (docs/open-set.md).

The closed-world classifier gives every host one of the provider's classes. Here each prediction also gets a
confidence, the **background-relative neighbour score** in the classifier's input space:

    conf(x) = log d_bg(x) - log d_lab(x)

with `d_lab` the mean cosine distance from `x` to its `k` nearest *labelled* training hosts of the reference
network (the provider, or the customer itself for the `independent` setting) and `d_bg` the same to its `k`
nearest *unlabelled* training hosts (the background the reference network sees and cannot name). A host closer to
labelled hosts than to the background scores above 0. The score is the deep-kNN out-of-distribution distance
(Sun et al., ICML 2022) made relative to a background set, as outlier exposure (Hendrycks et al., ICLR 2019) uses
auxiliary unknown data, without retraining the classifier (the closed-world numbers stay those of the papers). The
ratio cancels the global stretch an aligner leaves on the customer's vectors, which shifts plain distances and
softmax confidences between the validation hosts and the aligned test hosts.

To this embedding score the **activity gate** adds its log-odds (`ActivityGate`, `evaluate.abstain_activity`): a
classifier of the tested network's own hosts by their traffic features of the day (labelled = known, unlabelled =
background), trained on its training-fold hosts. The embeddings place a look-alike (an unlisted scanner, a bot
without the fingerprint, a prober on the scanners' ports) among the labelled hosts it resembles; its own traffic
statistics often tell it apart. The two terms are log-ratios of "known" against "background" evidence from two
views and add as in naive Bayes.

Thresholds come from split conformal calibration over the correctly classified validation hosts: the threshold is
the `j`-th smallest of their confidences, `j = floor(quantile * (n + 1))`, so that a new correctly classified host,
exchangeable with them, is answered with probability at least `1 - quantile`. With `pooled` thresholds (the
default) the `n` hosts are those of every class; per predicted class (Mondrian calibration) they are the class's
own, and a class with too few for that (`j = 0`, e.g. fewer than 19 at 5 %) takes the pooled threshold (always
answered only when even those are too few). The validation hosts are those of the training folds
(`Folds.split(k).val`): the test fold is never seen, and the activity gate is trained on neither.

Pure in-memory functions: nothing is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sklearn.neighbors import NearestNeighbors

from darkembed.vocabulary import UNKNOWN

#: Cosine distances are clipped here before the log: exact duplicates must not give an infinite score.
_EPS = 1e-6


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


class NeighbourScore:
    """The background-relative neighbour confidence over one reference network's training hosts.

    Args:
        X_labelled: embeddings of the labelled training hosts, float32 (n_l, e).
        X_background: embeddings of the unlabelled training hosts, float32 (n_b, e); with none, the score is
            `-log d_lab` (the plain kNN distance).
        k: neighbours averaged on each side (capped by each set's size).
    """

    def __init__(self, X_labelled: np.ndarray, X_background: np.ndarray | None, k: int = 10) -> None:
        if k < 1:
            raise ValueError(f"abstention: k must be at least 1, got {k}")
        if len(X_labelled) == 0:
            raise ValueError("abstention: no labelled training host to measure the distance to")
        self.k = k
        self._lab = self._index(X_labelled)
        self._bg = self._index(X_background) if X_background is not None and len(X_background) else None

    def _index(self, X: np.ndarray) -> NearestNeighbors:
        return NearestNeighbors(n_neighbors=min(self.k, len(X)), metric="cosine").fit(_unit(X))

    @staticmethod
    def _mean_distance(index: NearestNeighbors, X: np.ndarray, skip_self: bool = False) -> np.ndarray:
        if not skip_self:
            d, _ = index.kneighbors(_unit(X))
        else:  # the row is itself in the index: its nearest neighbour (itself) is dropped
            n = min(index.n_neighbors + 1, index.n_samples_fit_)
            d, _ = index.kneighbors(_unit(X), n_neighbors=n)
            d = d[:, 1:] if n > 1 else d
        return np.maximum(d.mean(1), _EPS)

    def log_distances(self, X: np.ndarray, in_labelled: np.ndarray | None = None) -> np.ndarray:
        """`(log d_lab, log d_bg)` per row of `X`, float64 (n, 2) (`d_bg` = `d_lab` without a background).

        Args:
            X: vectors (n, e).
            in_labelled: for rows that are themselves training hosts, True = in the labelled set, False = in the
                background (each is left out of its own neighbours); None = new hosts.
        """
        out = np.zeros((len(X), 2))
        if len(X) == 0:
            return out
        masks = [(np.ones(len(X), bool), False)] if in_labelled is None else [
            (np.asarray(in_labelled, bool), True), (~np.asarray(in_labelled, bool), False)]  # fmt: skip
        for rows, lab_self in masks:
            if not rows.any():
                continue
            out[rows, 0] = np.log(
                self._mean_distance(self._lab, X[rows], skip_self=lab_self and in_labelled is not None)
            )
            bg_self = in_labelled is not None and not lab_self
            out[rows, 1] = (
                np.log(self._mean_distance(self._bg, X[rows], skip_self=bg_self))
                if self._bg is not None
                else out[rows, 0]
            )
        return out

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Confidence per row of `X` (n, e), float64 (n,); higher = more like the labelled hosts."""
        if len(X) == 0:
            return np.zeros(0)
        score = -np.log(self._mean_distance(self._lab, X))
        if self._bg is not None:
            score += np.log(self._mean_distance(self._bg, X))
        return score


class GateScore:
    """The probability that a host is of a known class, from a gate trained on one reference network's training
    hosts: labelled = known, unlabelled (the background) = unknown (docs/open-set.md, "The gate").

    The gate is a logistic regression on the unit embedding and the neighbour score's two log distances (each
    training host's computed without itself); the confidence is its log-odds of "known". The closed-world
    classifier is not touched.

    Args:
        X_labelled: embeddings of the labelled training hosts, float32 (n_l, e).
        X_background: embeddings of the unlabelled training hosts, float32 (n_b, e); at least one.
        k: neighbours of the distance features.
        C: inverse L2 strength of the logistic regression.
    """

    def __init__(self, X_labelled: np.ndarray, X_background: np.ndarray, k: int = 10, C: float = 1.0) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if X_background is None or len(X_background) == 0:
            raise ValueError("abstention gate: no unlabelled training host to learn 'unknown' from")
        self.neighbours = NeighbourScore(X_labelled, X_background, k=k)
        X = np.concatenate([np.asarray(X_labelled), np.asarray(X_background)])
        known = np.r_[np.ones(len(X_labelled), bool), np.zeros(len(X_background), bool)]
        self._model = make_pipeline(
            StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
        )
        self._model.fit(self._features(X, known), known)

    def _features(self, X: np.ndarray, in_labelled: np.ndarray | None = None) -> np.ndarray:
        return np.hstack([self.neighbours.log_distances(X, in_labelled), _unit(X)])

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of "known" per row of `X` (n, e), float64 (n,)."""
        if len(X) == 0:
            return np.zeros(0)
        return np.asarray(self._model.decision_function(self._features(np.asarray(X))), dtype=np.float64)


class ActivityGate:
    """The log-odds that a host is of a known class from its **own traffic** (docs/open-set.md, "The activity
    gate"): a gradient-boosted classifier over the host's activity features of the day (the graph stage's 37
    per-host features: distinct ports and addresses, packets per port and address, IP length, TTL, TCP MSS,
    window and timestamp statistics), trained on one network's
    training hosts, its labelled hosts as "known" and its unlabelled ones as "unknown".

    Trained on the network whose hosts it scores (the customer's own labelled and unlabelled hosts of the
    training folds, never its calibration or test hosts): a honeypot's or another darknet's traffic statistics do
    not transfer to this network's, its own do. Tree ensembles are invariant to monotone rescaling, so the raw
    features are used as they are.

    Args:
        F: activity features of the training hosts, (n, f).
        known: True where the training host is labelled, (n,); both values must occur.
        seed: the boosting's random state.
    """

    def __init__(self, F: np.ndarray, known: np.ndarray, seed: int = 15) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        known = np.asarray(known, bool)
        if known.all() or not known.any():
            raise ValueError(
                "abstention activity gate: the training hosts must include labelled and unlabelled ones "
                f"({int(known.sum())} labelled of {known.size})"
            )
        self._model = HistGradientBoostingClassifier(
            max_iter=200, class_weight="balanced", random_state=seed
        ).fit(np.asarray(F, dtype=np.float64), known)

    def __call__(self, F: np.ndarray) -> np.ndarray:
        """Log-odds of "known" per row of `F` (n, f), float64 (n,)."""
        if len(F) == 0:
            return np.zeros(0)
        return np.asarray(self._model.decision_function(np.asarray(F, dtype=np.float64)), dtype=np.float64)


@dataclass(frozen=True)
class Abstainer:
    """A fitted confidence and its per-class thresholds for one fold.

    Attributes:
        score: the confidence function of the embeddings (`NeighbourScore` or `GateScore`).
        thresholds: predicted class -> lowest confidence answered.
        default: threshold of a class without correct validation host (the pooled one; `-inf`: answered).
        unknown: the abstention answer.
        activity: the tested network's `ActivityGate`, whose log-odds add to the score; None = the embedding
            score alone.
        pooled: one threshold for every class (`class_thresholds(pooled=True)`).
    """

    score: NeighbourScore | GateScore
    thresholds: dict[str, float]
    default: float
    unknown: str = UNKNOWN
    activity: ActivityGate | None = None
    pooled: bool = False

    def confidence(self, X: np.ndarray, F: np.ndarray | None = None) -> np.ndarray:
        """Confidence of vectors `X` (n, e); with an activity gate, plus its log-odds of the hosts' activity
        features `F` (n, f), which it then needs."""
        conf = self.score(X)
        if self.activity is not None:
            if F is None:
                raise ValueError("abstention: the activity gate needs the hosts' activity features")
            conf = conf + self.activity(F)
        return conf

    def recalibrated(
        self,
        X_val: np.ndarray,
        y_val: np.ndarray,
        pred_val: np.ndarray,
        quantile: float,
        F_val: np.ndarray | None = None,
        activity: ActivityGate | None = None,
    ) -> Abstainer:
        """The same embedding score, with `activity` (if given) added, and thresholds set on other validation
        hosts (`class_thresholds`; their activity features `F_val` with a gate)."""
        scored = replace(self, activity=activity)
        thresholds, default = class_thresholds(
            scored.confidence(X_val, F_val), y_val, pred_val, quantile, self.unknown, pooled=self.pooled
        )
        return replace(scored, thresholds=thresholds, default=default)

    def answer(self, pred: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """`pred` (object (n,)) with `unknown` where the confidence is below the predicted class's threshold."""
        pred = np.asarray(pred, dtype=object)
        tau = np.array([self.thresholds.get(str(p), self.default) for p in pred], dtype=np.float64)
        return np.where(np.asarray(confidence) >= tau, pred, self.unknown).astype(object)


def class_thresholds(
    confidence: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    quantile: float,
    unknown: str = UNKNOWN,
    *,
    pooled: bool = False,
) -> tuple[dict[str, float], float]:
    """Per predicted class, the conformal threshold over the correctly predicted validation hosts (module doc).

    Args:
        confidence: validation confidences, (v,).
        y_true: validation labels, (v,) (`unknown` hosts are ignored).
        y_pred: the classifier's predictions of them, (v,).
        quantile: share of each class's correct validation answers that falls below its threshold, in [0, 1).
        pooled: one threshold for all classes, over every correct validation answer (no per-class entries):
            the guarantee holds per host rather than per class, and no class's threshold rests on a handful of
            validation hosts.

    Returns:
        (class -> threshold, the pooled threshold for any other class; `-inf` = always answered).
    """
    if not 0 <= quantile < 1:
        raise ValueError(f"abstention quantile must be in [0, 1), got {quantile}")
    conf = np.asarray(confidence, dtype=np.float64)
    yt, yp = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    right = (yt == yp) & (yt != unknown)
    together = _conformal(conf[right], quantile)
    if pooled:
        return {}, float("-inf") if together is None else together
    out = {}
    for c in sorted(set(yp[right].tolist())):
        own = _conformal(conf[right & (yp == c)], quantile)
        out[c] = together if own is None else own
    default = float("-inf") if together is None else together
    return {c: float("-inf") if v is None else v for c, v in out.items()}, default


def _conformal(scores: np.ndarray, quantile: float) -> float | None:
    """The `floor(quantile (n + 1))`-th smallest of `scores`; None when that rank is 0 (too few scores)."""
    j = int(np.floor(quantile * (scores.size + 1)))
    return float(np.sort(scores)[j - 1]) if j >= 1 else None


def fit_abstainer(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    pred_val: np.ndarray,
    *,
    k: int = 10,
    quantile: float = 0.05,
    unknown: str = UNKNOWN,
    score: str = "neighbour",
    pooled: bool = False,
) -> Abstainer:
    """The abstainer of one fold from the reference network's training and validation hosts only.

    Args:
        X_train: training hosts of the fold (labelled and not), float32 (n, e).
        y_train: their labels (`unknown` = background), (n,).
        X_val: validation hosts of the fold, float32 (v, e).
        y_val: their labels, (v,).
        pred_val: the fold's classifier's predictions on `X_val`, (v,).
        k: neighbours of the score.
        quantile: share of correct validation answers per class left below the threshold.
        score: the confidence of the embeddings, `neighbour` (`NeighbourScore`) or `gate` (`GateScore`); an
            activity gate is added by `Abstainer.recalibrated`.
        pooled: one threshold for all classes (`class_thresholds`).
    """
    y_train = np.asarray(y_train).astype(str)
    lab = y_train != unknown
    X_train = np.asarray(X_train)
    if score == "neighbour":
        conf: NeighbourScore | GateScore = NeighbourScore(X_train[lab], X_train[~lab], k=k)
    elif score == "gate":
        conf = GateScore(X_train[lab], X_train[~lab], k=k)
    else:
        raise ValueError(f"abstention score must be 'neighbour' or 'gate', got {score!r}")
    thresholds, default = class_thresholds(conf(X_val), y_val, pred_val, quantile, unknown, pooled=pooled)
    return Abstainer(conf, thresholds, default, unknown, pooled=pooled)


@dataclass(frozen=True)
class OpenSetScores:
    """What the open-set answers give on one set of test hosts.

    Attributes:
        coverage: share of the tested hosts answered with a class (labelled or not).
        answered_precision: share of the answered labelled hosts whose answer is right (NaN when none).
        labelled_coverage: share of the labelled hosts answered.
    """

    coverage: float
    answered_precision: float
    labelled_coverage: float


def open_set_scores(y_true: np.ndarray, answer: np.ndarray, unknown: str = UNKNOWN) -> OpenSetScores:
    """Coverage and answered precision of open-set `answer`s against labels `y_true` (both (n,))."""
    yt, ans = np.asarray(y_true).astype(str), np.asarray(answer).astype(str)
    answered = ans != unknown
    labelled = yt != unknown
    hit = answered & labelled
    return OpenSetScores(
        coverage=float(answered.mean()) if ans.size else float("nan"),
        answered_precision=float((ans[hit] == yt[hit]).mean()) if hit.any() else float("nan"),
        labelled_coverage=float(answered[labelled].mean()) if labelled.any() else float("nan"),
    )


def forced_share(true_class: np.ndarray, answer: np.ndarray, unknown: str = UNKNOWN) -> float:
    """Share of the hosts whose true class is `unknown` (an answer key's) that get a known class (NaN if none)."""
    tc, ans = np.asarray(true_class).astype(str), np.asarray(answer).astype(str)
    truly = tc == unknown
    return float((ans[truly] != unknown).mean()) if truly.any() else float("nan")
