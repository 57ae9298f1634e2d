"""The provider <-> customer exchange bundle: only what [TNSM] lets the two parties share.

A bundle is a directory holding

* `tensors.safetensors`: the arrays (anchor embeddings, classifier weights or aligner weights), and
* `manifest.json`: kind, method, network, day, config hash, dimensions, class names, small metadata, the list of
  tensors with dtype and shape, and the sha256 of the tensor file.

Kinds: `anchors` (addresses `ips` uint32 (m,) and `vectors` float32 (m, e) of the transferred anchors; no labels),
`classifier` (a DNN classifier's weights and its class names), `aligner` (an aligner's weights).

Loading never executes code: safetensors is a JSON header plus raw bytes (no pickle, no `torch.load`). The hash,
the manifest and every tensor's dtype and shape are verified before anything is used; a mismatch raises
`BundleError` naming the file. Writing is atomic (a hidden temporary directory renamed into place).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from darkembed.adapt.aligners import Aligner, AlignmentError, aligner_from_state
from darkembed.store import replace_dir

log = logging.getLogger(__name__)

TENSORS = "tensors.safetensors"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
BundleKind = Literal["anchors", "classifier", "aligner"]
_DTYPES = {"float32", "float64", "uint32", "int64"}


class BundleError(ValueError):
    """An exchange bundle is missing, malformed, tampered with or not what the caller expects."""


class TensorSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dtype: str
    shape: list[int]


class Manifest(BaseModel):
    """The manifest of an exchange bundle (`manifest.json`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int
    kind: BundleKind
    method: str = Field(min_length=1)
    network: str = Field(min_length=1)
    day: dt.date
    config_hash: str | None = None
    dims: dict[str, int]
    class_names: list[str] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    tensors: dict[str, TensorSpec]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: str | None = None


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its manifest, its arrays and where it was read from."""

    path: Path
    manifest: Manifest
    tensors: dict[str, np.ndarray]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_bundle(
    path: str | os.PathLike[str],
    kind: BundleKind,
    tensors: dict[str, np.ndarray],
    *,
    method: str,
    network: str,
    day: dt.date | str,
    dims: dict[str, int],
    config_hash: str | None = None,
    class_names: list[str] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle directory at `path` atomically (a previous bundle there is replaced whole).

    Args:
        path: the bundle directory.
        kind: `anchors`, `classifier` or `aligner`.
        tensors: name -> array (float32, float64, uint32 or int64).
        method: the embedding method (e.g. `idarkvec`) or the aligner/classifier kind it belongs to.
        network: the network that produced the bundle.
        day: the day of the embeddings.
        dims: named dimensions the reader checks (e.g. `{"e": 128}`).
        config_hash: hash of the producing configuration.
        class_names: classifier output order.
        meta: small JSON-able metadata (e.g. aligner hyper-parameters).

    Returns:
        The bundle directory.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    arrays = {}
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        if a.dtype.name not in _DTYPES:
            raise BundleError(f"{path}: tensor {name} has dtype {a.dtype}; allowed: {sorted(_DTYPES)}")
        arrays[name] = a
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        save_file(arrays, str(tmp / TENSORS))
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            kind=kind,
            method=method,
            network=network,
            day=dt.date.fromisoformat(str(day)),
            config_hash=config_hash,
            dims={k: int(v) for k, v in dims.items()},
            class_names=class_names,
            meta=json.loads(json.dumps(meta or {})),
            tensors={k: TensorSpec(dtype=v.dtype.name, shape=list(v.shape)) for k, v in arrays.items()},
            sha256=_sha256(tmp / TENSORS),
            created_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        (tmp / MANIFEST).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2))
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s bundle %s (%d tensors)", kind, path, len(arrays))
    return path


def read_bundle(
    path: str | os.PathLike[str],
    *,
    kind: BundleKind | None = None,
    dims: dict[str, int] | None = None,
    required: tuple[str, ...] = (),
) -> Bundle:
    """Read and verify a bundle; never executes code from it.

    Checks, in order: the manifest is valid JSON of the expected form; the kind is `kind`; the tensor file's
    sha256 equals the manifest's; the tensor file parses as safetensors; its tensor names, dtypes and shapes equal
    the manifest's; the `required` tensors exist; the manifest's `dims` agree with `dims`.

    Args:
        path: the bundle directory.
        kind: expected kind; None accepts any.
        dims: expected named dimensions, e.g. `{"e": 128}`.
        required: tensor names that must be present.

    Raises:
        BundleError: naming the file and what is wrong.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    mpath, tpath = path / MANIFEST, path / TENSORS
    if not mpath.is_file():
        raise BundleError(f"{mpath}: no manifest; not an exchange bundle (expected {MANIFEST} and {TENSORS})")
    if not tpath.is_file():
        raise BundleError(f"{tpath}: tensor file missing")
    try:
        raw = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath}: not valid JSON: {exc}") from None
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '<top>'}: "
            f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in exc.errors()
        )
        raise BundleError(f"{mpath}: invalid manifest: {problems}") from None
    if manifest.format_version != FORMAT_VERSION:
        raise BundleError(
            f"{mpath}: format_version {manifest.format_version}, this reader knows {FORMAT_VERSION}"
        )
    if kind is not None and manifest.kind != kind:
        raise BundleError(f"{mpath}: a {manifest.kind} bundle, expected a {kind} bundle")
    digest = _sha256(tpath)
    if digest != manifest.sha256:
        raise BundleError(
            f"{tpath}: sha256 {digest} does not match the manifest ({manifest.sha256}); the bundle was altered "
            "or is incomplete: ask the sender for a fresh copy"
        )
    try:
        tensors = load_file(str(tpath))
    except (SafetensorError, ValueError, OSError) as exc:
        raise BundleError(f"{tpath}: not a safetensors file: {exc}") from None
    if set(tensors) != set(manifest.tensors):
        raise BundleError(
            f"{tpath}: tensors {sorted(tensors)} do not match the manifest's {sorted(manifest.tensors)}"
        )
    for name, spec in manifest.tensors.items():
        arr = tensors[name]
        if arr.dtype.name != spec.dtype or list(arr.shape) != spec.shape:
            raise BundleError(
                f"{tpath}: tensor {name} is {arr.dtype.name}{list(arr.shape)}, the manifest says "
                f"{spec.dtype}{spec.shape}"
            )
    missing = [r for r in required if r not in tensors]
    if missing:
        raise BundleError(f"{tpath}: required tensors missing: {missing}")
    for k, v in (dims or {}).items():
        got = manifest.dims.get(k)
        if got != v:
            raise BundleError(f"{mpath}: dimension {k} is {got}, expected {v}")
    return Bundle(path, manifest, tensors)


