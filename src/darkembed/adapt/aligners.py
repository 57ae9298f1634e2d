"""Explicit aligners `a_{c,p}`: maps from the customer's embedding space to the provider's, fit on anchor pairs.

The [TNSM] `linear` and `nonlinear` DNNs (LayerNorm -> `depth` x Dense(`width`) with identity or sigmoid
activation -> linear output; MSE; Adam; mini-batches), the same linear model solved in closed form (ridge least
squares on the layer-normalised inputs: the default `linear`, see docs/adaptation-speed.md), and orthogonal
Procrustes (closed form by SVD, optionally centred and scaled). All share one interface:

    aligner = make_aligner("nonlinear", epochs=50, seed=15)
    aligner.fit(Yc_anchor, Yp_anchor)        # (m, e_c), (m, e_p) float32, row i = the same host
    Yc_in_p = aligner.transform(Yc)          # (n, e_c) -> (n, e_p)
    tensors, meta = aligner.state()          # numpy arrays + small JSON-able dict (the exchange bundle)
    same = aligner_from_state(tensors, meta)

State never goes through pickle or `torch.load`: weights are plain arrays, rebuilt into a fresh module.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from darkembed.torchutil import adam, generator, init_linear_, load_numpy_state, pick_device

log = logging.getLogger(__name__)

ALIGNER_KINDS = ("linear", "nonlinear", "procrustes")


class AlignmentError(ValueError):
    """Aligner inputs do not fit together (row counts, dimensions) or the aligner is used before `fit`."""


def _matrix(a: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise AlignmentError(f"{what}: expected a 2-D matrix (hosts x dimensions), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise AlignmentError(f"{what}: contains NaN or infinite values")
    return arr.astype(np.float32, copy=False)


class Aligner(ABC):
    """Maps customer vectors (e_c,) to provider space (e_p,)."""

    kind: ClassVar[str]

    def __init__(self) -> None:
        self.dim_in: int | None = None
        self.dim_out: int | None = None
        self.fit_seconds: float = 0.0

    def _check_pairs(self, yc: np.ndarray, yp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        yc = _matrix(yc, "customer anchor embeddings")
        yp = _matrix(yp, "provider anchor embeddings")
        if yc.shape[0] != yp.shape[0]:
            raise AlignmentError(
                f"anchor pairs do not match: {yc.shape[0]} customer rows vs {yp.shape[0]} provider rows; "
                "row i of both matrices must be the same host"
            )
        if yc.shape[0] < 2:
            raise AlignmentError(f"need at least 2 anchor pairs to fit an aligner, got {yc.shape[0]}")
        return yc, yp

    def _check_input(self, yc: np.ndarray) -> np.ndarray:
        if self.dim_in is None:
            raise AlignmentError(f"{self.kind} aligner: call fit() (or from_state) before transform()")
        yc = _matrix(yc, "customer embeddings")
        if yc.shape[1] != self.dim_in:
            raise AlignmentError(
                f"{self.kind} aligner was fit on {self.dim_in}-dimensional customer embeddings, "
                f"got {yc.shape[1]} dimensions; use embeddings of the same method and size"
            )
        return yc

    @abstractmethod
    def fit(self, yc_anchor: np.ndarray, yp_anchor: np.ndarray) -> Aligner:
        """Fit on anchor pairs: `yc_anchor` (m, e_c) and `yp_anchor` (m, e_p), row i = the same host."""

    @abstractmethod
    def transform(self, yc: np.ndarray) -> np.ndarray:
        """Map customer embeddings (n, e_c) to provider space: float32 (n, e_p)."""

    @abstractmethod
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Weights as numpy arrays and JSON-able metadata (`kind`, dimensions, hyper-parameters)."""

    @classmethod
    @abstractmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Aligner:
        """Rebuild a fitted aligner from `state()`'s output."""


