"""GCN encoder, the GCN and GCN-GRU embedders and the link-prediction head (docs/method.md 4.4, 4.5).

Shapes: a day has N nodes (H hosts then P ports); `F` input features (37, +1 with the node-type column), the
stack `hidden` (1024, 512), embeddings `E` (128).

Without node features the authors multiply an N x N sparse identity by a dense N x 1024 first-layer weight: the
first layer's output is `Â W1[node]`. Here `W1` is an `nn.Embedding` whose rows are keyed by a vocabulary of
stable node keys (address, service), so the first layer is `Â E[rows] + b`: the same function without the N x N
input, and the table grows with new hosts day after day (see `train.Vocabulary`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from darkembed.embed.gnn.sampling import Snapshot
from darkembed.torchutil import adam

if TYPE_CHECKING:  # the models import no configuration (pydantic) at run time
    from darkembed.config import GnnConfig

log = logging.getLogger(__name__)


class GraphConv(nn.Module):
    """`H' = Â (H W) + b` (docs/method.md 4.4); without `W` (in_dim None) `H' = Â H + b`.

    `W` and `b` are initialised `U(-1/√out, 1/√out)` as the authors'. When `in < out` the product is computed as
    `(Â H) W`, the same value with the sparse product on the narrower side.
    """

    def __init__(self, in_dim: int | None, out_dim: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim)) if in_dim is not None else None
        self.bias = nn.Parameter(torch.empty(out_dim))

    def reset_parameters(self, gen: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.out_dim)
        if self.weight is not None:
            nn.init.uniform_(self.weight, -bound, bound, generator=gen)
        nn.init.uniform_(self.bias, -bound, bound, generator=gen)

    def forward(self, h: torch.Tensor, snap: Snapshot) -> torch.Tensor:
        """h (N, in) -> (N, out)."""
        if self.weight is None:
            out = snap.propagate(h)
        elif self.in_dim < self.out_dim:
            out = snap.propagate(h) @ self.weight
        else:
            out = snap.propagate(h @ self.weight)
        return out + self.bias


class GcnEncoder(nn.Module):
    """The GCN stack `in -> hidden[0] (ReLU) -> ... -> hidden[-1]` (no activation after the last layer).

    Args:
        in_dim: feature count F, or None without features (learned input rows, `table`).
        hidden: layer output sizes.
        dropout: after each layer.
        vocab_size: rows of the learned input table (without features).
    """

    def __init__(
        self, in_dim: int | None, hidden: Sequence[int], dropout: float, vocab_size: int = 0
    ) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, hidden[0]) if in_dim is None else None
        dims = [in_dim, *hidden]
        self.layers = nn.ModuleList(GraphConv(dims[i], dims[i + 1]) for i in range(len(hidden)))
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self, gen: torch.Generator) -> None:
        if self.table is not None:
            bound = 1.0 / math.sqrt(self.table.embedding_dim)  # the authors' init of the N x 1024 weight
            nn.init.uniform_(self.table.weight, -bound, bound, generator=gen)
        for layer in self.layers:
            layer.reset_parameters(gen)

    def inputs(self, snap: Snapshot, rows: torch.Tensor | None) -> torch.Tensor:
        """The first layer's input: features (N, F) or learned rows (N, hidden[0]); row -1 gives zeros."""
        if self.table is None:
            assert snap.x is not None
            return snap.x
        assert rows is not None
        known = rows >= 0
        return self.table(rows.clamp(min=0)) * known.unsqueeze(1).to(self.table.weight.dtype)

    def forward(self, snap: Snapshot, rows: torch.Tensor | None = None) -> torch.Tensor:
        """One day -> (N, hidden[-1])."""
        h = self.inputs(snap, rows)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h, snap)
            if i < last:
                h = torch.relu(h)
            h = self.dropout(h)
        return h


