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
from darkembed.store import read_manifest
from darkembed.torchutil import set_threads
from flows.common import config_from, flow_tags, log_stage, network_names, resolve_day, stage_current
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
    day: str | None = None,
    networks: Sequence[str] | None = None,
    config: Sequence[str] | None = None,
    evaluate: bool = True,
    force: bool = False,
    last_day: bool = True,
) -> list[dict]:
    """Run every stage for one day (default: yesterday UTC) on the given networks (default: all).

    `last_day`: whether the day ends a backfill (the adapt stage draws its t-SNE maps there, `report.tsne`).

    A network whose feature partitions of the day are current (`stage_current`) is not re-ingested, and a current
    embedding is not retrained, so a rerun after a failure or an evaluation-only change redoes only what is
    missing (`force` rebuilds everything). `evaluate=False` stops after the embeddings (no kNN, no pair adaptation).
    """
    cfg = config_from(config)
    d = resolve_day(day)
    names = network_names(cfg, networks)
    set_threads(cfg.orchestration.torch_threads, cfg.orchestration.max_workers)
    with tracking.run(f"nightly[{d}]", config=cfg, tags=flow_tags("nightly", day=d, networks=names)):
        tracking.log_config(cfg)
        stale = [
            n for n in names if force or not all(stage_current(cfg, s, n, d) for s in (*STAGES, "reports"))
        ]
        if len(stale) < len(names):
            log.info(
                "nightly %s: features of %s are current, not rebuilt", d, sorted(set(names) - set(stale))
            )
        results = _features(cfg, stale, d) if stale else []
        with tracking.run(f"embed[{d}]", nested=True, tags={"stage": "embed", "day": d}):
            results += [{"stage": "embed", **r} for r in run_embeddings(cfg, d, names, config, force)]
        if evaluate:
            results += evaluate_day(cfg, d, names, last_day=last_day)
    return results


def evaluate_day(cfg: Config, d: dt.date, names: Sequence[str], last_day: bool = True) -> list[dict]:
    """The day's evaluation, logged as nested runs: kNN per method and network, every setting of each pair."""
    results = []
    knn = [(m, n, knn_day.submit(cfg, m, n, d)) for m in cfg.embed.methods for n in names]
    for m, _n, fut in knn:
        res = fut.result()
        if res is not None:
            log_stage("knn", res, method=m)
            results.append({"stage": "knn", **res})
    pairs = [p for p in cfg.pairs if p.provider in names and p.customer in names]
    futures = [adapt_pair.submit(cfg, p.provider, p.customer, d, m, last_day=last_day)
               for p in pairs for m in cfg.adapt.methods]  # fmt: skip
    for fut in futures:
        res = fut.result()
        log_adapt(res)
        results.append({"stage": "adapt", **res})
    return results


def run_embeddings(
    cfg: Config, d: dt.date, names: list[str], config: Sequence[str] | None, force: bool = False
) -> list[dict]:
    """The embedding flow for the day: on the GPU work pool's deployment when configured, else inline."""
    dep = cfg.orchestration.embed_deployment
    if not dep:
        return embed_flow(day=d.isoformat(), networks=names, config=config, skip_current=not force)
    from prefect.deployments import run_deployment

    run = run_deployment(
        name=dep,
        parameters={
            "day": d.isoformat(),
            "networks": names,
            "config": list(config or []),
            "skip_current": True,
        },
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
    """Whether every partition of the network-day is complete and current (`stage_current`)."""
    parts = [(s, None) for s in (*STAGES, "reports")]
    parts += [(s, m) for m in cfg.embed.methods for s in ("embeddings", "models")]
    return all(stage_current(cfg, s, network, day, m) for s, m in parts)


@flow(name="backfill", flow_run_name="backfill[{start}..{end}]")
def backfill(
    start: str,
    end: str,
    networks: Sequence[str] | None = None,
    config: Sequence[str] | None = None,
    force: bool = False,
    evaluate: bool = True,
) -> list[str]:
    """Run the nightly pipeline on each day of [start, end] in order, resuming after the last complete day.

    Days whose partitions are all current are skipped unless `force`; a failing day stops the backfill (later
    days depend on its checkpoints), and a rerun continues from there. `evaluate=False` builds the features and
    embeddings only (the experiments flow evaluates its test days itself).

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
            nightly(day=d.isoformat(), networks=names, config=config, evaluate=evaluate, force=force,
                    last_day=d == b)  # fmt: skip
            ran.append(d.isoformat())
        d += dt.timedelta(days=1)
    return ran
