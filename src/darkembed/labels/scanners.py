"""Acknowledged-scanner lists: loaders for the four formats of docs/data-formats.md section 4 and longest-prefix matching.

Reads list files only (no dataset); `darkembed.labels.assign` turns the matches into the `labels` dataset.

Formats:
    * `csv`: `ip,class` rows (header optional, duplicates and stray whitespace allowed; CIDR accepted too).
    * `folder`: a directory of `<org>[_v4|_v6].txt` files, one address or CIDR per line, `#` comments.
    * `ipset`: `ipset restore` files (`create <set> hash:net ...`, `add <set> <cidr> [options]`); the path is
      one file or a directory of `*.ipset` files. The set name is the organisation.
    * `json`: `[{"ip": ..., "scanner": ..., "last_seen": ...}, ...]` (the NICTER survey-scanner list).

IPv6 entries are counted and skipped (IPv4 is darkembed's scope). A malformed line is logged and returned in
the list's `LoadReport` with its file and line, and the rest of the file is loaded; a file that is not a list at
all (binary content, wrong JSON shape, no parsable line) raises `ScannerListError` naming the file.

Validity:
    A `ScannerList` is in force from `valid_from` to `valid_to` (both inclusive, UTC days, None = unbounded).
    A JSON entry additionally stops matching `last_seen_grace_days` days after its `last_seen` (the address may
    have been handed to someone else since); it is never held back *before* `last_seen`, since the list does
    not say when a scanner was first seen.

Matching (`ScannerIndex`):
    The entries of the lists in force on a day are merged and flattened into disjoint address intervals, each
    carrying the longest prefix that covers it, so matching N addresses is one `numpy.searchsorted` over the
    interval starts: O(N log P) for P prefixes, no Python loop per address. Nested prefixes of different
    organisations resolve to the longest. The same prefix listed for several organisations (equal length)
    resolves deterministically: the list declared first in the configuration wins; within one list, the
    alphabetically first class, then the alphabetically first organisation. Such conflicts are counted and
    logged when the index is built.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from darkembed.config import DEFAULT_ORG_CLASSES, LabelsConfig, ScannerListConfig
from darkembed.labels.ipv4 import as_uint32, parse_prefix

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


# ----------------------------------------------------------------------------------------------------- loading


class _Builder:
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


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScannerListError(f"{path}: cannot read scanner list: {exc.strerror}") from exc
    if b"\x00" in data:
        raise ScannerListError(f"{path}: not a scanner list (binary content); expected text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScannerListError(
            f"{path}: not a scanner list (not UTF-8 text at byte {exc.start}); expected text"
        ) from exc


def _add_token(
    b: _Builder, file: Path, lineno: int, raw: str, token: str, org: str, until: dt.date | None = None
) -> bool:
    """Parse one address/CIDR token into `b`; returns whether it was an IPv4 or IPv6 entry (not malformed)."""
    if ":" in token:
        b.report.ipv6_skipped += 1
        return True
    try:
        start, plen = parse_prefix(token)
    except ValueError as exc:
        b.problem(file, lineno, raw, str(exc))
        return False
    b.add(start, plen, org, until)
    return True


def _not_a_list(path: Path, b: _Builder, candidates: int, good: int, what: str) -> None:
    if candidates and not good:
        raise ScannerListError(
            f"{path}: not a scanner list: none of its {candidates} lines is {what} "
            f"(first: {b.report.problems[-candidates].reason if b.report.problems else '?'})"
        )


def _load_folder_file(b: _Builder, path: Path, org: str) -> None:
    candidates = good = 0
    for lineno, raw in enumerate(_read_text(path).splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        candidates += 1
        tokens = text.split()
        if len(tokens) != 1:
            b.problem(path, lineno, raw, "expected one address or CIDR per line")
            continue
        good += _add_token(b, path, lineno, raw, tokens[0], org)
    _not_a_list(path, b, candidates, good, "an address or CIDR")


_FOLDER_SUFFIX = re.compile(r"_v[46]$")


def load_folder(path: Path, b: _Builder) -> None:
    """Load a directory of per-organisation `<org>[_v4|_v6].txt` files into `b`."""
    if not path.is_dir():
        raise ScannerListError(f"{path}: a `folder` scanner list must be a directory of <org>_v4.txt files")
    files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if not files:
        raise ScannerListError(f"{path}: no *.txt files in this `folder` scanner list")
    for f in files:
        b.report.files.append(str(f))
        _load_folder_file(b, f, _FOLDER_SUFFIX.sub("", f.stem).strip().lower())


def load_csv(path: Path, b: _Builder) -> None:
    """Load an `ip,class` CSV file into `b` (header optional; CIDR accepted in the address column)."""
    b.report.files.append(str(path))
    ip_col, cls_col = 0, 1
    candidates = good = 0
    header_done = False
    for lineno, raw in enumerate(_read_text(path).splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        fields = [f.strip() for f in text.split(",")]
        if not header_done:
            header_done = True
            names = [f.lower() for f in fields]
            if any(n in ("ip", "src_ip", "address", "cidr") for n in names):
                ip_col = next(i for i, n in enumerate(names) if n in ("ip", "src_ip", "address", "cidr"))
                cls_col = next(
                    (i for i, n in enumerate(names) if n in ("class", "label", "org", "scanner")), None
                )
                if cls_col is None:
                    raise ScannerListError(f"{path}: CSV header {text!r} has no class/label/org column")
                continue
        candidates += 1
        if len(fields) <= max(ip_col, cls_col):
            b.problem(
                path, lineno, raw, f"expected at least {max(ip_col, cls_col) + 1} comma-separated fields"
            )
            continue
        org = fields[cls_col].lower()
        if not org:
            b.problem(path, lineno, raw, "empty class")
            continue
        good += _add_token(b, path, lineno, raw, fields[ip_col], org)
    _not_a_list(path, b, candidates, good, "an `ip,class` row")


def _load_ipset_file(b: _Builder, path: Path) -> None:
    families: dict[str, str] = {}
    commands = 0
    for lineno, raw in enumerate(_read_text(path).splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        tokens = text.split()
        cmd = tokens[0]
        if cmd == "create" and len(tokens) >= 3:
            commands += 1
            family = "inet"
            if "family" in tokens[3:]:
                i = tokens.index("family", 3)
                family = tokens[i + 1] if i + 1 < len(tokens) else "inet"
            families[tokens[1]] = family
        elif cmd == "add" and len(tokens) >= 3:
            commands += 1
            setname = tokens[1]
            if families.get(setname) == "inet6":
                b.report.ipv6_skipped += 1
                continue
            _add_token(b, path, lineno, raw, tokens[2], setname.strip().lower())
        elif cmd in ("flush", "destroy", "COMMIT"):
            commands += 1
        else:
            b.problem(path, lineno, raw, "expected `create <set> <type> ...` or `add <set> <cidr>`")
    if not commands:
        raise ScannerListError(f"{path}: not an ipset restore file (no `create`/`add` lines)")


def load_ipset(path: Path, b: _Builder) -> None:
    """Load an `ipset restore` file, or a directory of `*.ipset` files, into `b`."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*.ipset") if p.is_file())
        if not files:
            raise ScannerListError(f"{path}: no *.ipset files in this `ipset` scanner list directory")
    else:
        files = [path]
    for f in files:
        b.report.files.append(str(f))
        _load_ipset_file(b, f)


