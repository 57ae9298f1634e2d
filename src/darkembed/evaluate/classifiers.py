"""Host classifiers: the [TNSM] DNN and the [GNN] leave-one-out kNN (docs/method.md 5.1, 5.2, 7.6).

Both take embeddings `X` float32 (n, e) and labels as object arrays (n,) of strings, `unknown` = no label.
Pure in-memory functions: no dataset is read or written here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from darkembed.torchutil import SeededDropout, adam, generator, init_linear_, load_numpy_state, pick_device
from darkembed.vocabulary import UNKNOWN

log = logging.getLogger(__name__)


class _Net(nn.Module):
    def __init__(self, dim_in: int, hidden: list[int], n_classes: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = dim_in
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(), SeededDropout(dropout)]
            d = h
        layers.append(nn.Linear(d, n_classes))  # logits; softmax is inside the cross-entropy
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def use(self, gen: torch.Generator | None) -> None:
        """Draw the dropout masks from `gen` (None: torch's global state)."""
        for m in self.net:
            if isinstance(m, SeededDropout):
                m.use(gen)


class DNNClassifier:
    """e -> 512 ReLU Dropout(.3) -> 256 ReLU Dropout(.3) -> |C| softmax; cross-entropy; Adam; best val loss.

    `unknown` hosts are dropped from training and validation; the classes are the labels left in the training
    set, sorted. Inputs are used unscaled, without class weights (docs/method.md 7.6). The weights of the epoch with
    the lowest validation loss are kept (the last epoch's when there is no validation host).

    Args:
        hidden: hidden layer widths.
        dropout: dropout after each ReLU.
        epochs: epochs at most.
        batch_size: hosts per step.
        lr: Adam learning rate.
        patience: stop after this many epochs without a better validation loss; None = all epochs.
        seed: seed of the initial weights, the dropout masks and the batch order (the classifier's own
            generators, never torch's global random state: classifiers trained at once in threads do not change
            each other's numbers).
        device: torch device; None = CUDA when available, else CPU.
        unknown: the no-label value.
    """

    def __init__(
        self,
        *,
        hidden: list[int] | tuple[int, ...] = (512, 256),
        dropout: float = 0.3,
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        patience: int | None = None,
        seed: int = 15,
        device: str | None = None,
        unknown: str = UNKNOWN,
    ) -> None:
        self.hidden = [int(h) for h in hidden]
        self.dropout, self.epochs, self.batch_size, self.lr = dropout, epochs, batch_size, lr
        self.patience, self.seed, self.unknown = patience, seed, unknown
        self.device = pick_device(device)
        self.classes_: list[str] = []
        self.dim_in: int | None = None
        self.model: _Net | None = None
        self.best_epoch: int = -1
        self.history: list[tuple[float, float]] = []
        self.fit_seconds: float = 0.0

    @classmethod
    def from_config(cls, cfg: Any, *, seed: int | None = None, device: str | None = None) -> DNNClassifier:
        """A classifier with the hyper-parameters of an `EvaluateConfig`."""
        return cls(
            hidden=cfg.dnn_hidden,
            dropout=cfg.dnn_dropout,
            epochs=cfg.dnn_epochs,
            batch_size=cfg.dnn_batch_size,
            lr=cfg.dnn_lr,
            patience=cfg.dnn_patience,
            seed=cfg.seed if seed is None else seed,
            device=device,
        )

    def _encode(self, X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index = {c: i for i, c in enumerate(self.classes_)}
        keep = np.array([c in index for c in y.astype(str)], dtype=bool)
        codes = np.array([index[c] for c in y.astype(str)[keep]], dtype=np.int64)
        return (
            torch.from_numpy(np.ascontiguousarray(X[keep], dtype=np.float32)).to(self.device),
            torch.from_numpy(codes).to(self.device),
        )

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
    ) -> DNNClassifier:
        """Train on `X` float32 (n, e) with labels `y` (n,); select the epoch on (`X_val`, `y_val`).

        Validation hosts whose class is not among the training classes are ignored.
        """
        t0 = time.perf_counter()
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=object).astype(str)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError(f"X has shape {X.shape} but there are {y.shape[0]} labels")
        labelled = y != self.unknown
        self.classes_ = sorted(set(y[labelled].tolist()))
        if not self.classes_:
            raise ValueError("no labelled host to train the classifier on (all unknown)")
        self.dim_in = X.shape[1]
        xt, yt = self._encode(X, y)
        if X_val is not None and y_val is not None and len(y_val):
            xv, yv = self._encode(np.asarray(X_val, dtype=np.float32), np.asarray(y_val, dtype=object))
        else:
            xv = yv = None
        if xv is None or yv.numel() == 0:
            log.warning("DNN classifier: no validation host of a training class; keeping the last epoch")
            xv = yv = None

        gen = generator(self.seed)
        model = _Net(self.dim_in, self.hidden, len(self.classes_), self.dropout)
        model = init_linear_(model, gen).to(self.device)
        # dropout masks from their own stream, drawn on the model's device (no host-device copy per step)
        drop_gen = torch.Generator(device=self.device).manual_seed(self.seed + 1)
        model.use(drop_gen)
        opt = adam(model.parameters(), lr=self.lr)
        loss_fn = nn.CrossEntropyLoss()
        best_loss, best_state, since = float("inf"), None, 0
        self.history = []
        n = xt.shape[0]
        for epoch in range(self.epochs):
            model.train()
            order = torch.randperm(n, generator=gen).to(self.device)
            total = 0.0
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            train_loss = total / n
            if xv is not None:
                model.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(model(xv), yv))
            else:
                val_loss = float("nan")
            self.history.append((train_loss, val_loss))
            if xv is None or val_loss < best_loss:
                best_loss, since, self.best_epoch = val_loss, 0, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since += 1
                if self.patience is not None and since >= self.patience:
                    break
        assert best_state is not None
        model.load_state_dict(best_state)
        model.use(None)
        model.eval()
        self.model = model
        self.fit_seconds = time.perf_counter() - t0
        log.info(
            "DNN classifier: %d hosts, %d classes, best epoch %d of %d (val loss %.4g), %.2f s",
            n, len(self.classes_), self.best_epoch + 1, len(self.history), best_loss, self.fit_seconds,
        )  # fmt: skip
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 (n, |C|), columns in `classes_` order."""
        if self.model is None:
            raise RuntimeError("DNN classifier: call fit() (or from_state) before predicting")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.dim_in:
            raise ValueError(f"classifier expects {self.dim_in}-dimensional embeddings, got shape {X.shape}")
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], 65536):
                x = torch.from_numpy(np.ascontiguousarray(X[start : start + 65536])).to(self.device)
                out.append(torch.softmax(self.model(x), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)), np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class per host, object (n,)."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_, dtype=object)[proba.argmax(1)] if proba.size else np.zeros(0, object)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Weights as numpy arrays and JSON-able metadata (architecture, classes, hyper-parameters)."""
        if self.model is None:
            raise RuntimeError("DNN classifier: nothing to export before fit()")
        tensors = {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}
        meta = {
            "kind": "dnn",
            "dim_in": self.dim_in,
            "hidden": self.hidden,
            "classes": self.classes_,
            "dropout": self.dropout,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            "best_epoch": self.best_epoch,
        }
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> DNNClassifier:
        """Rebuild a fitted classifier from `state()`'s output."""
        obj = cls(
            hidden=list(meta["hidden"]),
            dropout=float(meta["dropout"]),
            epochs=int(meta["epochs"]),
            batch_size=int(meta["batch_size"]),
            lr=float(meta["lr"]),
            seed=int(meta["seed"]),
        )
        obj.dim_in = int(meta["dim_in"])
        obj.classes_ = [str(c) for c in meta["classes"]]
        obj.best_epoch = int(meta.get("best_epoch", -1))
        model = _Net(obj.dim_in, obj.hidden, len(obj.classes_), obj.dropout)
        load_numpy_state(model, tensors, "DNN classifier")
        obj.model = model.to(obj.device).eval()
        return obj


