"""The whole pipeline on a tiny simulated world: nightly, backfill, resume and chain rules."""

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import polars as pl
import pytest

from darkembed import tracking
from darkembed.adapt.exchange import LOCAL_KEY, Trust
from darkembed.config import load_config
from darkembed.embed.chain import ChainGapError
from darkembed.evaluate.classifier_bundle import load_classifier
from darkembed.layout import Layout
from darkembed.simulate import simulate
from darkembed.stages.day import day_complete
from darkembed.store import read_manifest
from flows.nightly import backfill, check_chains, nightly
from tests.outputs import check_golden

D1, D2 = dt.date(2023, 1, 1), dt.date(2023, 1, 2)
GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "nightly_tiny.json"
PICKLE_MAGIC = {b"\x80" + bytes([v]) for v in range(2, 6)}


@pytest.fixture
def world(tracking_env):
    cfg_file = tracking_env / "tiny.yaml"
    cfg_file.write_text(
        "simulate:\n  scale: 0.01\n  days: 2\n  min_hosts: 6\n"
        # a smoke test of the wiring: small aligners and few epochs (the methods' own tests check quality)
        "adapt:\n  epochs: 5\n  min_steps: 0\n  width: 128\nevaluate:\n  dnn_epochs: 10\n"
    )
    cfg = load_config(cfg_file)
    simulate(cfg)
    return cfg, [str(cfg_file)]


