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


def _refused(tmp_path, text: str | bytes, match: str, name: str = "c.yaml") -> str:
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        load_config(f)
    assert str(f) in str(e.value)
    return str(e.value)


def test_a_repeated_key_is_refused_with_its_line(tmp_path):
    _refused(tmp_path, "ingest:\n  workers: 2\n  workers: 3\n", r"line 3.*duplicate key 'workers'")


def test_merge_keys_may_override_without_being_duplicates(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("ingest:\n  <<: {workers: 2, max_bad_offsets: 5}\n  workers: 3\n")
    cfg = load_config(f)
    assert (cfg.ingest.workers, cfg.ingest.max_bad_offsets) == (3, 5)


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    lines.append("ingest: {workers: *a9}")  # 9**10 values once expanded
    _refused(tmp_path, "\n".join(lines) + "\n", "aliases .* expand it to more than")


def test_a_recursive_alias_is_refused(tmp_path):
    _refused(tmp_path, "a: &a [1, *a]\n", "recursive")


def test_a_huge_file_is_refused_unread(tmp_path):
    _refused(tmp_path, "# " + "x" * (1 << 20) + "\n", "larger than")


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    _refused(tmp_path, "seed: 3\n# caf\xe9\n".encode("latin-1"), r"line 2: not UTF-8 text \(byte 0xe9")


def test_an_unknown_key_names_only_the_overlay_that_has_it(tmp_path):
    files = [tmp_path / f"o{i}.yaml" for i in range(3)]
    files[0].write_text("seed: 3\n")
    files[1].write_text("ingest:\n  wrokers: 3\n")
    files[2].write_text("seed: 4\n")
    with pytest.raises(ConfigError) as e:
        load_config(*files)
    assert f"{files[1]}: ingest.wrokers: unknown key" in str(e.value)
    assert str(files[0]) not in str(e.value) and str(files[2]) not in str(e.value)


@pytest.mark.parametrize(
    "pattern", ["/d/{day.__class__.__name__}/*.pcap", "/d/{day[0]}/*.pcap", "/d/{}/*.pcap", "/d/{day/*.pcap"]
)
def test_a_pattern_may_only_format_the_day(tmp_path, pattern):
    _refused(
        tmp_path, f"networks:\n  - name: x\n    captures: ['{pattern}']\n", "networks.0.captures: pattern"
    )


@pytest.mark.parametrize("prefix", ["999.1.1.1/33", "10.0.0.0/33", "nonsense", "2001:db8::/32"])
def test_a_bad_prefix_is_refused(tmp_path, prefix):
    _refused(tmp_path, f"networks:\n  - name: x\n    prefix: '{prefix}'\n", "networks.0.prefix: prefix")


def test_an_empty_network_list_is_refused(tmp_path):
    _refused(tmp_path, "networks: []\npairs: []\n", "networks: empty")


@pytest.mark.parametrize("section", ["embed", "adapt"])
def test_an_unknown_method_is_refused_at_load(tmp_path, section):
    _refused(
        tmp_path, f"{section}:\n  methods: ['../../etc']\n", rf"{section}.methods: unknown embedding method"
    )


def test_input_problems_name_directories_and_bad_links(tmp_path):
    day = tmp_path / "2023-01-01"
    day.mkdir()
    (day / "good.pcap").write_bytes(b"")
    (day / "dir.pcap").mkdir()
    (day / "dangling.pcap").symlink_to(tmp_path / "nowhere")
    (day / "loop.pcap").symlink_to(day / "loop.pcap")
    f = tmp_path / "n.yaml"
    f.write_text(f"networks:\n  - name: x\n    captures: ['{tmp_path}/{{day:%Y-%m-%d}}/*.pcap']\npairs: []\n")
    problems = load_config(f).network("x").input_problems(dt.date(2023, 1, 1))
    assert len(problems) == 3
    text = "\n".join(problems)
    assert "dir.pcap, a directory" in text
    assert "dangling.pcap, a dangling symbolic link" in text
    assert "loop.pcap, a symbolic-link loop" in text


def test_a_setting_added_at_its_old_behaviour_leaves_every_stage_hash_as_it_was(monkeypatch):
    """Upgrading must not make existing partitions stale: the embedded default hashes as before `gnn.absent_days`
    existed (values from that commit), and only choosing another behaviour changes the hashes. A deliberate change
    of a default does change them: update the values then, knowing that it makes existing data roots stale."""
    monkeypatch.delenv("DARKEMBED_DATA_ROOT", raising=False)
    cfg = load_config()
    assert cfg.stage_hash("models", "darknet-a", "igcngru") == "0c8f4dafacb1"
    assert cfg.stage_hash("embeddings", "darknet-a", "gcngru") == "6df16332274c"
    # the results changed on purpose when the open-set answers got the activity gate and pooled thresholds
    # (was ae4b4124dc61): every pair-day's results are recomputed, no embedding is
    assert cfg.stage_hash("results") == "d5de04a8fd4b"
    skip = load_config(overrides={"gnn": {"absent_days": "skip"}})
    assert skip.stage_hash("models", "darknet-a", "igcngru") != "0c8f4dafacb1"
    assert skip.stage_hash("results") != "ae4b4124dc61"
    assert skip.stage_hash("models", "darknet-a", "idarkvec") == cfg.stage_hash(
        "models", "darknet-a", "idarkvec"
    )
