import numpy as np

from darkembed.config import load_config
from darkembed.evaluate import pair
from darkembed.evaluate.pair import bundle_aligner, bundle_aligner_kind, evaluate_pair
from darkembed.evaluate.protocol import NetworkDay

from .conftest import blobs

SMALL = {
    "evaluate": {"dnn_hidden": [16], "dnn_epochs": 3, "dnn_batch_size": 64},
    "adapt": {"epochs": 3, "min_steps": 0, "width": 16},
    "cluster": {"min_cluster_size": 5, "reduce_dims": None},
}


def _pair():
    X, y = blobs({"mirai": 80, "censys": 40, "shodan": 30, "unknown": 50}, e=8, spread=0.5, seed=3)
    ips = np.random.default_rng(3).choice(2**31, size=y.size, replace=False).astype(np.uint32)
    return NetworkDay.of(ips[:150], X[:150], y[:150]), NetworkDay.of(ips[30:], X[30:], y[30:])


def _counting_fits(monkeypatch) -> list[str]:
    """The kinds `evaluate.pair` fits on every anchor, in order."""
    fits, fit = [], pair.fit_aligner

    def counted(provider, customer, kind, *args, **kwargs):
        fits.append(kind)
        return fit(provider, customer, kind, *args, **kwargs)

    monkeypatch.setattr(pair, "fit_aligner", counted)
    return fits


def test_the_clustering_aligner_is_fitted_once_and_kept_for_the_bundle(monkeypatch):
    provider, customer = _pair()
    cfg = load_config(overrides=SMALL)
    fits = _counting_fits(monkeypatch)
    res = evaluate_pair(provider, customer, cfg)
    kind = bundle_aligner_kind(cfg)
    assert kind == "nonlinear" and set(res.aligners) == {kind}
    np.testing.assert_array_equal(res.aligners[kind].transform(customer.X), res.spaces["align"])
    assert bundle_aligner(res, provider, customer, cfg) == (kind, res.aligners[kind])
    assert fits == [kind]  # the bundle ships the clustering's aligner
    assert {"no_adaptation", "align/linear", "align/nonlinear", "align/procrustes", "independent"} <= set(
        res.settings
    )
    procrustes_only = load_config(
        overrides={**SMALL, "adapt": {**SMALL["adapt"], "aligners": ["procrustes"]}}
    )
    assert bundle_aligner_kind(procrustes_only) == "procrustes"


def test_the_bundle_aligner_without_clustering_or_configured_aligners(monkeypatch):
    provider, customer = _pair()
    fits = _counting_fits(monkeypatch)
    # no clustering: the bundle's aligner is fitted when first asked for, and once
    cfg = load_config(overrides={**SMALL, "adapt": {**SMALL["adapt"], "aligners": ["linear", "procrustes"]}})
    res = evaluate_pair(provider, customer, cfg, cluster=False)
    assert res.aligners == {} and fits == []
    kind, aligner = bundle_aligner(res, provider, customer, cfg)
    assert kind == "linear" and res.aligners == {"linear": aligner}
    assert bundle_aligner(res, provider, customer, cfg)[1] is aligner and fits == ["linear"]
    # no aligner configured: no `align/<kind>` setting, and Procrustes for the clustering and the bundle
    none = load_config(overrides={**SMALL, "adapt": {**SMALL["adapt"], "aligners": []}})
    assert bundle_aligner_kind(none) == "procrustes"
    res = evaluate_pair(provider, customer, none)
    assert not any(s.startswith("align/") for s in res.settings) and "align" in res.spaces
    kind, aligner = bundle_aligner(res, provider, customer, none)
    assert kind == "procrustes" and aligner.kind == "procrustes" and fits == ["linear", "procrustes"]
