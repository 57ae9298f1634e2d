"""Ingest source files into Parquet: one file at a time, a set of files in parallel, or a network's day.

Reads: capture files (libpcap, pcapng, gzip) and legacy text traces. Writes: the `packets` dataset,
`<root>/packets/network=<net>/day=<YYYY-MM-DD>/part-<source-file>.parquet`, with a manifest that carries the
per-file ingest reports.

Files are staged in a hidden directory beside the partition and moved in at commit, so a day's partition appears
whole or not at all. Parsing runs in threads: the compiled kernels, inflation and Parquet writing release the GIL.
"""

from __future__ import annotations

import datetime as dt
import glob
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from darkembed.ingest.capture import (
    GZIP_MAGIC,
    CaptureChecks,
    CaptureError,
    IngestReport,
    read_capture,
    sniff,
)
from darkembed.ingest.legacy import read_legacy
from darkembed.layout import part_name
from darkembed.schemas import PACKETS
from darkembed.store import release_scratch, scratch_dir, write_partition

log = logging.getLogger(__name__)


def detect_format(path: str | Path) -> str:
    """`capture` or `legacy` from the file's first bytes (inflated when gzip-compressed).

    Raises:
        CaptureError: the file cannot be read.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read: {exc.strerror}") from exc
    if head[:2] == GZIP_MAGIC:
        import zlib

        try:
            with open(path, "rb") as f:
                d = zlib.decompressobj(wbits=31)
                head = d.decompress(f.read(1 << 16), 64)
        except zlib.error:
            return "capture"  # let the capture reader report the corrupt stream
    if not head or sniff(head) is not None:
        return "capture"
    if head[:1].isalpha() or head[:1].isdigit():
        return "legacy"
    return "capture"


def read_source(
    path: str | Path, *, max_bad: int = 1000, checks: CaptureChecks | None = None
) -> tuple[pa.Table, IngestReport]:
    """Read any supported source file into a `packets` table (see `read_capture`, `read_legacy`)."""
    if detect_format(path) == "legacy":
        return read_legacy(path, max_bad=max_bad)
    return read_capture(path, max_bad=max_bad, checks=checks)


def day_bounds_ns(day: dt.date) -> tuple[int, int]:
    """[start, end) of a UTC day in ns since the epoch."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    s = int(start.timestamp()) * 1_000_000_000
    return s, s + 86_400 * 1_000_000_000


def restrict_to_day(table: pa.Table, day: dt.date, report: IngestReport) -> pa.Table:
    """Keep the rows of the UTC day (and rows without a timestamp); count the others as `outside_day`."""
    lo, hi = day_bounds_ns(day)
    ts = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = ~np.asarray(table.column("ts").is_null().to_numpy(zero_copy_only=False))
    inside = ~valid | ((ts >= lo) & (ts < hi))
    dropped = int((~inside).sum())
    if dropped:
        report.add_skip("outside_day", dropped)
        report.kept -= dropped
        table = table.filter(pa.array(inside))
    return table


def ingest_file(
    src: str | Path,
    out: str | Path,
    *,
    day: dt.date | None = None,
    keep_outside_day: bool = False,
    max_bad: int = 1000,
    checks: CaptureChecks | None = None,
) -> IngestReport:
    """Read one source file and write its rows as one Parquet file (zstd).

    Args:
        src: capture or legacy trace.
        out: the Parquet file to write (written to `out.tmp` then renamed).
        day: when given, rows outside this UTC day are dropped and counted (unless `keep_outside_day`).
        keep_outside_day: keep rows of other days.
        max_bad: damaged records reported with their offset.
        checks: the capture reader's integrity checks (default `CaptureChecks()`).

    Raises:
        CaptureError: the file is not a capture or trace.
    """
    table, report = read_source(src, max_bad=max_bad, checks=checks)
    if day is not None and not keep_outside_day and table.num_rows:
        table = restrict_to_day(table, day, report)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, out)
    level = logging.WARNING if (report.damaged or report.error) else logging.DEBUG
    log.log(level, report.summary())
    return report


def expand_inputs(patterns: Iterable[str]) -> list[Path]:
    """Files matching the glob patterns, sorted and de-duplicated."""
    found: set[Path] = set()
    for p in patterns:
        found.update(Path(x) for x in glob.glob(os.path.expanduser(p), recursive=True) if Path(x).is_file())
    return sorted(found)


