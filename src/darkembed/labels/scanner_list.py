"""One loaded acknowledged-scanner list, what loading it read and skipped, and the builder that collects it.

A reader of `darkembed.labels.list_formats` parses a list's files into a `ListBuilder`, which de-duplicates the
entries and returns the `ScannerList`; `darkembed.labels.scanners` is the loading entry point.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from darkembed.config import ScannerListConfig

log = logging.getLogger(__name__)

#: Problems logged one by one per file; the rest are summarised in one line (all stay in the report).
MAX_LOGGED_PROBLEMS = 20


class ScannerListError(ValueError):
    """A scanner-list file is missing or is not a list at all; the message names the file."""


@dataclass(frozen=True)
class Problem:
    """One malformed line (or JSON entry) of a list file.

    Attributes:
        file: the file.
        line: 1-based line number (for JSON, the line where the entry starts).
        text: the offending text, cut to 200 characters.
        reason: what is wrong with it.
    """

    file: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}: {self.text!r}"


@dataclass
class LoadReport:
    """What loading one scanner list read, kept and skipped.

    Attributes:
        files: the files read.
        entries: well-formed IPv4 entries read (before de-duplication).
        duplicates: entries dropped because the same prefix and organisation appeared before.
        ipv6_skipped: IPv6 entries skipped (out of scope).
        problems: malformed lines, with file and line.
    """

    files: list[str] = field(default_factory=list)
    entries: int = 0
    duplicates: int = 0
    ipv6_skipped: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class ScannerList:
    """One loaded scanner list: IPv4 prefixes with their organisation and validity.

    Attributes:
        name: the list's name (appears in label sources).
        path: where it was read from.
        format: `csv`, `folder`, `ipset` or `json`.
        start: uint32 (n,), network address of each prefix (host bits cleared).
        plen: uint8 (n,), prefix length 0..32.
        org: int32 (n,), index into `orgs`.
        orgs: the organisation names as written in the list (lowercased, stripped).
        until: datetime64[D] (n,), last day each entry matches (NaT = no per-entry bound).
        valid_from: first day the list is in force (inclusive), None = unbounded.
        valid_to: last day the list is in force (inclusive), None = unbounded.
        report: what loading read and skipped.
    """

    name: str
    path: str
    format: str
    start: np.ndarray
    plen: np.ndarray
    org: np.ndarray
    orgs: tuple[str, ...]
    until: np.ndarray
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    report: LoadReport = field(default_factory=LoadReport)

    def __len__(self) -> int:
        return int(self.start.size)

    def in_force(self, day: dt.date) -> bool:
        """Whether the list applies to `day` (its validity period includes it)."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


class ListBuilder:
    """Collects entries of one list, de-duplicating identical (prefix, organisation) pairs."""

    def __init__(self, report: LoadReport) -> None:
        self.report = report
        self.orgs: dict[str, int] = {}
        self.seen: set[tuple[int, int, int]] = set()
        self.start: list[int] = []
        self.plen: list[int] = []
        self.org: list[int] = []
        self.until: list[np.datetime64] = []

    def add(self, start: int, plen: int, org: str, until: dt.date | None = None) -> None:
        self.report.entries += 1
        oid = self.orgs.setdefault(org, len(self.orgs))
        key = (start, plen, oid)
        if key in self.seen:
            self.report.duplicates += 1
            return
        self.seen.add(key)
        self.start.append(start)
        self.plen.append(plen)
        self.org.append(oid)
        self.until.append(np.datetime64(until, "D") if until is not None else np.datetime64("NaT", "D"))

    def problem(self, file: Path, line: int, text: str, reason: str) -> None:
        self.report.problems.append(Problem(str(file), line, text.strip()[:200], reason))

    def build(self, name: str, path: Path, fmt: str, cfg: ScannerListConfig | None) -> ScannerList:
        lst = ScannerList(
            name=name,
            path=str(path),
            format=fmt,
            start=np.asarray(self.start, dtype=np.uint32),
            plen=np.asarray(self.plen, dtype=np.uint8),
            org=np.asarray(self.org, dtype=np.int32),
            orgs=tuple(self.orgs),
            until=np.asarray(self.until, dtype="datetime64[D]"),
            valid_from=cfg.valid_from if cfg else None,
            valid_to=cfg.valid_to if cfg else None,
            report=self.report,
        )
        _log_problems(name, self.report)
        return lst


def _log_problems(name: str, report: LoadReport) -> None:
    for p in report.problems[:MAX_LOGGED_PROBLEMS]:
        log.warning("scanner list %s: malformed entry skipped: %s", name, p)
    if len(report.problems) > MAX_LOGGED_PROBLEMS:
        log.warning(
            "scanner list %s: %d more malformed entries (all in the load report)",
            name,
            len(report.problems) - MAX_LOGGED_PROBLEMS,
        )
