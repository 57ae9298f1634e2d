import numpy as np

from darkembed.config import load_config
from darkembed.evaluate.pair import bundle_aligner_kind, evaluate_pair
from darkembed.evaluate.protocol import NetworkDay

from .conftest import blobs

SMALL = {
    "evaluate": {"dnn_hidden": [16], "dnn_epochs": 3, "dnn_batch_size": 64},
    "adapt": {"epochs": 3, "min_steps": 0, "width": 16},
    "cluster": {"min_cluster_size": 5, "reduce_dims": None},
}


def test_the_clustering_aligner_is_fitted_once_and_kept_for_the_bundle():
    X, y = blobs({"mirai": 80, "censys": 40, "shodan": 30, "unknown": 50}, e=8, spread=0.5, seed=3)
    ips = np.random.default_rng(3).choice(2**31, size=y.size, replace=False).astype(np.uint32)
    provider, customer = NetworkDay.of(ips[:150], X[:150], y[:150]), NetworkDay.of(ips[30:], X[30:], y[30:])
    cfg = load_config(overrides=SMALL)
    res = evaluate_pair(provider, customer, cfg)
    kind = bundle_aligner_kind(cfg)
    assert kind == "nonlinear" and set(res.aligners) == {kind}
    np.testing.assert_array_equal(res.aligners[kind].transform(customer.X), res.spaces["align"])
    assert {"no_adaptation", "align/linear", "align/nonlinear", "align/procrustes", "independent"} <= set(
        res.settings
    )
    procrustes_only = load_config(
        overrides={**SMALL, "adapt": {**SMALL["adapt"], "aligners": ["procrustes"]}}
    )
    assert bundle_aligner_kind(procrustes_only) == "procrustes"
