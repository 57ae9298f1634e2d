"""Explicit aligners `a_{c,p}`: maps from the customer's embedding space to the provider's, fit on anchor pairs.

REFERENCE.md 5.5 and 7.6: `linear` and `nonlinear` DNNs (LayerNorm -> `depth` x Dense(`width`) with identity or
sigmoid activation -> linear output; MSE; Adam; mini-batches), and orthogonal Procrustes (closed form by SVD,
optionally centred and scaled). All share one interface:

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

from darkembed.torchutil import adam, generator, init_linear_, pick_device

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
        load_numpy_state(model, tensors, f"{obj.kind} aligner")
        obj.model = model.to(obj.device).eval()
        return obj


def load_numpy_state(model: nn.Module, tensors: dict[str, np.ndarray], what: str) -> None:
    """Load numpy arrays into `model`, refusing missing, extra or mis-shaped tensors with a clear message."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise AlignmentError(
            f"{what}: tensors do not match the architecture (missing {missing}, extra {extra})"
        )
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise AlignmentError(
                f"{what}: tensor {k} has shape {tuple(tensors[k].shape)}, the architecture needs {tuple(v.shape)}"
            )
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(tensors[k])) for k in expected})


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
        for name, shape in (("rotation", (e, e)), ("mu_c", (e,)), ("mu_p", (e,))):
            if name not in tensors:
                raise AlignmentError(f"procrustes aligner: tensor {name} is missing")
            if tuple(tensors[name].shape) != shape:
                raise AlignmentError(
                    f"procrustes aligner: tensor {name} has shape {tensors[name].shape}, not {shape}"
                )
        obj.rotation = tensors["rotation"].astype(np.float32)
        obj.mu_c = tensors["mu_c"].astype(np.float32)
        obj.mu_p = tensors["mu_p"].astype(np.float32)
        obj.s = float(meta["s"])
        obj.dim_in = obj.dim_out = e
        return obj


def make_aligner(kind: str, *, seed: int = 15, device: str | None = None, **params: Any) -> Aligner:
    """An unfitted aligner of `kind` (`linear`, `nonlinear`, `procrustes`).

    Args:
        kind: aligner kind.
        seed: seed of the DNN aligners (Procrustes is deterministic).
        device: torch device of the DNN aligners.
        **params: DNN: `epochs`, `width`, `depth`, `batch_size`, `lr`; Procrustes: `center`, `scale`.
    """
    if kind in ("linear", "nonlinear"):
        act = "sigmoid" if kind == "nonlinear" else "linear"
        return DNNAligner(act, seed=seed, device=device, **params)
    if kind == "procrustes":
        return ProcrustesAligner(**params)
    raise ValueError(f"unknown aligner kind {kind!r}; known: {', '.join(ALIGNER_KINDS)}")


def aligner_from_config(kind: str, cfg: Any, *, seed: int, device: str | None = None) -> Aligner:
    """An unfitted aligner of `kind` with the hyper-parameters of an `AdaptConfig`."""
    if kind == "procrustes":
        return ProcrustesAligner(center=cfg.procrustes_center, scale=cfg.procrustes_scale)
    return make_aligner(
        kind,
        seed=seed,
        device=device,
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
    if kind in ("linear", "nonlinear"):
        return DNNAligner.from_state(tensors, meta)
    if kind == "procrustes":
        return ProcrustesAligner.from_state(tensors, meta)
    raise AlignmentError(f"unknown aligner kind {kind!r} in state; known: {', '.join(ALIGNER_KINDS)}")
