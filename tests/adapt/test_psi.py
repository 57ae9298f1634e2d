"""Private anchor discovery: the intersection, what the messages reveal, and refused messages."""

import ipaddress

import numpy as np
import polars as pl
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from darkembed.adapt import psi
from darkembed.adapt.exchange import BundleError, Trust
from darkembed.adapt.psi import ExchangeError, Message, complete, discover, finish, init, respond
from darkembed.cli import app

KEY = b"an out-of-band shared secret, 32B"


@pytest.fixture(scope="module")
def lists():
    """Two address lists sharing 60 hosts; each has 140 of its own."""
    rng = np.random.default_rng(3)
    pool = rng.choice(2**32, size=340, replace=False).astype(np.uint32)
    shared = pool[:60]
    return np.r_[shared, pool[60:200]], np.r_[shared, pool[200:340]], shared


def encodings(ip: int) -> list[bytes]:
    """Every way an address might appear in bytes."""
    dotted = str(ipaddress.IPv4Address(ip))
    be, le = int(ip).to_bytes(4, "big"), int(ip).to_bytes(4, "little")
    return [dotted.encode(), be, le, be.hex().encode(), le.hex().encode(), be.hex().upper().encode(),
            str(int(ip)).encode()]  # fmt: skip


def run_all(p_ips, c_ips, mode):
    m1, c_state = init(c_ips, KEY, mode)
    m2, p_state, p_anchors = respond(m1, p_ips, KEY)
    m3, c_anchors = finish(m2, c_state, KEY)
    if m3 is not None:
        p_anchors = complete(m3, p_state, KEY)
    return [m for m in (m1, m2, m3) if m is not None], p_anchors, c_anchors


@pytest.mark.parametrize("mode", ["plain", "hmac", "psi"])
def test_intersection_equals_the_plain_one(lists, mode):
    p, c, shared = lists
    pa, ca = discover(p, c, mode)
    np.testing.assert_array_equal(pa, ca)  # position i names the same host on both sides
    np.testing.assert_array_equal(np.sort(pa), np.sort(shared))


@pytest.mark.parametrize("mode", ["hmac", "psi"])
def test_messages_carry_no_non_shared_address(lists, mode):
    p, c, shared = lists
    messages, pa, ca = run_all(p, c, mode)
    np.testing.assert_array_equal(pa, ca)
    own = np.setdiff1d(np.r_[p, c], shared)
    for data in messages:
        for ip in own:
            for enc in encodings(int(ip)):
                if len(enc) >= 6:  # short byte strings occur by chance in 32-byte random elements
                    assert enc not in data, (mode, int(ip), enc)
        # and the 4-byte encodings: no more hits than chance over the random elements predicts
        hits = sum(enc in data for ip in own for enc in encodings(int(ip))[1:3])
        assert hits <= 1


def test_psi_messages_differ_between_sessions(lists):
    _, c, _ = lists
    m1a, _ = init(c, KEY, "psi")
    m1b, _ = init(c, KEY, "psi")
    a = Message.from_bytes(m1a, KEY).blocks["elements"]
    b = Message.from_bytes(m1b, KEY).blocks["elements"]
    assert not set(map(bytes, a)) & set(map(bytes, b))


@pytest.mark.parametrize("mode", ["hmac", "psi"])
def test_tampered_message_is_refused(lists, mode):
    p, c, _ = lists
    m1, _ = init(c, KEY, mode)
    bad = bytearray(m1)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(ExchangeError, match="authentication failed"):
        respond(bytes(bad), p, KEY)
    with pytest.raises(ExchangeError, match="authentication failed"):
        respond(m1, p, b"another secret of enough length")
    with pytest.raises(ExchangeError, match="not an anchor-discovery message"):
        respond(b"hello", p, KEY)


def test_replayed_and_foreign_messages_are_refused(lists):
    p, c, _ = lists
    m1, c_state = init(c, KEY, "psi")
    m2, p_state, _ = respond(m1, p, KEY)
    m3, _ = finish(m2, c_state, KEY)
    with pytest.raises(ExchangeError, match="replayed message 2"):
        finish(m2, c_state, KEY)
    complete(m3, p_state, KEY)
    with pytest.raises(ExchangeError, match="replayed message 3"):
        complete(m3, p_state, KEY)
    # message 2 of an older session given to a new exchange
    _, c_state2 = init(c, KEY, "psi")
    with pytest.raises(ExchangeError, match="another exchange"):
        finish(m2, c_state2, KEY)
    with pytest.raises(ExchangeError, match="reads message 2"):
        finish(m1, c_state2, KEY)


def test_invalid_point_is_refused(lists):
    p, c, _ = lists
    msg = Message.from_bytes(init(c, KEY, "psi")[0], KEY)
    elems = msg.blocks["elements"].copy()
    elems[0] = 0  # not a point of the prime-order group (the identity's encoding differs; small order)
    forged = Message("psi", msg.session, 1, b"", {"elements": elems}).to_bytes(KEY)
    with pytest.raises(ExchangeError, match="element 0 is not a valid point"):
        respond(forged, p, KEY)


