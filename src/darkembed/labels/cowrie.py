"""Cowrie JSON-lines logs and the honeypot labels derived from them (docs/data-formats.md section 3, [TNSM] section VII-B).

Reads `cowrie.json[.YYYY-MM-DD][.gz]` files (plain or gzip, detected by content); returns a polars frame of the
events that labelling uses (schema `COWRIE_EVENTS`) and a `CowrieReport`. `honeypot_labels` turns a day of
events into per-host brute-forcer / exploiter / spammer flags.

Reading rules:
    * Both schema generations: `duplicate` (newer) or `unique` (older, inverted) on file downloads;
      `duration_ms` (newer) or `duration` in seconds (older) on `cowrie.session.closed`.
    * An event without `src_ip` takes the one of its session's `cowrie.session.connect` event (else of any
      event of the session that has one); events whose session has no IPv4 source anywhere are dropped and
      counted. IPv4-mapped IPv6 sources (`::ffff:a.b.c.d`) are read as IPv4, other IPv6 ones are dropped.
    * Event ids that labelling does not use (`cowrie.client.kex`, unknown future ids, ...) are ignored
      (counted), but their `src_ip` still serves the session map.
    * A line that is not a JSON object with an `eventid` is reported with file and line and skipped; a file in
      which no line is one (binary junk, another format) raises `CowrieLogError` naming the file. A UTF-8 byte
      order mark at the start of a file is skipped.
    * An event whose `dst_port` is present but not a port number (not an integer in 0..65535: `"²"`, 20 digits,
      2**63, ...) is skipped and counted by reason, with file and line (`CowrieReport.skipped`, `problems`).
    * Timestamps are parsed per event with explicit ISO 8601 formats (`T` or space, optional fraction, `Z`, an
      offset or none for UTC); an unreadable one leaves that event's `ts` null and is counted
      (`CowrieReport.bad_timestamps`, first places in `problems`).
    * A damaged gzip stream (corrupt byte, cut file) keeps every event decoded before the damage and reports
      the file, the line and the decompressed byte offset where reading stopped.
Parsing is one `orjson.loads` per line into column lists; the columns are then converted in polars.
"""

from __future__ import annotations

import codecs
import datetime as dt
import glob
import gzip
import logging
import os
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl

from darkembed.config import HoneypotConfig
from darkembed.labels.ipv4 import str_to_ipv4
from darkembed.labels.scanner_list import MAX_LOGGED_PROBLEMS, Problem

log = logging.getLogger(__name__)

CONNECT = "cowrie.session.connect"
LOGIN_FAILED = "cowrie.login.failed"
LOGIN_SUCCESS = "cowrie.login.success"
DOWNLOAD = "cowrie.session.file_download"
DOWNLOAD_FAILED = "cowrie.session.file_download.failed"
CLOSED = "cowrie.session.closed"
DIRECT_TCPIP = "cowrie.direct-tcpip.request"

#: Events whose `src_ip` is not the attacker's: Cowrie logs a tunnel request with the originator address of the
#: SSH channel request (`src_ip=origHP[0]`, chosen by the client: 127.0.0.1, 0.0.0.0, any address). Their source is
#: the session's.
FOREIGN_SRC_EVENTS = frozenset({DIRECT_TCPIP, "cowrie.direct-tcpip.data"})

#: Event ids kept in the events frame; every other id is ignored.
KEPT_EVENTS = frozenset(
    {
        CONNECT,
        LOGIN_FAILED,
        LOGIN_SUCCESS,
        "cowrie.command.input",
        "cowrie.command.failed",
        DOWNLOAD,
        DOWNLOAD_FAILED,
        "cowrie.session.file_upload",
        CLOSED,
        DIRECT_TCPIP,
    }
)

#: The events frame `read_cowrie` returns: one row per kept event, sorted by (ts, file order).
COWRIE_EVENTS: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),  # null when the timestamp is missing or unreadable
    "sensor": pl.String(),
    "session": pl.String(),
    "src_ip": pl.UInt32(),
    "eventid": pl.String(),
    "protocol": pl.String(),  # ssh | telnet, on connect events
    "dst_port": pl.Int32(),  # honeypot port on connect, tunnel target on direct-tcpip.request
    "url": pl.String(),  # file downloads
    "duplicate": pl.Boolean(),  # file downloads: the file was seen before
    "duration_s": pl.Float64(),  # session.closed
}

_STR_FIELDS = ("sensor", "session", "eventid", "protocol", "url")


class CowrieLogError(ValueError):
    """A file is not a Cowrie JSON log at all; the message names the file."""


