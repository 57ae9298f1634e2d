"""The research group's legacy text traces into the packets schema."""

import datetime as dt
import gzip

import pytest

from darkembed.ingest import CaptureError, read_legacy, read_source
from darkembed.schemas import PACKETS

TRACE = """ts ethtype src_ip src_port dst_ip dst_port proto pck_len tcp_flags mirai tcp_seq ttl t_mss t_win t_ts t_sack t_sackp
1638316800.123456 2048 1.2.3.4 40000 198.51.100.7 23 6 40 2 1 3325256711 51 - 5840 - - -
1638316801.000001 2048 5.6.7.8 53 198.51.100.9 53 17 60 - 0 - 120 - - - - -
1638316802.5 2048 9.9.9.9 - 198.51.100.1 - 1 56 - 0 - 64 - - - - -
1638316803.25 2048 not.an.ip 1 198.51.100.1 22 6 60 2 0 1 64 1460 29200 123 - 1
1638316804.75 2048 10.0.0.1 50000 198.51.100.2 22 6 60 2 0 99 64 1460 29200 4242 - 1
"""


def test_trace_columns_map_to_the_schema(tmp_path):
    p = tmp_path / "trace_20211201_00_00_00_000.log.gz"
    p.write_bytes(gzip.compress(TRACE.encode()))
    t, r = read_source(p)
    assert r.format == "trace" and r.compressed
    assert t.schema.equals(PACKETS)
    assert (r.records, r.kept, r.skipped, r.bad) == (5, 4, {"bad_row": 1}, [(5, "bad_row")])
    rows = t.to_pylist()
    assert rows[0]["src_ip"] == 0x01020304 and rows[0]["dst_ip"] == 0xC6336407
    assert rows[0]["ts"] == dt.datetime(2021, 12, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
    assert rows[0]["tcp_seq"] == 3325256711 == rows[0]["dst_ip"]  # the Mirai fingerprint survives
    assert (rows[0]["tcp_flags"], rows[0]["ttl"], rows[0]["tcp_win"], rows[0]["tcp_mss"]) == (
        2,
        51,
        5840,
        None,
    )
    assert (rows[1]["proto"], rows[1]["src_port"], rows[1]["dst_port"]) == (17, 53, 53)
    assert (rows[2]["proto"], rows[2]["dst_port"], rows[2]["tcp_seq"]) == (1, None, None)
    assert (rows[3]["tcp_mss"], rows[3]["tcp_tsval"], rows[3]["tcp_sackp"]) == (1460, 4242, True)


def test_darkvec_log_with_and_without_header(tmp_path):
    body = "1617235200.5 1.2.3.4 23 tcp 40\n1617235201.5 5.6.7.8 53 udp 60\n1617235202 9.9.9.9 - icmp 56\n"
    for header in ("ts src_ip dst_port proto pck_len\n", ""):
        p = tmp_path / f"darkvec{len(header)}.log"
        p.write_text(header + body)
        t, r = read_legacy(p)
        assert r.format == "darkvec-log" and r.kept == 3
        assert t.column("proto").to_pylist() == [6, 17, 1]
        assert t.column("dst_port").to_pylist() == [23, 53, None]
        assert t.column("dst_ip").null_count == 3


def test_unknown_text_is_refused_with_the_first_line(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("dear diary\n")
    with pytest.raises(
        CaptureError, match=r"notes\.txt: not a capture .*nor a legacy text trace.*dear diary"
    ):
        read_legacy(p)