def _parse_last_seen(value: object) -> dt.date:
    if isinstance(value, bool):
        raise ValueError(f"bad last_seen {value!r}")
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC).date()
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"bad last_seen {value!r} (expected an ISO date or epoch seconds)") from None
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.UTC)
        return stamp.date()
    raise ValueError(f"bad last_seen {value!r}")


def load_json(path: Path, b: _Builder, grace_days: int | None) -> None:
    """Load a JSON list of `{ip, scanner, last_seen}` objects into `b`, with the line of each entry."""
    b.report.files.append(str(path))
    text = _read_text(path)
    decoder_pos = len(text) - len(text.lstrip())
    if not text[decoder_pos:].startswith("["):
        raise ScannerListError(f"{path}: not a JSON scanner list: expected a JSON array of objects")
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ScannerListError(f"{path}: not a JSON scanner list: invalid JSON ({exc})") from exc
    # Line of each top-level entry, for the report: a JSONDecoder walk gives positions orjson does not.
    import json

    decoder = json.JSONDecoder()
    lines: list[int] = []
    pos = decoder_pos + 1
    line = text.count("\n", 0, pos) + 1
    last = pos
    for _ in items:
        while text[pos] in " \t\r\n,":
            pos += 1
        line += text.count("\n", last, pos)
        last = pos
        lines.append(line)
        _, pos = decoder.raw_decode(text, pos)
    candidates = good = 0
    grace = None if grace_days is None else dt.timedelta(days=grace_days)
    for lineno, item in zip(lines, items, strict=True):
        candidates += 1
        raw = orjson.dumps(item).decode()
        if not isinstance(item, dict):
            b.problem(path, lineno, raw, "expected an object with `ip` and `scanner`")
            continue
        ip = item.get("ip", item.get("cidr"))
        org = item.get("scanner", item.get("org"))
        if not isinstance(ip, str) or not isinstance(org, str) or not org.strip():
            b.problem(path, lineno, raw, "missing or non-string `ip` or `scanner`")
            continue
        until = None
        if grace is not None and item.get("last_seen") is not None:
            try:
                until = _parse_last_seen(item["last_seen"]) + grace
            except (ValueError, OverflowError, OSError) as exc:
                b.problem(path, lineno, raw, str(exc))
                continue
        good += _add_token(b, path, lineno, raw, ip.strip(), org.strip().lower(), until)
    _not_a_list(path, b, candidates, good, "a `{ip, scanner}` object")


