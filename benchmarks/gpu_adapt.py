"""Seconds per fit of the adaptation stage's torch models and of a GNN epoch, on CPU and on CUDA, at paper size.

Run: `python benchmarks/gpu_adapt.py [--hosts 10000] [--dims 200] [--cpu-epochs 2] [--json out.json]`.

Self-contained on purpose: it needs only numpy, torch and the darkembed modules that hold the models
(`darkembed.torchutil`, `darkembed.adapt.aligners`, `darkembed.evaluate.classifiers`,
`darkembed.embed.gnn.models` / `.sampling`), so it runs on a GPU machine without polars, pydantic, gensim,
prefect, mlflow, hdbscan or scikit-learn. The packages around those modules import the rest of the stack; the
script registers them as bare namespaces (their `__init__` is not run). Run it from the repository root (or with `src/` on PYTHONPATH).

Synthetic data of the papers' size: `hosts` provider hosts in the [TNSM] Table I class shares (one third
unknown), a customer seeing 73 % of them through a rotation plus noise; one fold trains on 80 %. A GNN epoch is
one full-batch link-prediction step of the GCN with node features (38 -> 1024 -> 512 -> 128, one negative per
edge) on a bipartite day graph of `hosts` hosts, 2,500 ports and ~10 edges per host.

Every model is timed per epoch on each device (CPU: `--cpu-epochs` epochs, extrapolated linearly, since a CPU fit
of the paper's 3 x 1024 aligner takes minutes; CUDA: the full fit) and reported as seconds per fit with the
CUDA/CPU speed-up. Reference: the paper's V100 figures, 24 s per fold for the classifier and 60 s for the aligner.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _light_imports() -> None:
    """Import the model modules without their packages' heavy `__init__` (see the module docstring)."""
    src = ROOT / "src"
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    import darkembed  # the top package imports nothing heavy

    for name in ("darkembed.embed", "darkembed.embed.gnn"):
        if name in sys.modules:
            continue
        pkg = types.ModuleType(name)
        pkg.__path__ = [
            str(src / Path(*name.split(".")))
        ]  # a namespace: submodules import, __init__ does not run
        sys.modules[name] = pkg
    assert darkembed


SHARES = {"zombie": 9127, "shadowserver": 289, "driftnet": 252, "internetcensus": 208, "spammer": 25, "onyphe": 96,
          "rapid7": 29, "censys": 24, "shodan": 30, "securitytrails": 18, "unknown": 4809}  # fmt: skip


def synthetic(hosts: int, dims: int, seed: int = 0):
    """Provider vectors X (n, e) float32 with labels (n,) in the [TNSM] shares, the customer's view of every
    host (a random rotation plus 10 % noise, (n, e)) and which hosts the customer sees (73 %, bool (n,))."""
    rng = np.random.default_rng(seed)
    total = sum(SHARES.values())
    labels = np.concatenate([[c] * max(5, round(n / total * hosts)) for c, n in SHARES.items()]).astype(
        object
    )
    centres = {c: rng.normal(size=dims) for c in SHARES}
    X = (np.stack([centres[c] for c in labels]) + 1.5 * rng.normal(size=(labels.size, dims))).astype(
        np.float32
    )
    rot = np.linalg.qr(rng.normal(size=(dims, dims)))[0].astype(np.float32)
    Xc = (X @ rot.T + 0.1 * rng.normal(size=X.shape)).astype(np.float32)
    return X, labels, Xc, rng.random(labels.size) < 0.73


def world(hosts: int, dims: int, seed: int = 0):
    """(X provider (n, e), labels (n,), training mask (n,), anchor pairs (yc, yp) of one fold's training anchors)."""
    X, labels, Xc, seen = synthetic(hosts, dims, seed)
    train = np.random.default_rng(seed + 1).random(labels.size) < 0.8
    pairs = seen & train
    return X, labels, train, (Xc[pairs], X[pairs])


def gnn_snapshot(hosts: int, device: torch.device, seed: int = 0):
    from darkembed.embed.gnn.sampling import Snapshot, normalised_adjacency

    rng = np.random.default_rng(seed)
    ports = 2500
    per_host = rng.integers(1, 20, size=hosts)
    src = np.repeat(np.arange(hosts), per_host)
    dst = hosts + np.minimum(rng.zipf(1.5, size=src.size) - 1, ports - 1)
    pos = np.unique(np.stack([src, dst]), axis=1)
    ei = torch.from_numpy(np.concatenate([pos, pos[::-1]], axis=1))
    n = hosts + ports
    adj, adj_t = normalised_adjacency(ei, None, n)
    x = torch.from_numpy(rng.normal(size=(n, 38)).astype(np.float32))
    snap = Snapshot(adj=adj.to(device), adj_t=adj_t.to(device), x=x.to(device),
                    node_key=np.arange(n, dtype=np.int64), num_hosts=hosts,
                    host_ip=np.arange(hosts, dtype=np.uint32), pos=pos)  # fmt: skip
    neg = np.stack([rng.integers(0, hosts, pos.shape[1]), hosts + rng.integers(0, ports, pos.shape[1])])
    return snap, torch.from_numpy(pos).to(device), torch.from_numpy(neg).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_gnn_epoch(hosts: int, device: torch.device, epochs: int) -> float:
    from darkembed.embed.gnn.models import LinkModel
    from darkembed.torchutil import adam, generator

    snap, pos, neg = gnn_snapshot(hosts, device)
    model = LinkModel(38, [1024, 512], 128, 64, 0.0, gru=False)
    model.reset_parameters(generator(0))
    model = model.to(device)
    opt = adam(model.parameters(), lr=1e-3, weight_decay=5e-3)
    pairs = torch.cat([pos, neg], dim=1)
    target = torch.cat([torch.ones(pos.shape[1]), torch.zeros(neg.shape[1])]).long().to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        z = model([snap], [None])
        loss = torch.nn.functional.nll_loss(model.score(z, pairs), target)
        loss.backward()
        opt.step()

    step()  # warm-up (kernels, allocator)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / epochs