def test_backfill_runs_every_stage_and_resumes(world):
    cfg, conf = world
    assert backfill("2023-01-01", "2023-01-02", config=conf) == ["2023-01-01", "2023-01-02"]
    # The same outputs as the commit the golden file was made at (the features exactly, the trained stages' host
    # lists); a restructuring must leave them alone. Regenerate only for an intended change of output:
    #   python -m tests.outputs golden <data root of this world> tests/data/golden/nightly_tiny.json
    assert check_golden(cfg.data_path, json.loads(GOLDEN.read_text())) == []
    lay = Layout(cfg.data_path)
    for net in ("darknet-a", "darknet-b", "honeypot"):
        assert day_complete(cfg, net, D2)
        m = read_manifest(lay.models("idarkvec", net, D2))
        assert m["extra"]["continues"].endswith(f"network={net}/day=2023-01-01")
        assert read_manifest(lay.embeddings("idarkvec", net, D2))["rows"] > 0
        assert read_manifest(lay.labels(net, D2))["rows"] > 0
    # Adaptation of each pair: every setting scored on the same folds, bundles a customer can load safely.
    res = lay.partition("results", D2, "darknet-a~darknet-b", "idarkvec")
    summary = pl.read_parquet(res / "summary.parquet")
    assert {
        "no_adaptation",
        "transfer",
        "align/linear",
        "align/nonlinear",
        "align/procrustes",
        "independent",
    } <= set(summary["setting"].to_list())
    # the open-set answers read the customer's traffic features: its graph partition is a recorded input
    assert str(lay.graph("darknet-b", D2)) in {r.get("partition") for r in read_manifest(res)["inputs"]}
    # the analyst's list of unknown clusters is written (possibly empty on a tiny world), with its schema
    profiles = pl.read_parquet(res / "unknown_clusters.parquet")
    assert {"rank", "cluster", "hosts", "top_ports", "hour_profile", "space"} <= set(profiles.columns)
    assert set(pl.read_parquet(res / "cluster_metrics.parquet")["space"]) == {
        "reference",
        "transfer",
        "align",
    }
    # signed with the key the pipeline created under the data root; a customer trusts its public half
    trust = Trust.of([f"{cfg.data_path / LOCAL_KEY}.pub"])
    clf, manifest = load_classifier(res / "bundles" / "classifier", e=cfg.w2v.size, trust=trust)
    assert manifest.kind == "classifier" and "mirai" in clf.classes_
    assert (res / "summary.md").read_text().startswith("# darknet-a -> darknet-b")
    assert sorted(p.name for p in (res / "figures").glob("*.png")) == [
        "confusion_best.png", "f1_by_setting.png", "tsne_align_clusters.png", "tsne_align_labels.png",
        "tsne_noise_reassigned.png",
    ]  # fmt: skip
    # t-SNE maps only on the backfill's last day (report.tsne: last)
    first = lay.partition("results", D1, "darknet-a~darknet-b", "idarkvec")
    assert sorted(p.name for p in (first / "figures").glob("*.png")) == [
        "confusion_best.png",
        "f1_by_setting.png",
    ]
    # The provider's classifier is a registered model: the customer fetches it by name and version.
    fetched = tracking.fetch_bundle(
        "darkembed-darknet-a-classifier-idarkvec", dst=Path(cfg.data_root) / "fetched"
    )
    clf2, _ = load_classifier(fetched, e=cfg.w2v.size, trust=trust)
    assert clf2.classes_ == clf.classes_
    # No pickle anywhere in the data root (checkpoints are JSON + safetensors): nothing there can run code.
    files = [f for f in cfg.data_path.rglob("*") if f.is_file()]
    assert any(f.name == "w2v.safetensors" for f in files)
    assert not [f for f in files if f.suffix in {".model", ".pt", ".pkl", ".pickle", ".joblib", ".npy"}]
    assert not [f for f in files if f.suffix != ".safetensors" and f.read_bytes()[:2] in PICKLE_MAGIC]
    # Everything complete: a rerun does nothing.
    assert backfill("2023-01-01", "2023-01-02", config=conf) == []
    # A crash while day 1's results were written (kill -9): the partition has no manifest and the writer's
    # temporary stays. The backfill reruns that day's evaluation only, and leaves no debris.
    res1 = lay.partition("results", D1, "darknet-a~darknet-b", "idarkvec")
    (res1 / "_manifest.json").unlink()
    debris = Path(cfg.data_root) / ".tmp" / "results" / "method=idarkvec" / "network=darknet-a~darknet-b"
    shutil.copytree(res1, debris / f"day=2023-01-01.tmp-{'a' * 32}")
    kept = {p: read_manifest(p)["created_at"] for n in ("darknet-a", "darknet-b") for d in (D1, D2)
            for p in (lay.packets(n, d), lay.models("idarkvec", n, d))}  # fmt: skip
    kept[lay.partition("results", D1, "honeypot~darknet-b", "idarkvec")] = read_manifest(
        lay.partition("results", D1, "honeypot~darknet-b", "idarkvec")
    )["created_at"]
    assert not day_complete(cfg, "darknet-a", D1)
    assert backfill("2023-01-01", "2023-01-02", config=conf) == ["2023-01-01"]
    assert day_complete(cfg, "darknet-a", D1) and read_manifest(res1)["rows"] > 0
    assert {p: read_manifest(p)["created_at"] for p in kept} == kept  # nothing else was redone
    assert not list(debris.iterdir())
    assert pl.scan_parquet(Path(cfg.data_root) / "packets" / "**" / "*.parquet", hive_partitioning=True).select(
        pl.len()).collect().item() == sum(read_manifest(lay.packets(n, d))["rows"]
                                          for n in ("darknet-a", "darknet-b", "honeypot") for d in (D1, D2))  # fmt: skip
    assert backfill("2023-01-01", "2023-01-02", config=conf) == []  # idempotent after the rerun
    parents = [
        r
        for r in mlflow.search_runs(experiment_names=["darkembed"], output_format="list")
        if r.data.tags.get("flow") == "nightly"
    ]
    assert {r.data.tags["day"] for r in parents} == {"2023-01-01", "2023-01-02"}
    stages = {
        r.data.tags.get("stage")
        for r in mlflow.search_runs(experiment_names=["darkembed"], output_format="list")
        if r.data.tags.get("mlflow.parentRunId")
    }
    assert {"ingest", "labels", "corpus", "graph", "embed", "knn", "adapt", "report"} <= stages
    # An evaluation-only change leaves the features and embeddings current: a rerun of the day re-evaluates
    # without re-ingesting or retraining anything.
    conf2 = Path(conf[0]).with_name("eval-change.yaml")
    conf2.write_text(Path(conf[0]).read_text().replace("dnn_epochs: 10", "dnn_epochs: 4"))
    cfg2 = load_config(conf2)
    assert cfg2.hash() != cfg.hash() and day_complete(cfg2, "darknet-a", D2, evaluate=False)
    assert not day_complete(cfg2, "darknet-a", D2)  # only its results are stale
    before = {
        p: read_manifest(p)["created_at"]
        for p in (lay.packets("darknet-a", D2), lay.models("idarkvec", "darknet-a", D2))
    }
    out = nightly(day="2023-01-02", networks=["darknet-a", "darknet-b"], config=[str(conf2)])
    assert {r["stage"] for r in out} == {"knn", "adapt"}
    assert {p: read_manifest(p)["created_at"] for p in before} == before
    assert read_manifest(res)["config_hash"] == cfg2.stage_hash("results")
    # A change of what the embeddings depend on makes the day stale again.
    conf3 = Path(conf[0]).with_name("w2v-change.yaml")
    conf3.write_text(Path(conf[0]).read_text() + "w2v:\n  window: 3\n")
    assert not day_complete(load_config(conf3), "darknet-a", D2)