def load_scanner_list(
    path: str | Path,
    format: str,
    *,
    name: str | None = None,
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
    last_seen_grace_days: int | None = 30,
) -> ScannerList:
    """Load one scanner list.

    Args:
        path: the file or directory (see the module docstring for each format).
        format: `csv`, `folder`, `ipset` or `json`.
        name: the list's name in label sources; defaults to the file or directory name.
        valid_from: first day (inclusive) the list is in force; None = unbounded.
        valid_to: last day (inclusive) the list is in force; None = unbounded.
        last_seen_grace_days: `json` only: days after `last_seen` an entry keeps matching; None ignores it.

    Returns:
        The list, with a `LoadReport` of what was read and skipped (malformed lines with file and line).

    Raises:
        ScannerListError: the path is missing, or a file is not a list at all.
    """
    cfg = ScannerListConfig(
        path=str(path),
        format=format,  # type: ignore[arg-type]
        name=name,
        valid_from=valid_from,
        valid_to=valid_to,
        last_seen_grace_days=last_seen_grace_days,
    )
    return _load(cfg)


def _load(cfg: ScannerListConfig) -> ScannerList:
    path = Path(cfg.path)
    if not path.exists():
        raise ScannerListError(f"{path}: scanner list not found (labels.scanner_lists[].path)")
    report = LoadReport()
    b = _Builder(report)
    if cfg.format == "folder":
        load_folder(path, b)
    elif cfg.format == "csv":
        load_csv(path, b)
    elif cfg.format == "ipset":
        load_ipset(path, b)
    elif cfg.format == "json":
        load_json(path, b, cfg.last_seen_grace_days)
    else:  # pragma: no cover - the config validates the format
        raise ScannerListError(f"{path}: unknown scanner list format {cfg.format!r}")
    lst = b.build(cfg.name or path.name, path, cfg.format, cfg)
    log.info(
        "scanner list %s (%s): %d prefixes of %d organisations, %d duplicates, %d IPv6 skipped, %d malformed",
        lst.name,
        cfg.format,
        len(lst),
        len(lst.orgs),
        report.duplicates,
        report.ipv6_skipped,
        len(report.problems),
    )
    return lst


def load_scanner_lists(cfg: LabelsConfig, day: dt.date | None = None) -> list[ScannerList]:
    """Load the configured scanner lists (only those in force on `day` when a day is given), in config order."""
    out = []
    for lc in cfg.scanner_lists:
        if day is not None and not (
            (lc.valid_from is None or lc.valid_from <= day) and (lc.valid_to is None or day <= lc.valid_to)
        ):
            continue
        out.append(_load(lc))
    return out


