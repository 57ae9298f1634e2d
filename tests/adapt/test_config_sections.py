import pytest

from darkembed.config import (
    AdaptConfig,
    ClusterConfig,
    ComputeConfig,
    ConfigError,
    EvaluateConfig,
    ReportConfig,
    load_config,
)


def test_yaml_defaults_equal_model_defaults():
    cfg = load_config()
    assert cfg.adapt == AdaptConfig()
    assert cfg.evaluate == EvaluateConfig()
    assert cfg.cluster == ClusterConfig()
    assert cfg.compute == ComputeConfig() and cfg.report == ReportConfig()
    assert cfg.adapt.anchor_fractions == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


@pytest.mark.parametrize(
    "overlay, key",
    [
        ({"adapt": {"aligners": ["rotation"]}}, "adapt.aligners"),
        ({"adapt": {"anchor_fractions": [0.0, 0.5]}}, "adapt.anchor_fractions"),
        ({"evaluate": {"folds": 1}}, "evaluate.folds"),
        ({"evaluate": {"knn": 3}}, "evaluate.knn"),
        ({"cluster": {"min_cluster_size": 1}}, "cluster.min_cluster_size"),
        ({"adapt": {"linear_solver": "adam"}}, "adapt.linear_solver"),
        ({"compute": {"device": "tpu"}}, "compute.device"),
        ({"report": {"tsne": "sometimes"}}, "report.tsne"),
    ],
)
def test_bad_values_and_unknown_keys_are_refused_by_name(overlay, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=overlay)
