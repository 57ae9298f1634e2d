"""The nightly flow: one day, every configured network, every stage; and the backfill of a date range.

Per network: ingest -> labels, corpus, graph (concurrently) -> embeddings (the `embed` subflow, deployable on a
GPU pool). Networks run concurrently. Each flow run is one MLflow parent run; each stage of each network a nested
run. Deployed with a cron schedule the day defaults to yesterday (UTC).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from darkembed import tracking
from darkembed.config import Config
from darkembed.layout import Layout
from darkembed.store import is_complete, read_manifest
from darkembed.torchutil import set_threads
from flows.common import config_from, flow_tags, log_stage, network_names, resolve_day
from flows.embed import embed_flow
from flows.ingest import log_ingest_result, submit_ingest
from flows.transfer import log_adapt
from tasks.adapt import adapt_pair
from tasks.corpus import build_corpus
from tasks.evaluate import knn_day
from tasks.graph import build_graph
from tasks.labels import label_day
from tasks.report import report_activity

log = logging.getLogger(__name__)

STAGES = ("packets", "labels", "corpus", "graph")


def _features(cfg: Config, names: list[str], d: dt.date) -> list[dict]:
    """Ingest, then labels, corpus and graph of each network; returns the stage results."""
    ingests = {n: submit_ingest(cfg, n, d) for n in names}
    later = []
    for n in names:
        ingests[n].result()  # commits the day's packets (its files were parsed concurrently with the others)
        for stage, task in (("labels", label_day), ("corpus", build_corpus), ("graph", build_graph)):
            later.append((stage, task.submit(cfg, n, d)))
    results = []
    for n, fut in ingests.items():
        res = fut.result()
        with tracking.run(f"ingest[{n}/{d}]", nested=True, tags={"stage": "ingest", "network": n, "day": d}):
            log_ingest_result(res)
        results.append({"stage": "ingest", **res})
    figures = []
    for stage, fut in later:
        res = fut.result()
        log_stage(stage, res)
        results.append({"stage": stage, **res})
        if stage == "labels":
            figures.append(report_activity.submit(cfg, res["network"], d))
    for fut in figures:
        res = fut.result()
        log_stage("report", res, figure=res["figure"])
        results.append({"stage": "report", **res})
    return results


@flow(name="nightly", flow_run_name="nightly[{day}]", task_runner=ThreadPoolTaskRunner(max_workers=4))
def nightly(
    day: str | None = None, networks: Sequence[str] | None = None, config: Sequence[str] | None = None
) -> list[dict]:
    """Run every stage for one day (default: yesterday UTC) on the given networks (default: all)."""
    cfg = config_from(config)
    d = resolve_day(day)
    names = network_names(cfg, networks)
    set_threads(cfg.orchestration.torch_threads, cfg.orchestration.max_workers)
    with tracking.run(f"nightly[{d}]", config=cfg, tags=flow_tags("nightly", day=d, networks=names)):
        tracking.log_config(cfg)
        results = _features(cfg, names, d)
        with tracking.run(f"embed[{d}]", nested=True, tags={"stage": "embed", "day": d}):
            results += [{"stage": "embed", **r} for r in run_embeddings(cfg, d, names, config)]
        knn = [(m, n, knn_day.submit(cfg, m, n, d)) for m in cfg.embed.methods for n in names]
        for m, _n, fut in knn:
            res = fut.result()
            if res is not None:
                log_stage("knn", res, method=m)
                results.append({"stage": "knn", **res})
        pairs = [p for p in cfg.pairs if p.provider in names and p.customer in names]
        futures = [
            adapt_pair.submit(cfg, p.provider, p.customer, d, m) for p in pairs for m in cfg.adapt.methods
        ]
        for fut in futures:
            res = fut.result()
            log_adapt(res)
            results.append({"stage": "adapt", **res})
    return results


def run_embeddings(cfg: Config, d: dt.date, names: list[str], config: Sequence[str] | None) -> list[dict]:
    """The embedding flow for the day: on the GPU work pool's deployment when configured, else inline."""
    dep = cfg.orchestration.embed_deployment
    if not dep:
        return embed_flow(day=d.isoformat(), networks=names, config=config)
    from prefect.deployments import run_deployment

    run = run_deployment(
        name=dep,
        parameters={"day": d.isoformat(), "networks": names, "config": list(config or [])},
        timeout=None,
    )
    if not run.state or not run.state.is_completed():
        state = run.state.type.value if run.state else "unknown"
        raise RuntimeError(
            f"embedding deployment {dep} ended {state}: {run.state.message if run.state else ''}"
        )
    lay = Layout(cfg.data_path)
    return [
        {
            "method": m,
            "network": n,
            "day": d.isoformat(),
            "hosts": read_manifest(lay.embeddings(m, n, d))["rows"],
            "flow_run": str(run.id),
        }
        for m in cfg.embed.methods
        for n in names
    ]


def day_complete(cfg: Config, network: str, day: dt.date) -> bool:
    """Whether every partition of the network-day exists and was made with the current configuration."""
    lay = Layout(cfg.data_path)
    parts = [lay.partition(s, day, network) for s in STAGES]
    parts += [lay.embeddings(m, network, day) for m in cfg.embed.methods]
    parts += [lay.models(m, network, day) for m in cfg.embed.methods]
    return all(is_complete(p) and read_manifest(p).get("config_hash") == cfg.hash() for p in parts)


@flow(name="backfill", flow_run_name="backfill[{start}..{end}]")
def backfill(
    start: str,
    end: str,
    networks: Sequence[str] | None = None,
    config: Sequence[str] | None = None,
    force: bool = False,
) -> list[str]:
    """Run the nightly pipeline on each day of [start, end] in order, resuming after the last complete day.

    Days whose partitions are all complete with the current configuration are skipped unless `force`; a failing
    day stops the backfill (later days depend on its checkpoints), and a rerun continues from there.

    Returns:
        The days run (ISO strings).
    """
    cfg = config_from(config)
    a, b = resolve_day(start), resolve_day(end)
    if b < a:
        raise ValueError(f"backfill end {b} is before start {a}")
    names = network_names(cfg, networks)
    ran = []
    d = a
    while d <= b:
        if not force and all(day_complete(cfg, n, d) for n in names):
            log.info("backfill: %s already complete, skipped", d)
        else:
            nightly(day=d.isoformat(), networks=names, config=config)
            ran.append(d.isoformat())
        d += dt.timedelta(days=1)
    return ran