def time_fit(make, fit, epochs_run: int, epochs_full: int, device: torch.device) -> float:
    """Seconds of a full fit, from a fit of `epochs_run` epochs (after a one-epoch warm-up)."""
    fit(make(1))
    _sync(device)
    t0 = time.perf_counter()
    fit(make(epochs_run))
    _sync(device)
    return (time.perf_counter() - t0) * epochs_full / epochs_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=10000)
    ap.add_argument("--dims", type=int, default=200, help="w2v-like embedding size (the GNN uses 128)")
    ap.add_argument("--epochs", type=int, default=50, help="epochs of a full fit")
    ap.add_argument("--cpu-epochs", type=int, default=2, help="epochs timed on CPU (extrapolated)")
    ap.add_argument("--cuda-epochs", type=int, default=None, help="epochs timed on CUDA (default: --epochs)")
    ap.add_argument("--gnn-epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    args = ap.parse_args()
    _light_imports()
    from darkembed.adapt.aligners import DNNAligner, LinearAligner
    from darkembed.evaluate.classifiers import DNNClassifier

    if args.threads:
        torch.set_num_threads(args.threads)
    X, labels, train, (yc, yp) = world(args.hosts, args.dims)
    tr = train & (labels != "unknown")
    val = tr & (np.random.default_rng(1).random(labels.size) < 0.1)  # the classifier's validation hosts
    tr &= ~val
    rows = []
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"{args.hosts} hosts, e = {args.dims}, {yc.shape[0]} anchor pairs, {int(tr.sum())} labelled training "
          f"hosts; CPU threads {torch.get_num_threads()}; CUDA: {name}")  # fmt: skip
    models = {
        "DNN classifier (512-256, b128)": lambda e, d: DNNClassifier(epochs=e, device=d),
        "non-linear aligner, paper (3x1024, b32)": lambda e, d: DNNAligner("sigmoid", epochs=e, device=d),
        "non-linear aligner, default (3x256, b64)": lambda e, d: DNNAligner(
            "sigmoid", epochs=e, width=256, batch_size=64, lr=1.5e-3, device=d
        ),
        "linear aligner, paper DNN (3x1024, b32)": lambda e, d: DNNAligner("linear", epochs=e, device=d),
    }
    for label, build in models.items():
        row = {"model": label}
        make = build
        for dev in devices:
            run = args.cpu_epochs if dev.type == "cpu" else (args.cuda_epochs or args.epochs)
            if label.startswith("DNN classifier"):
                fit = lambda m: m.fit(X[tr], labels[tr], X[val], labels[val])  # noqa: E731
            else:
                fit = lambda m: m.fit(yc, yp)  # noqa: E731
            row[dev.type] = time_fit(
                lambda e, dev=dev, make=make: make(e, str(dev)), fit, run, args.epochs, dev
            )
        rows.append(row)
    t0 = time.perf_counter()
    LinearAligner().fit(yc, yp)
    rows.append({"model": "linear aligner, closed form (default)", "cpu": time.perf_counter() - t0})
    gnn = {"model": f"GNN epoch (GCN+features, {args.hosts} hosts, full batch)"}
    for dev in devices:
        gnn[dev.type] = time_gnn_epoch(args.hosts, dev, args.gnn_epochs)
    rows.append(gnn)
    print("\n| model | CPU s/fit | CUDA s/fit | CPU/CUDA |\n|---|---|---|---|")
    for r in rows:
        cuda = r.get("cuda")
        ratio = f"{r['cpu'] / cuda:.1f}x" if cuda else "-"
        print(f"| {r['model']} | {r['cpu']:.2f} | {'-' if cuda is None else f'{cuda:.2f}'} | {ratio} |")
    print("\n(per fit = 50 epochs unless --epochs; GNN rows: seconds per epoch; paper on a V100: classifier 24 s, "
          "aligner 60 s per fold)")  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"device": name, "threads": torch.get_num_threads(), "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
