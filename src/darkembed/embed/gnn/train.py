"""Training, inference and checkpoints of GCN, i-GCN, GCN-GRU and i-GCN-GRU (docs/method.md 4.5-4.7, 7.1, 7.6).

Reads: daily PyG graphs (`darkembed.graph.to_pyg`) and, to continue a chain, the previous day's checkpoint
directory. Writes: `checkpoint.json` and `checkpoint.safetensors` into the directory the caller gives (`<root>/models/method=<m>/network=<net>/
day=<d>/`): model, optimiser and vocabulary state, so that day d + 1 resumes from day d exactly.

Schedules (docs/method.md 4.7 with the fixes of 7.1 and the defaults of 7.6):

* `gcn`: a new model every day, at most `max_epochs` full-batch steps, early stopping (patience `patience`) on the
  loss of `val_fraction` of the day's edges held out from the loss *and* from message passing (the model never
  sees them), best weights restored from a `state_dict` copy.
* `igcn`: one model fine-tuned day after day, `incremental_epochs_*` steps per day on all of the day's edges.
* `gcngru`: `fit(days 1..M)` once (one step per window [t-H, t], early stopping as `gcn`, on each window's
  target-day held-out edges), then frozen: `update` does nothing.
* `igcngru`: every day `incremental_epochs_*` steps on the window [t-H, t] (shorter at the start of a chain).

The fixes of docs/method.md 7.1: per-day edges come with the graph (item 1); the optimiser is created once per model
and always holds the live parameters, best weights are restored in place (item 2); the GRU window ends at the
embedded day at training and inference (item 3); inference is `eval()` + `no_grad()` (item 4); Xavier init of
Linear and GRU weights (item 5); exact negative counts (item 6).

Randomness: every update seeds its own generators from `(seed, update index)`, so a chain resumed from a
checkpoint draws exactly what the uninterrupted chain draws.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darkembed.config import GnnConfig
from darkembed.embed.gnn.models import LinkModel, align
from darkembed.embed.gnn.sampling import Snapshot, make_snapshot, node_keys, sample_negatives, split_edges
from darkembed.torchutil import adam, pick_device

log = logging.getLogger(__name__)

Method = Literal["gcn", "igcn", "gcngru", "igcngru"]
METHODS: tuple[str, ...] = ("gcn", "igcn", "gcngru", "igcngru")
#: The checkpoint: settings and chain position (JSON) and every tensor (safetensors). No pickle.
CHECKPOINT = "checkpoint.json"
CHECKPOINT_TENSORS = "checkpoint.safetensors"
#: The pickled `torch.save` checkpoint of earlier releases: recognised to say why it is not loaded, never opened.
LEGACY_CHECKPOINT = "checkpoint.pt"
_FORMAT = 2


class Vocabulary:
    """Stable node keys -> rows of the learned input table (models without node features).

    Rows are assigned in order of first appearance and never renumbered except when idle rows are dropped.

    Attributes:
        keys: (V,) int64 key of each row (address for hosts, `PORT_KEY_BASE + service` for ports).
        last_seen: (V,) int64 update index at which each key was last active.
    """

    def __init__(self, keys: np.ndarray | None = None, last_seen: np.ndarray | None = None) -> None:
        self.keys = np.zeros(0, np.int64) if keys is None else np.asarray(keys, np.int64)
        self.last_seen = np.zeros(0, np.int64) if last_seen is None else np.asarray(last_seen, np.int64)

    def __len__(self) -> int:
        return int(self.keys.size)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Rows of `keys` (n,) -> (n,) int64, -1 for keys not in the vocabulary."""
        return align(np.asarray(keys, np.int64), self.keys)

    def sync(self, active: np.ndarray, step: int, max_idle: int | None) -> tuple[np.ndarray, int]:
        """Mark `active` keys seen at `step`, drop rows idle for more than `max_idle` steps, append new keys.

        Returns:
            `(keep, n_new)`: the old rows kept, in order (int64), and how many rows were appended after them.
        """
        active = np.unique(np.asarray(active, np.int64))
        keep = np.arange(len(self), dtype=np.int64)
        if max_idle is not None and len(self):
            stale = (step - self.last_seen > max_idle) & ~np.isin(self.keys, active)
            keep = keep[~stale]
        new = np.setdiff1d(active, self.keys[keep], assume_unique=True)
        self.keys = np.concatenate([self.keys[keep], new])
        self.last_seen = np.concatenate([self.last_seen[keep], np.full(new.size, step, np.int64)])
        self.last_seen[np.isin(self.keys, active)] = step
        return keep, int(new.size)