@dataclass(frozen=True)
class KnnResult:
    """Leave-one-out kNN predictions of one day.

    Attributes:
        rows: positions of the scored (labelled) hosts in the input, int64 (q,).
        y_true: their labels after folding small classes, object (q,).
        y_pred: the predicted label (may be `unknown`, a miss), object (q,).
        neighbours: positions of each scored host's k neighbours, nearest first, int64 (q, k).
        folded: classes folded into `unknown` that day -> host count.
    """

    rows: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    neighbours: np.ndarray
    folded: dict[str, int]


def fold_small_classes(
    labels: np.ndarray, min_class_size: int, unknown: str = UNKNOWN
) -> tuple[np.ndarray, dict]:
    """Labels with the classes of fewer than `min_class_size` hosts made `unknown`; and those classes' sizes."""
    labels = np.asarray(labels, dtype=object).astype(str).astype(object)
    names, counts = np.unique(labels.astype(str), return_counts=True)
    small = {
        str(n): int(c) for n, c in zip(names, counts, strict=True) if n != unknown and c < min_class_size
    }
    if small:
        labels[np.isin(labels.astype(str), list(small))] = unknown
    return labels, small


def vote(neighbour_labels: np.ndarray) -> np.ndarray:
    """Majority label per row of `neighbour_labels` (q, k), nearest first; ties -> the nearest tied label.

    Each neighbour's label is counted among the row; the first neighbour (in distance order) whose label has the
    highest count wins, so a tie goes to the label of the nearest tied neighbour (not the alphabetically first).
    """
    nl = np.asarray(neighbour_labels, dtype=object)
    if nl.size == 0:
        return np.zeros(nl.shape[0], dtype=object)
    _, codes = np.unique(nl.astype(str), return_inverse=True)
    codes = codes.reshape(nl.shape)
    counts = (codes[:, :, None] == codes[:, None, :]).sum(-1)  # (q, k): votes for each neighbour's label
    winner = (counts == counts.max(1, keepdims=True)).argmax(1)  # first (= nearest) of the tied positions
    return nl[np.arange(nl.shape[0]), winner]


