"""The provider <-> customer exchange bundle: only what [TNSM] lets the two parties share.

A bundle is a directory holding

* `tensors.safetensors`: the arrays (anchor embeddings, classifier weights or aligner weights), and
* `manifest.json`: kind, method, network, day, config hash, dimensions, class names, small metadata, the list of
  tensors with dtype and shape, and the sha256 of the tensor file, and
* `signature.json`: the provider's Ed25519 signature of the manifest (which pins the tensor file by its hash) and
  the signing public key.

Kinds: `anchors` (addresses `ips` uint32 (m,) and `vectors` float32 (m, e) of the transferred anchors; no labels),
`classifier` (a DNN classifier's weights and its class names), `aligner` (an aligner's weights). The anchors and
aligner kinds are written and read here; the classifier kind beside the classifier it holds
(`darkembed.evaluate.classifier_bundle`: adaptation does not depend on the evaluation), with the checks below.

Loading never executes code: safetensors is a JSON header plus raw bytes (no pickle, no `torch.load`). Before
anything is built, the loader checks, in this order: file sizes and the manifest's nesting against `BundleLimits`;
the manifest's form; the signature against the customer's trusted public keys (`Trust`; unsigned or badly signed
bundles are refused unless `Trust.allow_unsigned`); the tensor file's hash; every tensor's dtype and shape against
the manifest; every architecture size (dimensions, width, depth, layers, classes) against the limits and against
the tensors actually present; and that every float is finite. Every failure is a `BundleError` naming the file.
Writing is atomic (a hidden temporary directory renamed into place). Keys and trust: docs/security.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from darkembed.adapt.aligners import Aligner, AlignmentError, aligner_from_state
from darkembed.store import replace_dir

log = logging.getLogger(__name__)

TENSORS = "tensors.safetensors"
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
#: Prefix of a public key's one-line text form (`ed25519:<base64 of the 32 raw bytes>`).
KEY_PREFIX = "ed25519:"
#: What is signed: this context string, then the manifest file's bytes (the manifest holds the tensors' sha256).
_SIGNED_CONTEXT = b"darkembed-bundle-v1\n"
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


@dataclass(frozen=True)
class BundleLimits:
    """Sizes a bundle may claim; anything larger is refused before a byte of it is used.

    Attributes:
        max_tensor_bytes: size of `tensors.safetensors`.
        max_manifest_bytes: size of `manifest.json` (and of `signature.json`).
        max_json_depth: nesting of the manifest's JSON.
        max_tensors: tensors in one bundle.
        max_dim: any embedding dimension, layer width or tensor axis other than the rows of an anchors bundle.
        max_layers: hidden layers of an aligner or classifier.
        max_classes: classifier outputs.
    """

    max_tensor_bytes: int = 2 << 30
    max_manifest_bytes: int = 1 << 20
    max_json_depth: int = 16
    max_tensors: int = 256
    max_dim: int = 16384
    max_layers: int = 32
    max_classes: int = 4096


@dataclass(frozen=True)
class Trust:
    """Whose bundles a customer accepts.

    Attributes:
        keys: the providers' Ed25519 public keys; a bundle must carry a valid signature by one of them.
        allow_unsigned: accept bundles without a signature (or when no key is configured), with a warning. A
            signature that does not verify under a configured key is refused even then.
    """

    keys: tuple[Ed25519PublicKey, ...] = ()
    allow_unsigned: bool = False

    @classmethod
    def of(cls, keys: list[str] | tuple[str, ...] = (), allow_unsigned: bool = False) -> Trust:
        """From public keys as `ed25519:<base64>` text or paths of files holding one (e.g. `keygen`'s `.pub`)."""
        return cls(tuple(parse_public_key(k) for k in keys), allow_unsigned)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The one-line text form `ed25519:<base64>` of a public key (of a private key's public half)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return KEY_PREFIX + _b64(pub.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from `ed25519:<base64>` text, or from a file holding that line.

    Raises:
        BundleError: not a readable Ed25519 public key (the message says which entry).
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    line = text.strip()
    if not line.startswith(KEY_PREFIX):
        path = Path(line).expanduser()
        try:
            line = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(
                f"trusted key {text!r}: neither `{KEY_PREFIX}<base64>` text nor a readable key file ({exc})"
            ) from None
        if not line.startswith(KEY_PREFIX):
            raise BundleError(
                f"{path}: not a darkembed public key file (expected one `{KEY_PREFIX}...` line)"
            )
    try:
        raw = base64.b64decode(line[len(KEY_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise BundleError(f"trusted key {text!r}: not an Ed25519 public key ({exc})") from None


def generate_signing_key(path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
    """Create an Ed25519 key pair: the private key at `path` (PEM, mode 0600) and the public one at `path.pub`.

    Returns:
        The public key's text form, to configure on the customers' side (`exchange.trusted_keys`).

    Raises:
        FileExistsError: `path` exists and `overwrite` is false.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: a key is already there; choose another path or overwrite explicitly")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.chmod(tmp, 0o600)  # whatever the umask
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic and exclusive: of two concurrent creators, one wins, the other raises
    finally:
        tmp.unlink(missing_ok=True)
    text = public_key_text(key)
    Path(f"{path}.pub").write_text(text + "\n")
    log.info("created signing key %s (public key %s.pub)", path, path)
    return text


def load_signing_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Read an Ed25519 private key (PEM, as `generate_signing_key` writes it).

    Raises:
        BundleError: missing, unreadable, or not an Ed25519 private key.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(
            f"{path}: cannot read the signing key: {exc.strerror}; create one with `darkembed keygen`"
        ) from None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("%s: the signing key is readable by other users; chmod 600 it", path)
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: a {type(key).__name__}, expected an Ed25519 private key")
    return key


#: Environment variable naming the provider's signing key file (wins over `exchange.signing_key`).
SIGNING_KEY_ENV = "DARKEMBED_SIGNING_KEY"
#: The key a pipeline creates and keeps under the data root when none is configured.
LOCAL_KEY = Path("keys") / "exchange-ed25519.pem"


def pipeline_signing_key(configured: str | None, data_root: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The provider's signing key for the pipeline's bundles.

    `$DARKEMBED_SIGNING_KEY`, else `configured` (`exchange.signing_key`), else `<data root>/keys/
    exchange-ed25519.pem`, created (mode 0600, public key beside it as `.pub`) on first use.
    """
    chosen = os.environ.get(SIGNING_KEY_ENV) or configured
    if chosen:
        return load_signing_key(chosen)
    local = Path(data_root) / LOCAL_KEY
    if not local.exists():
        with contextlib.suppress(FileExistsError):  # created concurrently by another task
            generate_signing_key(local)
    return load_signing_key(local)


def _json_depth(obj: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return deepest


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
    signing_key: Ed25519PrivateKey | None = None,
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
        signing_key: the provider's Ed25519 private key; without one the bundle is unsigned, and customers
            refuse it unless they explicitly allow unsigned bundles.

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
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise BundleError(f"{path}: tensor {name} has non-finite values; refusing to ship it")
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
        body = json.dumps(manifest.model_dump(mode="json"), indent=2).encode()
        (tmp / MANIFEST).write_bytes(body)
        if signing_key is not None:
            signature = {
                "algorithm": "ed25519",
                "public_key": public_key_text(signing_key),
                "signature": _b64(signing_key.sign(_SIGNED_CONTEXT + body)),
            }
            (tmp / SIGNATURE).write_text(json.dumps(signature, indent=2))
        else:
            log.warning(
                "%s: bundle written unsigned; customers refuse it unless they allow unsigned bundles", path
            )
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s bundle %s (%d tensors)", kind, path, len(arrays))
    return path


def _read_small(path: Path, limit: int) -> bytes:
    size = path.stat().st_size
    if size > limit:
        raise BundleError(f"{path}: {size} bytes, more than the {limit} a bundle's {path.name} may have")
    return path.read_bytes()


def _verify_signature(path: Path, body: bytes, trust: Trust, limits: BundleLimits) -> None:
    """Check `signature.json` against the trusted keys (see `Trust`)."""
    from cryptography.exceptions import InvalidSignature

    spath = path / SIGNATURE
    if not spath.is_file():
        if trust.allow_unsigned:
            log.warning("%s: unsigned bundle accepted (unsigned bundles are allowed)", path)
            return
        raise BundleError(
            f"{spath}: missing; the bundle is unsigned. Ask the provider for a signed bundle, or allow unsigned "
            "bundles explicitly (exchange.allow_unsigned)"
        )
    try:
        sig = json.loads(_read_small(spath, limits.max_manifest_bytes))
        if not isinstance(sig, dict) or sig.get("algorithm") != "ed25519":
            raise ValueError("not an ed25519 signature record")
        signer = str(sig.get("public_key"))
        raw = base64.b64decode(str(sig.get("signature")), validate=True)
    except (ValueError, UnicodeDecodeError, RecursionError, binascii.Error) as exc:
        raise BundleError(f"{spath}: malformed signature record ({exc})") from None
    if not trust.keys:
        if trust.allow_unsigned:
            log.warning("%s: signature by %s not checked: no trusted key configured", path, signer)
            return
        raise BundleError(
            f"{spath}: no trusted public key configured to check it (signed by {signer}); set "
            "exchange.trusted_keys to the provider's public key"
        )
    for key in trust.keys:
        try:
            key.verify(raw, _SIGNED_CONTEXT + body)
            return
        except InvalidSignature:
            continue
    known = ", ".join(public_key_text(k) for k in trust.keys)
    raise BundleError(
        f"{spath}: the signature does not verify under any trusted key (record names {signer}; trusted: {known}); "
        "the bundle was altered or comes from another provider"
    )


def read_bundle(
    path: str | os.PathLike[str],
    *,
    kind: BundleKind | None = None,
    dims: dict[str, int] | None = None,
    required: tuple[str, ...] = (),
    trust: Trust | None = None,
    limits: BundleLimits | None = None,
) -> Bundle:
    """Read and verify a bundle; never executes code from it, and allocates no more than its files hold.

    Checks, in order: file sizes and the manifest's nesting are within `limits`; the manifest is valid JSON of the
    expected form; the kind is `kind`; the signature verifies under `trust`; the declared tensors are within
    `limits` and fit the file; the tensor file's sha256 equals the manifest's; the tensor file parses as
    safetensors; its tensor names, dtypes and shapes equal the manifest's; every float is finite; the `required`
    tensors exist; the manifest's `dims` agree with `dims`.

    Args:
        path: the bundle directory.
        kind: expected kind; None accepts any.
        dims: expected named dimensions, e.g. `{"e": 128}`.
        required: tensor names that must be present.
        trust: the providers' public keys; None trusts nobody (every bundle is refused).
        limits: size limits; `BundleLimits()` when None.

    Raises:
        BundleError: naming the file and what is wrong.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    trust = trust or Trust()
    limits = limits or BundleLimits()
    mpath, tpath = path / MANIFEST, path / TENSORS
    if not mpath.is_file():
        raise BundleError(f"{mpath}: no manifest; not an exchange bundle (expected {MANIFEST} and {TENSORS})")
    if not tpath.is_file():
        raise BundleError(f"{tpath}: tensor file missing")
    body = _read_small(mpath, limits.max_manifest_bytes)
    tsize = tpath.stat().st_size
    if tsize > limits.max_tensor_bytes:
        raise BundleError(f"{tpath}: {tsize} bytes, more than the limit of {limits.max_tensor_bytes}")
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath}: not valid JSON: {exc}") from None
    except RecursionError:
        raise BundleError(f"{mpath}: JSON nested too deeply (limit {limits.max_json_depth} levels)") from None
    depth = _json_depth(raw)
    if depth > limits.max_json_depth:
        raise BundleError(
            f"{mpath}: JSON nested {depth} levels deep, more than the limit of {limits.max_json_depth}"
        )
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
    _verify_signature(path, body, trust, limits)
    _check_declared(mpath, manifest, tsize, limits)
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
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise BundleError(
                f"{tpath}: tensor {name} has {int((~np.isfinite(arr)).sum())} non-finite values"
            )
    missing = [r for r in required if r not in tensors]
    if missing:
        raise BundleError(f"{tpath}: required tensors missing: {missing}")
    for k, v in (dims or {}).items():
        got = manifest.dims.get(k)
        if got != v:
            raise BundleError(f"{mpath}: dimension {k} is {got}, expected {v}")
    return Bundle(path, manifest, tensors)


def _check_declared(mpath: Path, manifest: Manifest, tsize: int, limits: BundleLimits) -> None:
    """The manifest's declared tensors and dimensions are within the limits and fit in the tensor file."""
    if len(manifest.tensors) > limits.max_tensors:
        raise BundleError(
            f"{mpath}: {len(manifest.tensors)} tensors, more than the limit of {limits.max_tensors}"
        )
    total = 0
    for name, spec in manifest.tensors.items():
        if spec.dtype not in _DTYPES:
            raise BundleError(f"{mpath}: tensor {name} has dtype {spec.dtype}; allowed: {sorted(_DTYPES)}")
        if len(spec.shape) > 4 or any(d < 0 for d in spec.shape):
            raise BundleError(f"{mpath}: tensor {name} has an impossible shape {spec.shape}")
        total += int(np.prod(spec.shape, dtype=object)) * np.dtype(spec.dtype).itemsize
    if total > tsize:
        raise BundleError(f"{mpath}: the tensors declared need {total} bytes, the tensor file holds {tsize}")
    for k, v in manifest.dims.items():
        # an anchors bundle's rows (`n`) are bounded by the tensor file's size only
        high = {"classes": limits.max_classes, "n": None}.get(k, limits.max_dim)
        if v < 0 or (high is not None and v > high):
            raise BundleError(f"{mpath}: dimension {k} = {v} is outside [0, {high}]")


def check_architecture(b: Bundle, expected: dict[str, tuple[int, ...]], what: str) -> None:
    """The tensors present are exactly the architecture's (names and shapes)."""
    got = {k: tuple(v.shape) for k, v in b.tensors.items()}
    if got != expected:
        diff = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
        shown = ", ".join(f"{k}: file {got.get(k)}, architecture {expected.get(k)}" for k in diff[:5])
        raise BundleError(
            f"{b.path / TENSORS}: the tensors do not fit the {what} the manifest describes ({shown})"
        )


def meta_int(b: Bundle, key: str, low: int, high: int) -> int:
    """The manifest's `meta.<key>`, refused unless an integer in [low, high]."""
    v = b.manifest.meta.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise BundleError(f"{b.path / MANIFEST}: meta.{key} = {v!r}, expected an integer in [{low}, {high}]")
    return v


def module_shapes(build: Callable[[], Any]) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of a module built on torch's `meta` device (no memory is allocated)."""
    import torch

    with torch.device("meta"):
        module = build()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# --- anchors and aligners --------------------------------------------------------------------------------------


def save_anchors(
    path: str | os.PathLike[str],
    ips: np.ndarray,
    vectors: np.ndarray,
    *,
    method: str,
    network: str,
    day: dt.date | str,
    config_hash: str | None = None,
    signing_key: Ed25519PrivateKey | None = None,
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
        signing_key=signing_key,
    )


def load_anchors(
    path: str | os.PathLike[str],
    *,
    e: int | None = None,
    trust: Trust | None = None,
    limits: BundleLimits | None = None,
) -> tuple[np.ndarray, np.ndarray, Manifest]:
    """Read an anchors bundle: (`ips` uint32 (m,), `vectors` float32 (m, e), manifest); see `read_bundle`."""
    b = read_bundle(
        path,
        kind="anchors",
        dims={"e": e} if e is not None else None,
        required=("ips", "vectors"),
        trust=trust,
        limits=limits,
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
    signing_key: Ed25519PrivateKey | None = None,
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
        signing_key=signing_key,
    )


def load_aligner(
    path: str | os.PathLike[str],
    *,
    e_in: int | None = None,
    e_out: int | None = None,
    trust: Trust | None = None,
    limits: BundleLimits | None = None,
) -> tuple[Aligner, Manifest]:
    """Read an aligner bundle into a fitted aligner (checked against the expected dimensions; see `read_bundle`).

    The architecture the manifest describes (dimensions, width, depth) is checked against the limits and against
    the tensors present before any module is built.
    """
    want = {k: v for k, v in (("e_in", e_in), ("e_out", e_out)) if v is not None}
    limits = limits or BundleLimits()
    b = read_bundle(path, kind="aligner", dims=want, trust=trust, limits=limits)
    meta = dict(b.manifest.meta)
    if meta.get("dim_in") != b.manifest.dims.get("e_in") or meta.get("dim_out") != b.manifest.dims.get(
        "e_out"
    ):
        raise BundleError(f"{b.path / MANIFEST}: meta dimensions disagree with dims {b.manifest.dims}")
    d_in = meta_int(b, "dim_in", 1, limits.max_dim)
    d_out = meta_int(b, "dim_out", 1, limits.max_dim)
    if meta.get("kind") in ("linear", "nonlinear"):
        from darkembed.adapt.aligners import _MLP

        width = meta_int(b, "width", 1, limits.max_dim)
        depth = meta_int(b, "depth", 0, limits.max_layers)
        act = meta.get("activation")
        if act not in ("linear", "sigmoid"):
            raise BundleError(f"{b.path / MANIFEST}: meta.activation = {act!r}, expected linear or sigmoid")
        check_architecture(
            b, module_shapes(lambda: _MLP(d_in, d_out, width, depth, act)), f"{meta['kind']} aligner"
        )
    elif meta.get("kind") == "procrustes":
        check_architecture(
            b, {"rotation": (d_in, d_in), "mu_c": (d_in,), "mu_p": (d_in,)}, "procrustes aligner"
        )
    try:
        return aligner_from_state(b.tensors, meta), b.manifest
    except (AlignmentError, KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{b.path / TENSORS}: cannot rebuild the aligner: {exc}") from None
