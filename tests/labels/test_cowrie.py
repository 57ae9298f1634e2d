"""Cowrie reader (both schema generations, events without src_ip, gzip, bad lines) and honeypot rules."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging

import polars as pl
import pytest

from darkembed.config import HoneypotConfig
from darkembed.labels.cowrie import COWRIE_EVENTS, CowrieLogError, honeypot_labels, read_cowrie
from tests.labels.helpers import ip


def ev(eventid: str, session: str, ts: str = "2023-01-01T10:00:00.000000Z", **fields) -> str:
    return json.dumps(
        {"eventid": eventid, "timestamp": ts, "session": session, "sensor": "hp1", "message": "", **fields}
    )


def new_generation() -> list[str]:
    """Cowrie 2.x: `duplicate`, `duration_ms`; a later event without src_ip."""
    s = "a1"
    return [
        ev(
            "cowrie.session.connect",
            s,
            src_ip="192.0.2.10",
            src_port=5000,
            dst_ip="10.0.0.1",
            dst_port=22,
            protocol="ssh",
        ),
        ev("cowrie.client.kex", s, src_ip="192.0.2.10"),  # ignored event id
        *[
            ev("cowrie.login.failed", s, src_ip="192.0.2.10", username="root", password=str(i))
            for i in range(3)
        ],
        ev("cowrie.login.success", s, username="root", password="admin"),  # no src_ip: from the connect event
        ev(
            "cowrie.session.file_download",
            s,
            url="http://203.0.113.5/bins/x86",
            outfile="var/x",
            shasum="ab",
            duplicate=False,
        ),
        ev("cowrie.session.closed", s, src_ip="192.0.2.10", duration_ms=1500),
    ]


def old_generation() -> list[str]:
    """Cowrie 1.x: `unique`, `duration` in seconds; a redirect capture without url."""
    s = "b2"
    return [
        ev(
            "cowrie.session.connect",
            s,
            src_ip="192.0.2.20",
            src_port=5001,
            dst_ip="10.0.0.1",
            dst_port=23,
            protocol="telnet",
        ),
        ev("cowrie.login.success", s, src_ip="192.0.2.20", username="admin", password="admin"),
        ev(
            "cowrie.session.file_download",
            s,
            src_ip="192.0.2.20",
            outfile="/dev/null",
            shasum="cd",
            unique=True,
        ),
        ev("cowrie.session.closed", s, src_ip="192.0.2.20", duration=12.5),
    ]


def brute_forcer(n: int, src: str = "192.0.2.30", session: str = "c3") -> list[str]:
    return [ev("cowrie.session.connect", session, src_ip=src, dst_port=22, protocol="ssh")] + [
        ev("cowrie.login.failed", session, src_ip=src, username="u", password=str(i)) for i in range(n)
    ]


def write(path, lines: list[str], gz: bool = False):
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def test_both_generations_and_missing_src_ip(tmp_path):
    f = write(tmp_path / "cowrie.json.2023-01-01", new_generation() + old_generation())
    events, report = read_cowrie([f])
    assert dict(zip(events.columns, events.dtypes, strict=True)) == COWRIE_EVENTS
    assert report.ignored == 1 and report.problems == [] and report.no_src_ip == 0
    assert report.events == events.height == len(new_generation()) - 1 + len(old_generation())
    success = events.filter(pl.col("eventid") == "cowrie.login.success")
    assert success["src_ip"].to_list() == [ip("192.0.2.10"), ip("192.0.2.20")]
    dl = events.filter(pl.col("eventid") == "cowrie.session.file_download")
    assert dl["duplicate"].to_list() == [False, False]  # duplicate=False; unique=True
    assert dl["url"].to_list() == ["http://203.0.113.5/bins/x86", None]
    closed = events.filter(pl.col("eventid") == "cowrie.session.closed")
    assert closed["duration_s"].to_list() == [1.5, 12.5]
    assert events["ts"][0] == dt.datetime(2023, 1, 1, 10, tzinfo=dt.UTC)
    connect = events.filter(pl.col("eventid") == "cowrie.session.connect")
    assert connect["protocol"].to_list() == ["ssh", "telnet"] and connect["dst_port"].to_list() == [22, 23]


def test_gzip_multiple_files_and_a_connect_in_an_earlier_file(tmp_path):
    a = write(tmp_path / "cowrie.json.2023-01-01.gz", new_generation()[:1], gz=True)
    b = write(
        tmp_path / "cowrie.json.2023-01-02", [ev("cowrie.login.success", "a1", username="x", password="y")]
    )
    events, report = read_cowrie([a, b])
    assert report.files == [str(a), str(b)]
    assert events["src_ip"].to_list() == [ip("192.0.2.10"), ip("192.0.2.10")]


def test_malformed_lines_reported_with_file_and_line(tmp_path, caplog):
    lines = new_generation()
    lines.insert(2, '{"eventid": "cowrie.login.failed", "session": "a1", ')  # line 3: cut JSON
    lines.insert(4, '["not", "an", "event"]')  # line 5
    lines.append(ev("cowrie.login.failed", "zz", username="x"))  # session without any source
    f = write(tmp_path / "cowrie.json", lines)
    with caplog.at_level(logging.WARNING):
        events, report = read_cowrie([f])
    assert [(p.file, p.line) for p in report.problems] == [(str(f), 3), (str(f), 5)]
    assert "invalid JSON" in report.problems[0].reason and "no `eventid`" in report.problems[1].reason
    assert f"{f}:3" in caplog.text
    assert report.no_src_ip == 1
    assert events.height == len(new_generation()) - 1  # the rest is read


def test_a_file_that_is_not_a_cowrie_log_raises_naming_it(tmp_path):
    f = tmp_path / "junk.bin"
    f.write_bytes(b"\x00\x01\x02 not json\n\xff\xfe\n")
    with pytest.raises(CowrieLogError, match="not a Cowrie JSON log") as e:
        read_cowrie([f])
    assert str(f) in str(e.value)
    with pytest.raises(CowrieLogError, match="not found"):
        read_cowrie([tmp_path / "absent.json"])


def test_ipv6_sources_dropped_and_mapped_ipv4_read(tmp_path):
    f = write(
        tmp_path / "c.json",
        [
            ev("cowrie.session.connect", "v6", src_ip="2001:db8::1"),
            ev("cowrie.login.failed", "v6", src_ip="2001:db8::1"),
            ev("cowrie.session.connect", "m4", src_ip="::ffff:192.0.2.99"),
        ],
    )
    events, report = read_cowrie([f])
    assert events["src_ip"].to_list() == [ip("192.0.2.99")]
    assert report.no_src_ip == 2


def _labels(lines: list[str], tmp_path, **cfg) -> dict[str, dict]:
    events, _ = read_cowrie([write(tmp_path / "c.json", lines)])
    out = honeypot_labels(events, HoneypotConfig(**cfg), day=dt.date(2023, 1, 1))
    return {f"192.0.2.{r['src_ip'] & 255}": r for r in out.iter_rows(named=True)}


def test_brute_forcer_needs_more_than_ten_attempts(tmp_path):
    lines = brute_forcer(10, "192.0.2.30", "s30") + brute_forcer(9, "192.0.2.31", "s31")
    lines += [ev("cowrie.login.success", "s31", src_ip="192.0.2.31", username="a", password="b")]  # 10 in all
    lines += brute_forcer(11, "192.0.2.32", "s32")
    got = _labels(lines, tmp_path)
    assert {k: (v["login_attempts"], v["brute-forcer"]) for k, v in got.items()} == {
        "192.0.2.30": (10, False),
        "192.0.2.31": (10, False),
        "192.0.2.32": (11, True),
    }
    assert _labels(lines, tmp_path, bruteforce_more_than=9)["192.0.2.30"]["brute-forcer"]


def test_exploiter_and_strict_mode(tmp_path):
    lines = new_generation() + old_generation()
    # a host that downloads without ever logging in (impossible in a shell, but the rule must hold)
    lines += [ev("cowrie.session.file_download", "d4", src_ip="192.0.2.40", url="http://x/y")]
    lines += [
        ev("cowrie.login.success", "e5", src_ip="192.0.2.50"),
        ev("cowrie.session.file_download.failed", "e5", src_ip="192.0.2.50", url="http://x/z", error="404"),
    ]
    lax = _labels(lines, tmp_path)
    assert {k for k, v in lax.items() if v["exploiter"]} == {"192.0.2.10", "192.0.2.20"}
    strict = _labels(lines, tmp_path, exploiter_strict=True)
    assert {k for k, v in strict.items() if v["exploiter"]} == {"192.0.2.10"}  # redirect capture has no URL
    assert strict["192.0.2.20"]["downloads"] == 0 and lax["192.0.2.20"]["downloads"] == 1
    tftp_only = _labels(
        [*new_generation()[:-2], ev("cowrie.session.file_download", "a1", url="TFTP://203.0.113.5/m")],
        tmp_path,
        exploiter_strict=True,
    )
    assert tftp_only["192.0.2.10"]["exploiter"]


def test_spammer_from_smtp_tunnel_requests(tmp_path):
    # as Cowrie writes them: a tunnel request's src_ip is the originator the client put in its channel request
    lines = [
        ev("cowrie.session.connect", "f6", src_ip="192.0.2.60"),
        ev("cowrie.direct-tcpip.request", "f6", dst_ip="203.0.113.25", dst_port=25, src_ip="127.0.0.1",
           src_port=0),
        ev("cowrie.session.connect", "g7", src_ip="192.0.2.70"),
        ev("cowrie.direct-tcpip.request", "g7", dst_ip="203.0.113.80", dst_port=80, src_ip="198.51.100.9",
           src_port=1),
    ]  # fmt: skip
    got = _labels(lines, tmp_path)
    assert (got["192.0.2.60"]["spammer"], got["192.0.2.70"]["spammer"]) == (True, False)
    assert "127.0.0.1" not in got and "198.51.100.9" not in got  # the claimed originators are nobody's label
    assert not _labels(lines, tmp_path, spammer_min_requests=None)["192.0.2.60"]["spammer"]


def test_a_tunnel_request_without_its_session_has_no_source(tmp_path):
    # the connect event sits in a log not read: the request's own src_ip is the client's claim, not the attacker
    lines = [ev("cowrie.direct-tcpip.request", "h8", dst_ip="203.0.113.25", dst_port=25, src_ip="10.1.1.1")]
    f = tmp_path / "cowrie.json"
    f.write_text("\n".join(lines) + "\n")
    events, report = read_cowrie([f])
    assert events.height == 0 and report.no_src_ip == 1


def test_events_outside_the_day_do_not_count(tmp_path):
    lines = brute_forcer(11, "192.0.2.30", "s30")
    lines = [x.replace("2023-01-01T10", "2023-01-02T10") if i > 5 else x for i, x in enumerate(lines)]
    got = _labels(lines, tmp_path)
    assert got["192.0.2.30"]["login_attempts"] == 5


# --- hostile and damaged input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "port", ["²", "99999999999999999999", "9" * 5000, 2**63, -1, 65536, "22a", "", 22.5, [22], True]
)
def test_a_bad_dst_port_skips_that_event_only_and_is_counted_with_file_and_line(tmp_path, caplog, port):
    lines = new_generation()
    lines.insert(1, json.dumps({**json.loads(lines[0]), "dst_port": port}))  # line 2: the bad one
    f = write(tmp_path / "cowrie.json", lines)
    with caplog.at_level(logging.WARNING):
        events, report = read_cowrie([f])
    assert events.height == len(new_generation()) - 1  # every other event kept (minus the ignored kex)
    assert report.skipped == {"dst_port not a port number": 1}
    assert [(p.file, p.line) for p in report.problems] == [(str(f), 2)]
    assert f"{f}:2" in caplog.text and "dst_port not a port number" in caplog.text
    assert events.filter(pl.col("eventid") == "cowrie.session.connect")["dst_port"].to_list() == [22]


def test_string_ports_of_ascii_digits_are_read(tmp_path):
    line = ev("cowrie.session.connect", "p1", src_ip="192.0.2.1", dst_port="2222")
    events, report = read_cowrie([write(tmp_path / "c.json", [line])])
    assert events["dst_port"].to_list() == [2222] and not report.skipped


def _corrupt_gzip(tmp_path, lines):
    """A gzip log with one bit flipped in its deflate stream, past the first quarter, such that reading raises
    `zlib.error` (not just a CRC mismatch at the end)."""
    import io
    import zlib

    # deflate blocks flushed every 100 lines: a flip in a block header mid-stream breaks decoding there
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    data, starts = b"", []
    for i in range(0, len(lines), 100):
        data += comp.compress(("\n".join(lines[i : i + 100]) + "\n").encode())
        data += comp.flush(zlib.Z_FULL_FLUSH)
        starts.append(len(data))
    data += comp.flush()
    for pos in [p + k for p in starts[len(starts) // 2 :] for k in range(4)]:
        for bit in (0x01, 0x02, 0x04, 0x80, 0xFF):
            trial = bytearray(data)
            trial[pos] ^= bit
            try:
                gzip.GzipFile(fileobj=io.BytesIO(bytes(trial))).read()
            except zlib.error:
                path = tmp_path / "cowrie.json.2023-01-01.gz"
                path.write_bytes(bytes(trial))
                return path
            except (OSError, EOFError):
                continue
    raise AssertionError("no flip found that breaks the deflate stream")


def test_a_damaged_gzip_log_keeps_what_precedes_the_damage_and_reports_where(tmp_path, caplog):
    lines = [
        ev("cowrie.login.failed", f"s{i}", src_ip=f"192.0.2.{i % 200 + 1}", username="u", password=f"{i:06d}")
        for i in range(3000)
    ]
    path = _corrupt_gzip(tmp_path, lines)
    with caplog.at_level(logging.WARNING):
        events, report = read_cowrie([path])  # no raw zlib.error
    assert report.damaged == [str(path)]
    assert 0 < events.height < len(lines)
    assert events["session"].to_list() == [f"s{i}" for i in range(events.height)]  # a clean prefix
    (problem,) = [p for p in report.problems if "gzip stream damaged" in p.reason]
    assert (
        problem.file == str(path) and "decompressed byte" in problem.reason and "zlib" in caplog.text.lower()
    )


def test_a_gzip_log_cut_short_keeps_its_events(tmp_path):
    lines = brute_forcer(200)
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "cowrie.json.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    events, report = read_cowrie([path])
    assert 0 < events.height < len(lines) and report.damaged == [str(path)]


def test_timestamps_are_parsed_per_event_and_failures_counted(tmp_path, caplog):
    stamps = [
        "2023-01-01 09:00:00",  # another format first: must not decide the format of the others
        "2023-01-01T10:00:00.123456Z",
        "2023-01-01T11:00:00Z",
        "2023-01-01T12:00:00.5+00:00",
        "2023-01-01T14:00:00+0200",
        "yesterday",
        "2023-01-01T15:00:00.000000Z",
    ]
    lines = [ev("cowrie.login.failed", "t1", ts=t, src_ip="192.0.2.9") for t in stamps]
    f = write(tmp_path / "cowrie.json", lines)
    with caplog.at_level(logging.WARNING):
        events, report = read_cowrie([f])
    got = [None if t is None else t.strftime("%H:%M:%S.%f") for t in events["ts"].to_list()]
    assert got == ["09:00:00.000000", "10:00:00.123456", "11:00:00.000000", "12:00:00.500000",
                   "12:00:00.000000", None, "15:00:00.000000"]  # fmt: skip
    assert report.bad_timestamps == 1
    assert [(p.file, p.line) for p in report.problems] == [(str(f), 6)]
    assert f"{f}:6" in caplog.text


def test_a_utf8_byte_order_mark_does_not_drop_the_first_event(tmp_path):
    f = tmp_path / "cowrie.json"
    f.write_bytes(b"\xef\xbb\xbf" + ("\n".join(brute_forcer(11)) + "\n").encode())
    events, report = read_cowrie([f])
    assert events.height == 12 and not report.problems
    assert events["eventid"][0] == "cowrie.session.connect"


# --- rotated logs and tunnel bots ---------------------------------------------------------------------------------


def test_a_day_pattern_finds_the_rotated_gzipped_log_and_reports_missing_days(tmp_path):
    from darkembed.labels.cowrie import find_cowrie_logs

    write(tmp_path / "cowrie.json.2018-06-12.gz", brute_forcer(3), gz=True)
    write(tmp_path / "cowrie.json.2018-06-13", brute_forcer(3))
    write(tmp_path / "cowrie.json.2018-06-13.gz", brute_forcer(3), gz=True)
    pattern = str(tmp_path / "cowrie.json.{day:%Y-%m-%d}")
    days = [dt.date(2018, 6, d) for d in (12, 13, 14)]
    found = [find_cowrie_logs([pattern.format(day=d)]) for d in days]
    assert found[0] == ([tmp_path / "cowrie.json.2018-06-12.gz"], [])
    assert found[1] == ([tmp_path / "cowrie.json.2018-06-13"], [])  # the plain file; its .gz copy not twice
    assert found[2] == ([], [str(tmp_path / "cowrie.json.2018-06-14")])


def test_the_labels_stage_warns_about_and_returns_a_missing_honeypot_day(tmp_path):
    from darkembed.config import load_config
    from darkembed.stages.labels import cowrie_files

    write(tmp_path / "cowrie.json.2023-01-01.gz", brute_forcer(3), gz=True)
    cfg = load_config(
        overrides={
            "networks": [{"name": "hp", "kind": "honeypot", "cowrie": [str(tmp_path / "cowrie.json.{day}")]}],
            "pairs": [],
        }
    )
    assert cowrie_files(cfg, dt.date(2023, 1, 1)) == ([tmp_path / "cowrie.json.2023-01-01.gz"], [])
    seen: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = seen.append  # Prefect's logging setup may keep task-module records from the root logger
    logging.getLogger("darkembed.stages.labels").addHandler(handler)
    try:
        files, missing = cowrie_files(cfg, dt.date(2023, 1, 2))
    finally:
        logging.getLogger("darkembed.stages.labels").removeHandler(handler)
    assert files == [] and missing == [str(tmp_path / "cowrie.json.2023-01-02")]
    (record,) = seen
    assert record.levelno == logging.WARNING and "no Cowrie log matches" in record.getMessage()
    assert "cowrie.json.2023-01-02" in record.getMessage()


def test_tunnel_bots_with_only_successful_logins_are_brute_forcers_only_when_all_attempts_count(tmp_path):
    bot = [ev("cowrie.session.connect", f"b{i}", src_ip="192.0.2.80") for i in range(20)]
    bot += [ev("cowrie.login.success", f"b{i}", username="root", password="x") for i in range(20)]
    bot += [ev("cowrie.direct-tcpip.request", f"b{i}", dst_ip="203.0.113.25", dst_port=25) for i in range(20)]
    lines = bot + brute_forcer(11, "192.0.2.30", "s30")
    papers = _labels(lines, tmp_path)
    assert papers["192.0.2.80"]["brute-forcer"] and papers["192.0.2.80"]["spammer"]
    failed = _labels(lines, tmp_path, bruteforce_count="failed")
    assert not failed["192.0.2.80"]["brute-forcer"] and failed["192.0.2.80"]["spammer"]
    assert failed["192.0.2.30"]["brute-forcer"]  # 11 failures still count
    mixed = brute_forcer(6, "192.0.2.31", "s31")
    mixed += [ev("cowrie.login.success", "s31", src_ip="192.0.2.31", username="a", password="b")] * 6
    assert _labels(mixed, tmp_path)["192.0.2.31"]["brute-forcer"]  # 12 attempts
    assert not _labels(mixed, tmp_path, bruteforce_count="failed")["192.0.2.31"]["brute-forcer"]  # 6 failures
