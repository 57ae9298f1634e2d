"""Flow tests run real Prefect flows against a temporary local Prefect server (test harness)."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(tmp_path_factory):
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    # The ephemeral server takes ~10 s to start on a 2-core machine: be patient.
    with prefect_test_harness(server_startup_timeout=180):
        yield
