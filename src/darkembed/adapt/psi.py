"""Private anchor discovery: two networks find the hosts they both see without sending their address lists.

Two modes, run as a file exchange (each step reads the previous message and writes the next; no network service),
method and threat model in docs/private-anchors.md:

* `hmac`: each party sends HMAC-SHA256 tags of its addresses under a secret both agreed on out of band. It hides
  the lists from third parties only: a party holding the secret can tag all 2^32 IPv4 addresses in minutes and
  read the other's whole list.
* `psi`: Diffie-Hellman private set intersection over the prime-order subgroup of edwards25519 (libsodium through
  PyNaCl: Elligator 2 hash-to-curve, scalar multiplication, point validation). The initiator sends `a.H(x)` for its
  addresses, the responder answers `b.(a.H(x))` in the same order and `b.H(y)` for its own; the initiator then
  knows `ab.H` of both lists, finds its shared addresses and sends `a.(b.H(y))` back so that the responder finds
  its own. Each party learns the intersection and the other's list size, nothing else (semi-honest parties, DDH).

Steps: `init` (initiator) -> message 1 -> `respond` (responder) -> message 2 -> `finish` (initiator) -> message 3 ->
`complete` (responder). In `hmac` mode message 3 is not needed: the responder knows the intersection after
`respond`. Each party keeps a private state file between its steps (its addresses and secret scalar; never sent).

Messages carry no address: a session id, the step, the SHA-256 of the previous message (a hash chain), 32-byte
tags or points, and an HMAC-SHA256 over all of it with a key derived from the parties' shared secret. A changed,
truncated, reordered, foreign-session or replayed message is refused with `ExchangeError`.

The result of each side is its own addresses in the **agreed order** (sorted by the shared tag or double-blinded
point), so anchors are named by their position in the intersection, never by address.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from darkembed.adapt.anchors import check_ips

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from darkembed.adapt.exchange import BundleLimits, Trust

log = logging.getLogger(__name__)

Mode = Literal["hmac", "psi"]
MAGIC = b"DEANCHR1"
#: Bytes per tag (HMAC-SHA256) and per point (compressed edwards25519).
ELEMENT = 32
_DOMAIN = b"darkembed anchor discovery v1"


class ExchangeError(ValueError):
    """A message or state that cannot be used: tampered, replayed, from another session, or out of order."""


# -- keys and hashing ---------------------------------------------------------------------------------------------


def read_key(path: str | os.PathLike[str]) -> bytes:
    """The shared secret in `path` (at least 16 bytes; e.g. `head -c 32 /dev/urandom > key`)."""
    data = Path(path).read_bytes().strip()
    if len(data) < 16:
        raise ExchangeError(f"{path}: the shared secret needs at least 16 bytes, found {len(data)}")
    return data


def _subkey(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, _DOMAIN + b" " + purpose, hashlib.sha256).digest()


def _ip_bytes(ips: np.ndarray) -> list[bytes]:
    return [int(ip).to_bytes(4, "big") for ip in ips]


def hmac_tags(ips: np.ndarray, key: bytes, session: bytes) -> np.ndarray:
    """HMAC-SHA256 tag of each address under the shared secret and the session, uint8 (n, 32)."""
    k = _subkey(key, b"tags")
    out = np.empty((len(ips), ELEMENT), np.uint8)
    for i, b in enumerate(_ip_bytes(ips)):
        out[i] = np.frombuffer(hmac.new(k, session + b, hashlib.sha256).digest(), np.uint8)
    return out


def _sodium():
    try:
        from nacl import bindings
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ExchangeError("psi mode needs PyNaCl (pip install pynacl)") from exc
    return bindings


def _random_scalar() -> bytes:
    return _sodium().crypto_core_ed25519_scalar_reduce(secrets.token_bytes(64))


def hash_points(ips: np.ndarray, session: bytes) -> list[bytes]:
    """H(session, x): SHA-512 split into two halves, each mapped by libsodium's Elligator 2
    (`crypto_core_ed25519_from_uniform`, cofactor cleared) and added: the random-oracle construction of hash to
    curve (two maps and an addition) on the prime-order subgroup."""
    s = _sodium()
    out = []
    for b in _ip_bytes(ips):
        h = hashlib.sha512(_DOMAIN + b" point" + session + b).digest()
        out.append(s.crypto_core_ed25519_add(s.crypto_core_ed25519_from_uniform(h[:32]),
                                             s.crypto_core_ed25519_from_uniform(h[32:])))  # fmt: skip
    return out


def _blind(scalar: bytes, points: list[bytes], what: str, validate: bool = True) -> list[bytes]:
    """`scalar . P` for each point, refusing any point off the prime-order subgroup (or of small order); our own
    hashed points (`validate=False`) are in the subgroup by construction."""
    s = _sodium()
    out = []
    for i, p in enumerate(points):
        if validate and not s.crypto_core_ed25519_is_valid_point(p):
            raise ExchangeError(f"{what}: element {i} is not a valid point of the prime-order group")
        out.append(s.crypto_scalarmult_ed25519_noclamp(scalar, p))
    return out


# -- messages ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message of the exchange.

    Attributes:
        mode: `hmac` or `psi`.
        session: random session id (16 bytes).
        step: 1, 2 or 3.
        previous: SHA-256 of the previous message (empty for step 1).
        blocks: name -> elements, uint8 (n, 32) each.
    """

    mode: str
    session: bytes
    step: int
    previous: bytes
    blocks: dict[str, np.ndarray]

    def to_bytes(self, key: bytes) -> bytes:
        """The message framed and authenticated: MAGIC, header length, JSON header, elements, HMAC tag."""
        header = {
            "mode": self.mode,
            "session": self.session.hex(),
            "step": self.step,
            "previous": self.previous.hex(),
            "blocks": {k: int(v.shape[0]) for k, v in self.blocks.items()},
        }
        h = json.dumps(header, sort_keys=True).encode()
        body = MAGIC + struct.pack(">I", len(h)) + h + b"".join(v.tobytes() for v in self.blocks.values())
        return body + hmac.new(_subkey(key, b"messages"), body, hashlib.sha256).digest()

    @classmethod
    def from_bytes(cls, data: bytes, key: bytes, where: str = "message") -> Message:
        """Parse and authenticate a message; `ExchangeError` naming `where` on any mismatch."""
        if len(data) < len(MAGIC) + 4 + 32 or not data.startswith(MAGIC):
            raise ExchangeError(f"{where}: not an anchor-discovery message (bad magic or too short)")
        body, tag = data[:-32], data[-32:]
        if not hmac.compare_digest(tag, hmac.new(_subkey(key, b"messages"), body, hashlib.sha256).digest()):
            raise ExchangeError(
                f"{where}: authentication failed: the message was changed after it was written, or the shared "
                "secret differs from the sender's"
            )
        (n,) = struct.unpack(">I", body[len(MAGIC) : len(MAGIC) + 4])
        start = len(MAGIC) + 4
        header = json.loads(body[start : start + n])
        payload = memoryview(body)[start + n :]
        blocks, off = {}, 0
        for name, count in header["blocks"].items():
            size = count * ELEMENT
            if off + size > len(payload):
                raise ExchangeError(f"{where}: block {name!r} is truncated")
            blocks[name] = np.frombuffer(payload[off : off + size], np.uint8).reshape(count, ELEMENT)
            off += size
        if off != len(payload):
            raise ExchangeError(f"{where}: {len(payload) - off} bytes after the last block")
        return cls(header["mode"], bytes.fromhex(header["session"]), int(header["step"]),
                   bytes.fromhex(header["previous"]), blocks)  # fmt: skip


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _elements(items: list[bytes]) -> np.ndarray:
    if not items:
        return np.zeros((0, ELEMENT), np.uint8)
    return np.frombuffer(b"".join(items), np.uint8).reshape(len(items), ELEMENT)