# ---------------------------------------------------------------------------------------------------- classes


_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "net", "org"})


def normalise_org(org: str) -> str:
    """The class-like form of an organisation name.

    Lowercase; `nethash.` prefix, `.ipset`/`.txt` suffixes and `_v4`/`_v6` dropped; a domain name is reduced to
    its label left of the public suffix (`censys.io` -> `censys`, `rnd.group-ib.com` -> `group-ib`,
    `ncsc.gov.uk` -> `ncsc`).
    """
    name = org.strip().lower()
    name = re.sub(r"^nethash\.", "", name)
    name = re.sub(r"\.(ipset|ip6set|txt)$", "", name)
    name = _FOLDER_SUFFIX.sub("", name)
    if "." in name:
        labels = [x for x in name.split(".") if x]
        if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL:
            name = labels[-3]  # ncsc.gov.uk -> ncsc
        elif len(labels) >= 2:
            name = labels[-2]
    return name


def org_class(org: str, table: dict[str, str] | None = None) -> str:
    """The class of an organisation: the table's entry for the raw name, else for the normalised name, else
    the normalised name itself."""
    table = DEFAULT_ORG_CLASSES if table is None else table
    raw = org.strip().lower()
    if raw in table:
        return table[raw]
    norm = normalise_org(raw)
    return table.get(norm, norm)


# --------------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class ScannerMatch:
    """Result of matching N addresses against a `ScannerIndex`.

    Attributes:
        entry: int64 (N,), index of the matched prefix in the index's entry arrays, -1 where none matched.
        index: the index matched against.
    """

    entry: np.ndarray
    index: ScannerIndex

    @property
    def matched(self) -> np.ndarray:
        """bool (N,), whether each address is covered by a listed prefix."""
        return self.entry >= 0

    def column(self, name: str) -> np.ndarray:
        """Per address, the matched entry's `start`, `plen`, `cls`, `org` or `list_name` (None where unmatched
        for the string columns, 0 for the numeric ones)."""
        values = getattr(self.index, name)
        if values.dtype == object:
            out = np.full(self.entry.size, None, dtype=object)
        else:
            out = np.zeros(self.entry.size, dtype=values.dtype)
        hit = self.entry >= 0
        out[hit] = values[self.entry[hit]]
        return out


