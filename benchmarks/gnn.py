"""Seconds per daily update of GCN, i-GCN, GCN-GRU and i-GCN-GRU on a synthetic day, on the device present.

Run: `python benchmarks/gnn.py [--hosts 7500] [--ports 2500] [--edges 50000] [--month-factor 3] [--device cpu]
[--threads 1]`.

A synthetic window of H + 1 = 6 days (~7,500 hosts, 2,500 ports, 50k weighted host-port edges each, 10 % host
churn per day, random normalised features) is embedded with the paper's sizes (docs/method.md 4.4-4.7). Reported
per method, with and without node features: seconds per daily update and epochs run (GCN: early stopped, at most
`--gcn-epochs`; i-GCN and i-GCN-GRU: the incremental schedule; GCN-GRU: `fit` time per window-step over `--fit-epochs`
epochs; its daily cost is inference only since it is frozen), and the seconds of one embedding pass.

Reference, measured in the same run: one i-GCN optimisation step in the authors' formulation ([G-code]): the
month-wide id space (`--month-factor` x the day's nodes, inactive nodes with a self-loop only, BatchNorm over all of
them), torch sparse COO `Â` for the whole month, dense zero-padded features, and without features an N x N sparse
identity times a dense N x 1024 first-layer weight.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from darkembed.config import GnnConfig
from darkembed.embed.gnn import GnnTrainer, pick_device
from darkembed.embed.gnn.loop import train_step
from darkembed.embed.gnn.sampling import sample_negatives

log = logging.getLogger("benchmarks.gnn")


def synthetic_day(
    hosts: np.ndarray, n_ports: int, n_edges: int, rng: np.random.Generator, n_features: int = 38
) -> Data:
    """A `to_pyg`-like day: hosts (sorted addresses) 0..H-1, ports H..H+P-1, ~n_edges distinct weighted edges."""
    h = hosts.size
    pop = rng.zipf(1.3, size=4 * n_edges) % n_ports  # popular ports get most senders
    src = rng.integers(0, h, size=4 * n_edges)
    code = np.unique(src * n_ports + pop)
    code = code[rng.permutation(code.size)[: max(n_edges - h, 0)]]
    code.sort()
    s, p = code // n_ports, code % n_ports
    s = np.concatenate([s, np.arange(h)])  # every host active: one edge at least
    p = np.concatenate([p, rng.integers(0, n_ports, h)])
    code = np.unique(s * n_ports + p)
    s, p = code // n_ports, code % n_ports
    used = np.unique(p)
    remap = np.full(n_ports, -1)
    remap[used] = np.arange(used.size)
    p = remap[p]
    w = torch.from_numpy(rng.geometric(0.2, size=s.size).astype(np.float32))
    src_t, dst_t = torch.from_numpy(s), torch.from_numpy(p + h)
    n = h + used.size
    x = rng.random((n, n_features), dtype=np.float32)
    x[:, -1] = np.r_[np.zeros(h), np.ones(used.size)]
    d = Data(
        edge_index=torch.stack([torch.cat([src_t, dst_t]), torch.cat([dst_t, src_t])]),
        edge_weight=torch.cat([w, w]),
        num_nodes=n,
        x=torch.from_numpy(x),
    )
    d.pos_edge_index = torch.stack([src_t, dst_t])
    d.num_hosts = h
    d.host_ip = torch.from_numpy(hosts.astype(np.int64))
    d.service = torch.from_numpy((6 << 16) + used.astype(np.int64))
    return d


def window(n_days: int, n_hosts: int, n_ports: int, n_edges: int, seed: int = 0) -> list[Data]:
    rng = np.random.default_rng(seed)
    pool = np.sort(rng.choice(2**32 - 1, size=3 * n_hosts, replace=False))
    current = pool[:n_hosts]
    days = []
    for _ in range(n_days):
        days.append(synthetic_day(np.sort(current), n_ports, n_edges, rng))
        stay = current[rng.random(current.size) > 0.1]
        fresh = rng.choice(np.setdiff1d(pool, stay), size=n_hosts - stay.size, replace=False)
        current = np.concatenate([stay, fresh])
    return days


def authors_step(day: Data, n_month: int, features: bool, cfg: GnnConfig, device: torch.device) -> float:
    """Seconds of one i-GCN step in the authors' month-wide formulation (dense padding, COO, identity input)."""
    g = torch.Generator().manual_seed(0)
    n = day.num_nodes
    ids = torch.randperm(n_month, generator=g)[:n]  # the day's nodes scattered in the month's id space
    ei = ids[day.edge_index]
    loops = torch.arange(n_month)
    idx = torch.cat([ei, torch.stack([loops, loops])], 1)
    val = torch.cat([day.edge_weight, torch.ones(n_month)])
    a = torch.sparse_coo_tensor(idx, val, (n_month, n_month)).coalesce()
    deg = torch.sparse.sum(a, 1).to_dense() + 1e-15
    r = a.indices()[0]
    adj = torch.sparse_coo_tensor(a.indices(), a.values() / deg[r], a.shape).coalesce().to(device)
    if features:
        x = torch.zeros(n_month, day.x.shape[1])
        x[ids] = day.x
        x = x.to(device)
        in_dim = x.shape[1]
    else:
        x = torch.sparse_coo_tensor(torch.stack([loops, loops]), torch.ones(n_month), (n_month, n_month)).to(
            device
        )
        in_dim = n_month
    w1 = nn.Parameter(torch.empty(in_dim, cfg.hidden[0]).uniform_(-0.03, 0.03))
    w2 = nn.Parameter(torch.empty(cfg.hidden[0], cfg.hidden[1]).uniform_(-0.04, 0.04))
    b1, b2 = nn.Parameter(torch.zeros(cfg.hidden[0])), nn.Parameter(torch.zeros(cfg.hidden[1]))
    head = nn.Linear(cfg.hidden[1], cfg.embedding_dim)
    bn = nn.BatchNorm1d(cfg.embedding_dim)
    pred = nn.Sequential(nn.Linear(2 * cfg.embedding_dim, 64), nn.ReLU(), nn.Linear(64, 2), nn.LogSoftmax(-1))
    mods = nn.ModuleList([head, bn, pred]).to(device)
    params = [w1, w2, b1, b2]
    for p in params:
        p.data = p.data.to(device)
    opt = torch.optim.Adam([*params, *mods.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    pos = day.pos_edge_index.numpy()
    neg = sample_negatives(pos, pos.shape[1], np.random.default_rng(0))
    pairs = ids[torch.from_numpy(np.concatenate([pos, neg], 1))].to(device)
    y = torch.cat([torch.ones(pos.shape[1]), torch.zeros(neg.shape[1])]).long().to(device)

    def step() -> None:
        opt.zero_grad()
        xw = torch.sparse.mm(x, w1) if not features else x @ w1
        h = torch.relu(torch.sparse.mm(adj, xw) + b1)
        h = torch.sparse.mm(adj, h @ w2) + b2
        z = bn(torch.relu(head(h)))
        loss = nn.functional.nll_loss(pred(torch.cat([z[pairs[0]], z[pairs[1]]], 1)), y)
        loss.backward()
        opt.step()

    step()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=7500)
    ap.add_argument("--ports", type=int, default=2500)
    ap.add_argument("--edges", type=int, default=50_000)
    ap.add_argument("--month-factor", type=float, default=3.0)
    ap.add_argument(
        "--gcn-epochs", type=int, default=50, help="GCN's max epochs (early stopping may end sooner)"
    )
    ap.add_argument("--fit-epochs", type=int, default=3, help="GCN-GRU fit epochs timed (s/step is reported)")
    ap.add_argument("--repeats", type=int, default=3, help="timed daily updates per method (median reported)")
    ap.add_argument("--device", default=None)
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads; 0 = torch's default. On a machine shared with other jobs use 1: OpenMP threads "
        "that wait for a busy core make 2-thread steps several times slower and the numbers erratic",
    )
    ap.add_argument("--methods", default="gcn,igcn,gcngru,igcngru")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    log.setLevel(logging.INFO)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    cfg = GnnConfig(max_epochs=args.gcn_epochs)
    h = cfg.history
    days = window(h + 1 + args.repeats, args.hosts, args.ports, args.edges)
    d = days[-1]
    log.info(
        "device %s, torch threads %d; day: %d hosts, %d ports, %d edges; GRU window %d days",
        device,
        torch.get_num_threads(),
        d.num_hosts,
        d.num_nodes - d.num_hosts,
        d.pos_edge_index.shape[1],
        h + 1,
    )
    GnnTrainer("igcn", True, cfg, device).update([days[0]])  # warm-up (allocator, kernels)
    for features in (True, False):
        tag = "features" if features else "no features"
        for method in args.methods.split(","):
            if method == "gcngru":
                tr = GnnTrainer(
                    method, features, cfg.model_copy(update={"max_epochs": args.fit_epochs}), device
                )
                res = tr.fit(days[: h + 2])
                per_step = res["seconds"] / (res["epochs"] * 2)
                t0 = time.perf_counter()
                tr.embed(days[-h - 1 :])
                _sync(device)
                emb = time.perf_counter() - t0
                log.info(
                    "%-8s %-11s fit %6.2f s (%d epochs x 2 windows, %.2f s/step); daily update: none (frozen); "
                    "embed %.2f s",
                    method,
                    tag,
                    res["seconds"],
                    res["epochs"],
                    per_step,
                    emb,
                )
                continue
            tr = GnnTrainer(method, features, cfg, device)
            gru = method == "igcngru"
            tr.update(days[: h + 1] if gru else [days[h]])  # first day of the chain, untimed
            secs, epochs = [], []
            for t in range(h + 1, h + 1 + args.repeats):
                win = days[t - h : t + 1] if gru else [days[t]]
                res = tr.update(win)
                secs.append(res["seconds"])
                epochs.append(res["epochs"])
            sec, ep = float(np.median(secs)), int(np.median(epochs))
            t0 = time.perf_counter()
            tr.embed(win)
            _sync(device)
            emb = time.perf_counter() - t0
            log.info(
                "%-8s %-11s daily update %6.2f s (median of %d; %d epochs, %.2f s/epoch); embed %.2f s",
                method,
                tag,
                sec,
                args.repeats,
                ep,
                sec / ep,
                emb,
            )
    n_month = int(args.month_factor * d.num_nodes)
    for features in (True, False):
        tag = "features" if features else "no features"
        tr = GnnTrainer("igcn", features, cfg, device)
        tr.update([days[-2]])
        tr._fresh_or_continue([d], False, tr._seeds())
        task = tr._task([d], holdout=False, rng=np.random.default_rng(0))
        rng = np.random.default_rng(1)
        ours, ref = [], []
        for _ in range(args.repeats):  # interleaved, so that both see the same machine load
            t0 = time.perf_counter()
            train_step(tr.model, tr.optimizer, task, tr.cfg.negatives, rng, tr.device)
            _sync(device)
            ours.append(time.perf_counter() - t0)
            ref.append(authors_step(d, n_month, features, cfg, device))
        o, r = float(np.median(ours)), float(np.median(ref))
        log.info(
            "i-GCN optimisation step, %s: ours %.2f s; authors' month-wide formulation (N=%d) %.2f s: %.1fx",
            tag,
            o,
            n_month,
            r,
            r / o,
        )


if __name__ == "__main__":
    main()