def _rows(a: np.ndarray) -> list[bytes]:
    return [bytes(r) for r in a]


# -- private state -------------------------------------------------------------------------------------------------


@dataclass
class State:
    """What one party keeps between its steps (private: holds its addresses and secret scalar).

    Attributes:
        mode, session: of the exchange.
        role: `initiator` or `responder`.
        expect: the step this party reads next (0 = done).
        ips: its addresses in the order of its sent elements, uint32 (n,).
        secret: its scalar (psi) or empty.
        last: SHA-256 of the last message it wrote.
        mine: responder in psi mode: the double-blinded points of the initiator, uint8 (n_a, 32); else empty.
    """

    mode: str
    session: bytes
    role: str
    expect: int
    ips: np.ndarray
    secret: bytes
    last: bytes
    mine: np.ndarray

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = {"mode": self.mode, "session": self.session.hex(), "role": self.role, "expect": self.expect,
                "secret": self.secret.hex(), "last": self.last.hex()}  # fmt: skip
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), ips=self.ips, mine=self.mine)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "state") -> State:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                meta = json.loads(z["meta"].tobytes())
                return cls(meta["mode"], bytes.fromhex(meta["session"]), meta["role"], int(meta["expect"]),
                           z["ips"].astype(np.uint32), bytes.fromhex(meta["secret"]), bytes.fromhex(meta["last"]),
                           z["mine"])  # fmt: skip
        except (ValueError, KeyError, OSError) as exc:
            raise ExchangeError(f"{where}: not a state file of the anchor discovery ({exc})") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state readable by its owner only (it holds the party's addresses and secret)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.to_bytes())
        tmp.replace(p)


def _check(msg: Message, state: State | None, step: int, where: str, mode: str | None = None) -> None:
    if msg.step != step:
        raise ExchangeError(
            f"{where}: this is message {msg.step} of the exchange, this step reads message {step}"
        )
    if mode is not None and msg.mode != mode:
        raise ExchangeError(f"{where}: a {msg.mode} message, this exchange runs {mode}")
    if state is None:
        return
    if msg.session != state.session:
        raise ExchangeError(f"{where}: message of session {msg.session.hex()}, this party's exchange is session "
                            f"{state.session.hex()} (a message of another exchange)")  # fmt: skip
    if state.expect != step:
        what = "already completed" if state.expect == 0 else f"waiting for message {state.expect}"
        raise ExchangeError(f"{where}: replayed message {step} of session {msg.session.hex()}: this party's "
                            f"exchange is {what}")  # fmt: skip
    if msg.previous != state.last:
        raise ExchangeError(f"{where}: message {step} does not answer the message this party sent (hash chain "
                            "mismatch): a replayed or foreign message")  # fmt: skip


def _agreed(ips: np.ndarray, shared: np.ndarray, other: np.ndarray) -> np.ndarray:
    """`ips` whose element in `shared` (n, 32) appears in `other` (m, 32), sorted by that element."""
    others = set(_rows(other))
    keys = _rows(shared)
    hit = [i for i, k in enumerate(keys) if k in others]
    hit.sort(key=lambda i: keys[i])
    return np.asarray(ips, dtype=np.uint32)[np.asarray(hit, dtype=np.int64)]


def _sorted_by(elements: list[bytes], ips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = sorted(range(len(elements)), key=lambda i: elements[i])
    return _elements([elements[i] for i in order]), np.asarray(ips, dtype=np.uint32)[
        np.asarray(order, np.int64)
    ]


# -- the steps -----------------------------------------------------------------------------------------------------


def init(ips: np.ndarray, key: bytes, mode: Mode = "psi") -> tuple[bytes, State]:
    """Initiator, step 1: message 1 (its tags or blinded points, in a pseudo-random order) and its state."""
    ips = check_ips(ips, "initiator addresses")
    session = secrets.token_bytes(16)
    if mode == "hmac":
        secret = b""
        elems = _rows(hmac_tags(ips, key, session))
    elif mode == "psi":
        secret = _random_scalar()
        elems = _blind(secret, hash_points(ips, session), "own points", validate=False)
    else:
        raise ExchangeError(f"unknown anchor discovery mode {mode!r}; use hmac or psi")
    block, ordered = _sorted_by(elems, ips)
    data = Message(mode, session, 1, b"", {"elements": block}).to_bytes(key)
    state = State(
        mode, session, "initiator", 2, ordered, secret, _digest(data), np.zeros((0, ELEMENT), np.uint8)
    )
    return data, state


def respond(
    message: bytes, ips: np.ndarray, key: bytes, where: str = "message 1"
) -> tuple[bytes, State, np.ndarray | None]:
    """Responder, step 2: message 2 and its state; in `hmac` mode also its anchors (agreed order), else None."""
    msg = Message.from_bytes(message, key, where)
    _check(msg, None, 1, where)
    ips = check_ips(ips, "responder addresses")
    theirs = msg.blocks["elements"]
    if msg.mode == "hmac":
        own = hmac_tags(ips, key, msg.session)
        block, ordered = _sorted_by(_rows(own), ips)
        data = Message("hmac", msg.session, 2, _digest(message), {"elements": block}).to_bytes(key)
        state = State(
            "hmac", msg.session, "responder", 0, ordered, b"", _digest(data), np.zeros((0, 32), np.uint8)
        )
        return data, state, _agreed(ordered, block, theirs)
    if msg.mode != "psi":
        raise ExchangeError(f"{where}: unknown mode {msg.mode!r}")
    b = _random_scalar()
    double = _elements(_blind(b, _rows(theirs), where))
    block, ordered = _sorted_by(_blind(b, hash_points(ips, msg.session), "own points", validate=False), ips)
    data = Message("psi", msg.session, 2, _digest(message), {"double": double, "elements": block}).to_bytes(
        key
    )
    return data, State("psi", msg.session, "responder", 3, ordered, b, _digest(data), double), None


def finish(
    message: bytes, state: State, key: bytes, where: str = "message 2"
) -> tuple[bytes | None, np.ndarray]:
    """Initiator, step 3: its anchors in the agreed order and, in `psi` mode, message 3 for the responder.

    `state` is updated in place (marked done): save it, so that a replay of message 2 is refused."""
    msg = Message.from_bytes(message, key, where)
    _check(msg, state, 2, where, state.mode)
    state.expect = 0
    if state.mode == "hmac":
        own = hmac_tags(state.ips, key, state.session)
        return None, _agreed(state.ips, own, msg.blocks["elements"])
    double = msg.blocks.get("double")
    if double is None or double.shape[0] != state.ips.size:
        raise ExchangeError(f"{where}: {0 if double is None else double.shape[0]} answered points for "
                            f"{state.ips.size} sent")  # fmt: skip
    theirs = _elements(_blind(state.secret, _rows(msg.blocks["elements"]), where))
    anchors = _agreed(state.ips, double, theirs)
    data = Message("psi", state.session, 3, _digest(message), {"double": theirs}).to_bytes(key)
    state.last = _digest(data)
    return data, anchors


def complete(message: bytes, state: State, key: bytes, where: str = "message 3") -> np.ndarray:
    """Responder, step 4 (`psi` mode): its anchors in the agreed order. `state` is marked done (save it)."""
    msg = Message.from_bytes(message, key, where)
    _check(msg, state, 3, where, "psi")
    double = msg.blocks["double"]
    if double.shape[0] != state.ips.size:
        raise ExchangeError(f"{where}: {double.shape[0]} points for the {state.ips.size} this party sent")
    for i, p in enumerate(_rows(double)):
        if not _sodium().crypto_core_ed25519_is_valid_point(p):
            raise ExchangeError(f"{where}: element {i} is not a valid point of the prime-order group")
    state.expect = 0
    return _agreed(state.ips, double, state.mine)


def discover(
    provider_ips: np.ndarray, customer_ips: np.ndarray, mode: str, key: bytes | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run the whole exchange in one process (the pair flow and the tests): the customer initiates.

    Args:
        provider_ips, customer_ips: each party's addresses, uint32.
        mode: `plain` (the intersection itself, in address order), `hmac` or `psi`.
        key: the shared secret; None draws a random one (both parties live in this process).

    Returns:
        (the provider's anchors, the customer's anchors), uint32 (m,) each, position i naming the same host.
    """
    if mode == "plain":
        both = np.intersect1d(
            check_ips(provider_ips, "provider ips"), check_ips(customer_ips, "customer ips")
        )
        return both, both.copy()
    key = key if key is not None else secrets.token_bytes(32)
    m1, c_state = init(customer_ips, key, mode)  # type: ignore[arg-type]
    m2, p_state, p_anchors = respond(m1, provider_ips, key)
    m3, c_anchors = finish(m2, c_state, key)
    if m3 is not None:
        p_anchors = complete(m3, p_state, key)
    assert p_anchors is not None
    if p_anchors.size != c_anchors.size:
        raise ExchangeError(f"the parties found {p_anchors.size} and {c_anchors.size} anchors")
    log.info("anchor discovery (%s): %d anchors of %d provider and %d customer hosts", mode, c_anchors.size,
             len(provider_ips), len(customer_ips))  # fmt: skip
    return p_anchors, c_anchors


# -- files at the edges --------------------------------------------------------------------------------------------


def read_ips(path: str | os.PathLike[str]) -> np.ndarray:
    """A party's addresses: Parquet with a `src_ip` column (e.g. an embeddings partition), or text with one
    dotted IPv4 address a line (`#` comments and blank lines skipped). Errors name the file and the line."""
    p = Path(path)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(p, columns=["src_ip"])
        return check_ips(table.column("src_ip").to_numpy(), str(p))
    import ipaddress

    out = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            out.append(int(ipaddress.IPv4Address(text)))
        except ValueError:
            raise ExchangeError(f"{p}, line {n}: {text!r} is not an IPv4 address") from None
    return check_ips(np.unique(np.asarray(out, dtype=np.uint32)), str(p))


def write_anchors(path: str | os.PathLike[str], anchors: np.ndarray) -> None:
    """This party's result, private to it: `position` in the agreed intersection and its own `src_ip`."""
    import polars as pl

    pl.DataFrame({"position": np.arange(anchors.size, dtype=np.uint32),
                  "src_ip": np.asarray(anchors, dtype=np.uint32)}).write_parquet(path)  # fmt: skip


def refuse_answered(message: bytes, state_path: str | os.PathLike[str], key: bytes, where: str) -> None:
    """Responder's replay guard: refuse message 1 of a session this party's state file already answered."""
    p = Path(state_path)
    if not p.is_file():
        return
    msg = Message.from_bytes(message, key, where)
    old = State.from_bytes(p.read_bytes(), str(p))
    if old.session == msg.session:
        raise ExchangeError(f"{where}: replayed message 1: session {msg.session.hex()} was already answered "
                            f"(state {p})")  # fmt: skip


# -- the pair flow -------------------------------------------------------------------------------------------------


def discover_from_config(
    provider_ips: np.ndarray, customer_ips: np.ndarray, adapt: object
) -> tuple[np.ndarray, np.ndarray]:
    """`discover` with `adapt.anchor_discovery` and the secret in `adapt.anchor_key` (None: a random one)."""
    mode = getattr(adapt, "anchor_discovery", "plain")
    path = getattr(adapt, "anchor_key", None)
    return discover(provider_ips, customer_ips, mode, read_key(path) if path else None)


def save_anchor_positions(
    path: str | os.PathLike[str], vectors: np.ndarray, *, mode: str, method: str, network: str, day: object,
    config_hash: str | None = None, signing_key: Ed25519PrivateKey | None = None,
) -> Path:  # fmt: skip
    """The provider's anchor bundle named by position in the agreed intersection (`positions` uint32 (m,),
    `vectors` float32 (m, e) in that order), not by address: what a provider ships after private discovery.
    Signed with `signing_key` like every exchange bundle."""
    from darkembed.adapt.exchange import write_bundle

    vectors = np.asarray(vectors, dtype=np.float32)
    return write_bundle(path, "anchors",
                        {"positions": np.arange(vectors.shape[0], dtype=np.uint32), "vectors": vectors},
                        method=method, network=network, day=day, config_hash=config_hash,  # type: ignore[arg-type]
                        dims={"n": int(vectors.shape[0]), "e": int(vectors.shape[1])},
                        meta={"identified_by": "position", "discovery": mode},
                        signing_key=signing_key)  # fmt: skip


def load_anchor_positions(
    path: str | os.PathLike[str], *, trust: Trust | None = None, limits: BundleLimits | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read `save_anchor_positions`'s bundle: (positions uint32 (m,), vectors float32 (m, e)); a customer
    pairs position i with the i-th address of its own discovery result. Verified under `trust` as
    `read_bundle` does (an unsigned or badly signed bundle is refused)."""
    from darkembed.adapt.exchange import BundleError, read_bundle

    b = read_bundle(path, kind="anchors", required=("positions", "vectors"), trust=trust, limits=limits)
    pos, vec = b.tensors["positions"], b.tensors["vectors"]
    if vec.ndim != 2 or vec.shape[0] != pos.shape[0]:
        raise BundleError(f"{b.path}: {pos.shape[0]} positions but vectors of shape {vec.shape}")
    return pos, vec