# --- the three kinds -------------------------------------------------------------------------------------------


def save_anchors(
    path: str | os.PathLike[str],
    ips: np.ndarray,
    vectors: np.ndarray,
    *,
    method: str,
    network: str,
    day: dt.date | str,
    config_hash: str | None = None,
) -> Path:
    """Write the embeddings of the transferred anchors: `ips` uint32 (m,), `vectors` float32 (m, e)."""
    ips = np.asarray(ips)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != ips.shape[0]:
        raise BundleError(f"{path}: {ips.shape[0]} addresses but vectors of shape {vectors.shape}")
    return write_bundle(
        path,
        "anchors",
        {"ips": ips.astype(np.uint32), "vectors": vectors},
        method=method,
        network=network,
        day=day,
        dims={"n": int(ips.shape[0]), "e": int(vectors.shape[1])},
        config_hash=config_hash,
    )


def load_anchors(
    path: str | os.PathLike[str], *, e: int | None = None
) -> tuple[np.ndarray, np.ndarray, Manifest]:
    """Read an anchors bundle: (`ips` uint32 (m,), `vectors` float32 (m, e), manifest)."""
    b = read_bundle(
        path, kind="anchors", dims={"e": e} if e is not None else None, required=("ips", "vectors")
    )
    ips, vec = b.tensors["ips"], b.tensors["vectors"]
    if ips.dtype != np.uint32 or vec.dtype != np.float32 or vec.ndim != 2 or vec.shape[0] != ips.shape[0]:
        raise BundleError(f"{b.path / TENSORS}: anchors need ips uint32 (m,) and vectors float32 (m, e)")
    if vec.shape[1] != b.manifest.dims.get("e"):
        raise BundleError(
            f"{b.path / MANIFEST}: dims.e {b.manifest.dims.get('e')} but vectors are {vec.shape[1]}-d"
        )
    return ips, vec, b.manifest


