"""Cowrie JSON-lines logs and the honeypot labels derived from them (DATA.md section 3, [TNSM] section VII-B).

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
      which no line is one (binary junk, another format) raises `CowrieLogError` naming the file.
Parsing is one `orjson.loads` per line into column lists; the columns are then converted in polars.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl

from darkembed.config import HoneypotConfig
from darkembed.labels.ipv4 import str_to_ipv4
from darkembed.labels.scanners import MAX_LOGGED_PROBLEMS, Problem

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
        problems: malformed lines, with file and line.
    """

    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    ignored: int = 0
    no_src_ip: int = 0
    problems: list[Problem] = field(default_factory=list)


def _open_lines(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


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
    for path in map(Path, paths):
        if not path.is_file():
            raise CowrieLogError(f"{path}: Cowrie log not found")
        report.files.append(str(path))
        nonblank = good = lineno = 0
        first_problem = len(report.problems)
        try:
            with _open_lines(path) as fh:  # type: ignore[attr-defined]
                for lineno, raw in enumerate(fh, 1):
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
                    cols["dst_port"].append(_as_int(ev.get("dst_port")))
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
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            if not good:
                raise CowrieLogError(f"{path}: cannot read Cowrie log: {exc}") from exc
            report.problems.append(Problem(str(path), lineno, "", f"file cut off: {exc}"))
        report.lines += nonblank
        if nonblank and not good:
            raise CowrieLogError(
                f"{path}: not a Cowrie JSON log: none of its {nonblank} lines is a JSON event "
                f"(first: {report.problems[first_problem].reason})"
            )
    for p in report.problems[:MAX_LOGGED_PROBLEMS]:
        log.warning("cowrie: malformed line skipped: %s", p)
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
    events = events.with_columns(
        pl.col("ts")
        .str.replace(r"Z$", "+00:00")
        .str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
        .alias("ts"),
        pl.col("dst_port").cast(pl.Int32, strict=False),
    ).select([pl.col(k).cast(t) for k, t in COWRIE_EVENTS.items()])
    report.events = events.height
    log.info(
        "cowrie: %d files, %d lines, %d events kept, %d ignored, %d without a source, %d malformed",
        len(report.files),
        report.lines,
        report.events,
        report.ignored,
        report.no_src_ip,
        len(report.problems),
    )
    return events, report


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
        port), and the flags `brute-forcer` (attempts > `bruteforce_more_than`), `exploiter` (logins >= 1 and
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
    return (
        counts.with_columns(
            (pl.col("login_attempts") > cfg.bruteforce_more_than).alias("brute-forcer"),
            ((pl.col("logins") >= 1) & (pl.col("downloads") >= 1)).alias("exploiter"),
            spammer.alias("spammer"),
        )
        .select([pl.col(k).cast(t) for k, t in HONEYPOT_COLUMNS.items()])
        .sort("src_ip")
        .collect()
    )