@dataclass
class CowrieReport:
    """What reading Cowrie logs read, kept and skipped.

    Attributes:
        files: the files read.
        lines: non-blank lines read.
        events: events kept (with an IPv4 source).
        ignored: events with an event id that labelling does not use.
        no_src_ip: kept-kind events dropped because their session has no IPv4 source.
        skipped: events skipped for a bad field, by reason (e.g. `dst_port not a port number`).
        bad_timestamps: events whose timestamp is missing or in no known format (kept with a null `ts`).
        damaged: files whose gzip stream is damaged (events before the damage are kept).
        problems: malformed lines, skipped events, unreadable timestamps and damage, with file and line.
    """

    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    ignored: int = 0
    no_src_ip: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    bad_timestamps: int = 0
    damaged: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _open_lines(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


#: Timestamp formats tried per event, in order (a trailing `Z` is read as `+00:00`; no offset means UTC).
TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
)

BAD_PORT = "dst_port not a port number"


def _port(value: object) -> int | None:
    """A port number from an int or a string of ASCII digits; None when absent; -1 when present but invalid."""
    if value is None:
        return None
    if isinstance(value, str) and 0 < len(value) <= 5 and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    return -1


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def find_cowrie_logs(patterns: Iterable[str]) -> tuple[list[Path], list[str]]:
    """The Cowrie log files of glob patterns (a day's `cowrie` inputs), rotated-and-gzipped ones included.

    A pattern that matches no file is tried again with `.gz` appended (`cowrie.json.2018-06-12` finds
    `cowrie.json.2018-06-12.gz`, the usual result of log rotation), so one pattern serves sensors that gzip their
    rotated logs and those that do not. A day logged both plain and gzipped is read
    once: the `.gz` fallback applies only when the pattern itself matches nothing.

    Returns:
        `(files, missing)`: the files, sorted and de-duplicated, and the patterns that matched no file at all.
    """
    found: set[Path] = set()
    missing: list[str] = []
    for pattern in patterns:
        hits = [Path(x) for x in glob.glob(os.path.expanduser(pattern), recursive=True) if Path(x).is_file()]
        if not hits and not pattern.endswith(".gz"):
            hits = [Path(x) for x in glob.glob(os.path.expanduser(pattern + ".gz"), recursive=True)]
            hits = [h for h in hits if h.is_file()]
        if not hits:
            missing.append(pattern)
        found.update(hits)
    return sorted(found), missing


