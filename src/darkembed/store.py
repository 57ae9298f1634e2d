"""Atomic, idempotent daily partitions.

A partition is a directory of Parquet (zstd) files plus `_manifest.json`. It is built in a hidden temporary
directory beside its final place, the manifest is written last, and the directory is renamed into place: a
partition without a manifest does not exist, a crash leaves only hidden debris (cleaned by the next writer), and
rerunning a day replaces the partition whole. A lock file serialises writers of one partition: a second writer
gets `PartitionBusyError` at once instead of corrupting the first one's work.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from darkembed import __version__
from darkembed.schemas import conform

MANIFEST = "_manifest.json"


class PartitionBusyError(RuntimeError):
    """Another process is writing the same partition right now."""


class PartitionMissingError(FileNotFoundError):
    """A partition that a stage needs has not been written (or was never completed)."""


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, str | None]:
    """darkembed's version and, when running from a git checkout, the commit it runs."""
    sha = None
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            sha = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {"version": __version__, "git_sha": sha}


def is_complete(path: Path) -> bool:
    """Whether `path` is a complete partition (its manifest exists)."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a complete partition, or `PartitionMissingError`."""
    m = Path(path) / MANIFEST
    if not m.is_file():
        raise PartitionMissingError(
            f"{path}: no complete partition here (no {MANIFEST}); run its stage first"
        )
    return json.loads(m.read_text())


def _input_record(p: str | Path) -> dict[str, Any]:
    p = Path(p)
    try:
        st = p.stat()
        return {"path": str(p), "bytes": st.st_size, "mtime": st.st_mtime}
    except OSError:
        return {"path": str(p)}


class PartitionWriter:
    """Collects the files of one partition inside its temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.files: dict[str, int] = {}

    def write_table(self, name: str, table: pa.Table, schema: pa.Schema | None = None) -> Path:
        """Write `table` as `name` (Parquet, zstd), conformed to `schema` when given."""
        if schema is not None:
            table = conform(table, schema, str(self.tmp.parent / name))
        out = self.tmp / name
        pq.write_table(table, out, compression="zstd")
        self.files[name] = table.num_rows
        return out

    def adopt(self, name: str, src: Path, rows: int) -> Path:
        """Move an already written file (e.g. from a parallel worker) into the partition."""
        out = self.tmp / name
        os.replace(src, out)
        self.files[name] = rows
        return out

    def path(self, name: str) -> Path:
        """A path inside the partition for a file written by other means (e.g. a model checkpoint)."""
        return self.tmp / name


def _clean_debris(parent: Path, name: str) -> None:
    for p in parent.glob(f".{name}.tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in parent.glob(f".{name}.old-*"):
        shutil.rmtree(p, ignore_errors=True)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PartitionBusyError(
                f"{path}: another run is writing this partition now; wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


@contextmanager
def write_partition(
    path: Path,
    *,
    dataset: str,
    inputs: list[str | Path] | None = None,
    config_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Iterator[PartitionWriter]:
    """Build a partition atomically.

    Usage::

        with write_partition(layout.packets(net, day), dataset="packets", inputs=files) as w:
            w.write_table("part-x.parquet", table, PACKETS)

    On normal exit the manifest is written and the directory swapped into place, replacing any previous
    version whole. On an exception the temporary directory is removed and the previous version stays intact.

    Raises:
        PartitionBusyError: another process holds the partition's lock.
    """
    path = Path(path)
    with _lock(path):
        _clean_debris(path.parent, path.name)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        writer = PartitionWriter(tmp)
        try:
            yield writer
            manifest = {
                "dataset": dataset,
                "partition": str(path),
                "files": writer.files,
                "rows": sum(writer.files.values()),
                "inputs": [_input_record(p) for p in (inputs or [])],
                "config_hash": config_hash,
                "code": code_version(),
                "created_at": dt.datetime.now(dt.UTC).isoformat(),
                **({"extra": dict(extra)} if extra else {}),
            }
            mtmp = tmp / (MANIFEST + ".tmp")
            mtmp.write_text(json.dumps(manifest, indent=2, default=str))
            os.replace(mtmp, tmp / MANIFEST)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        replace_dir(tmp, path)


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished directory `tmp` to `path`, replacing what was there whole (the old version is moved
    aside first and deleted after; a reader never sees a mix of both)."""
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def partition_files(path: Path, pattern: str = "*.parquet") -> list[Path]:
    """The data files of a complete partition, sorted, or `PartitionMissingError`."""
    read_manifest(path)
    return sorted(Path(path).glob(pattern))
