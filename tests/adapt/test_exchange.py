import json
import os
import pickle

import numpy as np
import pytest

from darkembed.adapt.aligners import make_aligner
from darkembed.adapt.exchange import (
    MANIFEST,
    TENSORS,
    BundleError,
    load_aligner,
    load_anchors,
    load_classifier,
    read_bundle,
    save_aligner,
    save_anchors,
    save_classifier,
)
from darkembed.evaluate.classifiers import DNNClassifier

DAY = "2023-01-01"


@pytest.fixture
def anchors_bundle(tmp_path):
    rng = np.random.default_rng(0)
    ips = np.array([1, 5, 9], dtype=np.uint32)
    vec = rng.normal(size=(3, 4)).astype(np.float32)
    path = save_anchors(tmp_path / "anchors", ips, vec, method="idarkvec", network="darknet-a", day=DAY,
                        config_hash="abc123")  # fmt: skip
    return path, ips, vec


def test_anchors_round_trip_and_manifest(anchors_bundle):
    path, ips, vec = anchors_bundle
    got_ips, got_vec, m = load_anchors(path, e=4)
    np.testing.assert_array_equal(got_ips, ips)
    np.testing.assert_array_equal(got_vec, vec)
    assert (m.kind, m.method, m.network, str(m.day), m.config_hash) == ("anchors", "idarkvec", "darknet-a", DAY,
                                                                        "abc123")  # fmt: skip
    assert m.dims == {"n": 3, "e": 4}
    assert sorted(os.listdir(path)) == [MANIFEST, TENSORS]  # nothing else shipped (no labels)


@pytest.mark.parametrize("kind", ["nonlinear", "procrustes"])
def test_aligner_round_trip(tmp_path, kind):
    rng = np.random.default_rng(1)
    yc, yp = rng.normal(size=(50, 6)).astype(np.float32), rng.normal(size=(50, 6)).astype(np.float32)
    a = make_aligner(kind, **({} if kind == "procrustes" else {"epochs": 1, "width": 8})).fit(yc, yp)
    path = save_aligner(tmp_path / "al", a, method=kind, network="darknet-a", day=DAY)
    b, m = load_aligner(path, e_in=6, e_out=6)
    np.testing.assert_allclose(b.transform(yc), a.transform(yc), rtol=1e-6, atol=1e-6)
    assert m.meta["kind"] == kind
    with pytest.raises(BundleError, match="dimension e_in is 6, expected 128"):
        load_aligner(path, e_in=128)


def test_classifier_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.array(["a", "b"] * 20, dtype=object)
    clf = DNNClassifier(hidden=[8], epochs=2, seed=1).fit(X, y, X, y)
    path = save_classifier(tmp_path / "clf", clf, method="idarkvec", network="honeypot", day=DAY)
    back, m = load_classifier(path, e=5)
    assert m.class_names == ["a", "b"] and m.dims == {"e": 5, "classes": 2}
    np.testing.assert_allclose(back.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_wrong_kind_is_refused(anchors_bundle):
    path, *_ = anchors_bundle
    with pytest.raises(BundleError, match=r"manifest.json: a anchors bundle, expected a aligner bundle"):
        load_aligner(path)


def test_dimension_mismatch_is_refused(anchors_bundle):
    path, *_ = anchors_bundle
    with pytest.raises(BundleError, match="dimension e is 4, expected 128"):
        load_anchors(path, e=128)


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
    # even with the manifest's hash forged to match, the payload is not a safetensors file
    import hashlib

    m = json.loads((path / MANIFEST).read_text())
    m["sha256"] = hashlib.sha256(payload).hexdigest()
    (path / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"tensors\.safetensors: not a safetensors file"):
        read_bundle(path)
    assert not marker.exists()


def test_tampered_tensor_file_is_refused_by_hash(anchors_bundle):
    path, *_ = anchors_bundle
    data = bytearray((path / TENSORS).read_bytes())
    data[-1] ^= 0xFF  # flip one byte of a vector
    (path / TENSORS).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"tensors\.safetensors: sha256 .* does not match the manifest"):
        load_anchors(path)


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
    m = json.loads((path / MANIFEST).read_text())
    new = edit(m)
    (path / MANIFEST).write_text(new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(BundleError, match=message) as err:
        read_bundle(path)
    assert str(path) in str(err.value)


def test_missing_required_tensor_is_refused(tmp_path):
    from darkembed.adapt.exchange import write_bundle

    p = write_bundle(tmp_path / "b", "anchors", {"ips": np.arange(3, dtype=np.uint32)}, method="m", network="n",
                     day=DAY, dims={"e": 4})  # fmt: skip
    with pytest.raises(BundleError, match=r"required tensors missing: \['vectors'\]"):
        load_anchors(p)


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(BundleError, match="no manifest"):
        read_bundle(tmp_path)
