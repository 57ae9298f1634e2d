"""The command line as an operator runs it, each test in its own process with Prefect's local server, as a cron job
would start it: Prefect's start-up settings, SIGTERM, and what a green run prints and records in MLflow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from darkembed.config import load_config
from darkembed.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
DARKEMBED = str(Path(sys.executable).parent / "darkembed")


@pytest.fixture
def tiny(tracking_env):
    """A one-day world and its overlay; the environment of a user's shell (no Prefect settings of the tests)."""
    f = tracking_env / "tiny.yaml"
    f.write_text(
        "simulate:\n  scale: 0.01\n  days: 1\n  min_hosts: 6\n"
        "adapt:\n  epochs: 5\n  min_steps: 0\n  width: 128\nevaluate:\n  dnn_epochs: 10\n"
    )
    simulate(load_config(f))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{ROOT}"
    return tracking_env, env


def _descendants(pid: int) -> dict[int, str]:
    """Live descendant processes of `pid` (pid -> command line), from /proc."""
    parents: dict[int, int] = {}
    cmds: dict[int, str] = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            cmds[int(p.name)] = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(p.name)] = int(fields[1])
    out, todo = {}, [pid]
    while todo:
        cur = todo.pop()
        for child, parent in parents.items():
            if parent == cur and child not in out:
                out[child] = cmds[child]
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_configured_start_up_timeout_reaches_prefect(tiny):
    """A busy machine, simulated by a start-up timeout shorter than the server needs: the command's own setting
    is the one Prefect applies (it was ignored when set after Prefect's import), and the error is one line."""
    home, env = tiny
    (home / "short.yaml").write_text("orchestration:\n  server_startup_timeout: 1\n")
    out = subprocess.run([DARKEMBED, "-c", "tiny.yaml", "-c", "short.yaml", "ingest", "-n", "darknet-a", "-d",
                          "2023-01-01"], cwd=home, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "Prefect's local server did not start within 1 s" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert (home / "var" / "prefect").is_dir()  # PREFECT_HOME applied too: the state is not the user's


def test_sigterm_stops_the_run_and_its_prefect_server(tiny):
    home, env = tiny
    log = (home / "run.log").open("w")
    p = subprocess.Popen([DARKEMBED, "-c", "tiny.yaml", "nightly", "-d", "2023-01-01"], cwd=home, env=env,
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        for _ in range(600):  # the flow is running once its first progress line is out
            if "ingest, labels, corpus and graph" in (home / "run.log").read_text() or p.poll() is not None:
                break
            time.sleep(0.5)
        children = _descendants(p.pid)
        assert any("uvicorn" in c for c in children.values()), (home / "run.log").read_text()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(120)
        left = {pid: c for pid, c in children.items() if _alive(pid)}
        assert not left, f"left running after SIGTERM: {left}"
        assert rc == 143
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        for pid in _descendants(p.pid):
            os.kill(pid, signal.SIGKILL)
    text = (home / "run.log").read_text()
    assert "interrupted" in text and "Traceback" not in text
    runs = mlflow.search_runs(experiment_names=["darkembed"], output_format="list")
    assert runs and all(r.info.status != "RUNNING" for r in runs)


def test_a_green_run_prints_progress_without_tracebacks_and_records_its_configuration(tiny):
    home, env = tiny
    out = subprocess.run([DARKEMBED, "-c", "tiny.yaml", "nightly", "-d", "2023-01-01"], cwd=home, env=env,
                         capture_output=True, text=True, timeout=1200)  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    for noise in ("Traceback", "Completed", "Finished in state", "database is locked"):
        assert noise not in text
    for line in ("ingest[darknet-a/2023-01-01] done in", "labels[honeypot/2023-01-01] done in",
                 "embed[idarkvec/darknet-b/2023-01-01] done in", "adapt[darknet-a~darknet-b/2023-01-01]: transfer fold",
                 "adapt[idarkvec/honeypot~darknet-b/2023-01-01] done in"):  # fmt: skip
        assert line in text
    runs = mlflow.search_runs(experiment_names=["darkembed"], output_format="list")
    parent = next(r for r in runs if r.data.tags.get("flow") == "nightly")
    assert parent.data.params["w2v.size"] == str(load_config("tiny.yaml").w2v.size)
    assert parent.data.params["simulate.scale"] == "0.01"
    client = mlflow.MlflowClient()
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "config")] == ["config/resolved.yaml"]
    # a stage's run lasts as long as its work (it used to open after the work and last a second)
    for r in runs:
        if r.data.tags.get("stage") == "adapt" and "setting" not in r.data.tags:
            work = sum(v for k, v in r.data.metrics.items() if k.startswith("seconds."))
            assert (r.info.end_time - r.info.start_time) / 1000 >= work > 0
