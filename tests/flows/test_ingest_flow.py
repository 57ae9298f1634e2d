"""The ingest flow end to end: configured captures -> packets partitions + MLflow runs."""

import gzip

import mlflow
import pyarrow.parquet as pq
import pytest

from darkembed.ingest import CaptureError
from darkembed.layout import Layout
from darkembed.store import read_manifest
from flows.ingest import ingest_flow
from tests.pcapbuild import pcap, syn

DAY0 = 1672531200.0  # 2023-01-01T00:00:00Z


def _world(root):
    for net, n in (("na", 300), ("nb", 200)):
        d = root / "world" / net / "2023-01-01"
        d.mkdir(parents=True)
        for h in range(2):
            frames = [
                (DAY0 + h * 3600 + i, syn(0x0A000000 + i % 50, 0xC6336400 + i % 256, 23)) for i in range(n)
            ]
            (d / f"{net}_20230101_{h:02d}.pcap.gz").write_bytes(gzip.compress(pcap(frames)))
    cfg = root / "cfg.yaml"
    cfg.write_text(
        "networks:\n"
        "  - {name: na, captures: ['world/na/{day:%Y-%m-%d}/*.pcap.gz']}\n"
        "  - {name: nb, captures: ['world/nb/{day:%Y-%m-%d}/*.pcap.gz']}\n"
        "pairs: []\n"
    )
    return cfg


def test_ingest_flow_writes_partitions_and_logs_runs(tracking_env):
    cfg = _world(tracking_env)
    results = ingest_flow(day="2023-01-01", config=[str(cfg)])
    assert [r["network"] for r in results] == ["na", "nb"]
    lay = Layout(tracking_env / "data")
    for net, n in (("na", 600), ("nb", 400)):
        m = read_manifest(lay.packets(net, "2023-01-01"))
        assert m["rows"] == n and len(m["files"]) == 2 and m["config_hash"]
        assert len(m["extra"]["reports"]) == 2
    runs = mlflow.search_runs(experiment_names=["darkembed"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].data.tags["flow"] == "ingest"
    assert parents[0].data.tags["flow_run_id"]
    assert sorted(c.data.tags["network"] for c in children) == ["na", "nb"]
    by_net = {c.data.tags["network"]: c.data.metrics for c in children}
    assert by_net["na"]["ingest.packets"] == 600 and by_net["nb"]["ingest.files"] == 2

    # A rerun replaces the partition whole: same rows, nothing appended twice.
    ingest_flow(day="2023-01-01", networks=["na"], config=[str(cfg)])
    files = sorted(lay.packets("na", "2023-01-01").glob("*.parquet"))
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 600


def test_a_file_that_is_not_a_capture_fails_the_day_and_keeps_the_previous_partition(tracking_env):
    cfg = _world(tracking_env)
    ingest_flow(day="2023-01-01", networks=["na"], config=[str(cfg)])
    before = read_manifest(Layout(tracking_env / "data").packets("na", "2023-01-01"))
    (tracking_env / "world/na/2023-01-01/na_20230101_05.pcap.gz").write_bytes(gzip.compress(b"not a capture"))
    with pytest.raises(CaptureError, match=r"na_20230101_05\.pcap\.gz: not a capture"):
        ingest_flow(day="2023-01-01", networks=["na"], config=[str(cfg)])
    after = read_manifest(Layout(tracking_env / "data").packets("na", "2023-01-01"))
    assert after == before
    assert not list((tracking_env / "data").rglob("*staging*"))  # the other files' staged parts are gone
