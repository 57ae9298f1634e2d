import numpy as np
import polars as pl
import pytest

from darkembed.adapt.anchors import anchor_samples, find_anchors, label_vector, stratified_sample


def test_anchors_are_the_intersection_with_rows_and_labels():
    p = np.array([50, 10, 30, 20], dtype=np.uint32)
    c = np.array([30, 40, 10], dtype=np.uint32)
    a = find_anchors(p, c, {10: "mirai", 99: "censys"})
    assert a.ips.tolist() == [10, 30]
    assert p[a.provider_rows].tolist() == [10, 30]
    assert c[a.customer_rows].tolist() == [10, 30]
    assert a.labels.tolist() == ["mirai", "unknown"]


def test_repeated_addresses_are_refused():
    with pytest.raises(ValueError, match="customer ips: 1 repeated"):
        find_anchors(np.array([1, 2], np.uint32), np.array([2, 2], np.uint32))


def test_label_vector_accepts_frames_and_mappings():
    ips = np.array([3, 1, 7], dtype=np.uint32)
    frame = pl.DataFrame(
        {"src_ip": [1, 3], "label": ["a", "b"]}, schema={"src_ip": pl.UInt32, "label": pl.String}
    )
    assert label_vector(ips, frame).tolist() == ["b", "a", "unknown"]
    assert label_vector(ips, frame.to_arrow()).tolist() == ["b", "a", "unknown"]
    assert label_vector(ips, {7: "c"}).tolist() == ["unknown", "unknown", "c"]
    assert label_vector(ips, None).tolist() == ["unknown"] * 3
    with pytest.raises(ValueError, match="src_ip and label"):
        label_vector(ips, pl.DataFrame({"ip": [1]}))


def test_stratified_sample_keeps_the_class_shares_and_every_class():
    labels = np.array(["unknown"] * 500 + ["mirai"] * 300 + ["censys"] * 20 + ["rare"] * 2, dtype=object)
    idx = stratified_sample(labels, 0.3, seed=1)
    got = dict(zip(*np.unique(labels[idx], return_counts=True), strict=True))
    assert got == {"unknown": 150, "mirai": 90, "censys": 6, "rare": 1}
    assert np.unique(idx).size == idx.size
    assert stratified_sample(labels, 1.0, seed=1).tolist() == list(range(labels.size))


def test_anchor_samples_repeat_with_different_seeds_deterministically():
    labels = np.array(["a"] * 100 + ["unknown"] * 100, dtype=object)
    s1 = anchor_samples(labels, 0.2, repeats=5, seed=15)
    s2 = anchor_samples(labels, 0.2, repeats=5, seed=15)
    assert len(s1) == 5 and all(x.size == 40 for x in s1)
    assert all(np.array_equal(a, b) for a, b in zip(s1, s2, strict=True))
    assert len({tuple(x) for x in s1}) == 5  # the repeats differ
    assert len(anchor_samples(labels, 1.0, repeats=5, seed=15)) == 1  # the 100 % point runs once
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        stratified_sample(labels, 0.0, seed=1)
