"""Damaged and hostile input: every good record kept, every bad one counted with its offset, no traceback."""

import gzip
import struct

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darkembed.ingest import CaptureError, read_capture
from darkembed.schemas import PACKETS
from tests.pcapbuild import ether, ipv4, pcap, syn, tcp

A, B = 0x01020304, 0xC6336401  # 1.2.3.4 -> 198.51.100.1


def _good(n=5):
    return [(1672531200.0 + i, syn(A + i, B, 23)) for i in range(n)]


def _write(tmp_path, data, name="x.pcap"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _rec_offsets(frames):
    offs, pos = [], 24
    for _, data in frames:
        offs.append(pos)
        pos += 16 + len(data)
    return offs


def test_valid_file_reads_every_record(tmp_path):
    t, r = read_capture(_write(tmp_path, pcap(_good())))
    assert t.schema.equals(PACKETS)
    assert (r.records, r.kept, r.skipped, r.bad, r.error) == (5, 5, {}, [], None)
    assert t.column("src_ip").to_pylist() == [A + i for i in range(5)]
    assert t.column("tcp_seq").to_pylist() == [B] * 5


def test_truncated_last_record_keeps_the_others(tmp_path):
    data = pcap(_good())
    p = _write(tmp_path, data[:-7])
    t, r = read_capture(p)
    assert t.num_rows == 4 and r.kept == 4
    assert r.skipped == {"truncated_record": 1}
    assert r.bad == [(_rec_offsets(_good())[4], "truncated_record")]
    assert "cut off" in r.error


def test_caplen_larger_than_origlen_or_snaplen_is_counted(tmp_path):
    frames = _good()
    n = len(frames[1][1])
    data = pcap(frames, snaplen=n, origlens={1: n - 4})  # record 1: caplen > len
    # record 3: caplen > snaplen, with the bytes really there
    frames2 = [*frames[:3], (frames[3][0], frames[3][1] + b"\x00" * 8), frames[4]]
    data2 = pcap(frames2, snaplen=n)
    t, r = read_capture(_write(tmp_path, data, "a.pcap"))
    assert r.skipped == {"caplen_gt_len": 1} and t.num_rows == 4
    assert r.bad == [(_rec_offsets(frames)[1], "caplen_gt_len")]
    t2, r2 = read_capture(_write(tmp_path, data2, "b.pcap"))
    assert r2.skipped == {"caplen_gt_snaplen": 1} and t2.num_rows == 4
    assert r2.bad == [(_rec_offsets(frames2)[3], "caplen_gt_snaplen")]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (ether(ipv4(A, B, 6, tcp(1, 23, 0), ihl=3)), "bad_ip_header"),  # IHL below 5
        (ether(ipv4(A, B, 6, tcp(1, 23, 0), ihl=15)), "ip_truncated"),  # IHL past the captured bytes
        (ether(ipv4(A, B, 6, tcp(1, 23, 0), total_len=10)), "bad_ip_header"),  # total length < header
        (ether(ipv4(A, B, 6, tcp(1, 23, 0, doff=3))), "bad_tcp_header"),  # data offset below 5
        (ether(ipv4(A, B, 6, tcp(1, 23, 0))[:30]), "l4_truncated"),  # snap shorter than the TCP header
        (ether(b"\x45\x00"), "ip_truncated"),
        (b"\x00" * 10, "short_frame"),
        (ether(b"\x00" * 40, 0x0806), "non_ip"),  # ARP
        (ether(b"\x60" + b"\x00" * 39, 0x86DD), "ipv6"),
    ],
)
def test_each_bad_header_is_counted_and_the_rest_kept(tmp_path, frame, reason):
    frames = [*_good(2), (1672531300.0, frame), *_good(2)]
    t, r = read_capture(_write(tmp_path, pcap(frames)))
    assert t.num_rows == 4
    assert r.skipped == {reason: 1}
    if reason in ("non_ip", "ipv6"):
        assert r.bad == []  # out of scope, not damage
    else:
        assert r.bad == [(_rec_offsets(frames)[2], reason)]


