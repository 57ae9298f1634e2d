"""Readers of the four acknowledged-scanner list formats of docs/data-formats.md section 4.

Formats:
    * `csv`: `ip,class` rows (header optional, duplicates and stray whitespace allowed; CIDR accepted too).
    * `folder`: a directory of `<org>[_v4|_v6].txt` files, one address or CIDR per line, `#` comments.
    * `ipset`: `ipset restore` files (`create <set> hash:net ...`, `add <set> <cidr> [options]`); the path is
      one file or a directory of `*.ipset` files. The set name is the organisation.
    * `json`: `[{"ip": ..., "scanner": ..., "last_seen": ...}, ...]` (the NICTER survey-scanner list).

Each reader adds the entries of its files to a `ListBuilder` (`darkembed.labels.scanner_list`). IPv6 entries are
counted and skipped (IPv4 is darkembed's scope). A malformed line is recorded in the builder's `LoadReport` with
its file and line, and the rest of the file is loaded; a file that is not a list at all (binary content, wrong
JSON shape, no parsable line) raises `ScannerListError` naming the file.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import orjson

from darkembed.labels.ipv4 import parse_prefix
from darkembed.labels.scanner_list import ListBuilder, ScannerListError


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
    b: ListBuilder, file: Path, lineno: int, raw: str, token: str, org: str, until: dt.date | None = None
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


def _not_a_list(path: Path, b: ListBuilder, candidates: int, good: int, what: str) -> None:
    if candidates and not good:
        raise ScannerListError(
            f"{path}: not a scanner list: none of its {candidates} lines is {what} "
            f"(first: {b.report.problems[-candidates].reason if b.report.problems else '?'})"
        )


def _load_folder_file(b: ListBuilder, path: Path, org: str) -> None:
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


FOLDER_SUFFIX = re.compile(r"_v[46]$")


def load_folder(path: Path, b: ListBuilder) -> None:
    """Load a directory of per-organisation `<org>[_v4|_v6].txt` files into `b`."""
    if not path.is_dir():
        raise ScannerListError(f"{path}: a `folder` scanner list must be a directory of <org>_v4.txt files")
    files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if not files:
        raise ScannerListError(f"{path}: no *.txt files in this `folder` scanner list")
    for f in files:
        b.report.files.append(str(f))
        _load_folder_file(b, f, FOLDER_SUFFIX.sub("", f.stem).strip().lower())


def load_csv(path: Path, b: ListBuilder) -> None:
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


def _load_ipset_file(b: ListBuilder, path: Path) -> None:
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


def load_ipset(path: Path, b: ListBuilder) -> None:
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


def load_json(path: Path, b: ListBuilder, grace_days: int | None) -> None:
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
