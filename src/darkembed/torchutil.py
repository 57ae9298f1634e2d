"""Small torch helpers shared by the models: device choice, a fast Adam, seeding without global state, and
loading a model's weights from plain arrays.

Seeding: every model draws its initial weights, dropout masks and batch order from its own `torch.Generator`
(`generator`, `init_linear_`, `SeededDropout`), never from torch's global random state. Several models trained at
once in threads (the adaptation tasks of two pairs run concurrently) then cannot change each other's numbers, and
a model gives the same weights whether it runs alone or beside others.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import torch
from torch import nn

#: The device `pick_device(None)` returns: `auto` (CUDA when present, else CPU), `cpu` or `cuda[:i]`.
_DEFAULT_DEVICE = "auto"
_LOCK = threading.Lock()


def set_default_device(device: str | None) -> str:
    """Set the device every model uses when none is given (`compute.device` of the config): `auto`, `cpu`,
    `cuda` or `cuda:<i>`. Returns the previous setting. `cuda` without a GPU fails on the first model built, with
    a clear message."""
    global _DEFAULT_DEVICE
    value = (device or "auto").strip()
    if value != "auto":
        torch.device(value)  # validates the spelling
    with _LOCK:
        old, _DEFAULT_DEVICE = _DEFAULT_DEVICE, value
    return old


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else the configured default (`set_default_device`): CUDA when present, else CPU."""
    choice = device if device is not None else _DEFAULT_DEVICE
    if isinstance(choice, str) and choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(choice)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {dev} was asked for (compute.device) but torch sees no CUDA device; "
            "use compute.device: auto or cpu on this machine"
        )
    return dev


def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters; ~2.5x faster steps on CPU for the 3x1024
    aligner than the per-tensor loop), falling back to the default implementation where fused is unsupported."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def set_threads(threads: int, concurrent_tasks: int) -> int:
    """Set torch's intra-op threads: `threads` if positive, else the cores shared by `concurrent_tasks` tasks
    (at least 1). Several small models training at once on few cores run several times faster with one thread
    each than with oversubscribed, spinning thread pools. Returns the number set."""
    n = threads if threads > 0 else max(1, (os.cpu_count() or 1) // max(1, concurrent_tasks))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed` (draws are made on CPU, then moved: the same numbers on every device)."""
    return torch.Generator().manual_seed(int(seed))


def init_linear_(module: nn.Module, gen: torch.Generator) -> nn.Module:
    """Re-initialise every `nn.Linear` of `module` as torch's default does (Kaiming-uniform weights with
    a = sqrt(5), uniform bias in +-1/sqrt(fan_in)) but drawing from `gen`; other layers keep their deterministic
    defaults (LayerNorm: ones and zeros). Call before moving the module to its device. Returns `module`."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
                if m.bias is not None:
                    bound = 1 / math.sqrt(m.weight.shape[1]) if m.weight.shape[1] > 0 else 0.0
                    nn.init.uniform_(m.bias, -bound, bound, generator=gen)
    return module


def load_numpy_state(
    model: nn.Module, tensors: dict[str, np.ndarray], what: str, error: type[Exception] = ValueError
) -> None:
    """Load numpy arrays into `model` (a bundle's or checkpoint's weights: never pickle or `torch.load`).

    Raises:
        error: a tensor is missing, extra or mis-shaped; the message names `what` and the tensor.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise error(f"{what}: tensors do not match the architecture (missing {missing}, extra {extra})")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise error(
                f"{what}: tensor {k} has shape {tuple(tensors[k].shape)}, the architecture needs {tuple(v.shape)}"
            )
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(tensors[k])) for k in expected})


class SeededDropout(nn.Module):
    """Dropout whose masks come from a generator set with `use(gen)` (torch's `nn.Dropout` only draws from the
    global state). Without a generator (e.g. after loading a bundle) it uses the global state, as `nn.Dropout`
    does; in eval mode it is the identity. No parameters: a model's state dict keys do not change."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.gen: torch.Generator | None = None

    def use(self, gen: torch.Generator | None) -> None:
        self.gen = gen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.gen is None:
            return nn.functional.dropout(x, self.p, True)
        keep = torch.rand(x.shape, generator=self.gen, device=self.gen.device)
        mask = (keep >= self.p).to(device=x.device, dtype=x.dtype)
        return x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