def test_empty_file_and_empty_gzip_give_no_rows_and_no_exception(tmp_path):
    for name, data in (("e.pcap", b""), ("e.pcap.gz", gzip.compress(b""))):
        t, r = read_capture(_write(tmp_path, data, name))
        assert t.num_rows == 0 and t.schema.equals(PACKETS)
        assert "empty" in r.error


def test_header_only_capture_is_fine(tmp_path):
    t, r = read_capture(_write(tmp_path, pcap([])))
    assert t.num_rows == 0 and r.error is None


def test_cut_capture_header_is_reported(tmp_path):
    t, r = read_capture(_write(tmp_path, pcap([])[:10]))
    assert t.num_rows == 0 and "header cut off" in r.error


def test_corrupt_gzip_keeps_what_preceded_the_damage(tmp_path):
    frames = [(1672531200.0 + i, syn(A + i, B, 23)) for i in range(3000)]
    comp = bytearray(gzip.compress(pcap(frames), 1))
    comp[len(comp) // 2 : len(comp) // 2 + 64] = b"\xff" * 64
    t, r = read_capture(_write(tmp_path, bytes(comp), "c.pcap.gz"))
    assert "corrupt gzip" in r.error
    assert 0 < t.num_rows < 3000
    got = t.column("src_ip").to_pylist()
    # what preceded the damage, then whatever real records the reader resynchronised on (inflated garbage can
    # repeat earlier records through deflate's back-references: real packets, but out of place)
    assert got[:1000] == [A + i for i in range(1000)]
    assert set(got) <= {A + i for i in range(3000)}


def test_cut_gzip_stream_keeps_what_preceded_the_cut(tmp_path):
    frames = [(1672531200.0 + i, syn(A + i, B, 23)) for i in range(3000)]
    comp = gzip.compress(pcap(frames), 1)
    t, r = read_capture(_write(tmp_path, comp[: len(comp) * 2 // 3], "c.pcap.gz"))
    assert "cut off" in r.error
    assert 0 < t.num_rows < 3000
    assert t.column("src_ip").to_pylist() == [A + i for i in range(t.num_rows)]


def test_multi_member_gzip_is_read_whole(tmp_path):
    frames = _good(4)
    data = pcap(frames)
    comp = gzip.compress(data[:100]) + gzip.compress(data[100:])
    t, r = read_capture(_write(tmp_path, comp, "m.pcap.gz"))
    assert t.num_rows == 4 and r.error is None and r.compressed


@pytest.mark.parametrize(
    "content", [b"hello, this is a text file\n" * 3, b"\x00" * 100, gzip.compress(b"x" * 99)]
)
def test_not_a_capture_raises_one_clear_error_naming_the_file(tmp_path, content):
    p = _write(tmp_path, content, "notes.pcap")
    with pytest.raises(CaptureError, match=r"notes\.pcap: not a pcap or pcapng capture"):
        read_capture(p)


def test_missing_file_is_a_capture_error(tmp_path):
    with pytest.raises(CaptureError, match="cannot read"):
        read_capture(tmp_path / "nope.pcap")


def test_pcapng_damaged_block_is_skipped_and_walk_continues(tmp_path):
    def block(btype, body):
        ln = 12 + len(body)
        return struct.pack("<II", btype, ln) + body + struct.pack("<I", ln)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 0))

    def epb(frame, cap=None):
        c = len(frame) if cap is None else cap
        pad = b"\x00" * (-len(frame) % 4)
        return block(6, struct.pack("<IIIII", 0, 0, 1000000, c, len(frame)) + frame + pad)

    f = syn(A, B, 23)
    data = shb + idb + epb(f) + epb(f, cap=len(f) + 400) + epb(syn(A + 1, B, 23)) + epb(f)[:20]
    t, r = read_capture(_write(tmp_path, data, "x.pcapng"))
    assert t.column("src_ip").to_pylist() == [A, A + 1]
    assert r.skipped == {"bad_block": 1, "truncated_record": 1}
    assert r.bad[0] == (len(shb + idb + epb(f)), "bad_block")


# ---- fuzzing: mutated captures only ever give records or the documented error

_BASE = pcap(
    [
        (1672531200.0, syn(A, B, 23)),
        (1672531201.0, ether(ipv4(A, B, 6, tcp(1, 80, 5, options=b"\x02\x04\x05\xb4\x01\x03\x03\x07")))),
        (1672531202.0, ether(ipv4(A, B, 17, b"\x00\x35\x00\x35\x00\x08\x00\x00"))),
        (1672531203.0, ether(ipv4(A, B, 1, b"\x03\x01\x00\x00" + b"\x00" * 24))),
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.integers(0, len(_BASE)),
    gz=st.booleans(),
)
def test_fuzzed_captures_give_records_or_the_documented_error(tmp_path, edits, cut, gz):
    data = bytearray(_BASE)
    for pos, val in edits:
        data[pos] = val
    data = bytes(data[: max(cut, 1)] if cut < len(_BASE) // 2 else data)
    if gz:
        data = gzip.compress(data)
    p = tmp_path / "f.pcap"
    p.write_bytes(data)
    try:
        t, r = read_capture(p)
    except CaptureError as exc:
        assert "f.pcap" in str(exc)
        return
    assert isinstance(t, pa.Table) and t.schema.equals(PACKETS)
    assert t.num_rows == r.kept
    # Every record is accounted for: kept, or skipped with a reason.
    assert r.kept + sum(r.skipped.values()) >= r.records
    assert all(reason != "ok" for _, reason in r.bad)


# ---- fuzzing: damaged record headers in the middle of a file lose nothing after them

_MANY = [
    (1672531200.0 + i * 0.5, syn(A + i, B, 23 + i % 3, sport=1000 + i) + b"\x00" * (i % 7)) for i in range(40)
]
_MANY_PCAP = pcap(_MANY)
_MANY_OFFS = _rec_offsets(_MANY)


def _block(btype, body):
    ln = 12 + len(body)
    return struct.pack("<II", btype, ln) + body + struct.pack("<I", ln)


def _epb(ts, frame):
    us = round(ts * 1e6)
    pad = b"\x00" * (-len(frame) % 4)
    return _block(
        6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(frame), len(frame)) + frame + pad
    )


_NG_HEAD = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) + _block(
    1, struct.pack("<HHI", 1, 0, 0)
)
_NG_BLOCKS = [_epb(ts, f) for ts, f in _MANY]
_NG_OFFS = [len(_NG_HEAD) + sum(len(b) for b in _NG_BLOCKS[:i]) for i in range(len(_MANY))]
_MANY_PCAPNG = _NG_HEAD + b"".join(_NG_BLOCKS)


def _rows(t):
    ns = t.column("ts").cast(pa.int64()).to_pylist()
    return list(zip(t.column("src_ip").to_pylist(), ns, strict=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.integers(5, len(_MANY) - 5),
    edits=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 255)), min_size=1, max_size=6),
    ng=st.booleans(),
    gz=st.booleans(),
)
def test_damaged_header_in_the_middle_keeps_every_intact_record(tmp_path, k, edits, ng, gz):
    """Overwrite bytes of record k's header (pcap: the 16-byte record header; pcapng: block type and length, then
    the enhanced packet block's interface, timestamp and lengths): every other record is kept exactly."""
    data = bytearray(_MANY_PCAPNG if ng else _MANY_PCAP)
    base = (_NG_OFFS if ng else _MANY_OFFS)[k]
    for i, v in edits:
        data[base + (i if not ng else [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 25, 28, 29][i])] = v
    data = bytes(data)
    if gz:
        data = gzip.compress(data)
    p = tmp_path / ("f.pcapng" if ng else "f.pcap")
    p.write_bytes(data)
    t, r = read_capture(p)
    want = [(A + i, round(ts * 1e6) * 1000) for i, (ts, _) in enumerate(_MANY)]
    got = _rows(t)
    assert [x for x in got if x[0] != A + k] == [x for x in want if x[0] != A + k], r.summary()
    assert len(got) >= len(_MANY) - 1