@dataclass
class _Task:
    """One optimisation target: a window (or a day) whose last day's edges are predicted."""

    snaps: list[Snapshot]
    rows: list[torch.Tensor | None]
    train_pos: torch.Tensor  # (2, P) on device
    all_edges: np.ndarray  # (2, E) every edge of the target day, held-out ones included
    val_pairs: torch.Tensor | None  # (2, V + Vn) held-out positives then negatives
    val_labels: torch.Tensor | None


class GnnTrainer:
    """One embedding chain of the GCN family on one network.

    Args:
        method: `gcn`, `igcn`, `gcngru` or `igcngru`.
        features: use the 37(+1) node features, or learned per-node input rows without them.
        cfg: sizes, optimiser and schedules; the defaults of `GnnConfig` when None.
        device: a torch device; CUDA when present, else CPU, when None.
        seed: the base seed (the configuration's `seed`).
    """

    def __init__(
        self,
        method: Method,
        features: bool,
        cfg: GnnConfig | None = None,
        device: str | torch.device | None = None,
        *,
        seed: int = 15,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown GNN method {method!r}; known: {', '.join(METHODS)}")
        self.method: Method = method
        self.features = bool(features)
        self.cfg = cfg or GnnConfig()
        self.device = pick_device(device)
        self.seed = int(seed)
        self.model: LinkModel | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.vocab: Vocabulary | None = None if self.features else Vocabulary()
        self.in_dim: int | None = None
        self.n_updates = 0
        self.frozen = False

    # ------------------------------------------------------------------ properties and helpers
    @property
    def gru(self) -> bool:
        return self.method in ("gcngru", "igcngru")

    @property
    def incremental_epochs(self) -> int:
        c = self.cfg
        return c.incremental_epochs_features if self.features else c.incremental_epochs_no_features

    def _seeds(self, step: int | None = None) -> dict[str, int]:
        """Seeds of one update, from (seed, update index) only: a resumed chain draws what the original drew."""
        ss = np.random.SeedSequence([self.seed, self.n_updates if step is None else step])
        vals = ss.generate_state(5, dtype=np.uint64)
        return dict(zip(("init", "neg", "split", "rows", "torch"), (int(v) for v in vals), strict=True))

    @contextlib.contextmanager
    def _torch_rng(self, seed: int) -> Iterator[None]:
        """Torch's global generators (dropout) seeded for one update, restored afterwards."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def _window(self, day_graphs: Sequence[Any]) -> list[Any]:
        graphs = [day_graphs] if hasattr(day_graphs, "edge_index") else list(day_graphs)
        if not graphs:
            raise ValueError(
                "no graphs given: pass the day's graph (GCN) or the window [t-H, t], oldest first"
            )
        return graphs[-(self.cfg.history + 1) :] if self.gru else graphs[-1:]

    def _check_in_dim(self, data: Any) -> int | None:
        if not self.features:
            return None
        x = getattr(data, "x", None)
        if x is None:
            raise ValueError(
                f"{self.method} with features needs node features; build the graph with to_pyg(features=True)"
            )
        d = int(x.shape[1])
        if self.in_dim is not None and d != self.in_dim:
            raise ValueError(
                f"the graph has {d} node features but the model was trained with {self.in_dim}; "
                "keep graph.node_type_indicator as it was for this chain"
            )
        return d

    def _build(self, in_dim: int | None, gen: torch.Generator) -> None:
        c = self.cfg
        model = LinkModel(
            in_dim,
            c.hidden,
            c.embedding_dim,
            c.predictor_hidden,
            c.dropout,
            gru=self.gru,
            vocab_size=len(self.vocab) if self.vocab is not None else 0,
        )
        model.reset_parameters(gen)  # on CPU: the same initial weights whatever the device
        self.model = model.to(self.device)
        self.in_dim = in_dim
        self.optimizer = adam(self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def _resize_table(self, keep: np.ndarray, n_new: int, gen: torch.Generator) -> None:
        """Keep rows `keep` of the learned input table and append `n_new` fresh ones; the optimiser's parameter
        and moments follow (new rows start with zero moments), so it keeps stepping the live table."""
        assert self.model is not None and self.model.encoder.table is not None
        table = self.model.encoder.table
        old = table.weight
        dim = old.shape[1]
        bound = 1.0 / math.sqrt(dim)
        fresh = torch.empty(n_new, dim).uniform_(-bound, bound, generator=gen).to(self.device)
        keep_t = torch.from_numpy(keep).to(self.device)
        new = nn.Parameter(torch.cat([old.detach()[keep_t], fresh]))
        table.weight = new
        table.num_embeddings = new.shape[0]
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["params"] = [new if p is old else p for p in group["params"]]
            state = self.optimizer.state.pop(old, None)
            if state:
                for k, v in list(state.items()):
                    if torch.is_tensor(v) and v.shape == old.shape:
                        state[k] = torch.cat([v[keep_t], v.new_zeros(n_new, dim)])
                self.optimizer.state[new] = state
        log.debug("input table: kept %d rows, added %d", keep.size, n_new)

    def _rows(self, snap: Snapshot) -> torch.Tensor | None:
        if self.vocab is None:
            return None
        return torch.from_numpy(self.vocab.lookup(snap.node_key)).to(self.device)

    def _snapshot(self, data: Any, cache: dict[int, Snapshot] | None) -> Snapshot:
        if cache is None:
            return make_snapshot(data, features=self.features, device=self.device)
        if id(data) not in cache:
            cache[id(data)] = make_snapshot(data, features=self.features, device=self.device)
        return cache[id(data)]

    def _task(
        self,
        graphs: list[Any],
        holdout: bool,
        rng: np.random.Generator,
        cache: dict[int, Snapshot] | None = None,
    ) -> _Task:
        """The training target of a day or window; `cache` shares full-graph snapshots between windows."""
        target = graphs[-1]
        full = self._snapshot(target, cache)
        edges = full.pos
        val_idx = np.zeros(0, np.int64)
        train_idx = np.arange(edges.shape[1])
        if holdout and self.cfg.val_fraction > 0:
            train_idx, val_idx = split_edges(edges.shape[1], self.cfg.val_fraction, rng)
        last = full
        if val_idx.size:
            last = make_snapshot(target, features=self.features, device=self.device, drop=edges[:, val_idx])
        snaps = [self._snapshot(g, cache) for g in graphs[:-1]] + [last]
        val_pairs = val_labels = None
        if val_idx.size:
            vneg = sample_negatives(edges, self.cfg.negatives * val_idx.size, rng)
            val_pairs = torch.from_numpy(np.concatenate([edges[:, val_idx], vneg], axis=1)).to(self.device)
            val_labels = torch.cat(
                [torch.ones(val_idx.size, dtype=torch.long), torch.zeros(vneg.shape[1], dtype=torch.long)]
            ).to(self.device)
        return _Task(
            snaps=snaps,
            rows=[self._rows(s) for s in snaps],
            train_pos=torch.from_numpy(edges[:, train_idx]).to(self.device),
            all_edges=edges,
            val_pairs=val_pairs,
            val_labels=val_labels,
        )

    # ------------------------------------------------------------------ optimisation
    def _step(self, task: _Task, rng: np.random.Generator) -> float:
        assert self.model is not None and self.optimizer is not None
        pos = task.train_pos
        neg = sample_negatives(task.all_edges, self.cfg.negatives * pos.shape[1], rng)
        pairs = torch.cat([pos, torch.from_numpy(neg).to(self.device)], dim=1)
        labels = torch.cat(
            [torch.ones(pos.shape[1], dtype=torch.long), torch.zeros(neg.shape[1], dtype=torch.long)]
        ).to(self.device)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        z = self.model(task.snaps, task.rows)
        loss = F.nll_loss(self.model.score(z, pairs), labels)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def _batch_norms(self) -> list[nn.BatchNorm1d]:
        assert self.model is not None
        return [m for m in self.model.modules() if isinstance(m, nn.BatchNorm1d)]

    @torch.no_grad()
    def _val_loss(self, task: _Task) -> float:
        """Held-out loss with batch statistics (as in training) but without touching the running statistics."""
        assert self.model is not None and task.val_pairs is not None
        bns = self._batch_norms()
        saved = [(bn.momentum, bn.num_batches_tracked.clone()) for bn in bns]
        for bn in bns:
            bn.momentum = 0.0  # running = (1 - 0) * running: unchanged
        try:
            self.model.train()
            z = self.model(task.snaps, task.rows)
            return float(F.nll_loss(self.model.score(z, task.val_pairs), task.val_labels))
        finally:
            for bn, (m, n) in zip(bns, saved, strict=True):
                bn.momentum = m
                bn.num_batches_tracked.copy_(n)

    @torch.no_grad()
    def _recalibrate(self, graphs: list[Any]) -> None:
        """Running statistics of BatchNorm := the statistics of the full (no edge held out) last window."""
        if not self.cfg.bn_recalibrate:
            return
        assert self.model is not None
        snaps = [make_snapshot(g, features=self.features, device=self.device) for g in graphs]
        bns = self._batch_norms()
        moms = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over one batch = that batch's statistics
        try:
            self.model.train()
            self.model(snaps, [self._rows(s) for s in snaps])
        finally:
            for bn, m in zip(bns, moms, strict=True):
                bn.momentum = m
            self.model.eval()

    def _train(
        self, tasks: list[_Task], epochs: int, early_stopping: bool, rng: np.random.Generator
    ) -> tuple[list[float], list[float], int]:
        assert self.model is not None
        losses: list[float] = []
        vals: list[float] = []
        best, best_state, since = math.inf, None, 0
        validate = early_stopping and any(t.val_pairs is not None for t in tasks)
        run = 0
        for _ in range(epochs):
            run += 1
            losses.append(float(np.mean([self._step(t, rng) for t in tasks])))
            if not validate:
                continue
            v = float(np.mean([self._val_loss(t) for t in tasks if t.val_pairs is not None]))
            vals.append(v)
            if v < best:
                best, since = v, 0
                best_state = copy.deepcopy(self.model.state_dict())  # a copy of values, not of the model
            else:
                since += 1
                if since >= self.cfg.patience:
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)  # in place: the optimiser still holds these tensors
        return losses, vals, run

    def _fresh_or_continue(self, graphs: list[Any], fresh: bool, seeds: dict[str, int]) -> None:
        in_dim = self._check_in_dim(graphs[-1])
        active = np.concatenate([node_keys(g) for g in graphs]) if not self.features else None
        if fresh or self.model is None:
            if self.vocab is not None:
                self.vocab = Vocabulary()
                self.vocab.sync(active, self.n_updates, None)
            self._build(in_dim, torch.Generator().manual_seed(seeds["init"]))
        elif self.vocab is not None:
            keep, n_new = self.vocab.sync(active, self.n_updates, self.cfg.vocab_max_idle)
            if n_new or keep.size != self.model.encoder.table.weight.shape[0]:
                self._resize_table(keep, n_new, torch.Generator().manual_seed(seeds["rows"]))

    def _result(self, t0: float, losses: list[float], vals: list[float], epochs: int) -> dict[str, Any]:
        return {
            "losses": losses,
            "val_losses": vals,
            "epochs": epochs,
            "seconds": time.perf_counter() - t0,
            "update": self.n_updates,
        }

    # ------------------------------------------------------------------ public API
    def update(self, day_graphs: Sequence[Any]) -> dict[str, Any]:
        """Train on one day: the day's graph (GCN, i-GCN) or the window [t-H, t] oldest first (i-GCN-GRU).

        Longer lists are cut to what the method uses (the last day, or the last H + 1 days). GCN-GRU is trained by
        `fit` and then frozen: `update` does nothing for it.

        Returns:
            `{"losses": [training loss per epoch], "val_losses": [held-out loss per epoch, GCN only],
            "epochs": epochs run, "seconds": wall time, "update": index of this update in the chain}`.
        """
        t0 = time.perf_counter()
        if self.method == "gcngru":
            if not self.frozen:
                raise RuntimeError(
                    "GCN-GRU is trained once with fit(days 1..M) and then frozen; call fit first"
                )
            log.info("gcngru is frozen after fit: update does nothing")
            return self._result(t0, [], [], 0)
        graphs = self._window(day_graphs)
        seeds = self._seeds()
        if graphs[-1].edge_index.shape[1] == 0:
            log.warning("%s: the day has no edges; nothing to train", self.method)
            self.n_updates += 1
            return self._result(t0, [], [], 0)
        with self._torch_rng(seeds["torch"]):
            self._fresh_or_continue(graphs, fresh=self.method == "gcn", seeds=seeds)
            es = self.method == "gcn"
            epochs = self.cfg.max_epochs if es else self.incremental_epochs
            rng_split = np.random.default_rng(seeds["split"])
            task = self._task(graphs, holdout=es, rng=rng_split)
            losses, vals, run = self._train([task], epochs, es, np.random.default_rng(seeds["neg"]))
            self._recalibrate(graphs)
        res = self._result(t0, losses, vals, run)
        log.info(
            "%s%s update %d: %d epochs, loss %.4f, %.2f s",
            self.method,
            "" if self.features else " (no features)",
            self.n_updates,
            run,
            losses[-1],
            res["seconds"],
        )
        self.n_updates += 1
        return res

    def fit(self, days: Sequence[Any]) -> dict[str, Any]:
        """Train GCN-GRU once on days 1..M (oldest first), one step per window [t-H, t] per epoch, then freeze it.

        With M > H there are M - H windows ending at days H+1..M; with fewer days, one window of all of them.
        Early stopping on the mean held-out loss of the windows' target days.

        Returns:
            as `update`.
        """
        if self.method != "gcngru":
            raise ValueError(f"fit is GCN-GRU's one-off training; use update for {self.method}")
        t0 = time.perf_counter()
        days = list(days)
        if not days:
            raise ValueError("fit needs the training days 1..M")
        h = self.cfg.history
        windows = [days[max(0, t - h) : t + 1] for t in range(min(h, len(days) - 1), len(days))]
        windows = [w for w in windows if w[-1].edge_index.shape[1] > 0]
        if not windows:
            raise ValueError("no training day has edges")
        seeds = self._seeds()
        with self._torch_rng(seeds["torch"]):
            self._fresh_or_continue(days, fresh=True, seeds=seeds)
            rng_split = np.random.default_rng(seeds["split"])
            cache: dict[int, Snapshot] = {}
            tasks = [self._task(w, holdout=True, rng=rng_split, cache=cache) for w in windows]
            losses, vals, run = self._train(
                tasks, self.cfg.max_epochs, True, np.random.default_rng(seeds["neg"])
            )
            self._recalibrate(windows[-1])
        self.frozen = True
        res = self._result(t0, losses, vals, run)
        log.info("gcngru fit on %d windows: %d epochs, %.2f s", len(windows), run, res["seconds"])
        self.n_updates += 1
        return res

    @torch.no_grad()
    def embed(self, day_graphs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of the last day's hosts, in eval mode without gradients; changes nothing.

        Args:
            day_graphs: the day (GCN) or the window [t-H, t] oldest first (GCN-GRU); longer lists are cut.

        Returns:
            `(host_ip (H,) uint32 in the graph's host order, X (H, embedding_dim) float32)`. Without features,
            nodes never trained on get a zero first-layer input.
        """
        if self.model is None:
            raise RuntimeError(
                f"{self.method}: no trained model yet; update (or fit) first, or load a checkpoint"
            )
        graphs = self._window(day_graphs)
        self._check_in_dim(graphs[-1])
        snaps = [make_snapshot(g, features=self.features, device=self.device) for g in graphs]
        target = snaps[-1]
        if target.num_nodes == 0:
            return target.host_ip, np.zeros((0, self.cfg.embedding_dim), np.float32)
        self.model.eval()
        z = self.model(snaps, [self._rows(s) for s in snaps])
        return target.host_ip, z[: target.num_hosts].float().cpu().numpy()

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the checkpoint into `directory`: `checkpoint.safetensors` (model, optimiser and vocabulary
        tensors) and `checkpoint.json` (configuration, chain position, optimiser settings); returns the JSON path.

        Nothing is pickled (not even through `torch.save`): a planted checkpoint cannot run code when loaded.
        """
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        if self.vocab is not None:
            tensors["vocab/keys"] = torch.from_numpy(self.vocab.keys.copy())
            tensors["vocab/last_seen"] = torch.from_numpy(self.vocab.last_seen.copy())
        opt_meta = None
        if self.model is not None and self.optimizer is not None:
            for k, v in self.model.state_dict().items():
                tensors[f"model/{k}"] = v.detach().cpu().contiguous().clone()
            osd = self.optimizer.state_dict()
            scalars: dict[str, dict[str, Any]] = {}
            for idx, entry in osd["state"].items():
                for name, v in entry.items():
                    if isinstance(v, torch.Tensor):
                        tensors[f"optim/{idx}/{name}"] = v.detach().cpu().contiguous().clone()
                    else:
                        scalars.setdefault(str(idx), {})[name] = v
            opt_meta = {"param_groups": osd["param_groups"], "scalars": scalars}
        meta = {
            "format": _FORMAT,
            "method": self.method,
            "features": self.features,
            "seed": self.seed,
            "cfg": self.cfg.model_dump(mode="json"),
            "in_dim": self.in_dim,
            "n_updates": self.n_updates,
            "frozen": self.frozen,
            "has_vocab": self.vocab is not None,
            "optimizer": opt_meta,
        }
        tmp = d / f".{CHECKPOINT_TENSORS}.tmp-{os.getpid()}"
        save_file(tensors, str(tmp))
        os.replace(tmp, d / CHECKPOINT_TENSORS)
        tmp = d / f".{CHECKPOINT}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, d / CHECKPOINT)
        return d / CHECKPOINT

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        device: str | torch.device | None = None,
        cfg: GnnConfig | None = None,
    ) -> GnnTrainer:
        """A trainer continuing from the checkpoint in `directory` (written by `save`), on `device`.

        Reads only `checkpoint.json` and `checkpoint.safetensors` (a legacy pickled `checkpoint.pt` is never
        opened).

        Args:
            directory: the checkpoint's directory.
            device: where to run; CUDA when present, else CPU, when None.
            cfg: continue with this configuration (schedules, learning rate, ...) instead of the checkpoint's;
                its layer sizes must be the checkpoint's.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path, tpath = Path(directory) / CHECKPOINT, Path(directory) / CHECKPOINT_TENSORS
        if not path.is_file() or not tpath.is_file():
            legacy = Path(directory) / LEGACY_CHECKPOINT
            hint = (
                f" ({legacy.name} there is an old pickled checkpoint, never loaded since it could run code: "
                "restart the chain from its first day)"
                if legacy.exists()
                else ""
            )
            raise FileNotFoundError(
                f"{path}: no GNN checkpoint here; run the previous day (or start the chain){hint}"
            )
        try:
            st = json.loads(path.read_text())
            tensors = load_file(str(tpath))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, SafetensorError, OSError) as exc:
            raise ValueError(f"{path}: unreadable checkpoint ({exc}); rerun the day that wrote it") from None
        if not isinstance(st, dict) or st.get("format") != _FORMAT:
            got = st.get("format") if isinstance(st, dict) else None
            raise ValueError(f"{path}: checkpoint format {got!r}, expected {_FORMAT}")
        saved = GnnConfig.model_validate(st["cfg"])
        if cfg is not None:
            arch = ("hidden", "embedding_dim", "predictor_hidden")
            diff = [k for k in arch if getattr(cfg, k) != getattr(saved, k)]
            if diff:
                raise ValueError(
                    f"{path}: the checkpoint was trained with other layer sizes ({', '.join(diff)}); start a new "
                    "chain to change them"
                )
        tr = cls(st["method"], st["features"], cfg or saved, device, seed=st["seed"])
        tr.n_updates = int(st["n_updates"])
        tr.frozen = bool(st["frozen"])
        if st["has_vocab"]:
            tr.vocab = Vocabulary(tensors["vocab/keys"].numpy(), tensors["vocab/last_seen"].numpy())
        if st["optimizer"] is not None:
            tr._build(st["in_dim"], torch.Generator().manual_seed(0))
            assert tr.model is not None and tr.optimizer is not None
            model_sd = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
            ostate: dict[int, dict[str, Any]] = {}
            for k, v in tensors.items():
                if k.startswith("optim/"):
                    _, idx, name = k.split("/", 2)
                    ostate.setdefault(int(idx), {})[name] = v
            for idx, extra in st["optimizer"]["scalars"].items():
                ostate.setdefault(int(idx), {}).update(extra)
            try:
                tr.model.load_state_dict(model_sd)
                tr.optimizer.load_state_dict(
                    {"state": ostate, "param_groups": st["optimizer"]["param_groups"]}
                )
            except (RuntimeError, KeyError, ValueError) as exc:
                raise ValueError(f"{path}: the checkpoint does not fit the model: {exc}") from None
            tr.model.eval()
        return tr


def embed_inductive(trainer: GnnTrainer, customer_graphs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Adaptation method `gnn-inductive`: a provider's trained model embeds a customer's graph in its own space.

    The GCN family with node features is inductive: its weights act on features and graph structure, never on
    node identities, so the provider's model applies unchanged to the customer's daily graph (features normalised
    per day on the customer's own graph, BatchNorm with the provider's statistics). Nothing is trained or changed.

    Args:
        trainer: the provider's trained trainer, with node features.
        customer_graphs: the customer's day (or window [t-H, t] for the GRU methods), oldest first.

    Returns:
        `(host_ip (H,) uint32, X (H, embedding_dim) float32)` of the customer's hosts of the last day.

    Raises:
        ValueError: the model has no node features (its input rows are the provider's own hosts).
    """
    if not trainer.features:
        raise ValueError(
            f"gnn-inductive needs a model trained with node features; {trainer.method} without features learns "
            "one input row per provider host and port, which a customer's graph does not share. Train the "
            "provider's model with features, or use an anchor-based adaptation method"
        )
    return trainer.embed(customer_graphs)
