"""Checkpoint files of a GNN embedding chain: `checkpoint.json` and `checkpoint.safetensors`.

The JSON holds the settings and the chain position (and the optimiser's non-tensor settings); the safetensors file
every tensor: `vocab/*` (the learned input table's vocabulary), `model/*` (the model's state) and
`optim/<param>/<name>` (the optimiser's moments). Nothing is pickled, not even through `torch.save`, so a planted
checkpoint cannot run code when loaded; the pickled `checkpoint.pt` of earlier releases is recognised only to say
why it is not loaded. `GnnTrainer.save` and `GnnTrainer.load` (`darkembed.embed.gnn.train`) use these functions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darkembed.config import GnnConfig

#: The checkpoint: settings and chain position (JSON) and every tensor (safetensors). No pickle.
CHECKPOINT = "checkpoint.json"
CHECKPOINT_TENSORS = "checkpoint.safetensors"
#: The pickled `torch.save` checkpoint of earlier releases: recognised to say why it is not loaded, never opened.
LEGACY_CHECKPOINT = "checkpoint.pt"
FORMAT = 2


def state_tensors(
    model: nn.Module, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Add the model's and the optimiser's tensors to `tensors` (CPU copies); returns the optimiser's settings
    and non-tensor state for the JSON."""
    for k, v in model.state_dict().items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous().clone()
    osd = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in osd["state"].items():
        for name, v in entry.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{idx}/{name}"] = v.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[name] = v
    return {"param_groups": osd["param_groups"], "scalars": scalars}


def write_checkpoint(directory: str | os.PathLike[str], tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write `tensors` and `meta` (preceded by the format number) into `directory`, each file replaced
    atomically; returns the JSON path."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{CHECKPOINT_TENSORS}.tmp-{os.getpid()}"
    save_file(tensors, str(tmp))
    os.replace(tmp, d / CHECKPOINT_TENSORS)
    tmp = d / f".{CHECKPOINT}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"format": FORMAT, **meta}))
    os.replace(tmp, d / CHECKPOINT)
    return d / CHECKPOINT


def read_checkpoint(
    directory: str | os.PathLike[str],
) -> tuple[Path, dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON path, settings and tensors of the checkpoint in `directory`.

    Raises:
        FileNotFoundError: no checkpoint there (the message says when a legacy pickled one is, and why it is not
            opened).
        ValueError: the files are unreadable or of another format.
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
    if not isinstance(st, dict) or st.get("format") != FORMAT:
        got = st.get("format") if isinstance(st, dict) else None
        raise ValueError(f"{path}: checkpoint format {got!r}, expected {FORMAT}")
    return path, st, tensors


def check_layer_sizes(path: Path, saved: GnnConfig, cfg: GnnConfig | None) -> None:
    """Raise `ValueError` when `cfg` (continuing the chain) has other layer sizes than the checkpoint's."""
    if cfg is None:
        return
    arch = ("hidden", "embedding_dim", "predictor_hidden")
    diff = [k for k in arch if getattr(cfg, k) != getattr(saved, k)]
    if diff:
        raise ValueError(
            f"{path}: the checkpoint was trained with other layer sizes ({', '.join(diff)}); start a new "
            "chain to change them"
        )


def restore_state(
    path: Path,
    tensors: dict[str, torch.Tensor],
    optimizer_meta: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> None:
    """Load the checkpoint's model and optimiser state (written by `state_tensors`) into `model` and
    `optimizer`; a `ValueError` when they do not fit."""
    model_sd = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    ostate: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, idx, name = k.split("/", 2)
            ostate.setdefault(int(idx), {})[name] = v
    for idx, extra in optimizer_meta["scalars"].items():
        ostate.setdefault(int(idx), {}).update(extra)
    try:
        model.load_state_dict(model_sd)
        optimizer.load_state_dict({"state": ostate, "param_groups": optimizer_meta["param_groups"]})
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: the checkpoint does not fit the model: {exc}") from None
