"""The provider's DNN classifier as an exchange bundle (kind `classifier`): weights, class names, architecture.

The bundle format, its signature and its checks are `darkembed.adapt.exchange`'s; this module writes and reads
the one kind whose model is the evaluation's (`darkembed.evaluate.classifiers.DNNClassifier`), so that adaptation
never imports the evaluation. Loading never executes code; the keys and trust: docs/security.md.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

from darkembed.adapt.exchange import (
    MANIFEST,
    TENSORS,
    BundleError,
    BundleLimits,
    Manifest,
    Trust,
    check_architecture,
    meta_int,
    module_shapes,
    read_bundle,
    write_bundle,
)
from darkembed.evaluate.classifiers import DNNClassifier, _Net

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def save_classifier(
    path: str | os.PathLike[str],
    classifier: DNNClassifier,
    *,
    method: str,
    network: str,
    day: dt.date | str,
    config_hash: str | None = None,
    signing_key: Ed25519PrivateKey | None = None,
) -> Path:
    """Write a fitted DNN classifier (weights, class names, architecture); see `darkembed.adapt.exchange`."""
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
        signing_key=signing_key,
    )


def load_classifier(
    path: str | os.PathLike[str],
    *,
    e: int | None = None,
    trust: Trust | None = None,
    limits: BundleLimits | None = None,
) -> tuple[DNNClassifier, Manifest]:
    """Read a classifier bundle into a fitted `DNNClassifier` (checked against the expected input size `e`; see
    `darkembed.adapt.exchange.read_bundle`). The architecture (input size, hidden layers, classes) is checked
    against the limits and the tensors present before any module is built.

    Raises:
        BundleError: the bundle is refused (the message names the file and the check).
    """
    limits = limits or BundleLimits()
    b = read_bundle(
        path, kind="classifier", dims={"e": e} if e is not None else None, trust=trust, limits=limits
    )
    meta = dict(b.manifest.meta)
    classes = meta.get("classes")
    if (
        not isinstance(classes, list)
        or b.manifest.class_names != classes
        or len(classes) != b.manifest.dims.get("classes")
    ):
        raise BundleError(f"{b.path / MANIFEST}: class_names, meta.classes and dims.classes disagree")
    if not 1 <= len(classes) <= limits.max_classes:
        raise BundleError(f"{b.path / MANIFEST}: {len(classes)} classes, limit {limits.max_classes}")
    d_in = meta_int(b, "dim_in", 1, limits.max_dim)
    hidden = meta.get("hidden")
    if (
        not isinstance(hidden, list)
        or len(hidden) > limits.max_layers
        or not all(
            isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= limits.max_dim for h in hidden
        )
    ):
        raise BundleError(
            f"{b.path / MANIFEST}: meta.hidden = {str(hidden)[:80]}, expected at most {limits.max_layers} widths "
            f"in [1, {limits.max_dim}]"
        )
    check_architecture(b, module_shapes(lambda: _Net(d_in, hidden, len(classes), 0.0)), "classifier")
    try:
        return DNNClassifier.from_state(b.tensors, meta), b.manifest
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{b.path / TENSORS}: cannot rebuild the classifier: {exc}") from None