def test_days_out_of_order_are_refused_before_any_work(world):
    cfg, conf = world
    lay = Layout(cfg.data_path)
    # Day 2 on a fresh data root would start a second chain: refused, naming the day to run first.
    with pytest.raises(
        ChainGapError, match=r"no checkpoint for 2023-01-01 .*run 2023-01-01 \.\. 2023-01-01 first"
    ):
        nightly(day="2023-01-02", networks=["darknet-a"], config=conf)
    assert not lay.packets("darknet-a", D2).exists()  # nothing was run
    declared = Path(conf[0]).with_name("chain-start.yaml")
    declared.write_text("embed:\n  chain_start: 2023-01-02\n")
    check_chains(load_config(conf[0], declared), D2, ["darknet-a"])  # the declared first day may start it
    # A gap: day 3 continues day 2, which has never run.
    nightly(day="2023-01-01", networks=["darknet-a"], config=conf, evaluate=False)
    with pytest.raises(ChainGapError, match=r"run 2023-01-02 \.\. 2023-01-02 first"):
        nightly(day="2023-01-03", networks=["darknet-a"], config=conf)
    # A day 1 built while another day was declared the chain's first day is on another chain: stale.
    assert day_complete(cfg, "darknet-a", D1, evaluate=False)
    declared.write_text("embed:\n  chain_start: 2022-12-31\n")
    moved = load_config(conf[0], declared)
    assert not day_complete(moved, "darknet-a", D1, evaluate=False)


def test_a_replaced_capture_rebuilds_the_day_and_what_depends_on_it(world):
    cfg, conf = world
    lay = Layout(cfg.data_path)
    hour = sorted(Path(cfg.simulate.out).glob("darknet-a/2023-01-01/*.pcap*"))[5]
    full = hour.read_bytes()
    short = hour.with_suffix(".partial")
    subprocess.run(["sh", "-c", f"gzip -dc '{hour}' | head -c 4000 | gzip > '{short}'"], check=True)
    short.replace(hour)  # the capture as it was while still being written
    nightly(day="2023-01-01", networks=["darknet-a"], config=conf, evaluate=False)
    rows = read_manifest(lay.packets("darknet-a", D1))["rows"]
    before = {p: read_manifest(p)["created_at"] for p in (lay.corpus("darknet-a", D1),
                                                        lay.models("idarkvec", "darknet-a", D1))}  # fmt: skip
    assert day_complete(cfg, "darknet-a", D1, evaluate=False)
    hour.write_bytes(full)  # the complete capture replaces it
    assert not day_complete(cfg, "darknet-a", D1, evaluate=False)
    nightly(day="2023-01-01", networks=["darknet-a"], config=conf, evaluate=False)
    assert read_manifest(lay.packets("darknet-a", D1))["rows"] > rows
    assert all(read_manifest(p)["created_at"] != t for p, t in before.items())  # rebuilt downstream too
    assert day_complete(cfg, "darknet-a", D1, evaluate=False)


def test_corrupt_capture_mid_backfill_stops_there_and_a_rerun_continues(world):
    cfg, conf = world
    hour = sorted(Path(cfg.simulate.out).glob("darknet-b/2023-01-02/*.pcap.gz"))[5]
    good = hour.read_bytes()
    hour.write_bytes(b"this is not a capture at all")
    with pytest.raises(Exception, match=r"darknet-b_20230102_05\.pcap\.gz: not a capture"):
        backfill("2023-01-01", "2023-01-02", config=conf)
    lay = Layout(cfg.data_path)
    assert all(day_complete(cfg, n, D1) for n in ("darknet-a", "darknet-b", "honeypot"))
    assert not day_complete(cfg, "darknet-b", D2)
    assert not lay.packets("darknet-b", D2).exists()  # nothing half-written is visible
    hour.write_bytes(good)
    assert backfill("2023-01-01", "2023-01-02", config=conf) == ["2023-01-02"]  # day 1 is not redone
    assert all(day_complete(cfg, n, D2) for n in ("darknet-a", "darknet-b", "honeypot"))
