"""The ingest stage: a network-day's source files, each parsed into a staging directory (the caller runs them in
parallel), then committed into the day's `packets` partition at once.

Reads: the network's captures and legacy traces of the day (`networks[].captures`, `legacy_traces`). Writes:
`packets/network=<n>/day=<d>/part-<source-file>.parquet`, with the per-file reports in its manifest.

`plan_day` names the files and makes the staging directory, `ingest_source` parses one file, `commit_packets`
moves the staged files into the partition (or discards them all when a file failed), `discard_staging` gives the
staging directory up. See docs/design.md (data contracts) for the partition and its atomic replacement.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

from darkembed.config import Config
from darkembed.ingest import CaptureChecks, IngestReport, ingest_file
from darkembed.ingest.files import commit_day, part_names, staging_dir
from darkembed.layout import Layout
from darkembed.lineage import capture_files
from darkembed.store import release_scratch

log = logging.getLogger(__name__)


class DayPlan(TypedDict):
    """What a network-day's ingest works on: its source files, their part names, the staging directory."""

    files: list[str]
    names: list[str]
    staging: str


class FileReport(TypedDict):
    """`IngestReport.as_row` of one source file with its damaged records (`bad`: (offset, reason), at most
    `ingest.max_bad_offsets`)."""

    file: str
    format: str
    records: int
    kept: int
    skipped: dict[str, int]
    bytes: int
    seconds: float
    error: str | None
    gaps: list[list]
    flagged: dict[str, int]
    bad: list[tuple[int, str]]


class SourceReport(FileReport):
    """A `FileReport` with the part file name the source was staged as."""

    name: str


class PacketsResult(TypedDict):
    """A committed `packets` partition and the report of each of its files."""

    network: str
    day: str
    partition: str
    reports: list[FileReport]


def day_files(config: Config, network: str, day: dt.date) -> list[Path]:
    """The network's input files of the day (captures and legacy traces); each glob match that is skipped (a
    directory, a dangling symbolic link) is logged as a warning, so that a deployed run shows it too.

    Raises:
        FileNotFoundError: no file matches the network's patterns for the day.
    """
    for problem in config.network(network).input_problems(day):
        log.warning("ingest[%s/%s]: %s", network, day, problem)
    files = capture_files(config, network, day)
    if not files:
        patterns = config.network(network).inputs_for(day)
        pats = patterns["captures"] + patterns["legacy_traces"]
        raise FileNotFoundError(f"ingest[{network}/{day}]: no input files match {pats}")
    return files


def plan_day(config: Config, network: str, day: dt.date) -> DayPlan:
    """Files, their part names and a fresh staging directory (leased by this process) for one network-day."""
    files = day_files(config, network, day)
    part = Layout(config.data_path).packets(network, day)
    return {"files": [str(f) for f in files], "names": part_names(files), "staging": str(staging_dir(part))}


def ingest_source(
    config: Config, network: str, day: dt.date, src: str, name: str, staging: str
) -> SourceReport:
    """Parse one source file into `staging/name` (rows of the UTC day only); returns its report.

    Raises:
        CaptureError: the file is not a capture or trace.
    """
    rep = ingest_file(
        src,
        Path(staging) / name,
        day=day,
        keep_outside_day=config.ingest.keep_outside_day,
        max_bad=config.ingest.max_bad_offsets,
        checks=CaptureChecks(verify_checksums=config.ingest.verify_checksums),
    )
    return SourceReport(**rep.as_row(), bad=rep.bad[: config.ingest.max_bad_offsets], name=name)


def commit_packets(
    config: Config,
    network: str,
    day: dt.date,
    plan: DayPlan,
    reports: Sequence[SourceReport | BaseException],
) -> PacketsResult:
    """Move the staged files of the day into its partition (replacing the previous version whole).

    Args:
        plan: the day's `plan_day`.
        reports: the `ingest_source` report of each file, or the exception a file failed with (an orchestrator
            passes every outcome once all files are done).

    Raises:
        BaseException: the first file's exception, after the staging directory was discarded (the previous
            partition stays).
        PartitionBusyError: another run writes the same partition now.
    """
    failed = [r for r in reports if isinstance(r, BaseException)]
    if failed:
        discard_staging(plan)
        raise failed[0]
    rows = [r for r in reports if not isinstance(r, BaseException)]
    part = Layout(config.data_path).packets(network, day)
    commit_day(
        part,
        Path(plan["staging"]),
        [(r["name"], IngestReport.from_row(r)) for r in rows],
        [Path(f) for f in plan["files"]],
        config_hash=config.stage_hash("packets", network),
    )
    return {
        "network": network,
        "day": day.isoformat(),
        "partition": str(part),
        "reports": [{k: v for k, v in r.items() if k != "name"} for r in rows],
    }


def discard_staging(plan: DayPlan) -> None:
    """Remove the day's staging directory and give up this process's lease on it (nothing when it is gone)."""
    release_scratch(Path(plan["staging"]))