def read_cowrie(paths: Iterable[str | Path]) -> tuple[pl.DataFrame, CowrieReport]:
    """Read Cowrie JSON-lines logs (plain or gzip) into one events frame.

    Args:
        paths: log files, in time order (a session's connect event may sit in an earlier file).

    Returns:
        The events (columns `COWRIE_EVENTS`, one row per kept event, file order) and a `CowrieReport`.

    Raises:
        CowrieLogError: a file is missing or not a Cowrie JSON log at all.
    """
    report = CowrieReport()
    cols: dict[str, list] = {
        k: [] for k in ("ts", "src", *_STR_FIELDS, "dst_port", "duplicate", "duration_s")
    }
    kept_kind: list[bool] = []
    where: list[tuple[int, int]] = []  # (file index, line) of each event, to report unreadable timestamps
    skipped: Counter[str] = Counter()
    for file_no, path in enumerate(map(Path, paths)):
        if not path.is_file():
            raise CowrieLogError(f"{path}: Cowrie log not found")
        report.files.append(str(path))
        nonblank = good = lineno = offset = 0
        first_problem = len(report.problems)
        try:
            with _open_lines(path) as fh:  # type: ignore[attr-defined]
                for lineno, raw in enumerate(fh, 1):
                    offset += len(raw)
                    if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                        raw = raw[len(codecs.BOM_UTF8) :]
                    if not raw.strip():
                        continue
                    nonblank += 1
                    try:
                        ev = orjson.loads(raw)
                    except orjson.JSONDecodeError as exc:
                        report.problems.append(
                            Problem(
                                str(path),
                                lineno,
                                raw[:200].decode("utf-8", "replace"),
                                f"invalid JSON: {exc}",
                            )
                        )
                        continue
                    if not isinstance(ev, dict) or not isinstance(ev.get("eventid"), str):
                        report.problems.append(
                            Problem(str(path), lineno, raw[:200].decode("utf-8", "replace"), "no `eventid`")
                        )
                        continue
                    good += 1
                    port = _port(ev.get("dst_port"))
                    if port == -1:
                        skipped[BAD_PORT] += 1
                        report.problems.append(
                            Problem(
                                str(path), lineno, repr(ev.get("dst_port"))[:80], f"event skipped: {BAD_PORT}"
                            )
                        )
                        continue
                    eid = ev["eventid"]
                    keep = eid in KEPT_EVENTS
                    if not keep:
                        report.ignored += 1
                    kept_kind.append(keep)
                    src = ev.get("src_ip")
                    cols["src"].append(src if isinstance(src, str) else None)
                    ts = ev.get("timestamp")
                    cols["ts"].append(ts if isinstance(ts, str) else None)
                    for k in _STR_FIELDS:
                        v = ev.get(k)
                        cols[k].append(v if isinstance(v, str) else None)
                    cols["dst_port"].append(port)
                    where.append((file_no, lineno))
                    if eid == DOWNLOAD:
                        dup = ev.get("duplicate")
                        if dup is None and "unique" in ev:
                            dup = not ev["unique"]
                        cols["duplicate"].append(bool(dup) if dup is not None else None)
                    else:
                        cols["duplicate"].append(None)
                    if eid == CLOSED:
                        ms = _as_float(ev.get("duration_ms"))
                        cols["duration_s"].append(
                            ms / 1000.0 if ms is not None else _as_float(ev.get("duration"))
                        )
                    else:
                        cols["duration_s"].append(None)
        except (OSError, EOFError, zlib.error) as exc:
            if not good and not isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
                raise CowrieLogError(f"{path}: cannot read Cowrie log: {exc}") from exc
            # A damaged or cut gzip stream: what was decoded before the damage is kept.
            report.damaged.append(str(path))
            report.problems.append(
                Problem(
                    str(path),
                    lineno,
                    "",
                    f"gzip stream damaged after decompressed byte {offset}, line {lineno} "
                    f"({'zlib.error' if isinstance(exc, zlib.error) else type(exc).__name__}: {exc}); the {good} "
                    "events before it are kept, the rest of the file is lost",
                )
            )
        report.lines += nonblank
        if nonblank and not good:
            raise CowrieLogError(
                f"{path}: not a Cowrie JSON log: none of its {nonblank} lines is a JSON event "
                f"(first: {report.problems[first_problem].reason})"
            )
    report.skipped = dict(skipped)
    for p in report.problems[:MAX_LOGGED_PROBLEMS]:
        log.warning("cowrie: %s", p)
    if len(report.problems) > MAX_LOGGED_PROBLEMS:
        log.warning(
            "cowrie: %d more malformed lines (all in the report)", len(report.problems) - MAX_LOGGED_PROBLEMS
        )

    raw = pl.DataFrame(
        {
            "ts": pl.Series(cols["ts"], dtype=pl.String),
            "src": pl.Series(cols["src"], dtype=pl.String),
            **{k: pl.Series(cols[k], dtype=pl.String) for k in _STR_FIELDS},
            "dst_port": pl.Series(cols["dst_port"], dtype=pl.Int64),
            "duplicate": pl.Series(cols["duplicate"], dtype=pl.Boolean),
            "duration_s": pl.Series(cols["duration_s"], dtype=pl.Float64),
            "keep": pl.Series(kept_kind, dtype=pl.Boolean),
            "_file": pl.Series([w[0] for w in where], dtype=pl.Int32),
            "_line": pl.Series([w[1] for w in where], dtype=pl.Int64),
        }
    )
    raw = raw.with_columns(src_ip=str_to_ipv4(raw["src"]))
    # A tunnel request's src_ip is the client's claimed originator, never the attacker's.
    raw = raw.with_columns(
        pl.when(pl.col("eventid").is_in(list(FOREIGN_SRC_EVENTS)))
        .then(None)
        .otherwise("src_ip")
        .alias("src_ip")
    )
    # Session -> source: the connect event's (the transport peer), else the first event of the session that has
    # one; the session's source wins over an event's own (they agree in Cowrie's logs but for tunnel requests).
    sessions = (
        raw.filter(pl.col("src_ip").is_not_null() & pl.col("session").is_not_null())
        .with_columns(is_connect=pl.col("eventid") == CONNECT)
        .sort("is_connect", descending=True, maintain_order=True)
        .group_by("session", maintain_order=True)
        .agg(pl.col("src_ip").first().alias("session_ip"))
    )
    events = (
        raw.filter("keep")
        .join(sessions, on="session", how="left", maintain_order="left")
        .with_columns(pl.coalesce("session_ip", "src_ip").alias("src_ip"))
    )
    missing = events["src_ip"].null_count()
    report.no_src_ip = missing
    events = events.filter(pl.col("src_ip").is_not_null())
    events = events.with_columns(_parse_ts(pl.col("ts")).alias("_parsed"), pl.col("dst_port").cast(pl.Int32))
    bad_ts = events.filter(pl.col("_parsed").is_null())
    report.bad_timestamps = bad_ts.height
    if bad_ts.height:
        shown = bad_ts.head(MAX_LOGGED_PROBLEMS)
        for f, line, text in shown.select("_file", "_line", "ts").iter_rows():
            problem = Problem(
                report.files[f], line, str(text)[:80], "timestamp missing or in no known format"
            )
            report.problems.append(problem)
            log.warning("cowrie: %s", problem)
        log.warning(
            "cowrie: %d events without a readable timestamp (kept, counted in every day; formats read: %s)",
            bad_ts.height,
            ", ".join(TIMESTAMP_FORMATS),
        )
    events = events.with_columns(pl.col("_parsed").alias("ts")).select(
        [pl.col(k).cast(t) for k, t in COWRIE_EVENTS.items()]
    )
    report.events = events.height
    log.info(
        "cowrie: %d files, %d lines, %d events kept, %d ignored, %d without a source, %d skipped %s, "
        "%d without a readable timestamp, %d damaged files, %d problems",
        len(report.files),
        report.lines,
        report.events,
        report.ignored,
        report.no_src_ip,
        sum(report.skipped.values()),
        report.skipped or "",
        report.bad_timestamps,
        len(report.damaged),
        len(report.problems),
    )
    return events, report


