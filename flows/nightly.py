"""The nightly flow: one day, every configured network, every stage; and the backfill of a date range.

Per network: ingest -> labels, corpus, graph (concurrently) -> embeddings (the `embed` subflow, deployable on a
GPU pool). Networks run concurrently. Each flow run is one MLflow parent run; each stage of each network a nested
run. Deployed with a cron schedule the day defaults to yesterday (UTC).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence

from prefect import flow

from darkembed.config import Config
from darkembed.embed.chain import chain_start, is_chained, resume_from
from darkembed.layout import Layout
from darkembed.stages.day import day_parts, day_stale, feature_parts
from darkembed.stages.read import is_current, pair_name
from darkembed.store import read_manifest, sweep_debris
from darkembed.torchutil import set_threads
from flows.common import ConfigParam, Day, config_from, network_names, resolve_day, use_task_runner
from flows.embed import embed_flow
from flows.ingest import submit_ingest
from flows.log import flow_run, log_adapt, log_ingest, log_stage, stage_run
from tasks.adapt import adapt_pair
from tasks.corpus import build_corpus
from tasks.evaluate import knn_day
from tasks.graph import build_graph
from tasks.labels import label_day
from tasks.report import report_activity

log = logging.getLogger(__name__)


def _features(cfg: Config, names: list[str], d: dt.date) -> list[dict]:
    """Ingest, then labels, corpus and graph of each network; returns the stage results."""
    log.info("%s: ingest, labels, corpus and graph of %s", d, ", ".join(names))
    t0 = time.time()
    ingests = {n: submit_ingest(cfg, n, d) for n in names}
    later = []
    for n in names:
        # wait for the commit of the day's packets (its files parse concurrently with the other networks')
        ingests[n].result()
        t = time.time()
        for stage, task in (("labels", label_day), ("corpus", build_corpus), ("graph", build_graph)):
            later.append((stage, task.submit(cfg, n, d), t))
    results = []
    for fut in ingests.values():
        res = fut.result()
        log_ingest(res, t0)
        results.append({"stage": "ingest", **res})
    figures = []
    for stage, fut, t in later:
        res = fut.result()
        log_stage(stage, res, started=t)
        results.append({"stage": stage, **res})
        if stage == "labels":
            figures.append((report_activity.submit(cfg, res["network"], d), time.time()))
    for fut, t in figures:
        res = fut.result()
        log_stage("report", res, started=t, figure=res["figure"])
        results.append({"stage": "report", **res})
    return results


@flow(name="nightly", flow_run_name="nightly[{day}]")
def nightly(
    day: Day | None = None,
    networks: Sequence[str] | None = None,
    config: ConfigParam = None,
    evaluate: bool = True,
    force: bool = False,
    last_day: bool = True,
) -> list[dict]:
    """Run every stage for one day (default: yesterday UTC) on the given networks (default: all).

    `last_day`: whether the day ends a backfill (the adapt stage draws its t-SNE maps there, `report.tsne`).

    A network whose feature partitions of the day are current (`stages.read.is_current`: complete, same
    settings, unchanged inputs) is not re-ingested, a current embedding is not retrained and a pair's current
    results are not redone, so a rerun after a failure, a crash or an evaluation-only change redoes only what
    is missing or stale (`force` rebuilds everything). `evaluate=False` stops after the embeddings (no kNN, no
    pair adaptation).

    Raises:
        ChainGapError: an incremental method has no checkpoint for the day before (and the day is not the chain's
            first day, `embed.chain_start`); nothing is run.
    """
    cfg = config_from(config)
    d = resolve_day(day)
    names = network_names(cfg, networks)
    check_chains(cfg, d, names)
    sweep_debris(cfg.data_path)
    set_threads(cfg.orchestration.torch_threads, cfg.orchestration.max_workers)
    with flow_run("nightly", f"nightly[{d}]", cfg, day=d, networks=names), use_task_runner(cfg):
        stale = {n: day_stale(cfg, d, feature_parts(n)) for n in names}
        stale = {n: why for n, why in stale.items() if force or why}
        for n, why in stale.items():
            log.info("nightly %s: building the features of %s (%s)", d, n, "; ".join(why) or "forced")
        if len(stale) < len(names):
            log.info(
                "nightly %s: features of %s are current, not rebuilt", d, sorted(set(names) - set(stale))
            )
        results = _features(cfg, list(stale), d) if stale else []
        log.info("%s: embeddings (%s) of %s", d, ", ".join(cfg.embed.methods), ", ".join(names))
        with stage_run(f"embed[{d}]", stage="embed", day=d):
            results += [{"stage": "embed", **r} for r in run_embeddings(cfg, d, names, force)]
        if evaluate:
            results += evaluate_day(cfg, d, names, force, last_day=last_day)
    return results


def check_chains(cfg: Config, d: dt.date, names: Sequence[str]) -> None:
    """Refuse a day that no incremental method could continue (before any work is done).

    Raises:
        ChainGapError: the first network-method whose chain has no checkpoint for the day before; the message
            names the day to run first.
    """
    lay, start = Layout(cfg.data_path), chain_start(cfg)
    for m in cfg.embed.methods:
        if is_chained(m):
            for n in names:
                resume_from(lay, m, n, d, start)


def evaluate_day(
    cfg: Config, d: dt.date, names: Sequence[str], force: bool = True, last_day: bool = True
) -> list[dict]:
    """The day's evaluation, logged as nested runs: kNN per method and network, every setting of each pair
    (pairs whose results are current are not redone unless `force`)."""
    results = []
    pairs = [p for p in cfg.pairs if p.provider in names and p.customer in names]
    log.info("%s: evaluation: kNN of %s; transfer %s", d, ", ".join(names),
             ", ".join(f"{p.provider} -> {p.customer}" for p in pairs) or "(no pair)")  # fmt: skip
    t = time.time()
    knn = [(m, n, knn_day.submit(cfg, m, n, d)) for m in cfg.embed.methods for n in names]
    for m, _n, fut in knn:
        res = fut.result()
        if res is not None:
            log_stage("knn", res, started=t, method=m)
            results.append({"stage": "knn", **res})
    t = time.time()
    todo = [
        (p, m)
        for p in pairs
        for m in cfg.adapt.methods
        if force or not is_current(cfg, "results", pair_name(p.provider, p.customer), d, m)
    ]
    futures = [adapt_pair.submit(cfg, p.provider, p.customer, d, m, last_day=last_day) for p, m in todo]
    for fut in futures:
        res = fut.result()
        log_adapt(res, started=t)
        results.append({"stage": "adapt", **res})
    return results


def run_embeddings(cfg: Config, d: dt.date, names: list[str], force: bool = False) -> list[dict]:
    """The embedding flow for the day: on the GPU work pool's deployment when configured (with this run's
    resolved configuration, so that both sides use the same settings and data root), else inline."""
    dep = cfg.orchestration.embed_deployment
    if not dep:
        return embed_flow(day=d, networks=names, config=cfg, skip_current=not force)
    from prefect.deployments import run_deployment

    run = run_deployment(
        name=dep,
        parameters={
            "day": d.isoformat(),
            "networks": names,
            "config": cfg.model_dump(mode="json"),
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


@flow(name="backfill", flow_run_name="backfill[{start}..{end}]")
def backfill(
    start: Day,
    end: Day,
    networks: Sequence[str] | None = None,
    config: ConfigParam = None,
    force: bool = False,
    evaluate: bool = True,
) -> list[str]:
    """Run the nightly pipeline on each day of [start, end] in order, resuming after the last complete day.

    Days whose partitions are all current are skipped unless `force`; a failing day stops the backfill (later
    days depend on its checkpoints), and a rerun continues from there. `evaluate=False` builds the features
    and embeddings only (the experiments flow evaluates its test days itself). Each day is a `nightly` subflow
    run, given the resolved configuration and the day.

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
        why = [w for n in names for w in day_stale(cfg, d, day_parts(cfg, n, evaluate, names))]
        if not force and not why:
            log.info("backfill: %s already complete, skipped", d)
        else:
            if why:
                log.info("backfill: %s to run: %s", d, "; ".join(why))
            nightly(day=d, networks=names, config=cfg, evaluate=evaluate, force=force, last_day=d == b)
            ran.append(d.isoformat())
        d += dt.timedelta(days=1)
    return ran
