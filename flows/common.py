"""Helpers shared by the flows: configuration, the day to process, MLflow run tags."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from darkembed.config import Config, load_config
from darkembed.layout import parse_day


def config_from(paths: Sequence[str] | None) -> Config:
    """The embedded default overlaid with the given files."""
    return load_config(*(paths or []))


def resolve_day(day: str | dt.date | None) -> dt.date:
    """The day to process: as given, or yesterday (UTC) when None (the nightly default)."""
    if day is None:
        return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    if isinstance(day, dt.date):
        return day
    return parse_day(day)


def flow_tags(flow: str, **extra: object) -> dict[str, str]:
    """MLflow tags of a flow's parent run: flow name and run id (when run by Prefect), plus `extra`."""
    tags = {"flow": flow}
    try:
        from prefect.runtime import flow_run

        if flow_run.id:
            tags["flow_run_id"] = str(flow_run.id)
            tags["flow_run_name"] = str(flow_run.name)
    except Exception:  # outside a flow run
        pass
    tags.update(
        {k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v) for k, v in extra.items()}
    )
    return tags
