import logging

import numpy as np
import pytest

from darkembed.evaluate.folds import consistent_folds


@pytest.fixture(scope="module")
def two_networks():
    rng = np.random.default_rng(3)
    universe = rng.choice(2**32 - 1, size=3000, replace=False).astype(np.uint32)
    labels = rng.choice(["unknown", "mirai", "censys", "shodan"], size=3000, p=[0.5, 0.3, 0.15, 0.05]).astype(
        object
    )
    labels[:3] = "tiny"  # 3 hosts: too few for 5 folds
    p_idx = np.sort(rng.choice(3000, 2000, replace=False))
    c_idx = np.sort(rng.choice(3000, 2000, replace=False))
    return universe[p_idx], labels[p_idx], universe[c_idx], labels[c_idx], universe, labels


def test_a_host_has_the_same_fold_in_both_networks(two_networks):
    p_ips, p_lab, c_ips, c_lab, *_ = two_networks
    f = consistent_folds(p_ips, p_lab, c_ips, c_lab, seed=15)
    shared = np.intersect1d(p_ips, c_ips)
    assert shared.size > 1000
    for k in range(5):
        sp, sc = f.split(k, p_ips), f.split(k, c_ips)
        test_p = set(p_ips[sp.test].tolist()) & set(shared.tolist())
        test_c = set(c_ips[sc.test].tolist()) & set(shared.tolist())
        assert test_p == test_c
        val_p = set(p_ips[sp.val].tolist()) & set(shared.tolist())
        val_c = set(c_ips[sc.val].tolist()) & set(shared.tolist())
        assert val_p == val_c
    assert f.fold.min() == 0 and f.fold.max() == 4


def test_no_anchor_is_both_validation_and_test(two_networks):
    p_ips, p_lab, c_ips, c_lab, *_ = two_networks
    f = consistent_folds(p_ips, p_lab, c_ips, c_lab, seed=15)
    for k in range(5):
        sp, sc = f.split(k, p_ips), f.split(k, c_ips)
        val_provider = set(p_ips[sp.val].tolist())
        test_customer = set(c_ips[sc.test].tolist())
        assert not val_provider & test_customer
        assert (
            not (sp.train & sp.val).any() and not (sp.train & sp.test).any() and not (sp.val & sp.test).any()
        )
        assert (sp.train | sp.val | sp.test).all()


def test_folds_and_validation_are_stratified(two_networks):
    p_ips, p_lab, c_ips, c_lab, *_ = two_networks
    f = consistent_folds(p_ips, p_lab, c_ips, c_lab, seed=15)
    for cls in ("mirai", "censys", "shodan", "unknown"):
        per_fold = np.bincount(f.fold[f.labels == cls], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    val = f.val_mask(0)
    assert not (val & (f.fold == 0)).any()
    train_mirai = ((f.fold != 0) & (f.labels == "mirai")).sum()
    assert (val & (f.labels == "mirai")).sum() == round(0.1 * train_mirai)


def test_small_classes_are_folded_into_unknown_with_a_warning(two_networks, caplog):
    p_ips, p_lab, c_ips, c_lab, *_ = two_networks
    with caplog.at_level(logging.WARNING):
        f = consistent_folds(p_ips, p_lab, c_ips, c_lab, seed=15)
    assert f.folded == {"tiny": 3}
    assert "tiny (3)" in caplog.text
    assert "tiny" not in set(f.labels.tolist())
    assert "tiny" not in set(f.relabel(p_lab).tolist())


def test_folds_are_deterministic_and_seeded(two_networks):
    p_ips, p_lab, c_ips, c_lab, *_ = two_networks
    a = consistent_folds(p_ips, p_lab, c_ips, c_lab, seed=1)
    b = consistent_folds(p_ips, p_lab, c_ips, c_lab, seed=1)
    c = consistent_folds(p_ips, p_lab, c_ips, c_lab, seed=2)
    np.testing.assert_array_equal(a.fold, b.fold)
    np.testing.assert_array_equal(a.val_mask(2), b.val_mask(2))
    assert not np.array_equal(a.fold, c.fold)


def test_provider_label_wins_and_foreign_hosts_are_refused():
    f = consistent_folds(
        np.arange(10, 20, dtype=np.uint32), np.array(["a"] * 10, dtype=object),
        np.arange(15, 30, dtype=np.uint32), np.array(["b"] * 15, dtype=object),
    )  # fmt: skip
    assert f.labels[f.rows(np.array([15], np.uint32))].tolist() == ["a"]
    assert f.labels[f.rows(np.array([25], np.uint32))].tolist() == ["b"]
    with pytest.raises(ValueError, match="not in the folds' host union"):
        f.split(0, np.array([99], np.uint32))
