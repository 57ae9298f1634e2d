"""Register darkembed's deployments against a Prefect server: work pools, the GPU concurrency limit, and the
deployments of infra/prefect.yaml."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
POOLS = {
    "cpu": "CPU machines: ingest, labels, corpus, graph, adaptation, evaluation",
    "gpu": "embedding training",
}
GPU_TAG = "embed"


def ensure_pools(pools: dict[str, str] = POOLS) -> list[str]:
    """Create the process work pools that do not exist yet; returns the names created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    created = []
    with get_client(sync_client=True) as client:
        for name, description in pools.items():
            try:
                client.read_work_pool(name)
            except ObjectNotFound:
                client.create_work_pool(WorkPoolCreate(name=name, type="process", description=description))
                created.append(name)
        # Embedding tasks are tagged `embed`: at most one at a time per GPU machine.
        client.create_concurrency_limit(tag=GPU_TAG, concurrency_limit=1)
    return created


def deploy_all(prefect_file: Path = ROOT / "infra" / "prefect.yaml", config: Path | None = None) -> None:
    """`prefect deploy --all` of the project file, with the checkout and the config file filled in.

    Raises:
        RuntimeError: no Prefect server is configured, or `prefect deploy` failed (its output is in the message).
    """
    if not os.environ.get("PREFECT_API_URL"):
        raise RuntimeError(
            "PREFECT_API_URL is not set: deployments live on a Prefect server. Start one with "
            "`prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    env = {
        **os.environ,
        "DARKEMBED_HOME": str(ROOT),
        "DARKEMBED_CONFIG": str(Path(config).resolve()) if config else "",
    }
    cmd = [
        sys.executable,
        "-m",
        "prefect",
        "--no-prompt",
        "deploy",
        "--all",
        "--prefect-file",
        str(prefect_file),
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(
            f"prefect deploy failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    log.info("deployed %s", prefect_file)