def _unique_names(files: Sequence[Path]) -> list[str]:
    names = [part_name(f) for f in files]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            n = n.replace(".parquet", f".{seen[n]}.parquet")
        else:
            seen[n] = 0
        out.append(n)
    return out


def ingest_many(
    files: Sequence[Path],
    out_dir: Path,
    *,
    day: dt.date | None = None,
    workers: int = 0,
    keep_outside_day: bool = False,
    max_bad: int = 1000,
    checks: CaptureChecks | None = None,
    progress: Callable[[IngestReport], None] | None = None,
) -> list[tuple[str, IngestReport]]:
    """Ingest files in parallel into `out_dir/part-<name>.parquet`; returns (part name, report) in input order.

    A file that is not a capture raises `CaptureError` after the other files finished (none is lost).
    """
    names = _unique_names(files)
    n = workers or os.cpu_count() or 1

    def one(args: tuple[Path, str]) -> tuple[str, IngestReport]:
        f, name = args
        rep = ingest_file(
            f, out_dir / name, day=day, keep_outside_day=keep_outside_day, max_bad=max_bad, checks=checks
        )
        if progress:
            progress(rep)
        return name, rep

    results: list[tuple[str, IngestReport]] = []
    errors: list[Exception] = []
    with ThreadPoolExecutor(max_workers=min(n, max(1, len(files)))) as pool:
        futures = [pool.submit(one, (f, nm)) for f, nm in zip(files, names, strict=True)]
        for fut in futures:
            try:
                results.append(fut.result())
            except CaptureError as exc:
                errors.append(exc)
    if errors:
        raise CaptureError("; ".join(str(e) for e in errors))
    return results


def staging_dir(partition: Path) -> Path:
    """A fresh temporary directory (outside the dataset's tree, leased by this process until the commit or
    `release_scratch`) where a run stages its part files before the commit."""
    return scratch_dir(partition, "staging")


def part_names(files: Sequence[Path]) -> list[str]:
    """The partition file name of each source file (unique even when two sources share a name)."""
    return _unique_names(files)


def commit_day(
    partition: Path,
    staging: Path,
    results: Sequence[tuple[str, IngestReport]],
    inputs: Sequence[Path],
    *,
    config_hash: str | None = None,
) -> None:
    """Move staged part files into the day's `packets` partition atomically (replacing a previous version).

    Raises:
        PartitionBusyError: another run writes the same partition now.
    """
    try:
        with write_partition(
            partition,
            dataset="packets",
            inputs=list(inputs),
            config_hash=config_hash,
            extra={"reports": [r.as_row() for _, r in results]},
        ) as w:
            for name, rep in results:
                w.adopt(name, staging / name, rep.kept)
    finally:
        release_scratch(staging)


def ingest_day(
    partition: Path,
    files: Sequence[Path],
    day: dt.date,
    *,
    workers: int = 0,
    keep_outside_day: bool = False,
    max_bad: int = 1000,
    checks: CaptureChecks | None = None,
    config_hash: str | None = None,
    progress: Callable[[IngestReport], None] | None = None,
) -> list[IngestReport]:
    """Ingest a network's files of one day into its `packets` partition, atomically (replacing a previous one).

    Raises:
        CaptureError: a file is not a capture; nothing is written and the previous partition stays.
        PartitionBusyError: another run writes the same partition now.
    """
    staging = staging_dir(partition)
    try:
        results = ingest_many(
            files,
            staging,
            day=day,
            workers=workers,
            keep_outside_day=keep_outside_day,
            max_bad=max_bad,
            checks=checks,
            progress=progress,
        )
    except BaseException:
        release_scratch(staging)
        raise
    commit_day(partition, staging, results, files, config_hash=config_hash)
    return [r for _, r in results]


def count_rows(paths: Iterable[Path]) -> int:
    """Rows in Parquet files, from their footers."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def read_packets(partition: Path, columns: list[str] | None = None) -> pa.Table:
    """The `packets` table of a complete partition (all its part files)."""
    from darkembed.store import partition_files

    files = partition_files(partition)
    if not files:
        return PACKETS.empty_table() if columns is None else PACKETS.empty_table().select(columns)
    return pa.concat_tables(pq.read_table(f, columns=columns) for f in files)


__all__ = [
    "count_rows",
    "detect_format",
    "expand_inputs",
    "ingest_day",
    "ingest_file",
    "ingest_many",
    "read_packets",
    "read_source",
]
