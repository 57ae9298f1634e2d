"""The transfer flow: one provider-customer pair on one day (what `darkembed transfer` runs)."""

from __future__ import annotations

import time

from prefect import flow

from darkembed.torchutil import set_threads
from flows.common import ConfigParam, Day, config_from, resolve_day, use_task_runner
from flows.log import flow_run, log_adapt
from tasks.adapt import adapt_pair


@flow(name="transfer", flow_run_name="transfer[{provider}~{customer}/{day}]")
def transfer_flow(
    provider: str,
    customer: str,
    day: Day | None = None,
    method: str = "idarkvec",
    config: ConfigParam = None,
) -> dict:
    """Every [TNSM] setting, clustering and the exchange bundles for one pair and day (embeddings must exist)."""
    cfg = config_from(config)
    d = resolve_day(day)
    set_threads(cfg.orchestration.torch_threads, cfg.orchestration.max_workers)
    cfg.network(provider)
    cfg.network(customer)
    name = f"transfer[{provider}~{customer}/{d}]"
    with (
        flow_run("transfer", name, cfg, day=d, networks=[provider, customer], method=method),
        use_task_runner(cfg),
    ):
        started = time.time()
        res = adapt_pair.submit(cfg, provider, customer, d, method).result()
        log_adapt(res, started)
    return res
