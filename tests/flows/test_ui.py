"""The MLflow UI as a user sees it after a pipeline run: headless Chromium opens the run, its metrics and the
activity figure. A screenshot is kept in var/test-artifacts/ (CI uploads nothing, but a developer can look)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from darkembed.cli import runs_url
from darkembed.config import load_config
from darkembed.simulate import simulate
from flows.nightly import nightly
from tests.conftest import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    "--virtual-time-budget=20000",
]


def _chromium(url: str, tmp: Path, *extra: str) -> str:
    out = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp}", *extra, url], capture_output=True, text=True, timeout=120
    )
    return out.stdout


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_mlflow_ui_shows_the_run_its_metrics_and_figure(tracking_env):
    cfg_file = tracking_env / "tiny.yaml"
    cfg_file.write_text("simulate:\n  scale: 0.01\n  days: 1\n  min_hosts: 6\n")
    simulate(load_config(cfg_file))
    nightly(day="2023-01-01", networks=["darknet-a"], config=[str(cfg_file)])
    exp = mlflow.get_experiment_by_name("darkembed")
    runs = mlflow.search_runs([exp.experiment_id], output_format="list")
    report = next(r for r in runs if r.data.tags.get("stage") == "report")
    labels = next(r for r in runs if r.data.tags.get("stage") == "labels")

    port = free_port()
    ui = subprocess.Popen(
        [str(Path(sys.executable).parent / "darkembed"), "-c", str(cfg_file), "ui", "--port", str(port)],
        cwd=tracking_env,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", 120, "the MLflow UI")
        base = f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}/runs"
        # the link `darkembed ui` prints lands on the runs (MLflow 3 itself opens on its GenAI view, without them)
        page = _chromium(runs_url("127.0.0.1", port, exp.experiment_id), tracking_env / "c0", "--dump-dom")
        assert "nightly[2023-01-01]" in page
        page = _chromium(f"{base}/{labels.info.run_id}", tracking_env / "c1", "--dump-dom")
        assert "labels[darknet-a/2023-01-01]" in page
        assert "labels.active_hosts" in page  # a metric of the stage, as the user sees it
        fig_url = f"{base}/{report.info.run_id}/artifacts/figures/activity.png"
        page = _chromium(fig_url, tracking_env / "c2", "--dump-dom")
        assert (
            'alt="figures/activity.png"' in page and 'src="blob:' in page
        )  # the image was fetched and shown
        shots = ROOT / "var" / "test-artifacts"
        shots.mkdir(parents=True, exist_ok=True)
        _chromium(fig_url, tracking_env / "c3", f"--screenshot={shots / 'mlflow-ui-activity.png'}")
        assert (shots / "mlflow-ui-activity.png").stat().st_size > 10_000
    finally:
        os.killpg(ui.pid, 15)
        ui.wait(30)
