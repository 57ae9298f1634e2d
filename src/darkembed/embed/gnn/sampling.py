"""A day's graph prepared for the GCN family: normalised adjacency, node keys, positives, negatives, held-out edges.

Reads: a PyG `Data` from `darkembed.graph.to_pyg` (hosts are nodes 0..H-1, ports H..N-1). Writes nothing.

* `Â = D⁻¹(A + Aᵀ + I)` with packet-count weights over the day's nodes only (docs/method.md 4.2), stored as a CSR
  matrix with its transpose precomputed for the backward pass.
* Negatives (docs/method.md 4.6, 7.1 item 6, 7.6): exactly `ns` per positive, uniform over active host x active port
  pairs, never an existing edge, without repeats; vectorised rejection sampling until the count is exact.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

#: Port nodes are keyed `PORT_KEY_BASE + service`, disjoint from host keys (IPv4 addresses < 2**32).
PORT_KEY_BASE = 1 << 33


class _Propagate(torch.autograd.Function):
    """`Â @ h` with the transpose precomputed: the backward pass is `Âᵀ @ grad` without re-sorting `Â`."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, adj_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        ctx.adj_t = adj_t
        return adj @ h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, ctx.adj_t @ grad


@dataclass
class Snapshot:
    """One day's graph on a device.

    Attributes:
        adj: `Â`, sparse CSR (N, N) float32 on the device.
        adj_t: `Âᵀ`, sparse CSR (N, N).
        x: node features (N, F) float32 on the device, or None without features.
        node_key: (N,) int64 numpy stable node keys: the IPv4 address for hosts, `PORT_KEY_BASE + service` for
            ports (aligns nodes across days and keys the learned input rows without features).
        num_hosts: H; hosts are nodes 0..H-1.
        host_ip: (H,) uint32 numpy addresses.
        pos: (2, E) int64 numpy host->port edges of the day (all of them, held-out ones included).
    """

    adj: torch.Tensor
    adj_t: torch.Tensor
    x: torch.Tensor | None
    node_key: np.ndarray
    num_hosts: int
    host_ip: np.ndarray
    pos: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.node_key.shape[0])

    def propagate(self, h: torch.Tensor) -> torch.Tensor:
        """`Â @ h` for h (N, d); differentiable in h."""
        return _Propagate.apply(self.adj, self.adj_t, h)


def positives(data) -> np.ndarray:
    """The day's host->port edges (2, E) int64, ports offset by H (`pos_edge_index`, or derived)."""
    pei = getattr(data, "pos_edge_index", None)
    if pei is None:
        ei = data.edge_index
        keep = (ei[0] < data.num_hosts) & (ei[1] >= data.num_hosts)
        pei = ei[:, keep]
    return pei.detach().cpu().numpy().astype(np.int64, copy=False)


def node_keys(data) -> np.ndarray:
    """(N,) int64 stable keys of a day's nodes: address for hosts, `PORT_KEY_BASE + service` for ports."""
    h = int(data.num_hosts)
    ips = data.host_ip.detach().cpu().numpy().astype(np.int64)
    svc = getattr(data, "service", None)
    if svc is None:
        raise ValueError("the graph has no `service` attribute; build it with darkembed.graph.to_pyg")
    ports = svc.detach().cpu().numpy().astype(np.int64) + PORT_KEY_BASE
    if ips.shape[0] != h or h + ports.shape[0] != data.num_nodes:
        raise ValueError(
            f"graph node counts disagree: num_hosts={h}, host_ip={ips.shape[0]}, service={ports.shape[0]}, "
            f"num_nodes={data.num_nodes}"
        )
    return np.concatenate([ips, ports])


