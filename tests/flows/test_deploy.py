"""Deployments for real: a Prefect server on loopback, `darkembed deploy`, a deployment run picked up by a
process worker, the flow run completed and its partition written; and the task runner a flow takes from its
configuration (the only way a deployment's runner can follow the configuration)."""

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from darkembed.config import load_config
from flows.common import config_from, use_task_runner
from tests.conftest import free_port, wait_http
from tests.pcapbuild import pcap, syn

BIN = Path(sys.executable).parent


def _run(args, env, timeout=240):
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args}: {out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout + out.stderr


@pytest.mark.integration
def test_deploy_and_run_on_a_process_worker(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", 180, "the Prefect server")
        world = tmp_path / "world" / "na" / "2023-01-01"
        world.mkdir(parents=True)
        frames = [(1672531200.0 + i, syn(0x0A000000 + i % 9, 0xC6336401, 23)) for i in range(300)]
        (world / "h00.pcap.gz").write_bytes(gzip.compress(pcap(frames)))
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            f"data_root: {tmp_path / 'data'}\n"
            f"tracking: {{uri: 'sqlite:///{tmp_path / 'mlflow.db'}', artifacts: {tmp_path / 'art'}}}\n"
            f"networks:\n  - {{name: na, captures: ['{tmp_path}/world/na/{{day:%Y-%m-%d}}/*.pcap.gz']}}\n"
            "pairs: []\n"
        )
        out = _run([str(BIN / "darkembed"), "-c", str(cfg), "deploy"], env)
        assert "created: cpu, gpu" in out.replace("\n", " ")
        deps = _run([str(BIN / "prefect"), "deployment", "ls"], env)
        for name in ("nightly", "backfill", "ingest", "embed-gpu"):
            assert name in deps
        _run([str(BIN / "prefect"), "deployment", "run", "ingest/ingest", "--param", "day=2023-01-01"], env)
        _run([str(BIN / "prefect"), "worker", "start", "--pool", "cpu", "--run-once"], env)
        manifest = tmp_path / "data/packets/network=na/day=2023-01-01/_manifest.json"
        assert json.loads(manifest.read_text())["rows"] == 300
        runs = _run([str(BIN / "prefect"), "flow-run", "ls", "--state", "COMPLETED"], env)
        assert "ingest" in runs
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)


@task
def _thread() -> str:
    time.sleep(0.2)  # long enough for the pool to start every thread it may
    return threading.current_thread().name


@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def _fan_out(config, tasks: int) -> tuple[int, list[str]]:
    with use_task_runner(config_from(config)):
        runner = FlowRunContext.get().task_runner
        return runner._max_workers, [f.result() for f in [_thread.submit() for _ in range(tasks)]]


def test_a_flow_runs_its_tasks_on_the_runner_its_configuration_asks_for(tmp_path):
    cfg_file = tmp_path / "two.yaml"
    cfg_file.write_text("orchestration: {max_workers: 2}\n")
    # the files (what a deployment passes) or the resolved configuration (what a flow passes to the next)
    for config in ([str(cfg_file)], load_config(cfg_file)):
        workers, threads = _fan_out(config, 6)
        assert workers == 2 and len(threads) == 6 and len(set(threads)) == 2, threads