#: Above this many hosts the neighbour search is approximate (NN-descent); exact brute force is O(n^2).
KNN_EXACT_MAX = 20_000


def nearest_neighbours(
    X: np.ndarray, queries: np.ndarray, k: int, *, exact_max: int = KNN_EXACT_MAX, seed: int = 15
) -> np.ndarray:
    """The `k` nearest rows of `X` (cosine distance) to each row `X[queries]`, nearest first, int64 (q, k).

    Exact (brute force, blocked by scikit-learn) up to `exact_max` rows; above, approximate with NN-descent
    (pynndescent: about n log n, recall near 1 at these sizes; seeded, so repeatable). A query row itself is
    among its own neighbours (distance 0), as with exact search.

    Args:
        X: vectors, float32 (n, e).
        queries: row positions to find neighbours for, int64 (q,).
        k: neighbours per query (k <= n).
        exact_max: largest n searched exactly.
        seed: NN-descent's random state.
    """
    if X.shape[0] <= exact_max:
        from sklearn.neighbors import NearestNeighbors

        nn_ = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(X)
        return nn_.kneighbors(X[queries], n_neighbors=k)[1].astype(np.int64)
    from pynndescent import NNDescent

    index = NNDescent(
        X, metric="cosine", n_neighbors=max(k, 15), random_state=seed, n_jobs=1, low_memory=True
    )
    ind, _ = index.neighbor_graph
    return np.asarray(ind[queries, :k], dtype=np.int64)


def knn_loo(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 3,
    min_class_size: int = 11,
    unknown: str = UNKNOWN,
    exact_max: int = KNN_EXACT_MAX,
) -> KnnResult:
    """Leave-one-out kNN of one day ([GNN], docs/method.md 5.1 and 7.6).

    Classes with fewer than `min_class_size` hosts that day become `unknown`; all embeddings are standardised
    (`StandardScaler` over every host of the day); every labelled host is predicted by the majority of its `k`
    nearest *other* hosts by cosine distance, unknown hosts included as neighbours. A vote for `unknown` is
    returned as is and counts as a miss in `metrics.score`. Ties go to the nearest tied neighbour's label.

    Args:
        X: embeddings of the day's active hosts, float32 (n, e).
        labels: label per host, (n,).
        k: neighbours.
        min_class_size: hosts a class needs that day (11 = the authors' "more than 10").
        unknown: the no-label value.
        exact_max: above this many hosts the neighbours are approximate (`nearest_neighbours`).
    """
    from sklearn.preprocessing import StandardScaler  # here: the DNN classifier alone needs only torch

    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != len(labels):
        raise ValueError(f"X has shape {X.shape} but there are {len(labels)} labels")
    if X.shape[0] <= k:
        raise ValueError(f"{X.shape[0]} hosts: leave-one-out needs more than k={k}")
    lab, folded = fold_small_classes(labels, min_class_size, unknown)
    rows = np.flatnonzero(lab.astype(str) != unknown).astype(np.int64)
    Xs = StandardScaler().fit_transform(X).astype(np.float32)
    if rows.size == 0:
        return KnnResult(rows, lab[rows], lab[rows], np.zeros((0, k), np.int64), folded)
    ind = nearest_neighbours(Xs, rows, k + 1, exact_max=exact_max)
    # drop the host itself wherever it appears (exact duplicates may push it off the first place); when it is
    # not among the k+1 (ties), drop the farthest
    keep = ind != rows[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    neigh = np.take_along_axis(ind, order, axis=1)
    pred = vote(lab[neigh])
    return KnnResult(rows, lab[rows], pred, neigh, folded)
