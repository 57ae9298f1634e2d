"""The link-prediction training loop of the GCN family (docs/method.md 4.7 with the fixes of 7.1).

A `Task` is one optimisation target: a day or a window whose last day's edges are predicted, with the edges held
out for early stopping. `train_epochs` runs full-batch steps over tasks (`train_step`: the training edges against
freshly drawn negatives), with early stopping on the held-out loss (`val_loss`) and the best weights restored in
place; `recalibrate` sets BatchNorm's running statistics to those of one forward pass. `GnnTrainer`
(`darkembed.embed.gnn.train`) builds the tasks and decides the schedules.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darkembed.embed.gnn.models import LinkModel
from darkembed.embed.gnn.sampling import Snapshot, sample_negatives


@dataclass
class Task:
    """One optimisation target: a window (or a day) whose last day's edges are predicted."""

    snaps: list[Snapshot]
    rows: list[torch.Tensor | None]
    train_pos: torch.Tensor  # (2, P) on device
    all_edges: np.ndarray  # (2, E) every edge of the target day, held-out ones included
    val_pairs: torch.Tensor | None  # (2, V + Vn) held-out positives then negatives
    val_labels: torch.Tensor | None


def train_step(
    model: LinkModel,
    optimizer: torch.optim.Optimizer,
    task: Task,
    negatives: int,
    rng: np.random.Generator,
    device: torch.device,
) -> float:
    """One full-batch step on `task`'s training edges and `negatives` negatives per edge drawn from `rng`;
    returns the loss."""
    pos = task.train_pos
    neg = sample_negatives(task.all_edges, negatives * pos.shape[1], rng)
    pairs = torch.cat([pos, torch.from_numpy(neg).to(device)], dim=1)
    labels = torch.cat(
        [torch.ones(pos.shape[1], dtype=torch.long), torch.zeros(neg.shape[1], dtype=torch.long)]
    ).to(device)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    z = model(task.snaps, task.rows)
    loss = F.nll_loss(model.score(z, pairs), labels)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _batch_norms(model: LinkModel) -> list[nn.BatchNorm1d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]


@torch.no_grad()
def val_loss(model: LinkModel, task: Task) -> float:
    """Held-out loss with batch statistics (as in training) but without touching the running statistics."""
    assert task.val_pairs is not None
    bns = _batch_norms(model)
    saved = [(bn.momentum, bn.num_batches_tracked.clone()) for bn in bns]
    for bn in bns:
        bn.momentum = 0.0  # running = (1 - 0) * running: unchanged
    try:
        model.train()
        z = model(task.snaps, task.rows)
        return float(F.nll_loss(model.score(z, task.val_pairs), task.val_labels))
    finally:
        for bn, (m, n) in zip(bns, saved, strict=True):
            bn.momentum = m
            bn.num_batches_tracked.copy_(n)


@torch.no_grad()
def recalibrate(model: LinkModel, snaps: Sequence[Snapshot], rows: Sequence[torch.Tensor | None]) -> None:
    """Running statistics of BatchNorm := the statistics of one forward pass over `snaps`; leaves `model` in
    eval mode."""
    bns = _batch_norms(model)
    moms = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over one batch = that batch's statistics
    try:
        model.train()
        model(snaps, rows)
    finally:
        for bn, m in zip(bns, moms, strict=True):
            bn.momentum = m
        model.eval()


def train_epochs(
    model: LinkModel,
    optimizer: torch.optim.Optimizer,
    tasks: list[Task],
    epochs: int,
    early_stopping: bool,
    *,
    patience: int,
    negatives: int,
    rng: np.random.Generator,
    device: torch.device,
) -> tuple[list[float], list[float], int]:
    """Up to `epochs` epochs of one `train_step` per task; with `early_stopping` (and held-out edges), stop after
    `patience` epochs without a better mean held-out loss and restore the best weights in place (the optimiser
    still holds those tensors).

    Returns:
        (mean training loss per epoch, mean held-out loss per epoch (empty without validation), epochs run).
    """
    losses: list[float] = []
    vals: list[float] = []
    best, best_state, since = math.inf, None, 0
    validate = early_stopping and any(t.val_pairs is not None for t in tasks)
    run = 0
    for _ in range(epochs):
        run += 1
        losses.append(
            float(np.mean([train_step(model, optimizer, t, negatives, rng, device) for t in tasks]))
        )
        if not validate:
            continue
        v = float(np.mean([val_loss(model, t) for t in tasks if t.val_pairs is not None]))
        vals.append(v)
        if v < best:
            best, since = v, 0
            best_state = copy.deepcopy(model.state_dict())  # a copy of values, not of the model
        else:
            since += 1
            if since >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)  # in place: the optimiser still holds these tensors
    return losses, vals, run