def test_cli_file_exchange(tmp_path, lists):
    p, c, shared = lists
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "c.txt").write_text("# customer\n" + "\n".join(str(ipaddress.IPv4Address(int(i))) for i in c))
    pl.DataFrame({"src_ip": p}).write_parquet(tmp_path / "p.parquet")
    r = CliRunner()

    def call(*args):
        res = r.invoke(app, ["psi", *args, "--key", str(tmp_path / "key")])
        res.text = " ".join(res.output.split())  # the console wraps long lines
        return res

    t = str(tmp_path)
    assert call("init", "--ips", f"{t}/c.txt", "--state", f"{t}/c.state", "--out", f"{t}/m1").exit_code == 0
    assert call("respond", "--ips", f"{t}/p.parquet", "--state", f"{t}/p.state", "--in", f"{t}/m1",
                "--out", f"{t}/m2").exit_code == 0  # fmt: skip
    res = call("respond", "--ips", f"{t}/p.parquet", "--state", f"{t}/p.state", "--in", f"{t}/m1", "--out",
               f"{t}/m2b")  # fmt: skip
    assert res.exit_code == 1 and "replayed message 1" in res.text
    assert call("finish", "--state", f"{t}/c.state", "--in", f"{t}/m2", "--out", f"{t}/m3",
                "--result", f"{t}/c.anchors.parquet").exit_code == 0  # fmt: skip
    res = call("finish", "--state", f"{t}/c.state", "--in", f"{t}/m2", "--out", f"{t}/m3",
               "--result", f"{t}/c.anchors.parquet")  # fmt: skip
    assert res.exit_code == 1 and "replayed message 2" in res.text
    assert call("complete", "--state", f"{t}/p.state", "--in", f"{t}/m3",
                "--result", f"{t}/p.anchors.parquet").exit_code == 0  # fmt: skip
    ca = pl.read_parquet(tmp_path / "c.anchors.parquet")
    pa = pl.read_parquet(tmp_path / "p.anchors.parquet")
    assert ca["position"].to_list() == list(range(shared.size))
    assert ca["src_ip"].to_list() == pa["src_ip"].to_list()
    assert sorted(ca["src_ip"].to_list()) == sorted(shared.tolist())
    (tmp_path / "bad.txt").write_text("10.0.0.1\n10.0.0.300\n")
    res = call("init", "--ips", f"{t}/bad.txt", "--state", f"{t}/x.state", "--out", f"{t}/x")
    assert res.exit_code == 1 and "bad.txt, line 2" in res.text
    assert psi.State.from_bytes((tmp_path / "c.state").read_bytes()).expect == 0


def test_pair_scores_identical_with_private_discovery():
    """The pair evaluation with the anchors the parties agreed on privately gives the plain intersection's
    scores, setting by setting (seeded DNNs, deterministic Procrustes)."""
    import torch

    from darkembed.config import load_config
    from darkembed.evaluate.pair import evaluate_pair
    from darkembed.evaluate.protocol import NetworkDay

    torch.set_num_threads(1)
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(3, 8)) * 3
    y = np.repeat(np.array(["mirai", "censys", "unknown"], dtype=object), [120, 80, 100])
    X = (centres[np.repeat(np.arange(3), [120, 80, 100])] + rng.normal(size=(300, 8))).astype(np.float32)
    ips = rng.choice(2**32, size=300, replace=False).astype(np.uint32)
    p, c = np.arange(0, 220), np.arange(80, 300)
    provider = NetworkDay.of(ips[p], X[p], y[p])
    customer = NetworkDay.of(ips[c], X[c] @ np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32), y[c])
    cfg = load_config()
    cfg = cfg.model_copy(update={
        "evaluate": cfg.evaluate.model_copy(update={"dnn_hidden": [16], "dnn_epochs": 5}),
        "adapt": cfg.adapt.model_copy(update={"aligners": ["procrustes", "linear"], "epochs": 2, "min_steps": 0,
                                              "width": 16, "depth": 1}),
    })  # fmt: skip
    plain = evaluate_pair(provider, customer, cfg, cluster=False)
    _, agreed = discover(provider.ips, customer.ips, "psi")
    private = evaluate_pair(provider, customer, cfg, cluster=False, anchor_ips=agreed)
    timeless = pl.exclude("^.*_seconds$")
    assert plain.summary().select(timeless).equals(private.summary().select(timeless))
    assert plain.predictions().equals(private.predictions())


def test_anchor_bundle_by_position(tmp_path, lists):
    p, c, _ = lists
    p_anchors, c_anchors = discover(p, c, "psi")
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(p.size, 4)).astype(np.float32)
    order = np.argsort(p)
    rows = order[np.searchsorted(p[order], p_anchors)]  # as the adapt stage maps the agreed order to its rows
    key = Ed25519PrivateKey.generate()
    psi.save_anchor_positions(tmp_path / "anchors", vec[rows], mode="psi", method="idarkvec", network="a~b",
                              day="2023-01-01", signing_key=key)  # fmt: skip
    raw = b"".join(f.read_bytes() for f in (tmp_path / "anchors").iterdir())
    assert not any(int(ip).to_bytes(4, "little") in raw and int(ip).to_bytes(4, "big") in raw for ip in p)
    with pytest.raises(BundleError, match=r"unsigned|signature"):
        psi.load_anchor_positions(
            tmp_path / "anchors", trust=Trust((Ed25519PrivateKey.generate().public_key(),))
        )
    pos, got = psi.load_anchor_positions(tmp_path / "anchors", trust=Trust((key.public_key(),)))
    np.testing.assert_array_equal(pos, np.arange(p_anchors.size))
    # the customer pairs position i with the i-th address of its own result: the provider vector of that host
    lookup = dict(zip(p.tolist(), vec, strict=True))
    np.testing.assert_array_equal(got, np.stack([lookup[int(ip)] for ip in c_anchors]))