class _MLP(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, width: int, depth: int, activation: str) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.LayerNorm(dim_in)]
        d = dim_in
        for _ in range(depth):
            layers.append(nn.Linear(d, width))
            if activation == "sigmoid":
                layers.append(nn.Sigmoid())
            d = width
        layers.append(nn.Linear(d, dim_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DNNAligner(Aligner):
    """The [TNSM] aligner: LayerNorm -> `depth` x Dense(`width`) (identity or sigmoid) -> Dense(e_p).

    Trained with MSE between `a(y_c)` and `y_p` over anchor pairs, Adam, shuffled mini-batches; seeded with the
    aligner's own generator (initial weights and batch order), never torch's global random state, so aligners
    trained at once in threads give the numbers each gives alone.

    Args:
        activation: `linear` (identity hidden layers) or `sigmoid`.
        epochs: passes over the anchor pairs.
        min_steps: at least this many optimisation steps (more epochs when the anchors are few): with fixed
            epochs the training budget shrinks with the anchor set (40 anchors in batches of 32 give 100 steps in
            50 epochs, the paper's 3,300 give 5,200) and a small sample leaves the non-linear aligner
            undertrained. 0 = exactly `epochs` (the paper).
        width: units per hidden layer.
        depth: hidden layers.
        batch_size: anchor pairs per step.
        lr: Adam learning rate.
        seed: seed of the initial weights and the batch order.
        device: torch device; None = CUDA when available, else CPU.
    """

    def __init__(
        self,
        activation: str = "sigmoid",
        *,
        epochs: int = 50,
        min_steps: int = 0,
        width: int = 1024,
        depth: int = 3,
        batch_size: int = 32,
        lr: float = 1e-3,
        seed: int = 15,
        device: str | None = None,
    ) -> None:
        super().__init__()
        if activation not in ("linear", "sigmoid"):
            raise ValueError(f"activation must be linear or sigmoid, got {activation!r}")
        self.activation = activation
        self.epochs, self.min_steps, self.width, self.depth = epochs, min_steps, width, depth
        self.batch_size, self.lr, self.seed = batch_size, lr, seed
        self.device = pick_device(device)
        self.model: _MLP | None = None
        self.losses: list[float] = []

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "nonlinear" if self.activation == "sigmoid" else "linear"

    def fit(self, yc_anchor: np.ndarray, yp_anchor: np.ndarray) -> DNNAligner:
        yc, yp = self._check_pairs(yc_anchor, yp_anchor)
        t0 = time.perf_counter()
        self.dim_in, self.dim_out = yc.shape[1], yp.shape[1]
        gen = generator(self.seed)
        model = _MLP(self.dim_in, self.dim_out, self.width, self.depth, self.activation)
        model = init_linear_(model, gen).to(self.device)
        opt = adam(model.parameters(), lr=self.lr)
        xc = torch.from_numpy(yc).to(self.device)
        xp = torch.from_numpy(yp).to(self.device)
        m = xc.shape[0]
        self.losses = []
        model.train()
        steps_per_epoch = -(-m // self.batch_size)
        epochs = max(self.epochs, -(-self.min_steps // steps_per_epoch))
        for _ in range(epochs):
            order = torch.randperm(m, generator=gen).to(self.device)
            total = 0.0
            for start in range(0, m, self.batch_size):
                idx = order[start : start + self.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.mse_loss(model(xc[idx]), xp[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            self.losses.append(total / m)
        model.eval()
        self.model = model
        self.fit_seconds = time.perf_counter() - t0
        log.info(
            "%s aligner: %d anchor pairs, %d epochs, final MSE %.4g, %.2f s",
            self.kind, m, epochs, self.losses[-1], self.fit_seconds,
        )  # fmt: skip
        return self

    def transform(self, yc: np.ndarray) -> np.ndarray:
        yc = self._check_input(yc)
        assert self.model is not None
        out = []
        with torch.no_grad():
            for start in range(0, yc.shape[0], 65536):
                x = torch.from_numpy(yc[start : start + 65536]).to(self.device)
                out.append(self.model(x).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim_out or 0), np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.model is None:
            raise AlignmentError(f"{self.kind} aligner: nothing to export before fit()")
        tensors = {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}
        meta = {
            "kind": self.kind,
            "dim_in": self.dim_in,
            "dim_out": self.dim_out,
            "width": self.width,
            "depth": self.depth,
            "activation": self.activation,
            "epochs": self.epochs,
            "min_steps": self.min_steps,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
        }
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> DNNAligner:
        obj = cls(
            activation=meta["activation"],
            epochs=int(meta["epochs"]),
            min_steps=int(meta.get("min_steps", 0)),  # bundles written before the option existed
            width=int(meta["width"]),
            depth=int(meta["depth"]),
            batch_size=int(meta["batch_size"]),
            lr=float(meta["lr"]),
            seed=int(meta["seed"]),
        )
        obj.dim_in, obj.dim_out = int(meta["dim_in"]), int(meta["dim_out"])
        model = _MLP(obj.dim_in, obj.dim_out, obj.width, obj.depth, obj.activation)
        load_numpy_state(model, tensors, f"{obj.kind} aligner", error=AlignmentError)
        obj.model = model.to(obj.device).eval()
        return obj


def _check_shapes(what: str, tensors: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a state whose named tensors are missing or mis-shaped, naming the tensor."""
    for name, shape in shapes.items():
        if name not in tensors:
            raise AlignmentError(f"{what}: tensor {name} is missing")
        if tuple(tensors[name].shape) != shape:
            raise AlignmentError(f"{what}: tensor {name} has shape {tuple(tensors[name].shape)}, not {shape}")


class LinearAligner(Aligner):
    """The linear aligner in closed form: `a(y) = LN(y) @ W + b`, the ridge least-squares optimum.

    The [TNSM] linear DNN (LayerNorm -> `depth` identity layers -> linear output) computes an affine map of the
    layer-normalised input `LN(y) = (y - mean(y)) / sqrt(var(y) + eps)` (per row; the LayerNorm's own scale and
    shift are absorbed into `W` and `b`), and its MSE loss is a least-squares problem over that model class. Adam
    only approaches the optimum that one linear solve gives exactly: `[W; b] = (Z^T Z + lam I')^-1 Z^T Y_p` with
    `Z = [LN(Y_c), 1]` and `I'` the identity without the bias entry. The small ridge `lam = ridge * trace(Z^T Z)
    / e_c` keeps the solve well-posed (LN rows have zero mean, so `Z^T Z` is singular) and the map stable with few
    anchors. It costs milliseconds where the DNN took minutes per fold (docs/adaptation-speed.md).

    Args:
        ridge: relative ridge penalty (0 = plain least squares through a pseudo-inverse).
        eps: the LayerNorm epsilon.
    """

    kind = "linear"

    def __init__(self, *, ridge: float = 1e-3, eps: float = 1e-5) -> None:
        super().__init__()
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        self.ridge, self.eps = float(ridge), float(eps)
        self.weight: np.ndarray | None = None
        self.bias: np.ndarray | None = None

    def _features(self, y: np.ndarray) -> np.ndarray:
        y = y.astype(np.float64)
        mu = y.mean(1, keepdims=True)
        var = y.var(1, keepdims=True)
        return (y - mu) / np.sqrt(var + self.eps)

    def fit(self, yc_anchor: np.ndarray, yp_anchor: np.ndarray) -> LinearAligner:
        yc, yp = self._check_pairs(yc_anchor, yp_anchor)
        t0 = time.perf_counter()
        z = self._features(yc)
        zm = z.mean(0)
        ym = yp.astype(np.float64).mean(0)
        zc, yc_ = z - zm, yp.astype(np.float64) - ym  # centring solves the unpenalised bias exactly
        gram = zc.T @ zc
        lam = self.ridge * float(np.trace(gram)) / max(gram.shape[0], 1)
        if lam > 0:
            w = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), zc.T @ yc_)
        else:
            w = np.linalg.lstsq(zc, yc_, rcond=None)[0]
        self.weight = w.astype(np.float32)
        self.bias = (ym - zm @ w).astype(np.float32)
        self.dim_in, self.dim_out = yc.shape[1], yp.shape[1]
        self.fit_seconds = time.perf_counter() - t0
        log.info("linear aligner (closed form): %d anchor pairs, %.3f s", yc.shape[0], self.fit_seconds)
        return self

    def transform(self, yc: np.ndarray) -> np.ndarray:
        yc = self._check_input(yc)
        assert self.weight is not None and self.bias is not None
        return (self._features(yc) @ self.weight + self.bias).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.weight is None:
            raise AlignmentError("linear aligner: nothing to export before fit()")
        meta = {"kind": self.kind, "solver": "lstsq", "dim_in": self.dim_in, "dim_out": self.dim_out,
                "ridge": self.ridge, "eps": self.eps}  # fmt: skip
        return {"weight": self.weight.copy(), "bias": np.asarray(self.bias).copy()}, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> LinearAligner:
        obj = cls(ridge=float(meta.get("ridge", 0.0)), eps=float(meta.get("eps", 1e-5)))
        e_in, e_out = int(meta["dim_in"]), int(meta["dim_out"])
        _check_shapes("linear aligner", tensors, {"weight": (e_in, e_out), "bias": (e_out,)})
        obj.weight = tensors["weight"].astype(np.float32)
        obj.bias = tensors["bias"].astype(np.float32)
        obj.dim_in, obj.dim_out = e_in, e_out
        return obj


class ProcrustesAligner(Aligner):
    """Orthogonal Procrustes: `a(y) = s * (y - mu_c) @ R + mu_p` with `R` orthogonal (e x e).

    `R = U V^T` from the SVD of `(Yc - mu_c)^T (Yp - mu_p)` minimises `||(Yc - mu_c) R - (Yp - mu_p)||_F`; the
    optional global scale is `s = trace(Sigma) / ||Yc - mu_c||_F^2`. Both spaces must have the same dimension.

    Args:
        center: subtract each side's anchor mean (else `mu_c = mu_p = 0`).
        scale: fit the global scale `s` (else 1).
    """

    kind = "procrustes"

    def __init__(self, *, center: bool = True, scale: bool = False) -> None:
        super().__init__()
        self.center, self.scale = center, scale
        self.rotation: np.ndarray | None = None
        self.mu_c: np.ndarray | None = None
        self.mu_p: np.ndarray | None = None
        self.s: float = 1.0

    def fit(self, yc_anchor: np.ndarray, yp_anchor: np.ndarray) -> ProcrustesAligner:
        yc, yp = self._check_pairs(yc_anchor, yp_anchor)
        if yc.shape[1] != yp.shape[1]:
            raise AlignmentError(
                f"procrustes aligner needs the same dimension on both sides, got customer {yc.shape[1]} "
                f"and provider {yp.shape[1]}; use a DNN aligner or embeddings of the same size"
            )
        t0 = time.perf_counter()
        a, b = yc.astype(np.float64), yp.astype(np.float64)
        mu_c = a.mean(0) if self.center else np.zeros(a.shape[1])
        mu_p = b.mean(0) if self.center else np.zeros(b.shape[1])
        a, b = a - mu_c, b - mu_p
        u, sig, vt = np.linalg.svd(a.T @ b)
        self.rotation = (u @ vt).astype(np.float32)
        norm = float((a * a).sum())
        self.s = float(sig.sum() / norm) if self.scale and norm > 0 else 1.0
        self.mu_c, self.mu_p = mu_c.astype(np.float32), mu_p.astype(np.float32)
        self.dim_in = self.dim_out = yc.shape[1]
        self.fit_seconds = time.perf_counter() - t0
        return self

    def transform(self, yc: np.ndarray) -> np.ndarray:
        yc = self._check_input(yc)
        assert self.rotation is not None and self.mu_c is not None and self.mu_p is not None
        return (self.s * ((yc - self.mu_c) @ self.rotation) + self.mu_p).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.rotation is None:
            raise AlignmentError("procrustes aligner: nothing to export before fit()")
        tensors = {"rotation": self.rotation, "mu_c": self.mu_c, "mu_p": self.mu_p}
        meta = {
            "kind": self.kind,
            "dim_in": self.dim_in,
            "dim_out": self.dim_out,
            "center": self.center,
            "scale": self.scale,
            "s": self.s,
        }
        return {k: np.asarray(v) for k, v in tensors.items()}, meta

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> ProcrustesAligner:
        obj = cls(center=bool(meta["center"]), scale=bool(meta["scale"]))
        e = int(meta["dim_in"])
        _check_shapes("procrustes aligner", tensors, {"rotation": (e, e), "mu_c": (e,), "mu_p": (e,)})
        obj.rotation = tensors["rotation"].astype(np.float32)
        obj.mu_c = tensors["mu_c"].astype(np.float32)
        obj.mu_p = tensors["mu_p"].astype(np.float32)
        obj.s = float(meta["s"])
        obj.dim_in = obj.dim_out = e
        return obj


LINEAR_SOLVERS = ("lstsq", "dnn")

#: DNN-only hyper-parameters (refused by the closed-form aligners).
_DNN_PARAMS = ("epochs", "min_steps", "width", "depth", "batch_size", "lr")


def make_aligner(
    kind: str, *, seed: int = 15, device: str | None = None, solver: str | None = None, **params: Any
) -> Aligner:
    """An unfitted aligner of `kind` (`linear`, `nonlinear`, `procrustes`).

    Args:
        kind: aligner kind.
        seed: seed of the DNN aligners (the closed forms are deterministic).
        device: torch device of the DNN aligners.
        solver: `linear` only: `lstsq` (closed form, `LinearAligner`) or `dnn` (the [TNSM] DNN trained with
            Adam). None = `dnn` when DNN hyper-parameters are given, else `lstsq`.
        **params: DNN: `epochs`, `min_steps`, `width`, `depth`, `batch_size`, `lr`; closed-form linear: `ridge`;
            Procrustes: `center`, `scale`.
    """
    if kind == "linear":
        if solver is None:
            solver = "dnn" if any(k in params for k in _DNN_PARAMS) else "lstsq"
        if solver not in LINEAR_SOLVERS:
            raise ValueError(f"unknown linear solver {solver!r}; known: {', '.join(LINEAR_SOLVERS)}")
        if solver == "lstsq":
            bad = sorted(set(params) - {"ridge"})
            if bad:
                raise ValueError(
                    f"the closed-form linear aligner takes no {', '.join(bad)} (solver='dnn' does)"
                )
            return LinearAligner(**params)
        params.pop("ridge", None)
        return DNNAligner("linear", seed=seed, device=device, **params)
    if kind == "nonlinear":
        return DNNAligner("sigmoid", seed=seed, device=device, **params)
    if kind == "procrustes":
        return ProcrustesAligner(**params)
    raise ValueError(f"unknown aligner kind {kind!r}; known: {', '.join(ALIGNER_KINDS)}")


def aligner_from_config(kind: str, cfg: Any, *, seed: int, device: str | None = None) -> Aligner:
    """An unfitted aligner of `kind` with the hyper-parameters of an `AdaptConfig` (`linear_solver` picks the
    closed form or the DNN for `linear`)."""
    if kind == "procrustes":
        return ProcrustesAligner(center=cfg.procrustes_center, scale=cfg.procrustes_scale)
    if kind == "linear" and getattr(cfg, "linear_solver", "dnn") == "lstsq":
        return LinearAligner(ridge=cfg.linear_ridge)
    return make_aligner(
        kind,
        seed=seed,
        device=device,
        solver="dnn" if kind == "linear" else None,
        epochs=cfg.epochs,
        min_steps=cfg.min_steps,
        width=cfg.width,
        depth=cfg.depth,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
    )


def aligner_from_state(tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Aligner:
    """Rebuild a fitted aligner of any kind from `state()`'s output."""
    kind = meta.get("kind")
    if kind == "linear" and meta.get("solver") == "lstsq":
        return LinearAligner.from_state(tensors, meta)
    if kind in ("linear", "nonlinear"):
        return DNNAligner.from_state(tensors, meta)
    if kind == "procrustes":
        return ProcrustesAligner.from_state(tensors, meta)
    raise AlignmentError(f"unknown aligner kind {kind!r} in state; known: {', '.join(ALIGNER_KINDS)}")
