"""Prefect tasks of the ingest stage: one task per source file (fanned out over threads or a Dask cluster), then
one commit per network-day that moves the staged part files into the `packets` partition atomically."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.config import Config
from darkembed.ingest import CaptureChecks, IngestReport, ingest_file
from darkembed.ingest.files import commit_day, part_names, staging_dir
from darkembed.layout import Layout
from darkembed.lineage import capture_files
from darkembed.store import release_scratch
from tasks.common import io_errors_only


def day_files(config: Config, network: str, day: dt.date) -> list[Path]:
    """The network's input files of the day (captures and legacy traces), or FileNotFoundError."""
    files = capture_files(config, network, day)
    if not files:
        patterns = config.network(network).inputs_for(day)
        pats = patterns["captures"] + patterns["legacy_traces"]
        raise FileNotFoundError(f"ingest[{network}/{day}]: no input files match {pats}")
    return files


def plan_day(config: Config, network: str, day: dt.date) -> dict:
    """Files, their part names and a fresh staging directory for one network-day."""
    files = day_files(config, network, day)
    part = Layout(config.data_path).packets(network, day)
    return {"files": [str(f) for f in files], "names": part_names(files), "staging": str(staging_dir(part))}


@task(
    name="ingest-file",
    task_run_name="ingest[{network}/{day}/{name}]",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=io_errors_only,
    cache_policy=NO_CACHE,
    tags=["io"],
)
def ingest_source(config: Config, network: str, day: dt.date, src: str, name: str, staging: str) -> dict:
    """Parse one source file into `staging/name` (rows of the UTC day only); returns its report."""
    rep = ingest_file(
        src,
        Path(staging) / name,
        day=day,
        keep_outside_day=config.ingest.keep_outside_day,
        max_bad=config.ingest.max_bad_offsets,
        checks=CaptureChecks(verify_checksums=config.ingest.verify_checksums),
    )
    return rep.as_row() | {"bad": rep.bad[: config.ingest.max_bad_offsets], "name": name}


@task(name="ingest-commit", task_run_name="commit[{network}/{day}]", cache_policy=NO_CACHE, tags=["io"])
def commit_packets(config: Config, network: str, day: dt.date, plan: dict, reports: list[dict]) -> dict:
    """Move the staged files of the day into its partition (replacing the previous version whole)."""
    results = [(r["name"], _report(r)) for r in reports]
    part = Layout(config.data_path).packets(network, day)
    commit_day(
        part,
        Path(plan["staging"]),
        results,
        [Path(f) for f in plan["files"]],
        config_hash=config.stage_hash("packets", network),
    )
    return {
        "network": network,
        "day": day.isoformat(),
        "partition": str(part),
        "reports": [{k: v for k, v in r.items() if k != "name"} for r in reports],
    }


def discard_staging(plan: dict) -> None:
    release_scratch(Path(plan["staging"]))


def _report(row: dict) -> IngestReport:
    rep = IngestReport(file=row["file"])
    for k in ("format", "records", "kept", "bytes", "seconds", "error"):
        setattr(rep, k, row[k])
    rep.skipped = dict(row["skipped"])
    rep.bad = [tuple(b) for b in row.get("bad", [])]
    rep.gaps = [tuple(g) for g in row.get("gaps", [])]
    rep.flagged = dict(row.get("flagged", {}))
    return rep
