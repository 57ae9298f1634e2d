"""The embedding flow: train every configured method for each network on one day.

It is its own flow so that a deployment can run it on a GPU work pool (infra/prefect.yaml); locally the nightly
flow calls it inline as a subflow.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prefect import flow

from darkembed.config import GNN_METHODS
from darkembed.stages.read import is_current
from darkembed.torchutil import set_threads
from flows.common import ConfigParam, Day, config_from, network_names, resolve_day, use_task_runner
from flows.log import log_stage
from tasks.embed import embed_gnn, embed_idarkvec


@flow(name="embed", flow_run_name="embed[{day}]")
def embed_flow(
    day: Day | None = None,
    networks: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    config: ConfigParam = None,
    skip_current: bool = False,
) -> list[dict]:
    """Update the embeddings of `day` for each network and method (continuing the previous day's checkpoints).

    With `skip_current`, a method-network whose embeddings and model of the day are current (complete, made with
    the configuration sections they depend on) is not retrained; the nightly flow reruns use it.
    """
    cfg = config_from(config)
    d = resolve_day(day)
    names = network_names(cfg, networks)
    set_threads(cfg.orchestration.torch_threads, cfg.orchestration.max_workers)
    wanted = list(methods or cfg.embed.methods)
    unknown = [m for m in wanted if m != "idarkvec" and m not in GNN_METHODS]
    if unknown:
        raise ValueError(
            f"unknown embedding method(s) {unknown}; available: idarkvec, {', '.join(GNN_METHODS)}"
        )
    todo = [
        (m, n)
        for m in wanted
        for n in names
        if not (
            skip_current and is_current(cfg, "embeddings", n, d, m) and is_current(cfg, "models", n, d, m)
        )
    ]
    started = time.time()
    results = []
    with use_task_runner(cfg):
        futures = [
            (m, n, embed_idarkvec.submit(cfg, n, d) if m == "idarkvec" else embed_gnn.submit(cfg, n, d, m))
            for m, n in todo
        ]
        for m, _n, fut in futures:
            res = fut.result()
            log_stage("embed", res, started=started, method=m)
            results.append(res)
    return results
