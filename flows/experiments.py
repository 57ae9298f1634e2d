"""The experiments flow: the papers' experiments as named, parameterised runs (conf/experiments/<name>.yaml).

The flow composes what `darkembed.stages.experiments` provides: it simulates the experiment's world under
`var/experiments/<name>/` (at the overlay's scale and length, or as given), backfills it through every stage
with the backfill flow (once per sweep value), adapts the pairs of the test days that need it (`transfer`
experiments), and writes `report.md` with the paper's numbers beside ours; everything is logged to MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prefect import flow

from darkembed.stages.experiments import (
    ExperimentResult,
    ensure_world,
    evaluate_experiment,
    evaluation_days,
    experiment_networks,
    point_tables,
    resolve_experiment,
    stale_results,
    sweep_points,
    write_point_config,
)
from flows.common import use_task_runner
from flows.log import flow_run, log_adapt, log_experiment
from flows.nightly import backfill
from tasks.adapt import adapt_pair


@flow(name="experiments", flow_run_name="experiment[{name}]")
def experiment(
    name: str,
    scale: float | None = None,
    days: int | None = None,
    config: Sequence[str] | None = None,
    overrides: dict | None = None,
    home: str = "var/experiments",
) -> ExperimentResult:
    """Run a named experiment end to end and write its report; returns the report path and headline numbers."""
    cfg, root = resolve_experiment(name, config, scale=scale, days=days, overrides=overrides, home=home)
    evaluated = evaluation_days(cfg)
    nets = experiment_networks(cfg)
    root.mkdir(parents=True, exist_ok=True)
    ensure_world(cfg)
    points = []
    with flow_run("experiments", f"experiment[{name}]", cfg, experiment=name, scale=cfg.simulate.scale,
                  days=cfg.simulate.days):  # fmt: skip
        for value, pcfg in sweep_points(cfg):
            write_point_config(root, value, pcfg)
            backfill(start=cfg.simulate.start, end=max(evaluated), networks=nets, config=pcfg, evaluate=False)
            if cfg.experiment.kind == "transfer":
                # every setting of each pair on each evaluated day, one pair-day at a time, as nested runs
                with use_task_runner(pcfg):
                    for pair, method, day in stale_results(pcfg, evaluated):
                        started = time.time()
                        res = adapt_pair.submit(pcfg, pair.provider, pair.customer, day, method).result()
                        log_adapt(res, started)
            points.append(point_tables(pcfg, value, evaluated))
        res = evaluate_experiment(name, cfg, root, points, evaluated)
        log_experiment(res)
    return ExperimentResult(experiment=res["experiment"], report=res["report"], metrics=res["metrics"])
