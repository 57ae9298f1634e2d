"""Small torch helpers shared by the models: device choice and a fast Adam."""

from __future__ import annotations

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or CUDA when present, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
    import os

    n = threads if threads > 0 else max(1, (os.cpu_count() or 1) // max(1, concurrent_tasks))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
