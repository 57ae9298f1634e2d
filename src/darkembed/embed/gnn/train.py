"""Training, inference and checkpoints of GCN, i-GCN, GCN-GRU and i-GCN-GRU (docs/method.md 4.5-4.7, 7.1, 7.6).

Reads: daily PyG graphs (`darkembed.graph.to_pyg`) and, to continue a chain, the previous day's checkpoint
directory. Writes: `checkpoint.json` and `checkpoint.safetensors` into the directory the caller gives (`<root>/models/method=<m>/network=<net>/
day=<d>/`): model, optimiser and vocabulary state, so that day d + 1 resumes from day d exactly.

`GnnTrainer` holds a chain and its schedules; the model and its construction are in `models`, the training loop
(steps, early stopping, BatchNorm recalibration) in `loop`, the checkpoint files in `checkpoint`.

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
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from darkembed.config import GnnConfig
from darkembed.embed.gnn.checkpoint import (
    check_layer_sizes,
    read_checkpoint,
    restore_state,
    state_tensors,
    write_checkpoint,
)
from darkembed.embed.gnn.loop import Task, recalibrate, train_epochs
from darkembed.embed.gnn.models import LinkModel, align, build_link_model, resize_input_table
from darkembed.embed.gnn.sampling import Snapshot, make_snapshot, node_keys, sample_negatives, split_edges
from darkembed.torchutil import pick_device

log = logging.getLogger(__name__)

Method = Literal["gcn", "igcn", "gcngru", "igcngru"]
METHODS: tuple[str, ...] = ("gcn", "igcn", "gcngru", "igcngru")


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
        self.model, self.optimizer = build_link_model(
            self.cfg,
            in_dim,
            gru=self.gru,
            vocab_size=len(self.vocab) if self.vocab is not None else 0,
            gen=gen,
            device=self.device,
        )
        self.in_dim = in_dim

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
    ) -> Task:
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
        return Task(
            snaps=snaps,
            rows=[self._rows(s) for s in snaps],
            train_pos=torch.from_numpy(edges[:, train_idx]).to(self.device),
            all_edges=edges,
            val_pairs=val_pairs,
            val_labels=val_labels,
        )

    # ------------------------------------------------------------------ optimisation
    def _train(
        self, tasks: list[Task], epochs: int, early_stopping: bool, rng: np.random.Generator
    ) -> tuple[list[float], list[float], int]:
        assert self.model is not None and self.optimizer is not None
        return train_epochs(
            self.model,
            self.optimizer,
            tasks,
            epochs,
            early_stopping,
            patience=self.cfg.patience,
            negatives=self.cfg.negatives,
            rng=rng,
            device=self.device,
        )

    @torch.no_grad()
    def _recalibrate(self, graphs: list[Any]) -> None:
        """Running statistics of BatchNorm := the statistics of the full (no edge held out) last window."""
        if not self.cfg.bn_recalibrate:
            return
        assert self.model is not None
        snaps = [make_snapshot(g, features=self.features, device=self.device) for g in graphs]
        recalibrate(self.model, snaps, [self._rows(s) for s in snaps])

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
                gen = torch.Generator().manual_seed(seeds["rows"])
                resize_input_table(self.model, self.optimizer, keep, n_new, gen, self.device)

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
        tensors: dict[str, torch.Tensor] = {}
        if self.vocab is not None:
            tensors["vocab/keys"] = torch.from_numpy(self.vocab.keys.copy())
            tensors["vocab/last_seen"] = torch.from_numpy(self.vocab.last_seen.copy())
        opt_meta = None
        if self.model is not None and self.optimizer is not None:
            opt_meta = state_tensors(self.model, self.optimizer, tensors)
        meta = {
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
        return write_checkpoint(directory, tensors, meta)

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
        path, st, tensors = read_checkpoint(directory)
        saved = GnnConfig.model_validate(st["cfg"])
        check_layer_sizes(path, saved, cfg)
        tr = cls(st["method"], st["features"], cfg or saved, device, seed=st["seed"])
        tr.n_updates = int(st["n_updates"])
        tr.frozen = bool(st["frozen"])
        if st["has_vocab"]:
            tr.vocab = Vocabulary(tensors["vocab/keys"].numpy(), tensors["vocab/last_seen"].numpy())
        if st["optimizer"] is not None:
            tr._build(st["in_dim"], torch.Generator().manual_seed(0))
            assert tr.model is not None and tr.optimizer is not None
            restore_state(path, tensors, st["optimizer"], tr.model, tr.optimizer)
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
