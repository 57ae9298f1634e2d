"""Atomic, idempotent daily partitions.

A partition is a directory of Parquet (zstd) files plus `_manifest.json`. It is built in a temporary directory
under `<root>/.tmp/` (outside every dataset's tree, so a reader globbing `packets/**/*.parquet` never sees a
half-written or crashed version), the manifest is written last, and the directory is renamed into place: a
partition without a manifest does not exist and rerunning a day replaces the partition whole. A lock file
serialises writers of one partition: a second writer gets `PartitionBusyError` at once instead of corrupting the
first one's work; a reader that must see one version throughout (a chain continuing its predecessor's checkpoint)
holds the same lock shared (`reading`).

Every temporary directory is leased (an `flock` on the directory) by the process that made it, for as long as it
uses it. A crash releases the lease, and what is left is debris: `remove_debris` (run at the start of every write
of the partition) and `sweep_debris` (run at the start of a flow) delete exactly the temporaries whose lease is
free, never a live writer's.

The manifest records what the partition was made from (`inputs`): source files by path, size, modification time
(ns) and a digest of their first and last 64 KiB; input partitions by a digest of their manifest.
`changed_inputs` compares them with what is there now, so a replaced capture or a rebuilt upstream partition makes
the partition stale (docs/pipeline.md).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
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
#: Directory under the data root that holds every partition's temporaries.
SCRATCH = ".tmp"
#: Bytes read at each end of a source file for its digest.
EDGE_BYTES = 64 * 1024

log = logging.getLogger(__name__)
_DEBRIS = re.compile(r"^\.?(?P<name>.+)\.(?P<kind>tmp|staging|old)-[0-9a-f]{32}$")


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


def manifest_digest(path: Path) -> str | None:
    """A digest of a complete partition's manifest (None when it has none): it changes whenever the partition is
    rewritten, so a downstream partition that recorded it sees a rebuilt input."""
    try:
        return hashlib.sha256((Path(path) / MANIFEST).read_bytes()).hexdigest()[:16]
    except (FileNotFoundError, NotADirectoryError):
        return None


def edge_digest(path: Path, st: os.stat_result | None = None) -> str:
    """A digest of a file's size and its first and last `EDGE_BYTES`.

    Hashing whole captures would cost as much I/O as ingesting them again, at every completeness check of every
    day. Size and modification time catch a file that grew, was truncated or was rewritten; the two ends (a
    capture's header and its first and last records, with their timestamps) catch a different file of the same
    size copied in with its time preserved. An edit in the middle that keeps size and time is not caught.
    """
    st = st or os.stat(path)
    h = hashlib.blake2b(str(st.st_size).encode(), digest_size=16)
    with open(path, "rb") as f:
        h.update(f.read(EDGE_BYTES))
        if st.st_size > 2 * EDGE_BYTES:
            f.seek(-EDGE_BYTES, os.SEEK_END)
        h.update(f.read(EDGE_BYTES))
    return h.hexdigest()


def _listing(d: Path) -> dict[str, list[int]]:
    """The regular files under directory `d` (hidden ones excepted): relative path -> [size, mtime_ns]."""
    out = {}
    for f in sorted(d.rglob("*")):
        rel = f.relative_to(d)
        if f.is_file() and not any(part.startswith(".") for part in rel.parts):
            st = f.stat()
            out[str(rel)] = [st.st_size, st.st_mtime_ns]
    return out


def _input_record(p: str | Path) -> dict[str, Any]:
    """What an input is now: a partition by its manifest digest, another directory (e.g. a scanner list
    folder) by its files' sizes and times, a file by size, mtime (ns) and edge digest."""
    p = Path(p)
    if p.is_dir():
        if is_complete(p):
            return {"partition": str(p), "manifest": manifest_digest(p)}
        return {"directory": str(p), "files": _listing(p)}
    try:
        st = p.stat()
        return {"path": str(p), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "edges": edge_digest(p, st)}
    except OSError:
        return {"path": str(p), "missing": True}


def input_key(record: Mapping[str, Any]) -> str:
    """The identity of a recorded input: its path."""
    return str(record.get("partition") or record.get("directory") or record.get("path"))


def changed_inputs(manifest: Mapping[str, Any], expected: list[str | Path] | None = None) -> list[str]:
    """Why the inputs recorded in `manifest` differ from what is there now (empty when they do not).

    Args:
        manifest: a partition's manifest.
        expected: the inputs the partition would be made from now (e.g. the files a network's capture globs
            match today): an input added or removed since the partition was made is a change. None checks only
            the recorded inputs.
    """
    reasons = []
    recorded = manifest.get("inputs") or []
    if expected is not None:
        want, have = {str(Path(e)) for e in expected}, {input_key(r) for r in recorded}
        if want - have:
            reasons.append(f"new input(s) {sorted(want - have)}")
        if have - want:
            reasons.append(f"input(s) no longer expected {sorted(have - want)}")
    for rec in recorded:
        key = input_key(rec)
        if "partition" in rec:
            now = manifest_digest(Path(key))
            if now is None:
                reasons.append(f"input partition {key} is gone")
            elif now != rec.get("manifest"):
                reasons.append(f"input partition {key} was rebuilt")
            continue
        if "directory" in rec:
            now_files = _listing(Path(key)) if Path(key).is_dir() else None
            if now_files is None:
                reasons.append(f"input directory {key} is gone")
            elif now_files != rec.get("files"):
                was = rec.get("files") or {}
                diff = sorted(k for k in set(was) | set(now_files) if was.get(k) != now_files.get(k))
                reasons.append(f"input directory {key} changed ({', '.join(diff)})")
            continue
        try:
            st = os.stat(key)
        except OSError:
            if not rec.get("missing"):
                reasons.append(f"input {key} is gone")
            continue
        if rec.get("missing"):
            reasons.append(f"input {key} appeared")
        elif st.st_size != rec.get("bytes"):
            reasons.append(f"input {key} changed size ({rec.get('bytes')} -> {st.st_size} bytes)")
        elif "mtime_ns" in rec:
            if st.st_mtime_ns != rec["mtime_ns"] or edge_digest(Path(key), st) != rec.get("edges"):
                reasons.append(f"input {key} was modified")
        elif rec.get("mtime") is not None and st.st_mtime != rec["mtime"]:  # manifests from before mtime_ns
            reasons.append(f"input {key} was modified")
    return reasons


def stale_reason(
    path: Path, config_hash: str | None = None, expected_inputs: list[str | Path] | None = None
) -> str | None:
    """Why the partition at `path` is not current, or None when it is.

    Not current: missing (no manifest), made with another configuration (`config_hash`, when given, differs from
    the recorded one), or made from inputs that changed since (`changed_inputs`, with `expected_inputs`).
    """
    try:
        m = read_manifest(path)
    except (PartitionMissingError, ValueError):
        return "missing"
    if config_hash is not None and m.get("config_hash") != config_hash:
        return "made with other settings"
    reasons = changed_inputs(m, expected_inputs)
    return "; ".join(reasons) if reasons else None


class PartitionWriter:
    """Collects the files of one partition inside its temporary directory."""

    def __init__(self, tmp: Path, target: Path | None = None) -> None:
        self.tmp = tmp
        self.target = target or tmp
        self.files: dict[str, int] = {}

    def write_table(self, name: str, table: pa.Table, schema: pa.Schema | None = None) -> Path:
        """Write `table` as `name` (Parquet, zstd), conformed to `schema` when given."""
        if schema is not None:
            table = conform(table, schema, str(self.target / name))
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


def scratch_parent(path: Path) -> Path:
    """Where the temporaries of partition `path` live: under `<root>/.tmp/`, mirroring the partition's place.

    The data root is the parent of the dataset directory, the nearest ancestor whose name is not `key=value`.
    When that place is on another file system than the partition (a dataset directory mounted elsewhere), a
    rename could not move the result into place: the temporaries then live beside the partition, hidden.
    """
    path = Path(path)
    top = path
    while "=" in top.name and top.parent != top:
        top = top.parent
    root = top.parent
    where = root / SCRATCH / path.parent.relative_to(root)
    where.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.stat(where).st_dev != os.stat(path.parent).st_dev:
        return path.parent
    return where


def _scratch_name(parent: Path, path: Path, kind: str) -> Path:
    hidden = "." if parent == path.parent else ""
    return parent / f"{hidden}{path.name}.{kind}-{uuid.uuid4().hex}"


#: Leases this process holds: scratch directory -> its open, flocked descriptor.
_LEASES: dict[str, int] = {}


def _try_lease(d: Path) -> int | None:
    """A flocked descriptor of directory `d`, or None when another holder has it (or it is gone)."""
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(d).st_ino != os.fstat(fd).st_ino:  # removed (and maybe recreated) before we locked it
            raise FileNotFoundError(d)
    except OSError:
        os.close(fd)
        return None
    return fd


def scratch_dir(path: Path, kind: str = "tmp") -> Path:
    """A fresh temporary directory for partition `path`, leased by this process until `release_scratch`.

    `kind` names its use (`tmp`: a partition being written; `staging`: files that parallel workers stage
    before the commit). The lease tells a sweep that the directory is live, so it is taken before anything is
    written into it; a sweep that removed the directory between its creation and the lease is seen (the lease
    checks the directory is still the one created) and another one is made.
    """
    path = Path(path)
    for _ in range(10):
        d = _scratch_name(scratch_parent(path), path, kind)
        try:
            d.mkdir()
        except FileNotFoundError:  # a sweep removed the (empty) parent just now
            continue
        fd = _try_lease(d)
        if fd is not None:
            _LEASES[str(d)] = fd
            return d
    raise RuntimeError(f"{path}: could not create a temporary directory under {scratch_parent(path)}")


def release_scratch(d: Path, *, remove: bool = True) -> None:
    """Give up this process's lease on scratch directory `d`, removing it first (unless `remove` is False, e.g.
    after it was renamed into place)."""
    if remove:
        shutil.rmtree(d, ignore_errors=True)
    fd = _LEASES.pop(str(d), None)
    if fd is not None:
        os.close(fd)


def _remove_if_dead(d: Path) -> bool:
    """Remove debris directory `d` when no process holds its lease; whether it was removed."""
    if str(d) in _LEASES:
        return False
    fd = _try_lease(d)
    if fd is None:
        return False
    try:
        shutil.rmtree(d, ignore_errors=True)
    finally:
        os.close(fd)
    return not d.exists()


def remove_debris(path: Path) -> list[Path]:
    """Remove the temporaries that crashed runs left for partition `path` (in the scratch area and beside it,
    where older versions put them); live ones (leased) stay. Returns what was removed."""
    path = Path(path)
    removed = []
    for parent in {scratch_parent(path), path.parent}:
        for d in parent.glob(f"*{path.name}.*-*"):
            m = _DEBRIS.match(d.name)
            if m and m["name"] == path.name and d.is_dir() and _remove_if_dead(d):
                removed.append(d)
    return removed


def sweep_debris(root: Path) -> list[Path]:
    """Remove every temporary that crashed runs left under the data root `root`; live ones (leased) stay.

    Looks through `<root>/.tmp/` and beside the partitions of every dataset (hidden `.<name>.<kind>-<hex>`
    directories of older versions), without descending into complete partitions. Returns what was removed.
    """
    root = Path(root)
    removed: list[Path] = []
    stack = [root] if root.is_dir() else []
    while stack:
        here = stack.pop()
        try:
            entries = [e for e in os.scandir(here) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for e in entries:
            p = Path(e.path)
            if here != root and _DEBRIS.match(e.name):
                if _remove_if_dead(p):
                    removed.append(p)
            elif not (p / MANIFEST).is_file():
                stack.append(p)
    if removed:
        log.info("removed %d temporary directories left by crashed runs under %s", len(removed), root)
    return removed


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


@contextmanager
def _lock(path: Path, shared: bool = False) -> Iterator[None]:
    """The partition's lock: exclusive for its writer, shared for readers that must see one version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(path), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PartitionBusyError(
                f"{path}: another run is writing this partition now; wait for it to finish, then run again"
                if shared
                else f"{path}: another run is writing this partition, or continuing from it, now; wait for it "
                "to finish"
            ) from None
        yield
    finally:
        os.close(fd)


@contextmanager
def reading(path: Path) -> Iterator[Path]:
    """Keep partition `path` in its present version while the block runs: a writer of it is refused meanwhile
    (`PartitionBusyError`), as is this reader while a writer is at work.

    Raises:
        PartitionBusyError: a run is writing the partition now.
        PartitionMissingError: the partition is not complete.
    """
    path = Path(path)
    read_manifest(path)
    with _lock(path, shared=True):
        read_manifest(path)  # a writer may have replaced it between the first check and the lock
        yield path


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
        remove_debris(path)
        tmp = scratch_dir(path)
        writer = PartitionWriter(tmp, path)
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
            release_scratch(tmp)
            raise
        try:
            replace_dir(tmp, path)
        finally:
            release_scratch(tmp, remove=tmp.exists() and not (path / MANIFEST).is_file())


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished directory `tmp` to `path`, replacing what was there whole (the old version is moved
    aside first and deleted after; a reader never sees a mix of both)."""
    old = None
    if path.exists():
        old = _scratch_name(scratch_parent(path), path, "old")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def partition_files(path: Path, pattern: str = "*.parquet") -> list[Path]:
    """The data files of a complete partition, sorted, or `PartitionMissingError`."""
    read_manifest(path)
    return sorted(Path(path).glob(pattern))
