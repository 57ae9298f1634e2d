"""What the flows share: their parameters (configuration, day, networks) and the task runner the configuration
asks for. Prefect is imported only inside the functions that need it: the command line imports this module
before it has applied Prefect's settings (`darkembed.cli.prefect_env`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from darkembed.config import Config, load_config
from darkembed.layout import parse_day

#: A flow's `config` parameter: the resolved configuration (what a flow passes to the flows it calls), or the
#: YAML files to overlay on the embedded default (what deployments and the command line pass, as JSON), or
#: None for the embedded default alone.
ConfigParam = Config | Sequence[str] | None
#: A flow's day parameter: a date (what a flow passes to the flows it calls) or its text, `YYYY-MM-DD` or
#: `YYYYMMDD` (deployments, the command line; `resolve_day` parses it).
Day = dt.date | str


def config_from(config: ConfigParam) -> Config:
    """The configuration as given, or the embedded default overlaid with the given files (empty entries, e.g.
    an unset template, ignored)."""
    if isinstance(config, Config):
        return config
    return load_config(*[p for p in (config or []) if p])


def resolve_day(day: Day | None) -> dt.date:
    """The day to process: as given, or yesterday (UTC) when None (the nightly default)."""
    if day is None:
        return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    if isinstance(day, dt.date):
        return day
    return parse_day(day)


def network_names(cfg: Config, networks: Sequence[str] | None) -> list[str]:
    """The networks to run (all configured ones by default), validated."""
    names = list(networks or [n.name for n in cfg.networks])
    for n in names:
        cfg.network(n)
    return names


def task_runner(cfg: Config):
    """The task runner the configuration asks for: a Dask cluster by address (`orchestration.dask_address`),
    or `orchestration.max_workers` local threads."""
    if cfg.orchestration.dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=cfg.orchestration.dask_address)
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=cfg.orchestration.max_workers)


@contextmanager
def use_task_runner(cfg: Config) -> Iterator[None]:
    """Inside a flow run: tasks submitted in the block (`task.submit`) run on `task_runner(cfg)`, which is
    shut down when the block ends.

    A flow's own task runner (its decorator's) is started before its body runs, when the configuration, a
    parameter, is not known yet; so the body starts the configured one and makes it the flow run's for the
    block (a copy of the run's context with another `task_runner`), which deployments honour as well as the
    command line (docs/pipeline.md, Flows: configuration, days and task runners).

    Raises:
        RuntimeError: called outside a flow run.
    """
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None:
        raise RuntimeError("use_task_runner: not inside a flow run")
    runner = task_runner(cfg)
    with runner, context.model_copy(update={"task_runner": runner}):
        yield
