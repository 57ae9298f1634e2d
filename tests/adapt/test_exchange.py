import base64
import hashlib
import json
import os
import pickle

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from darkembed.adapt import aligners
from darkembed.adapt.aligners import make_aligner
from darkembed.adapt.exchange import (
    _SIGNED_CONTEXT,
    MANIFEST,
    SIGNATURE,
    SIGNING_KEY_ENV,
    TENSORS,
    BundleError,
    Trust,
    generate_signing_key,
    load_aligner,
    load_anchors,
    load_signing_key,
    pipeline_signing_key,
    public_key_text,
    read_bundle,
    save_aligner,
    save_anchors,
)
from darkembed.evaluate import classifiers
from darkembed.evaluate.classifier_bundle import load_classifier, save_classifier
from darkembed.evaluate.classifiers import DNNClassifier

DAY = "2023-01-01"
KEY = Ed25519PrivateKey.generate()
TRUST = Trust((KEY.public_key(),))


def _resign(path, key=KEY):
    """Sign the bundle's current manifest again (what a provider holding `key` could do)."""
    body = (path / MANIFEST).read_bytes()
    sig = {"algorithm": "ed25519", "public_key": public_key_text(key),
           "signature": base64.b64encode(key.sign(_SIGNED_CONTEXT + body)).decode()}  # fmt: skip
    (path / SIGNATURE).write_text(json.dumps(sig))


def _edit_manifest(path, edit, key=KEY):
    m = json.loads((path / MANIFEST).read_text())
    new = edit(m)
    (path / MANIFEST).write_text(new if isinstance(new, str) else json.dumps(new))
    if key is not None:
        _resign(path, key)


def _replace_tensors(path, arrays, key=KEY):
    """Swap the tensor file and rewrite the manifest's tensor list and hash (re-signed with `key`)."""
    from safetensors.numpy import save_file

    save_file(arrays, str(path / TENSORS))
    digest = hashlib.sha256((path / TENSORS).read_bytes()).hexdigest()
    specs = {k: {"dtype": v.dtype.name, "shape": list(v.shape)} for k, v in arrays.items()}
    _edit_manifest(path, lambda m: {**m, "sha256": digest, "tensors": specs}, key)


@pytest.fixture
def anchors_bundle(tmp_path):
    rng = np.random.default_rng(0)
    ips = np.array([1, 5, 9], dtype=np.uint32)
    vec = rng.normal(size=(3, 4)).astype(np.float32)
    path = save_anchors(tmp_path / "anchors", ips, vec, method="idarkvec", network="darknet-a", day=DAY,
                        config_hash="abc123", signing_key=KEY)  # fmt: skip
    return path, ips, vec


def test_anchors_round_trip_and_manifest(anchors_bundle):
    path, ips, vec = anchors_bundle
    got_ips, got_vec, m = load_anchors(path, e=4, trust=TRUST)
    np.testing.assert_array_equal(got_ips, ips)
    np.testing.assert_array_equal(got_vec, vec)
    assert (m.kind, m.method, m.network, str(m.day), m.config_hash) == ("anchors", "idarkvec", "darknet-a", DAY,
                                                                        "abc123")  # fmt: skip
    assert m.dims == {"n": 3, "e": 4}
    assert sorted(os.listdir(path)) == [MANIFEST, SIGNATURE, TENSORS]  # nothing else shipped (no labels)


@pytest.mark.parametrize("kind", ["nonlinear", "procrustes"])
def test_aligner_round_trip(tmp_path, kind):
    rng = np.random.default_rng(1)
    yc, yp = rng.normal(size=(50, 6)).astype(np.float32), rng.normal(size=(50, 6)).astype(np.float32)
    a = make_aligner(kind, **({} if kind == "procrustes" else {"epochs": 1, "width": 8})).fit(yc, yp)
    path = save_aligner(tmp_path / "al", a, method=kind, network="darknet-a", day=DAY, signing_key=KEY)
    b, m = load_aligner(path, e_in=6, e_out=6, trust=TRUST)
    np.testing.assert_allclose(b.transform(yc), a.transform(yc), rtol=1e-6, atol=1e-6)
    assert m.meta["kind"] == kind
    with pytest.raises(BundleError, match="dimension e_in is 6, expected 128"):
        load_aligner(path, e_in=128, trust=TRUST)