def normalised_adjacency(
    edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`Â = D⁻¹(A + Aᵀ + I)` and its transpose as CSR (N, N) float32 (docs/method.md 4.2).

    Args:
        edge_index: (2, M) int64, both directions of every edge already present (as `to_pyg` gives).
        edge_weight: (M,) packets per edge, or None for weight 1.
        num_nodes: N.

    Returns:
        `(Â, Âᵀ)`; each row of `Â` sums to 1 (self-loop weight 1; D is the row sum + 1e-15 as the authors').
    """
    n = int(num_nodes)
    loops = torch.arange(n, dtype=torch.int64)
    w = torch.ones(edge_index.shape[1]) if edge_weight is None else edge_weight.to(torch.float32).cpu()
    idx = torch.cat([edge_index.cpu().to(torch.int64), torch.stack([loops, loops])], dim=1)
    val = torch.cat([w, torch.ones(n)])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Sparse (CSR tensor support|invariant checks)")
        a = torch.sparse_coo_tensor(idx, val, (n, n)).coalesce()
        r, c = a.indices()
        v = a.values()
        deg = torch.zeros(n).index_add_(0, r, v) + 1e-15
        v = v / deg[r]
        norm = torch.sparse_coo_tensor(torch.stack([r, c]), v, (n, n), is_coalesced=True)
        return norm.to_sparse_csr(), norm.t().coalesce().to_sparse_csr()


def make_snapshot(data, *, features: bool, device: torch.device, drop: np.ndarray | None = None) -> Snapshot:
    """Prepare a `to_pyg` day for the models.

    Args:
        data: the day's PyG `Data`.
        features: use `data.x` (required then) or not.
        device: where the tensors go.
        drop: optional (2, K) host->port edges to leave out of message passing (held-out edges).

    Returns:
        The `Snapshot`.
    """
    n = int(data.num_nodes)
    ei, ew = data.edge_index, getattr(data, "edge_weight", None)
    if drop is not None and drop.shape[1]:
        m = n
        codes = ei[0].cpu().numpy().astype(np.int64) * m + ei[1].cpu().numpy()
        dcodes = np.concatenate([drop[0] * m + drop[1], drop[1] * m + drop[0]])
        keep = torch.from_numpy(~np.isin(codes, dcodes))
        ei = ei[:, keep]
        ew = None if ew is None else ew[keep]
    adj, adj_t = normalised_adjacency(ei, ew, n)
    x = None
    if features:
        if getattr(data, "x", None) is None:
            raise ValueError(
                "this model uses node features but the graph has none; build it with to_pyg(features=True)"
            )
        x = data.x.to(device=device, dtype=torch.float32)
    return Snapshot(
        adj=adj.to(device),
        adj_t=adj_t.to(device),
        x=x,
        node_key=node_keys(data),
        num_hosts=int(data.num_hosts),
        host_ip=data.host_ip.detach().cpu().numpy().astype(np.uint32),
        pos=positives(data),
    )


def sample_negatives(edges: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform negatives over active host x active port pairs, none an existing edge, no repeats.

    Active nodes are those incident to an edge of `edges`. The draw is uniform without replacement over the
    non-edges: i.i.d. uniform candidates, rejected when an edge or already drawn, until exactly `n` are kept
    (when the non-edges are few, they are enumerated and permuted instead).

    Args:
        edges: (2, E) int64 every existing host->port edge of the day (ports as node ids).
        n: negatives wanted (`ns` x positives).
        rng: the random generator (seeded by the caller).

    Returns:
        (2, n) int64 host->port pairs; fewer than `n` (with a warning) only when the day has fewer non-edges.
    """
    if n <= 0 or edges.shape[1] == 0:
        return np.zeros((2, 0), np.int64)
    hosts = np.unique(edges[0])
    ports = np.unique(edges[1])
    m = int(ports.max()) + 1
    existing = np.unique(edges[0] * m + edges[1])
    capacity = hosts.size * ports.size - existing.size
    if n > capacity:
        log.warning(
            "only %d host-port non-edges among %d active hosts x %d active ports; %d negatives wanted, "
            "using all of them",
            capacity,
            hosts.size,
            ports.size,
            n,
        )
        n = capacity
    if n == 0:
        return np.zeros((2, 0), np.int64)
    if 2 * n > capacity:  # dense: rejection would mostly reject
        allc = (hosts[:, None] * m + ports[None, :]).ravel()
        cand = allc[~np.isin(allc, existing, assume_unique=True)]
        out = cand[rng.permutation(cand.size)[:n]]
    else:
        out = np.zeros(0, np.int64)
        while out.size < n:
            k = 2 * (n - out.size) + 16
            cand = hosts[rng.integers(hosts.size, size=k)] * m + ports[rng.integers(ports.size, size=k)]
            cand = cand[~np.isin(cand, existing)]
            both = np.concatenate([out, cand])
            _, first = np.unique(both, return_index=True)  # keep the first draw of each pair, in draw order
            out = both[np.sort(first)][:n]
    return np.stack([out // m, out % m])


def split_edges(num_edges: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and held-out edges: `round(fraction * E)` held out, at least one edge kept for training.

    Returns:
        `(train_idx, val_idx)` int64, each sorted; `val_idx` empty when `fraction` is 0 or E < 2.
    """
    n_val = round(fraction * num_edges)
    n_val = min(n_val, num_edges - 1) if num_edges > 1 else 0
    perm = rng.permutation(num_edges)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
