"""Integrity of the capture reader: nothing good lost after damage, nothing corrupt kept as a row.

* a bad record header (pcap caplen, pcapng block length) no longer ends the read: the reader resynchronises on
  the next plausible record, keeps every intact record after it and reports the skipped byte range;
* IPv4 header checksums are verified (and can be switched off for captures with checksum offload);
* timestamps far outside the file's own time span are dropped and counted;
* a damaged gzip stream says which compressed and decompressed byte ranges were lost;
* every read of the compiled kernels stays inside the buffer (checked with numba's bounds checking on).
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from darkembed.ingest import read_capture
from darkembed.ingest.capture import CaptureChecks
from tests.pcapbuild import ether, ipv4, pcap, tcp, udp

DST = 0xC6336400  # 198.51.100.0/24
T0 = 1672531200.0  # 2023-01-01T00:00:00Z
ROOT = Path(__file__).resolve().parents[2]


def frames(n: int, t0: float = T0) -> list[tuple[float, bytes]]:
    """`n` distinct IPv4 frames of varying size; record i has source address i + 1 and a unique timestamp."""
    out = []
    for i in range(n):
        src, dst = 0x0A000001 + i, DST + i % 256
        if i % 3 == 0:
            l4 = tcp(40000 + i % 20000, 23, dst)
        elif i % 3 == 1:
            l4 = tcp(40000, 80, i, options=b"\x02\x04\x05\xb4\x01\x03\x03\x07")
        else:
            l4 = udp(53, 53, b"x" * (i % 40))
        proto = 6 if i % 3 < 2 else 17
        out.append((t0 + i * 0.25, ether(ipv4(src, dst, proto, l4, ip_id=i & 0xFFFF))))
    return out


def offsets(fr: list[tuple[float, bytes]]) -> list[int]:
    offs, pos = [], 24
    for _, data in fr:
        offs.append(pos)
        pos += 16 + len(data)
    return offs


def srcs(table: pa.Table) -> list[int]:
    return [s - 0x0A000001 for s in table.column("src_ip").to_pylist()]


def write(tmp_path: Path, data: bytes, name: str = "c.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ------------------------------------------------------------------------------------ 1. resynchronisation (pcap)

N = 3604
MID = 1802


@pytest.mark.parametrize(
    ("cap_patch", "orig_patch", "outcome"),
    [
        # caplen above the original length: the record ending where the original length says is tried first
        (lambda c: 0xFFFFFFF0, None, "caplen_gt_len"),  # runs past the end of the file
        (lambda c: c ^ 0x100, None, "caplen_gt_len"),  # one flipped bit: 256 bytes too long
        (lambda c: c ^ 0x01000000, None, "caplen_gt_len"),  # one flipped bit in the top byte
        # both lengths damaged: nothing vouches for the record, the reader scans for the next one
        (lambda c: 0xFFFFFFF0, lambda o: 0xFFFFFFF0, "gap"),
        (lambda c: c ^ 0x100, lambda o: o ^ 0x100, "gap"),
        # 8 bytes short: read cut (its TCP header too short), then the rest resynchronised
        (lambda c: c ^ 0x08, None, "cut"),
    ],
    ids=["0xFFFFFFF0", "bit8", "bit24", "both-0xFFFFFFF0", "both-bit8", "short"],
)
def test_bad_caplen_in_the_middle_keeps_every_intact_record_after_it(
    tmp_path, cap_patch, orig_patch, outcome
):
    fr = frames(N)
    data = bytearray(pcap(fr))
    off, nxt = offsets(fr)[MID], offsets(fr)[MID + 1]
    for at, patch in ((off + 8, cap_patch), (off + 12, orig_patch)):
        if patch is not None:
            (v,) = struct.unpack_from("<I", data, at)
            struct.pack_into("<I", data, at, patch(v))
    t, r = read_capture(write(tmp_path, bytes(data)))
    assert srcs(t) == [i for i in range(N) if i != MID]  # all 1,801 after the damage, in order, none invented
    assert r.kept == t.num_rows == N - 1
    if outcome == "caplen_gt_len":
        assert r.skipped == {"caplen_gt_len": 1} and r.gaps == []
        assert r.bad == [(off, "caplen_gt_len")]
    elif outcome == "gap":
        assert r.skipped == {"bad_record_header": 1}
        assert r.gaps == [(off, nxt - off, "bad_record_header")]  # the next intact record starts right after
        assert r.bad == [(off, "bad_record_header")]
        assert "resynchronised after 1 damaged header(s)" in r.summary()
    else:
        assert r.skipped == {"l4_truncated": 1, "bad_record_header": 1}
        assert r.gaps == [(nxt - 8, 8, "bad_record_header")]
    assert r.error is None


def test_bad_caplen_in_the_first_record_loses_only_that_record(tmp_path):
    fr = frames(50)
    data = bytearray(pcap(fr))
    struct.pack_into("<II", data, 24 + 8, 0xFFFF0000, 0xFFFF0000)
    t, r = read_capture(write(tmp_path, bytes(data)))
    assert srcs(t) == list(range(1, 50))
    assert r.gaps == [(24, offsets(fr)[1] - 24, "bad_record_header")]


def test_flipped_timestamp_byte_keeps_the_record_structure_and_drops_only_its_row(tmp_path):
    fr = frames(200)
    data = bytearray(pcap(fr))
    data[offsets(fr)[100] + 3] ^= 0x40  # seconds + 2^30: the year 2057
    t, r = read_capture(write(tmp_path, bytes(data)))
    assert srcs(t) == [i for i in range(200) if i != 100]
    assert r.skipped == {"ts_outside_window": 1}
    assert r.gaps == []


def test_garbage_between_records_is_skipped_as_one_range(tmp_path):
    fr = frames(100)
    data = pcap(fr)
    cut = offsets(fr)[40]
    junk = bytes(range(256)) * 3
    data = data[:cut] + junk + data[cut:]
    t, r = read_capture(write(tmp_path, data))
    assert srcs(t) == list(range(100))
    assert r.gaps == [(cut, len(junk), "bad_record_header")]


def test_truncated_file_is_still_a_cut_last_record_not_a_gap(tmp_path):
    fr = frames(30)
    data = pcap(fr)[:-7]
    t, r = read_capture(write(tmp_path, data))
    assert srcs(t) == list(range(29))
    assert r.skipped == {"truncated_record": 1} and r.gaps == []
    assert "cut off" in r.error


# ---------------------------------------------------------------------------------- 1. resynchronisation (pcapng)


def _block(btype: int, body: bytes) -> bytes:
    ln = 12 + len(body)
    return struct.pack("<II", btype, ln) + body + struct.pack("<I", ln)


SHB = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
IDB = _block(1, struct.pack("<HHI", 1, 0, 0))


def epb(ts: float, frame: bytes) -> bytes:
    us = round(ts * 1e6)
    pad = b"\x00" * (-len(frame) % 4)
    return _block(
        6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(frame), len(frame)) + frame + pad
    )


@pytest.mark.parametrize(
    "patch", [lambda n: 0xFFFFFFF0, lambda n: n ^ 0x40, lambda n: n ^ 0x4], ids=["0xFFFFFFF0", "bit6", "bit2"]
)
def test_pcapng_bad_block_length_in_the_middle_keeps_every_intact_block_after_it(tmp_path, patch):
    fr = frames(N)
    blocks = [epb(ts, f) for ts, f in fr]
    pos = len(SHB + IDB) + sum(len(b) for b in blocks[:MID])
    data = bytearray(SHB + IDB + b"".join(blocks))
    struct.pack_into("<I", data, pos + 4, patch(len(blocks[MID])))
    t, r = read_capture(write(tmp_path, bytes(data), "c.pcapng"))
    assert srcs(t) == [i for i in range(N) if i != MID]
    assert r.gaps == [(pos, len(blocks[MID]), "bad_block_header")]
    assert r.skipped == {"bad_block_header": 1}


def test_pcapng_resynchronises_on_a_new_section(tmp_path):
    fr = frames(20)
    one = SHB + IDB + b"".join(epb(ts, f) for ts, f in fr[:10])
    two = SHB + IDB + b"".join(epb(ts, f) for ts, f in fr[10:])
    junk = b"\xff" * 64
    t, r = read_capture(write(tmp_path, one + junk + two, "s.pcapng"))
    assert srcs(t) == list(range(20))
    assert r.gaps == [(len(one), len(junk), "bad_block_header")]


# ------------------------------------------------------------------------------------ 2. corrupt packets as rows


def test_flipped_source_address_byte_fails_the_ip_checksum(tmp_path):
    fr = frames(10)
    data = bytearray(pcap(fr))
    at = offsets(fr)[4] + 16 + 14 + 12  # record 4: first byte of the IPv4 source address
    data[at] ^= 0x20
    t, r = read_capture(write(tmp_path, bytes(data)))
    assert srcs(t) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert r.skipped == {"bad_ip_checksum": 1}
    assert r.bad == [(offsets(fr)[4], "bad_ip_checksum")]


def test_checksum_offload_option_keeps_bad_checksums_and_still_counts_them(tmp_path):
    fr = [(T0 + i, ether(ipv4(0x0A000001 + i, DST, 6, tcp(1, 23, 0), checksum=0))) for i in range(5)]
    p = write(tmp_path, pcap(fr))
    t, r = read_capture(p)
    assert t.num_rows == 0 and r.skipped == {"bad_ip_checksum": 5}
    t, r = read_capture(p, checks=CaptureChecks(verify_checksums=False))
    assert srcs(t) == list(range(5)) and r.skipped == {}
    assert r.flagged == {"bad_ip_checksum": 5}  # kept, but the report says how many


def test_timestamps_far_from_the_files_span_are_dropped_and_counted(tmp_path):
    fr = frames(40)
    fr[7] = (86_400 * 365 * 2.0, fr[7][1])  # 1972
    fr[30] = (T0 + 86_400 * 3650, fr[30][1])  # ten years later
    t, r = read_capture(write(tmp_path, pcap(fr)))
    assert srcs(t) == [i for i in range(40) if i not in (7, 30)]
    assert r.skipped == {"ts_outside_window": 2}
    t, r = read_capture(write(tmp_path, pcap(fr)), checks=CaptureChecks(max_ts_gap_s=0))
    assert t.num_rows == 40  # the window switched off


def test_a_long_capture_with_steady_traffic_is_not_cut(tmp_path):
    fr = [(T0 + i * 3600.0, f) for i, (_, f) in enumerate(frames(24 * 9))]  # one packet an hour for 9 days
    t, r = read_capture(write(tmp_path, pcap(fr)))
    assert t.num_rows == 24 * 9 and r.skipped == {}


def _flip_positions(n: int, count: int) -> list[int]:
    return [n // 10 + (n * 8 // 10) * k // count for k in range(count)]


def test_flipped_byte_in_gzip_stream_never_yields_invented_rows(tmp_path):
    fr = frames(3000)
    raw = pcap(fr)
    comp = gzip.compress(raw, 6)
    truth = {(int(ts * 1e6) * 1000, 0x0A000001 + i) for i, (ts, _) in enumerate(fr)}
    for at in _flip_positions(len(comp), 24):
        bad = bytearray(comp)
        bad[at] ^= 0x10
        t, r = read_capture(write(tmp_path, bytes(bad), "c.pcap.gz"))
        rows = set(
            zip(t.column("ts").cast(pa.int64()).to_pylist(), t.column("src_ip").to_pylist(), strict=True)
        )
        assert rows <= truth, f"flip at {at}: {len(rows - truth)} invented rows; {r.summary()}"
        assert r.error and "gzip" in r.error


def test_corrupt_gzip_reports_the_lost_byte_ranges(tmp_path):
    fr = frames(3000)
    raw = pcap(fr)
    comp = gzip.compress(raw, 6)
    for at in range(len(comp) // 4, len(comp), 7):  # the first flip after a quarter that makes inflate fail
        bad = bytearray(comp)
        bad[at] ^= 0xFF
        try:
            zlib.decompressobj(wbits=31).decompress(bytes(bad))
        except zlib.error as exc:
            if "check" not in str(exc):
                break
    else:
        pytest.fail("no flip made inflate fail")
    t, r = read_capture(write(tmp_path, bytes(bad), "c.pcap.gz"))
    (lost,) = [g for g in r.gaps if g[2] == "gzip_corrupt"]
    d_off, d_len, _ = lost
    assert 0 < d_off < len(raw) and d_off + d_len == len(raw)  # length from the member's ISIZE trailer
    c_start, c_end = r.gzip_lost
    assert at <= c_start < len(comp) and c_end == len(comp)  # failure is detected at or after the damage
    assert f"compressed bytes {c_start}-{c_end} not inflated" in r.error
    assert f"decompressed bytes {d_off}-{len(raw)} lost" in r.error
    truth = [i for i in range(3000)]
    assert 0 < t.num_rows < 3000
    assert set(srcs(t)) <= set(truth) and srcs(t) == sorted(srcs(t))


def test_gzip_crc_mismatch_is_reported_and_the_garbage_dropped(tmp_path):
    fr = frames(3000)
    raw = pcap(fr)
    comp = bytearray(gzip.compress(raw, 6))
    mid = len(comp) // 2
    comp[mid : mid + 64] = b"\xff" * 64  # inflates to the end, but the second half is garbage
    t, r = read_capture(write(tmp_path, bytes(comp), "c.pcap.gz"))
    assert "fails its trailer's data check" in r.error
    assert 0 < t.num_rows < 3000
    assert srcs(t) == list(range(t.num_rows))  # what precedes the damage, nothing invented
    assert r.gaps and r.gaps[-1][2] == "bad_record_header"  # the garbage is skipped, to the end


def test_cut_gzip_reports_the_compressed_end_and_unknown_length(tmp_path):
    fr = frames(3000)
    comp = gzip.compress(pcap(fr), 6)
    cut = comp[: len(comp) * 2 // 3]
    t, r = read_capture(write(tmp_path, cut, "c.pcap.gz"))
    assert r.gzip_lost == (len(cut), len(cut))
    (lost,) = [g for g in r.gaps if g[2] == "gzip_cut"]
    assert lost[1] == -1  # the length of what is missing is unknown
    assert srcs(t) == list(range(t.num_rows))


# ------------------------------------------------------------------------------- 13. reads bounded by the buffer

_BOUNDS_SCRIPT = textwrap.dedent(
    """
    import struct, sys
    from pathlib import Path
    from darkembed.ingest import read_capture

    def block(btype, body, ln=None):
        ln = 12 + len(body) if ln is None else ln
        return struct.pack("<II", btype, ln) + body + struct.pack("<I", ln)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 0))
    frame = bytes.fromhex(sys.argv[2])
    epb = block(6, struct.pack("<IIIII", 0, 0, 1000, len(frame), len(frame)) + frame + b"\\0" * (-len(frame) % 4))
    out = Path(sys.argv[1])
    cases = {
        "pb12.pcapng": shb + idb + epb + block(2, b""),  # 12-byte obsolete packet block at the end
        "pb16.pcapng": shb + idb + epb + block(2, b"\\0" * 4),
        "epb12.pcapng": shb + idb + epb + block(6, b""),
        "spb12.pcapng": shb + idb + epb + block(3, b""),
        "idb12.pcapng": shb + block(1, b"") + epb,
        "idbopt.pcapng": shb + block(1, struct.pack("<HHIHH", 1, 0, 0, 14, 8)) + epb,
        "shb12.pcapng": block(0x0A0D0D0A, b""),
        "shb8.pcapng": shb[:8],
        "isb.pcapng": shb + idb + epb + block(5, b"\\0" * 4),
        "pcap_hdr_cut.pcap": sys.argv[3] and bytes.fromhex(sys.argv[3])[:-9],
    }
    for name, data in cases.items():
        (out / name).write_bytes(data)
        t, r = read_capture(out / name)
        print(name, t.num_rows, r.summary())
    """
)


def test_every_kernel_read_stays_inside_the_buffer(tmp_path):
    """The adversarial files again, with numba's bounds checking forced on (an out-of-bounds read raises)."""
    frame = ether(ipv4(1, DST, 6, tcp(1, 23, 0)))
    env = os.environ | {
        "NUMBA_BOUNDSCHECK": "1",
        "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"),
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
    }
    res = subprocess.run(
        [sys.executable, "-c", _BOUNDS_SCRIPT, str(tmp_path), frame.hex(), pcap([(T0, frame)] * 3).hex()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in res.stdout.splitlines())
    assert lines["pb12.pcapng"].startswith("1 ") and "bad_block=1" in lines["pb12.pcapng"]
    assert lines["pb16.pcapng"].startswith("1 ") and "bad_block=1" in lines["pb16.pcapng"]
    assert lines["epb12.pcapng"].startswith("1 ")


def test_the_stage_warns_of_the_glob_matches_it_skips(tmp_path, caplog):
    """A directory or a dangling link matching a capture glob is skipped with a warning from the stage itself
    (what a deployed run logs), and a day with nothing else to read fails naming the patterns."""
    import datetime as dt
    import logging

    from darkembed.config import load_config
    from darkembed.stages.ingest import day_files

    day = tmp_path / "2023-01-01"
    (day / "sub.pcap").mkdir(parents=True)
    (day / "gone.pcap").symlink_to(tmp_path / "nowhere")
    f = tmp_path / "n.yaml"
    f.write_text(f"networks:\n  - name: x\n    captures: ['{tmp_path}/{{day:%Y-%m-%d}}/*.pcap']\npairs: []\n")
    with caplog.at_level(logging.WARNING), pytest.raises(FileNotFoundError, match="no input files match"):
        day_files(load_config(f), "x", dt.date(2023, 1, 1))
    assert "sub.pcap, a directory: skipped" in caplog.text
    assert "gone.pcap, a dangling symbolic link" in caplog.text