class ScannerIndex:
    """The scanner prefixes in force on one day, flattened for vectorised longest-prefix matching.

    Attributes:
        day: the day the index applies to (None = every list and entry regardless of validity).
        start: uint32 (P,), network address of each kept prefix.
        plen: uint8 (P,), prefix length.
        cls: object (P,), class name.
        org: object (P,), organisation as written in its list.
        list_name: object (P,), name of the list the prefix comes from.
        conflicts: number of prefixes listed with different classes (resolved as in the module docstring).
    """

    def __init__(
        self,
        lists: Sequence[ScannerList],
        day: dt.date | None = None,
        org_classes: dict[str, str] | None = None,
    ) -> None:
        """Merge the lists in force on `day` (config order = priority) into one index.

        Args:
            lists: loaded lists, strongest first for equal-prefix conflicts.
            day: the labelling day; lists out of force and JSON entries past `last_seen` + grace are left out.
            org_classes: organisation -> class table (default `DEFAULT_ORG_CLASSES`); entries whose class is
                `unknown` are left out.
        """
        self.day = day
        starts, plens, prios, classes, orgs, names = [], [], [], [], [], []
        for prio, lst in enumerate(lists):
            if day is not None and not lst.in_force(day):
                continue
            keep = np.ones(len(lst), dtype=bool)
            if day is not None and lst.until.size:
                until = lst.until
                keep &= np.isnat(until) | (until >= np.datetime64(day, "D"))
            org_cls = np.array([org_class(o, org_classes) for o in lst.orgs], dtype=object)
            entry_cls = org_cls[lst.org]
            keep &= entry_cls != "unknown"
            starts.append(lst.start[keep])
            plens.append(lst.plen[keep])
            prios.append(np.full(int(keep.sum()), prio, dtype=np.int32))
            classes.append(entry_cls[keep])
            orgs.append(np.array(lst.orgs, dtype=object)[lst.org[keep]])
            names.append(np.full(int(keep.sum()), lst.name, dtype=object))
        cat = lambda xs, dt_: np.concatenate(xs) if xs else np.empty(0, dtype=dt_)  # noqa: E731
        start = cat(starts, np.uint32).astype(np.uint32)
        plen = cat(plens, np.uint8).astype(np.uint8)
        prio = cat(prios, np.int32)
        cls = cat(classes, object)
        org = cat(orgs, object)
        name = cat(names, object)
        # Deterministic winner per identical prefix: list priority, then class, then organisation.
        order = (
            np.lexsort((org.astype(str), cls.astype(str), prio, plen, start))
            if start.size
            else np.empty(0, int)
        )
        start, plen, cls, org, name = start[order], plen[order], cls[order], org[order], name[order]
        first = np.ones(start.size, dtype=bool)
        if start.size:
            first[1:] = (start[1:] != start[:-1]) | (plen[1:] != plen[:-1])
        groups = np.cumsum(first) - 1
        winners = cls[first]
        differs = ~first & (cls != winners[groups]) if start.size else first
        self.conflicts = int(np.unique(groups[differs]).size)
        self.start, self.plen = start[first], plen[first]
        self.cls, self.org, self.list_name = cls[first], org[first], name[first]
        if self.conflicts:
            log.info(
                "scanner index %s: %d prefixes listed with different classes; resolved by list order, then name",
                day,
                self.conflicts,
            )
        self._bounds, self._ids = _flatten(self.start, self.plen)

    def __len__(self) -> int:
        return int(self.start.size)

    def classes(self) -> list[str]:
        """The distinct classes of the index, sorted."""
        return sorted(set(self.cls.tolist()))

    def match(self, ips: np.ndarray | Iterable[int]) -> ScannerMatch:
        """Longest-prefix match of N addresses.

        Args:
            ips: uint32 (N,) addresses (a polars Series or an iterable of ints is converted).

        Returns:
            A `ScannerMatch` with, per address, the index of the longest covering prefix or -1.
        """
        if not isinstance(ips, np.ndarray | pl.Series):
            ips = np.fromiter(ips, dtype=np.uint64)
        ips = as_uint32(ips)
        if not self._bounds.size:
            return ScannerMatch(np.full(ips.size, -1, dtype=np.int64), self)
        pos = np.searchsorted(self._bounds, ips, side="right") - 1
        entry = np.where(pos >= 0, self._ids[np.maximum(pos, 0)], -1)
        return ScannerMatch(entry.astype(np.int64, copy=False), self)


def _flatten(start: np.ndarray, plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint intervals of nested CIDR prefixes, each with its longest covering prefix.

    CIDR blocks are either nested or disjoint, so a sweep in (start, length) order with a stack of open blocks
    emits a boundary wherever the innermost covering block changes.

    Args:
        start: uint32 (P,), unique (start, plen) pairs.
        plen: uint8 (P,).

    Returns:
        `bounds` uint32 (B,) sorted interval starts and `ids` int64 (B,) entry covering `[bounds[i],
        bounds[i+1])`, -1 for gaps. B <= 2P + 1.
    """
    if not start.size:
        return np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.int64)
    s64 = start.astype(np.int64)
    end = s64 + (np.int64(1) << (32 - plen.astype(np.int64))) - 1
    order = np.lexsort((plen, s64))
    bounds: list[int] = []
    ids: list[int] = []

    def emit(pos: int, ident: int) -> None:
        if pos > 0xFFFFFFFF:
            return
        if bounds and bounds[-1] == pos:
            ids[-1] = ident
        else:
            bounds.append(pos)
            ids.append(ident)

    stack: list[tuple[int, int]] = []  # (end, id) of the open blocks, innermost last
    for i in order.tolist():
        s = int(s64[i])
        while stack and stack[-1][0] < s:
            e, _ = stack.pop()
            emit(e + 1, stack[-1][1] if stack else -1)
        emit(s, i)
        stack.append((int(end[i]), i))
    while stack:
        e, _ = stack.pop()
        emit(e + 1, stack[-1][1] if stack else -1)
    return np.asarray(bounds, dtype=np.uint32), np.asarray(ids, dtype=np.int64)