def align(target_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each target key, its position in `keys`, or -1 when absent. Shapes (n_t,), (n,) -> (n_t,) int64."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    pos = np.searchsorted(sk, target_keys)
    pos = np.minimum(pos, max(sk.size - 1, 0))
    found = sk.size > 0
    hit = (sk[pos] == target_keys) if found else np.zeros(target_keys.shape, bool)
    return np.where(hit, order[pos] if found else -1, -1).astype(np.int64)


class LinkModel(nn.Module):
    """Embedder plus the link-prediction head; GCN when `gru` is False, GCN-GRU otherwise.

    GCN: `encoder -> Linear(hidden[-1], E) -> ReLU -> BatchNorm1d(E)`.
    GCN-GRU: the shared encoder on each snapshot of the window, nodes aligned on the last day's node keys,
    `GRU(hidden[-1], E)` over the window, final hidden state -> `BatchNorm1d(E)`. A node absent on a day of the
    window gets a zero input at that step (`absent="zero"`, the authors') or keeps its state through it
    (`absent="skip"`).
    Head: `concat(z_host, z_port) (2E) -> Linear(64) -> ReLU -> Linear(2) -> LogSoftmax`, class 1 = edge.
    """

    def __init__(
        self,
        in_dim: int | None,
        hidden: Sequence[int],
        embedding_dim: int,
        predictor_hidden: int,
        dropout: float,
        gru: bool,
        vocab_size: int = 0,
        absent: str = "zero",
    ) -> None:
        super().__init__()
        self.gru_mode = gru
        self.absent = absent
        self.encoder = GcnEncoder(in_dim, hidden, dropout, vocab_size)
        if gru:
            self.gru = nn.GRU(hidden[-1], embedding_dim)
            self.head = None
        else:
            self.gru = None
            self.head = nn.Linear(hidden[-1], embedding_dim)
        self.norm = nn.BatchNorm1d(embedding_dim)
        self.predictor = nn.Sequential(
            nn.Linear(2 * embedding_dim, predictor_hidden),
            nn.ReLU(),
            nn.Linear(predictor_hidden, 2),
            nn.LogSoftmax(dim=-1),
        )

    def reset_parameters(self, gen: torch.Generator) -> None:
        """GCN layers as the authors'; Xavier-uniform Linear and GRU weights, zero biases (the intended
        `_reset_weights`, docs/method.md 7.1 item 5); BatchNorm to identity."""
        self.encoder.reset_parameters(gen)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, generator=gen)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GRU):
                for name, p in m.named_parameters():
                    if name.startswith("weight"):
                        nn.init.xavier_uniform_(p, generator=gen)
                    else:
                        nn.init.zeros_(p)
        self.norm.reset_parameters()

    def forward(self, snaps: Sequence[Snapshot], rows: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Embeddings of the last snapshot's nodes (N_t, E).

        Args:
            snaps: one snapshot (GCN) or the window oldest first, the embedded day last (GCN-GRU).
            rows: per snapshot, the learned-input rows of its nodes (N_s,) or None with features.
        """
        if not self.gru_mode:
            z = torch.relu(self.head(self.encoder(snaps[-1], rows[-1])))
            return self.norm(z)
        target = snaps[-1]
        seq, present = [], []
        for snap, r in zip(snaps, rows, strict=True):
            h = self.encoder(snap, r)
            if snap is target:
                seq.append(h)
                present.append(None)
                continue
            idx = torch.from_numpy(align(target.node_key, snap.node_key)).to(h.device)
            padded = torch.cat([h, h.new_zeros(1, h.shape[1])])
            seq.append(padded[torch.where(idx < 0, h.shape[0], idx)])
            present.append(idx >= 0)
        if self.absent == "zero":
            _, h_n = self.gru(torch.stack(seq))  # (T, N_t, hidden[-1]) -> (1, N_t, E)
            return self.norm(h_n[-1])
        # skip: one GRU step per day; a node absent that day keeps its state (zeros until its first day)
        state = seq[-1].new_zeros(1, seq[-1].shape[0], self.gru.hidden_size)
        for x, here in zip(seq, present, strict=True):
            _, step = self.gru(x.unsqueeze(0), state)
            state = step if here is None else torch.where(here[None, :, None], step, state)
        return self.norm(state[-1])

    def score(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (K, 2) of [no edge, edge] for pairs (2, K) of node ids of the embedded day."""
        return self.predictor(torch.cat([z[pairs[0]], z[pairs[1]]], dim=1))


def build_link_model(
    cfg: GnnConfig,
    in_dim: int | None,
    *,
    gru: bool,
    vocab_size: int,
    gen: torch.Generator,
    device: torch.device,
) -> tuple[LinkModel, torch.optim.Optimizer]:
    """A new `LinkModel` of `cfg`'s sizes on `device`, with its optimiser.

    The weights are drawn on the CPU from `gen` before the move, so every device starts from the same weights.
    """
    model = LinkModel(
        in_dim,
        cfg.hidden,
        cfg.embedding_dim,
        cfg.predictor_hidden,
        cfg.dropout,
        gru=gru,
        vocab_size=vocab_size,
        absent=cfg.absent_days,
    )
    model.reset_parameters(gen)  # on CPU: the same initial weights whatever the device
    model = model.to(device)
    return model, adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def resize_input_table(
    model: LinkModel,
    optimizer: torch.optim.Optimizer | None,
    keep: np.ndarray,
    n_new: int,
    gen: torch.Generator,
    device: torch.device,
) -> None:
    """Keep rows `keep` of the learned input table and append `n_new` fresh ones; the optimiser's parameter
    and moments follow (new rows start with zero moments), so it keeps stepping the live table."""
    assert model.encoder.table is not None
    table = model.encoder.table
    old = table.weight
    dim = old.shape[1]
    bound = 1.0 / math.sqrt(dim)
    fresh = torch.empty(n_new, dim).uniform_(-bound, bound, generator=gen).to(device)
    keep_t = torch.from_numpy(keep).to(device)
    new = nn.Parameter(torch.cat([old.detach()[keep_t], fresh]))
    table.weight = new
    table.num_embeddings = new.shape[0]
    if optimizer is not None:
        for group in optimizer.param_groups:
            group["params"] = [new if p is old else p for p in group["params"]]
        state = optimizer.state.pop(old, None)
        if state:
            for k, v in list(state.items()):
                if torch.is_tensor(v) and v.shape == old.shape:
                    state[k] = torch.cat([v[keep_t], v.new_zeros(n_new, dim)])
            optimizer.state[new] = state
    log.debug("input table: kept %d rows, added %d", keep.size, n_new)
