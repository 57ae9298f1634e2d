"""Scale-out on an existing engine: the ingest flow fans its files over a (local) Dask cluster."""

import gzip

import pytest

from darkembed.config import load_config
from darkembed.ingest import CaptureError
from darkembed.layout import Layout
from darkembed.store import read_manifest
from flows.common import task_runner
from flows.ingest import ingest_flow
from tests.pcapbuild import pcap, syn

distributed = pytest.importorskip("distributed")


@pytest.mark.integration
def test_ingest_files_run_on_dask_workers(tracking_env):
    d = tracking_env / "world" / "na" / "2023-01-01"
    d.mkdir(parents=True)
    for h in range(4):
        frames = [(1672531200.0 + h * 3600 + i, syn(0x0A000000 + i, 0xC6336401, 23)) for i in range(100)]
        (d / f"h{h:02d}.pcap.gz").write_bytes(gzip.compress(pcap(frames)))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cl:
        cfg_file = tracking_env / "dask.yaml"
        cfg_file.write_text(
            "networks:\n  - {name: na, captures: ['world/na/{day:%Y-%m-%d}/*.pcap.gz']}\npairs: []\n"
            f"orchestration: {{dask_address: '{cl.scheduler_address}'}}\n"
        )
        cfg = load_config(cfg_file)
        with distributed.Client(cl) as client, distributed.get_task_stream(client) as ts:
            ingest_flow.with_options(task_runner=task_runner(cfg))(day="2023-01-01", config=[str(cfg_file)])
        workers = {t["worker"] for t in ts.data}
        m = read_manifest(Layout(tracking_env / "data").packets("na", "2023-01-01"))
        assert m["rows"] == 400 and len(m["files"]) == 4
        assert len(ts.data) >= 4  # every file ran as a Dask task
        assert len(workers) >= 1

        # A file that fails on a worker fails the day with its own error; the staged files are discarded.
        (d / "h05.pcap.gz").write_bytes(gzip.compress(b"not a capture"))
        with pytest.raises(CaptureError, match=r"h05\.pcap\.gz: not a capture"):
            ingest_flow.with_options(task_runner=task_runner(cfg))(day="2023-01-01", config=[str(cfg_file)])
    assert read_manifest(Layout(tracking_env / "data").packets("na", "2023-01-01")) == m
    assert not list((tracking_env / "data").rglob("*staging*"))
