import datetime as dt

import pytest

from darkembed.config import ConfigError, load_config


def test_default_loads_and_declares_the_simulated_world():
    cfg = load_config()
    assert [n.name for n in cfg.networks] == ["darknet-a", "darknet-b", "honeypot"]
    assert cfg.network("honeypot").kind == "honeypot"
    assert cfg.network("darknet-a").inputs_for(dt.date(2023, 1, 2))["captures"] == [
        "var/world/darknet-a/2023-01-02/*.pcap.gz"
    ]


def test_overlay_merges_mappings_and_replaces_lists(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text("ingest:\n  workers: 3\npairs: []\n")
    cfg = load_config(f)
    assert cfg.ingest.workers == 3
    assert cfg.ingest.max_bad_offsets == 1000  # kept from the default
    assert cfg.pairs == []
    assert cfg.hash() != load_config().hash()


def test_unknown_key_is_named_with_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("ingest:\n  wrokers: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "ingest.wrokers: unknown key" in str(e.value)
    assert str(f) in str(e.value)


def test_invalid_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("ingest:\n  workers: [1,\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+"):
        load_config(f)


def test_pair_must_name_declared_networks(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("pairs:\n  - {provider: darknet-a, customer: nowhere}\n")
    with pytest.raises(ConfigError, match="nowhere"):
        load_config(f)


def test_pattern_with_unknown_placeholder_is_refused(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("networks:\n  - name: x\n    captures: ['/data/{hour}/*.pcap']\n")
    with pytest.raises(ConfigError, match="placeholder"):
        load_config(f)


def test_environment_sets_machine_settings(monkeypatch):
    monkeypatch.setenv("DARKEMBED_DATA_ROOT", "/srv/darkembed")
    monkeypatch.setenv("DARKEMBED_TRACKING_URI", "http://mlflow:5000")
    cfg = load_config()
    assert cfg.data_root == "/srv/darkembed"
    assert cfg.tracking.uri == "http://mlflow:5000"


def test_a_file_that_names_the_data_root_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DARKEMBED_DATA_ROOT", "/srv/darkembed")
    f = tmp_path / "exp.yaml"
    f.write_text("data_root: /data/experiments/x\n")
    assert load_config(f).data_root == "/data/experiments/x"
    assert load_config().data_root == "/srv/darkembed"


def test_stage_hash_follows_what_each_stage_depends_on():
    base = load_config()
    ev = load_config(
        overrides={"evaluate": {"dnn_epochs": 3}, "adapt": {"epochs": 2}, "cluster": {"min_cluster_size": 7}}
    )
    gnn = load_config(overrides={"gnn": {"history": 2}})
    lab = load_config(
        overrides={"labels": {"precedence": ["mirai", "scanner", "exploiter", "brute-forcer", "spammer"]}}
    )
    net = base.networks[0].name
    stages = [("packets", None), ("labels", None), ("corpus", None), ("graph", None), ("embeddings", "idarkvec"),
              ("models", "igcngru"), ("embeddings", "gcn-nofeat")]  # fmt: skip
    # the evaluation never invalidates data partitions, but the whole-config hash (results) moves
    assert all(base.stage_hash(s, net, m) == ev.stage_hash(s, net, m) for s, m in stages)
    assert base.stage_hash("results", net) != ev.stage_hash("results", net)
    named = load_config(overrides={"experiment": {"name": "x", "title": "y"}, "data_root": "elsewhere"})
    assert named.stage_hash("results") == base.stage_hash("results") and named.hash() != base.hash()
    # gnn settings re-embed the GNN methods only
    assert base.stage_hash("embeddings", net, "idarkvec") == gnn.stage_hash("embeddings", net, "idarkvec")
    assert base.stage_hash("embeddings", net, "igcngru") != gnn.stage_hash("embeddings", net, "igcngru")
    assert base.stage_hash("graph", net) == gnn.stage_hash("graph", net)
    # labels settings touch the labels, not the corpus
    assert base.stage_hash("labels", net) != lab.stage_hash("labels", net)
    assert base.stage_hash("corpus", net) == lab.stage_hash("corpus", net)
    # one network's entry does not concern another's partitions
    other = base.model_dump(mode="json")
    other["networks"][1]["captures"] = ["elsewhere/{day:%Y-%m-%d}/*.pcap"]
    moved = type(base).model_validate(other)
    assert base.stage_hash("packets", net) == moved.stage_hash("packets", net)
    assert base.stage_hash("packets", base.networks[1].name) != moved.stage_hash(
        "packets", base.networks[1].name
    )
    with pytest.raises(ValueError, match="needs the embedding method"):
        base.stage_hash("embeddings", net)


def test_a_new_checkpoint_format_makes_model_partitions_stale(monkeypatch):
    """Checkpoints of an earlier file format (pickles) are stale, not complete-but-unloadable."""
    import darkembed.config as config_module

    cfg = load_config()
    net = cfg.networks[0].name
    before = {s: cfg.stage_hash(s, net, "idarkvec") for s in ("models", "embeddings")}
    monkeypatch.setattr(config_module, "CHECKPOINT_FORMAT", config_module.CHECKPOINT_FORMAT + 1)
    assert cfg.stage_hash("models", net, "idarkvec") != before["models"]
    assert cfg.stage_hash("embeddings", net, "idarkvec") == before["embeddings"]