def save_aligner(
    path: str | os.PathLike[str],
    aligner: Aligner,
    *,
    method: str,
    network: str,
    day: dt.date | str,
    config_hash: str | None = None,
) -> Path:
    """Write a fitted aligner's weights and hyper-parameters."""
    tensors, meta = aligner.state()
    return write_bundle(
        path,
        "aligner",
        tensors,
        method=method,
        network=network,
        day=day,
        dims={"e_in": int(meta["dim_in"]), "e_out": int(meta["dim_out"])},
        config_hash=config_hash,
        meta=meta,
    )


def load_aligner(
    path: str | os.PathLike[str], *, e_in: int | None = None, e_out: int | None = None
) -> tuple[Aligner, Manifest]:
    """Read an aligner bundle into a fitted aligner (checked against the expected dimensions)."""
    want = {k: v for k, v in (("e_in", e_in), ("e_out", e_out)) if v is not None}
    b = read_bundle(path, kind="aligner", dims=want)
    meta = dict(b.manifest.meta)
    if meta.get("dim_in") != b.manifest.dims.get("e_in") or meta.get("dim_out") != b.manifest.dims.get(
        "e_out"
    ):
        raise BundleError(f"{b.path / MANIFEST}: meta dimensions disagree with dims {b.manifest.dims}")
    try:
        return aligner_from_state(b.tensors, meta), b.manifest
    except (AlignmentError, KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{b.path / TENSORS}: cannot rebuild the aligner: {exc}") from None


def save_classifier(
    path: str | os.PathLike[str],
    classifier: Any,
    *,
    method: str,
    network: str,
    day: dt.date | str,
    config_hash: str | None = None,
) -> Path:
    """Write a fitted `darkembed.evaluate.classifiers.DNNClassifier` (weights, class names, architecture)."""
    tensors, meta = classifier.state()
    return write_bundle(
        path,
        "classifier",
        tensors,
        method=method,
        network=network,
        day=day,
        dims={"e": int(meta["dim_in"]), "classes": len(meta["classes"])},
        config_hash=config_hash,
        class_names=list(meta["classes"]),
        meta=meta,
    )


def load_classifier(path: str | os.PathLike[str], *, e: int | None = None) -> tuple[Any, Manifest]:
    """Read a classifier bundle into a fitted `DNNClassifier` (checked against the expected input size `e`)."""
    from darkembed.evaluate.classifiers import DNNClassifier

    b = read_bundle(path, kind="classifier", dims={"e": e} if e is not None else None)
    meta = dict(b.manifest.meta)
    if b.manifest.class_names != meta.get("classes") or len(meta.get("classes", [])) != b.manifest.dims.get(
        "classes"
    ):
        raise BundleError(f"{b.path / MANIFEST}: class_names, meta.classes and dims.classes disagree")
    try:
        return DNNClassifier.from_state(b.tensors, meta), b.manifest
    except (AlignmentError, KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{b.path / TENSORS}: cannot rebuild the classifier: {exc}") from None