def _parse_ts(text: pl.Expr) -> pl.Expr:
    """ISO 8601 strings to UTC datetimes, format by format for each value (never inferred from the first)."""
    norm = text.str.strip_chars().str.replace(r"Z$", "+00:00")
    return pl.coalesce(
        [norm.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False) for f in TIMESTAMP_FORMATS]
    )


#: Columns of the frame `honeypot_labels` returns.
HONEYPOT_COLUMNS: dict[str, pl.DataType] = {
    "src_ip": pl.UInt32(),
    "login_attempts": pl.Int64(),
    "logins": pl.Int64(),
    "downloads": pl.Int64(),
    "smtp_requests": pl.Int64(),
    "brute-forcer": pl.Boolean(),
    "exploiter": pl.Boolean(),
    "spammer": pl.Boolean(),
}


def honeypot_labels(
    events: pl.DataFrame | pl.LazyFrame, cfg: HoneypotConfig | None = None, day: dt.date | None = None
) -> pl.DataFrame:
    """Per-host honeypot flags over one labelling window.

    Args:
        events: Cowrie events (columns `COWRIE_EVENTS`, as `read_cowrie` returns them).
        cfg: rules; defaults to `HoneypotConfig()`.
        day: when given, only events with a timestamp in that UTC day (or without one) count.

    Returns:
        One row per source with at least one counted event; columns `HONEYPOT_COLUMNS`: `login_attempts`
        (failed + successful logins), `logins` (successful), `downloads` (file downloads that qualify: any, or
        in strict mode those with an accepted URL scheme), `smtp_requests` (direct-tcpip requests to an SMTP
        port), and the flags `brute-forcer` (attempts > `bruteforce_more_than`; failed ones only when
        `bruteforce_count` is `failed`), `exploiter` (logins >= 1 and
        downloads >= 1) and `spammer` (smtp_requests >= `spammer_min_requests`; never when that is None).
        Sorted by `src_ip`.
    """
    cfg = cfg or HoneypotConfig()
    lf = events.lazy() if isinstance(events, pl.DataFrame) else events
    if day is not None:
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1)
        lf = lf.filter(pl.col("ts").is_null() | ((pl.col("ts") >= start) & (pl.col("ts") < end)))
    eid = pl.col("eventid")
    download = eid == DOWNLOAD
    if cfg.exploiter_strict:
        schemes = "|".join(sorted({s.lower() for s in cfg.exploiter_url_schemes}))
        download = download & pl.col("url").str.contains(rf"(?i)^\s*({schemes})://").fill_null(False)
    smtp = (eid == DIRECT_TCPIP) & pl.col("dst_port").is_in(list(cfg.spammer_smtp_ports)).fill_null(False)
    counts = lf.group_by("src_ip").agg(
        eid.is_in([LOGIN_FAILED, LOGIN_SUCCESS]).cast(pl.Int64).sum().alias("login_attempts"),
        (eid == LOGIN_SUCCESS).cast(pl.Int64).sum().alias("logins"),
        download.cast(pl.Int64).sum().alias("downloads"),
        smtp.cast(pl.Int64).sum().alias("smtp_requests"),
    )
    spammer = (
        pl.col("smtp_requests") >= cfg.spammer_min_requests
        if cfg.spammer_min_requests is not None
        else pl.lit(False)
    )
    attempts = pl.col("login_attempts") - (pl.col("logins") if cfg.bruteforce_count == "failed" else 0)
    return (
        counts.with_columns(
            (attempts > cfg.bruteforce_more_than).alias("brute-forcer"),
            ((pl.col("logins") >= 1) & (pl.col("downloads") >= 1)).alias("exploiter"),
            spammer.alias("spammer"),
        )
        .select([pl.col(k).cast(t) for k, t in HONEYPOT_COLUMNS.items()])
        .sort("src_ip")
        .collect()
    )
