"""MLflow tracking as operators meet it: two first runs at once on a fresh store, runs of killed processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from darkembed import tracking
from darkembed.config import TrackingConfig

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _store(tmp_path: Path) -> TrackingConfig:
    return TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifacts=str(tmp_path / "art"))


def test_two_first_runs_at_once_on_a_fresh_store_both_succeed(tmp_path):
    cfg = _store(tmp_path)
    go = tmp_path / "go"
    code = f"""
        import time
        from pathlib import Path
        from darkembed import tracking
        from darkembed.config import TrackingConfig
        import mlflow.store.db.utils  # both processes import first, then start together
        while not Path({str(go)!r}).exists():
            time.sleep(0.01)
        tracking.setup(TrackingConfig(uri={cfg.uri!r}, artifacts={cfg.artifacts!r}))
        with tracking.run("first"):
            tracking.log_metrics({{"x": 1}})
    """
    procs = [_python(code, tmp_path) for _ in range(3)]
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    assert not any("Traceback" in err for _, err in outs)
    mlflow.set_tracking_uri(cfg.uri)
    runs = mlflow.search_runs(experiment_names=["darkembed"], output_format="list")
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}


def test_a_run_whose_process_was_killed_is_marked_failed_at_the_next_start(tmp_path):
    cfg = _store(tmp_path)
    code = f"""
        import os, signal
        from darkembed import tracking
        from darkembed.config import TrackingConfig
        tracking.setup(TrackingConfig(uri={cfg.uri!r}, artifacts={cfg.artifacts!r}))
        with tracking.run("killed"):
            with tracking.run("stage", nested=True):
                print("started", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
    """
    p = _python(code, tmp_path)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == -9 and "started" in out
    exp_id = tracking.setup(cfg)
    with tracking.run("alive"):  # a live run of this process is left alone by the next start
        live = mlflow.active_run().info.run_id
        assert tracking.mark_interrupted(exp_id) == []
    client = MlflowClient()
    runs = {r.info.run_name: r for r in client.search_runs([exp_id])}
    assert runs["killed"].info.status == runs["stage"].info.status == "FAILED"
    assert "ended without closing" in runs["killed"].data.tags["darkembed.interrupted"]
    assert client.get_run(live).info.status == "FINISHED"


def test_a_run_opened_after_the_work_starts_when_the_work_did(tmp_path):
    tracking.setup(_store(tmp_path))
    with (
        tracking.run("parent") as parent,
        tracking.run("stage", nested=True, started=1_700_000_000.0) as child,
    ):
        pass
    run = MlflowClient().get_run(child.info.run_id)
    assert run.info.start_time == 1_700_000_000_000
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert run.info.status == "FINISHED"


def test_the_resolved_configuration_is_logged_as_params_and_artifact(tmp_path):
    from darkembed.config import load_config

    cfg = load_config()
    tracking.setup(_store(tmp_path))
    with tracking.run("p") as r:
        tracking.log_config(cfg)
    run = MlflowClient().get_run(r.info.run_id)
    assert run.data.params["w2v.size"] == str(cfg.w2v.size)
    assert run.data.params["networks.0.name"] == cfg.networks[0].name
    assert len(run.data.params) == len(cfg.flat())
    names = [a.path for a in MlflowClient().list_artifacts(r.info.run_id, "config")]
    assert names == ["config/resolved.yaml"]