def test_classifier_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.array(["a", "b"] * 20, dtype=object)
    clf = DNNClassifier(hidden=[8], epochs=2, seed=1).fit(X, y, X, y)
    path = save_classifier(
        tmp_path / "clf", clf, method="idarkvec", network="honeypot", day=DAY, signing_key=KEY
    )
    back, m = load_classifier(path, e=5, trust=TRUST)
    assert m.class_names == ["a", "b"] and m.dims == {"e": 5, "classes": 2}
    np.testing.assert_allclose(back.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_wrong_kind_is_refused(anchors_bundle):
    path, *_ = anchors_bundle
    with pytest.raises(BundleError, match=r"manifest.json: a anchors bundle, expected a aligner bundle"):
        load_aligner(path, trust=TRUST)


def test_dimension_mismatch_is_refused(anchors_bundle):
    path, *_ = anchors_bundle
    with pytest.raises(BundleError, match="dimension e is 4, expected 128"):
        load_anchors(path, e=128, trust=TRUST)


class _Boom:
    """Unpickling this writes a marker file: the test fails if the loader ever unpickles."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_is_refused_without_executing_it(anchors_bundle, tmp_path):
    path, *_ = anchors_bundle
    marker = tmp_path / "executed"
    payload = pickle.dumps(_Boom(str(marker)))
    (path / TENSORS).write_bytes(payload)
    # even with the manifest's hash forged to match (and signed), the payload is not a safetensors file
    _edit_manifest(path, lambda m: {**m, "sha256": hashlib.sha256(payload).hexdigest(), "tensors": {}})
    with pytest.raises(BundleError, match=r"tensors\.safetensors: not a safetensors file"):
        read_bundle(path, trust=TRUST)
    assert not marker.exists()


def test_tampered_tensor_file_is_refused_by_hash(anchors_bundle):
    path, *_ = anchors_bundle
    data = bytearray((path / TENSORS).read_bytes())
    data[-1] ^= 0xFF  # flip one byte of a vector
    (path / TENSORS).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"tensors\.safetensors: sha256 .* does not match the manifest"):
        load_anchors(path, trust=TRUST)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: "{not json", r"manifest\.json: not valid JSON"),
        (lambda m: {k: v for k, v in m.items() if k != "kind"}, r"invalid manifest: kind: Field required"),
        (lambda m: {**m, "kind": "model"}, r"invalid manifest: kind"),
        (lambda m: {**m, "code": "import os"}, r"invalid manifest: code: unknown key"),
        (lambda m: {**m, "tensors": {"ips": m["tensors"]["ips"]}}, r"do not match the manifest"),
        (lambda m: {**m, "tensors": {**m["tensors"], "vectors": {"dtype": "float32", "shape": [3, 5]}}},
         r"tensor vectors is float32\[3, 4\], the manifest says float32\[3, 5\]"),
    ],
)  # fmt: skip
def test_malformed_manifest_is_refused_naming_the_file(anchors_bundle, edit, message):
    path, *_ = anchors_bundle
    _edit_manifest(path, edit)
    with pytest.raises(BundleError, match=message) as err:
        read_bundle(path, trust=TRUST)
    assert str(path) in str(err.value)


def test_missing_required_tensor_is_refused(tmp_path):
    from darkembed.adapt.exchange import write_bundle

    p = write_bundle(tmp_path / "b", "anchors", {"ips": np.arange(3, dtype=np.uint32)}, method="m", network="n",
                     day=DAY, dims={"e": 4}, signing_key=KEY)  # fmt: skip
    with pytest.raises(BundleError, match=r"required tensors missing: \['vectors'\]"):
        load_anchors(p, trust=TRUST)


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(BundleError, match="no manifest"):
        read_bundle(tmp_path)


# --- authenticity ------------------------------------------------------------------------------------------------


def test_tampered_tensor_with_rewritten_hash_is_refused_by_the_signature(anchors_bundle):
    path, ips, vec = anchors_bundle
    _replace_tensors(path, {"ips": ips, "vectors": vec * 0 + 1}, key=None)  # hash rewritten, not re-signed
    with pytest.raises(
        BundleError, match=r"signature\.json: the signature does not verify under any trusted key"
    ):
        load_anchors(path, trust=TRUST)


def test_wrong_key_is_refused(anchors_bundle):
    path, *_ = anchors_bundle
    other = Trust((Ed25519PrivateKey.generate().public_key(),))
    with pytest.raises(BundleError, match="does not verify under any trusted key"):
        load_anchors(path, trust=other)
    _resign(path, Ed25519PrivateKey.generate())  # signed by someone else, who claims their own key
    with pytest.raises(BundleError, match="does not verify under any trusted key"):
        load_anchors(path, trust=TRUST)
    with pytest.raises(
        BundleError, match="does not verify"
    ):  # allowing unsigned bundles allows no bad signature
        load_anchors(path, trust=Trust(TRUST.keys, allow_unsigned=True))


def test_unsigned_bundle_is_refused_unless_explicitly_allowed(tmp_path, caplog):
    ips, vec = np.array([1, 2], np.uint32), np.ones((2, 3), np.float32)
    path = save_anchors(tmp_path / "u", ips, vec, method="m", network="n", day=DAY)
    assert not (path / SIGNATURE).exists()
    with pytest.raises(BundleError, match=r"signature\.json: missing; the bundle is unsigned"):
        load_anchors(path, trust=TRUST)
    got, _, _ = load_anchors(path, trust=Trust(TRUST.keys, allow_unsigned=True))
    np.testing.assert_array_equal(got, ips)
    assert "unsigned bundle accepted" in caplog.text


def test_nobody_is_trusted_without_a_configured_key(anchors_bundle):
    path, *_ = anchors_bundle
    with pytest.raises(BundleError, match="no trusted public key configured"):
        load_anchors(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(anchors_bundle, bad):
    path, ips, vec = anchors_bundle
    vec = vec.copy()
    vec[1, 2] = bad
    _replace_tensors(path, {"ips": ips, "vectors": vec})  # validly signed by the provider
    with pytest.raises(BundleError, match="tensor vectors has 1 non-finite values"):
        load_anchors(path, trust=TRUST)
    with pytest.raises(BundleError, match="non-finite"):
        save_anchors(path.parent / "x", ips, vec, method="m", network="n", day=DAY, signing_key=KEY)


def test_all_nan_classifier_is_refused(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    clf = DNNClassifier(hidden=[4], epochs=1, seed=1).fit(X, np.array(["a", "b"] * 10, dtype=object))
    path = save_classifier(tmp_path / "c", clf, method="m", network="n", day=DAY, signing_key=KEY)
    tensors, _ = clf.state()
    _replace_tensors(path, {k: np.full_like(v, np.nan) for k, v in tensors.items()})
    with pytest.raises(BundleError, match="non-finite"):
        load_classifier(path, trust=TRUST)


def test_keygen_writes_a_private_key_for_the_owner_only_and_a_public_key_to_trust(tmp_path, anchors_bundle):
    key_path = tmp_path / "keys" / "provider.pem"
    text = generate_signing_key(key_path)
    assert (key_path.stat().st_mode & 0o777) == 0o600
    assert (tmp_path / "keys" / "provider.pem.pub").read_text().strip() == text
    with pytest.raises(FileExistsError):
        generate_signing_key(key_path)
    key = load_signing_key(key_path)
    path, *_ = anchors_bundle
    _resign(path, key)
    for spec in (text, str(key_path) + ".pub"):  # the text itself or the .pub file
        load_anchors(path, trust=Trust.of([spec]))
    with pytest.raises(BundleError, match="not an Ed25519 public key"):
        Trust.of(["ed25519:AAAA"])


def test_pipeline_key_is_created_once_under_the_data_root_unless_configured(tmp_path, monkeypatch):
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    k1 = pipeline_signing_key(None, tmp_path / "root")
    local = tmp_path / "root" / "keys" / "exchange-ed25519.pem"
    assert local.is_file() and (local.stat().st_mode & 0o777) == 0o600
    assert public_key_text(pipeline_signing_key(None, tmp_path / "root")) == public_key_text(k1)
    mine = tmp_path / "mine.pem"
    generate_signing_key(mine)
    assert public_key_text(pipeline_signing_key(str(mine), tmp_path / "root")) != public_key_text(k1)
    monkeypatch.setenv(SIGNING_KEY_ENV, str(local))
    assert public_key_text(pipeline_signing_key(str(mine), tmp_path / "root")) == public_key_text(k1)


# --- untrusted sizes ---------------------------------------------------------------------------------------------


@pytest.fixture
def aligner_bundle(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    yc, yp = rng.normal(size=(30, 6)).astype(np.float32), rng.normal(size=(30, 6)).astype(np.float32)
    a = make_aligner("nonlinear", epochs=1, width=8).fit(yc, yp)
    path = save_aligner(tmp_path / "al", a, method="nonlinear", network="n", day=DAY, signing_key=KEY)

    def never(*args, **kwargs):
        raise AssertionError("a model was built from an unchecked bundle")

    monkeypatch.setattr(aligners.DNNAligner, "from_state", classmethod(never))
    return path


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"width": 60_000, "depth": 2_000_000}, r"meta\.width = 60000, expected an integer in \[1, 16384\]"),
        ({"depth": 2_000_000}, r"meta\.depth = 2000000, expected an integer in \[0, 32\]"),
        ({"width": 4096, "depth": 3}, r"the tensors do not fit the nonlinear aligner the manifest describes"),
        ({"depth": "3"}, r"meta\.depth = '3'"),
        ({"activation": "os.system"}, r"meta\.activation"),
    ],
)
def test_aligner_sizes_are_checked_before_anything_is_built(aligner_bundle, meta, message):
    _edit_manifest(aligner_bundle, lambda m: {**m, "meta": {**m["meta"], **meta}})
    with pytest.raises(BundleError, match=message):
        load_aligner(aligner_bundle, trust=TRUST)


@pytest.mark.parametrize(
    "hidden, message",
    [
        ([60_000, 60_000], r"meta\.hidden = \[60000, 60000\], expected at most 32 widths in \[1, 16384\]"),
        ([1] * 1000, r"meta\.hidden"),
        ([4096, 4096], r"the tensors do not fit the classifier"),
    ],
)
def test_classifier_sizes_are_checked_before_anything_is_built(tmp_path, monkeypatch, hidden, message):
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    clf = DNNClassifier(hidden=[4], epochs=1, seed=1).fit(X, np.array(["a", "b"] * 10, dtype=object))
    path = save_classifier(tmp_path / "c", clf, method="m", network="n", day=DAY, signing_key=KEY)
    _edit_manifest(path, lambda m: {**m, "meta": {**m["meta"], "hidden": hidden}})
    monkeypatch.setattr(classifiers.DNNClassifier, "from_state", classmethod(lambda *a: pytest.fail("built")))
    with pytest.raises(BundleError, match=message):
        load_classifier(path, trust=TRUST)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: json.dumps({**m, "meta": "@"}).replace('"@"', "[" * 100_000 + "]" * 100_000),
         r"JSON nested too deeply"),
        (lambda m: {**m, "meta": {"x": json.loads("[" * 30 + "]" * 30)}}, r"JSON nested 32 levels deep"),
        (lambda m: {**m, "meta": {"pad": "x" * (2 << 20)}}, r"manifest\.json: \d+ bytes, more than the 1048576"),
        (lambda m: {**m, "tensors": {**m["tensors"], "vectors": {"dtype": "float32", "shape": [10**9, 4]}}},
         r"the tensors declared need 16000000012 bytes, the tensor file holds \d+"),
        (lambda m: {**m, "dims": {"n": 3, "e": 10**9}}, r"dimension e = 1000000000 is outside \[0, 16384\]"),
        (lambda m: {**m, "tensors": {**m["tensors"], "vectors": {"dtype": "float32", "shape": [1, 1, 1, 1, 1]}}},
         r"impossible shape"),
    ],
)  # fmt: skip
def test_untrusted_sizes_in_the_manifest_are_refused(anchors_bundle, edit, message):
    path, *_ = anchors_bundle
    _edit_manifest(path, edit)
    with pytest.raises(BundleError, match=message) as err:
        load_anchors(path, trust=TRUST)
    assert str(path) in str(err.value)


def test_keygen_command_prints_the_public_key_and_refuses_to_overwrite(tmp_path):
    from typer.testing import CliRunner

    from darkembed.cli import app

    out = tmp_path / "provider.pem"
    res = CliRunner().invoke(app, ["keygen", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == (tmp_path / "provider.pem.pub").read_text().strip()
    assert (out.stat().st_mode & 0o777) == 0o600
    again = CliRunner().invoke(app, ["keygen", str(out)])
    assert again.exit_code == 2 and "already there" in again.output
