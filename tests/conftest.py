"""Shared fixtures: paths to the real samples, temporary data roots and tracking stores."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
TEST_DATA = ROOT / "tests" / "data"


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when the real samples are absent (a user's clone)."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real sample {p} is absent (../shared/data is only present in the project's workspace)")
    return p


@pytest.fixture
def tracking_env(tmp_path, monkeypatch):
    """MLflow on a temporary SQLite file, data root in tmp."""
    monkeypatch.setenv("DARKEMBED_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DARKEMBED_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: int, what: str) -> None:
    """Poll `url` once a second until it answers, or fail the test naming `what`."""
    import time
    import urllib.request

    for _ in range(seconds):
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"{what} did not start within {seconds} s")
