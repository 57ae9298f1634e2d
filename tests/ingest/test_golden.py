"""The packet reader against an independent decoder: tshark's goldens for every crafted capture and real sample.

The goldens in tests/data/golden are tshark 4.0 CSV output (tests/data/golden/make_golden.sh), one row per tshark
frame, first occurrence of each field. Conversions from tshark's fields to PACKETS, all done in `expected_row`:

* `frame.time_epoch` "S.FFFFFFFFF" (decimal, nine digits) -> `ts` in integer ns, parsed as text (no float); empty for
  pcapng simple packet blocks -> null. wiretap floors a non-integral ns (power-of-two `if_tsresol`).
* `ip.src`, `ip.dst` dotted -> uint32; `ip.proto`, `ip.len`, `ip.ttl` decimal; `ip.id` hex ("0x1a2b").
* `ip.frag_offset` -> `frag_off` as is: tshark 4.0 already gives 8-byte units (a real fragment at byte 1432
  reads 179), not bytes.
* `ip.flags` hex, already shifted down to the 3 flag bits ("0x02" = DF, "0x01" = MF, "0x06" = reserved + DF).
* ports: `tcp.srcport/dstport` when `ip.proto` is 6, `udp.srcport/dstport` when 17, else null. Gating by the
  outer protocol matters: tshark also dissects the TCP/UDP header quoted by an ICMP error and the inner packet of
  IP-in-IP, and those must not leak into the row. Non-first fragments have no transport header in tshark
  (reassembly is off), so every transport field is null for them.
* `tcp.flags` hex with 12 bits (3 reserved bits above NS) -> `& 0x1FF`.
* `tcp.seq_raw`, `tcp.ack_raw` (raw wire values, also when the ACK flag is clear), `tcp.window_size_value` (raw
  window, unscaled), `tcp.options.mss_val`, `tcp.options.wscale.shift`, `tcp.options.timestamp.tsval`: decimal,
  null when absent.
* `tcp.options.sack_perm` is a protocol item whose value is its raw bytes ("0402"): non-empty -> True, else null.
* `icmp.type`, `icmp.code` when `ip.proto` is 1, else null.

Which frames are kept and why the others are skipped comes from `frame.encap_type` (wiretap's encapsulation) and
`frame.protocols`, see `classify`; IPv4 frames whose timestamp lies outside the file's main time span are dropped
(`outside_span`, an independent formulation of the reader's rule in docs/ingest.md). tshark lists pcapng custom blocks as frames without an encapsulation; they are
not packet records and are dropped.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from darkembed import ingest
from darkembed.ingest.capture import CaptureChecks
from darkembed.schemas import PACKETS, TCP_ACK, TCP_SYN
from tests.conftest import TEST_DATA, shared

GOLDEN = TEST_DATA / "golden"
CAPTURES = TEST_DATA / "captures"
CRAFTED = sorted(p.name for p in CAPTURES.iterdir() if p.name.endswith((".pcap", ".pcapng", ".gz")))
REAL = [
    "stopddos_pkt.TCP.synflood.spoofed.pcap",
    "stopddos_amp.TCP.reflection.SYNACK.pcap",
    "stopddos_pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng",  # despite its name, a libpcap file
]

#: wiretap encapsulation numbers (`frame.encap_type`) of the link types darkembed reads.
SUPPORTED_ENCAP = {
    "1": "Ethernet (DLT 1)",
    "7": "raw IP (DLT 101)",
    "129": "raw IPv4 (DLT 228)",
    "25": "Linux SLL (DLT 113)",
    "210": "Linux SLL2 (DLT 276)",
}
#: tshark's names of the link layers and tags that come before the network layer in `frame.protocols`.
LINK_NAMES = {"eth", "sll", "raw", "ethertype", "vlan", "ieee8021ad"}


def load_golden(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="") as f:
        return list(csv.DictReader(f))


def classify(row: dict[str, str]) -> str | None:
    """'kept', or the skip reason of a frame; None for what is no packet record (a pcapng custom block)."""
    if not row["frame.encap_type"]:
        return None
    if row["frame.encap_type"] not in SUPPORTED_ENCAP:
        return "unsupported_linktype"
    protos = row["frame.protocols"].split(":")
    network = next((p for p in protos if p not in LINK_NAMES), "")
    return {"ip": "kept", "ipv6": "ipv6"}.get(network, "non_ip")


def epoch_ns(text: str) -> int | None:
    if not text:
        return None
    sec, _, frac = text.partition(".")
    assert len(frac) <= 9, text
    return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0"))


MAX_TS_GAP_NS = 86_400 * 10**9


def outside_span(stamps: list[int | None]) -> list[bool]:
    """Per timestamp: outside the largest group of sorted timestamps with no step above one day (ties: earliest)."""
    known = sorted(t for t in stamps if t is not None)
    groups: list[list[int]] = []
    for t in known:
        if groups and t - groups[-1][-1] <= MAX_TS_GAP_NS:
            groups[-1].append(t)
        else:
            groups.append([t])
    if len(groups) <= 1:
        return [False] * len(stamps)
    best = max(groups, key=len)  # max() keeps the first (earliest) of equally large groups
    return [t is not None and not best[0] <= t <= best[-1] for t in stamps]


def expected_row(row: dict[str, str]) -> dict[str, object]:
    """The PACKETS row tshark's decoding of an IPv4 frame stands for."""
    proto = int(row["ip.proto"])
    tcp, udp, icmp = proto == 6, proto == 17, proto == 1

    def num(field: str, when: bool = True, base: int = 10) -> int | None:
        v = row[field]
        return int(v, base) if when and v else None

    flags = num("tcp.flags", tcp, 16)
    return {
        "ts": epoch_ns(row["frame.time_epoch"]),
        "src_ip": int(ipaddress.IPv4Address(row["ip.src"])),
        "dst_ip": int(ipaddress.IPv4Address(row["ip.dst"])),
        "proto": proto,
        "ip_len": num("ip.len"),
        "ttl": num("ip.ttl"),
        "ip_id": num("ip.id", base=16),
        "frag_off": num("ip.frag_offset"),
        "ip_flags": num("ip.flags", base=16),
        "src_port": num("tcp.srcport", tcp) if tcp else num("udp.srcport", udp),
        "dst_port": num("tcp.dstport", tcp) if tcp else num("udp.dstport", udp),
        "tcp_flags": None if flags is None else flags & 0x1FF,
        "tcp_seq": num("tcp.seq_raw", tcp),
        "tcp_ack": num("tcp.ack_raw", tcp),
        "tcp_win": num("tcp.window_size_value", tcp),
        "tcp_mss": num("tcp.options.mss_val", tcp),
        "tcp_wscale": num("tcp.options.wscale.shift", tcp),
        "tcp_sackp": True if tcp and row["tcp.options.sack_perm"] else None,
        "tcp_tsval": num("tcp.options.timestamp.tsval", tcp),
        "icmp_type": num("icmp.type", icmp),
        "icmp_code": num("icmp.code", icmp),
    }


def actual_columns(table: pa.Table) -> dict[str, list]:
    cols = {name: table.column(name).to_pylist() for name in PACKETS.names if name != "ts"}
    cols["ts"] = table.column("ts").cast(pa.int64()).to_pylist()  # ns; to_pylist() of timestamps drops ns
    return cols


def compare(capture: Path, golden: Path) -> None:
    rows = load_golden(golden)
    records = [(r, classify(r)) for r in rows if classify(r) is not None]
    for r, c in records:  # the classification agrees with "an IPv4 frame is a row with ip.src"
        assert (c == "kept") == bool(r["ip.src"]), (
            f"frame {r['frame.number']}: {c} but ip.src={r['ip.src']!r}"
        )
    ipv4 = [r for r, c in records if c == "kept"]
    far = outside_span([epoch_ns(r["frame.time_epoch"]) for r in ipv4])
    kept = [r for r, out in zip(ipv4, far, strict=True) if not out]
    skipped = Counter(c for _, c in records if c != "kept") + Counter(ts_outside_window=sum(far))

    table, report = ingest.read_capture(capture)

    assert table.schema.equals(PACKETS, check_metadata=False), table.schema
    assert report.records == len(records)
    assert report.kept == len(kept) == table.num_rows
    assert {k: v for k, v in report.skipped.items() if v} == dict(skipped)

    want = [expected_row(r) for r in kept]
    got = actual_columns(table)
    bad = []
    for name in PACKETS.names:
        for i, (w, g) in enumerate(zip((x[name] for x in want), got[name], strict=True)):
            if w != g:
                bad.append(f"frame {kept[i]['frame.number']} {name}: tshark {w!r}, read_capture {g!r}")
    assert not bad, f"{len(bad)} differences, first ones:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_capture_matches_tshark(name):
    compare(CAPTURES / name, GOLDEN / f"{name}.csv")


@pytest.mark.parametrize("name", REAL)
def test_real_sample_matches_tshark(name):
    compare(shared("pcap", name), GOLDEN / f"{name}.csv.gz")


def test_every_capture_has_a_golden():
    goldens = {p.name for p in GOLDEN.iterdir() if p.name.endswith((".csv", ".csv.gz"))}
    assert {f"{n}.csv" for n in CRAFTED} | {f"{n}.csv.gz" for n in REAL} == goldens
    assert len(CRAFTED) >= 9


# ------------------------------------------------------------------------- values known by construction
# (tests/data/captures/make_captures.py), independent of tshark


def rows_of(name: str, **kwargs) -> tuple[list[dict], object]:
    table, report = ingest.read_capture(CAPTURES / name, **kwargs)
    rows = table.to_pylist()
    for r, ns in zip(rows, table.column("ts").cast(pa.int64()).to_pylist(), strict=True):
        r["ts"] = ns
    return rows, report


def by_port(rows: list[dict], port: int) -> dict:
    (row,) = [r for r in rows if r["src_port"] == port]
    return row


def ip(a: str) -> int:
    return int(ipaddress.IPv4Address(a))


@pytest.mark.parametrize("name", ["ether_usec_le.pcap", "ether_usec_le.pcap.gz"])
def test_ethernet_mix(name):
    rows, report = rows_of(name)
    assert (report.records, report.kept) == (20, 14)
    # the last frame is 14 years after the others: outside the file's time span, dropped (docs/ingest.md)
    assert {k: v for k, v in report.skipped.items() if v} == {"non_ip": 3, "ipv6": 2, "ts_outside_window": 1}
    every = rows_of(name, checks=CaptureChecks(max_ts_gap_s=0))[0]  # the check switched off: all 15
    assert every[:14] == rows
    rows = every
    mirai, mirai2323 = rows[0], rows[1]
    assert mirai["tcp_seq"] == mirai["dst_ip"] == ip("203.0.113.7")
    assert mirai2323["tcp_seq"] == mirai2323["dst_ip"] == ip("203.0.113.250")
    assert (mirai["dst_port"], mirai2323["dst_port"]) == (23, 2323)
    assert mirai["tcp_flags"] == TCP_SYN and mirai["ttl"] == 64 and mirai["ip_flags"] == 0
    assert [mirai[k] for k in ("tcp_mss", "tcp_wscale", "tcp_sackp", "tcp_tsval", "icmp_type")] == [None] * 5
    assert mirai["ts"] == 1_700_000_000_000_007_000
    linux = rows[2]
    assert (linux["tcp_mss"], linux["tcp_sackp"], linux["tcp_tsval"], linux["tcp_wscale"]) == (
        1460,
        True,
        3_735_928_559,
        7,
    )
    windows = rows[3]
    assert (windows["tcp_mss"], windows["tcp_wscale"], windows["tcp_sackp"], windows["tcp_tsval"]) == (
        1460,
        8,
        True,
        None,
    )
    assert windows["tcp_seq"] == 0xFFFFFFFF and windows["ip_flags"] == 0b010
    synack = rows[4]
    assert synack["tcp_flags"] == TCP_SYN | TCP_ACK and synack["tcp_ack"] == 2_863_311_531
    unreach = rows[9]
    assert (unreach["proto"], unreach["icmp_type"], unreach["icmp_code"]) == (1, 3, 3)
    assert unreach["src_port"] is None and unreach["dst_port"] is None  # not the quoted UDP header's ports
    assert unreach["src_ip"] == ip("198.51.100.5") and unreach["ip_len"] == 20 + 8 + 28
    assert [r["dst_ip"] for r in rows[10:12]] == [ip("203.0.113.60"), ip("203.0.113.61")]  # 802.1Q, QinQ
    cut = rows[13]
    assert cut["ip_len"] == 20 + 20 + 200  # from the header, although the record was cut at 80 bytes
    assert rows[14]["ts"] == (2**31 + 1) * 1_000_000_000  # seconds are unsigned in libpcap


def test_raw_ip_options_and_fragments():
    rows, report = rows_of("raw_usec_be.pcap")
    assert (report.records, report.kept) == (15, 15)
    assert rows[0]["dst_port"] == 23 and rows[0]["ip_len"] == 24 + 20  # IHL 6
    assert rows[1]["tcp_mss"] == 536 and rows[1]["ip_len"] == 60 + 24  # IHL 15
    assert rows[2]["src_port"] == 123  # IHL 8, UDP
    first, second = rows[3], rows[4]
    assert (first["ip_flags"], first["frag_off"], first["src_port"], first["tcp_seq"]) == (
        0b001,
        0,
        40_000,
        77_777,
    )
    assert (second["ip_flags"], second["frag_off"]) == (0, 3)
    assert [second[k] for k in ("src_port", "dst_port", "tcp_flags", "tcp_seq", "tcp_win")] == [None] * 5
    assert [(r["frag_off"], r["ip_flags"], r["src_port"]) for r in rows[5:8]] == [
        (0, 1, 6000),
        (2, 1, None),
        (8, 0, None),
    ]
    assert rows[8]["frag_off"] == 8191 and rows[8]["icmp_type"] is None  # a non-first ICMP fragment
    assert rows[9]["ip_flags"] == 0b110  # reserved bit + DF
    ipip, sctp = rows[10], rows[11]
    assert ipip["proto"] == 4 and ipip["src_ip"] == ip("192.0.2.1") and ipip["src_port"] is None
    assert sctp["proto"] == 132 and sctp["src_port"] is None and sctp["tcp_flags"] is None
    assert rows[0]["ts"] == 1_700_000_100_500_000_000


def test_tcp_option_layouts_and_flags():
    rows, report = rows_of("sll_nsec_le.pcap")
    assert {k: v for k, v in report.skipped.items() if v} == {"non_ip": 1, "ipv6": 1}
    opts = ("tcp_mss", "tcp_wscale", "tcp_sackp", "tcp_tsval")

    def o(port):
        return tuple(by_port(rows, port)[k] for k in opts)

    assert o(30_000) == (None, None, None, None)
    assert o(30_001) == (1460, None, None, None)
    assert o(30_002) == (1460, 7, True, 3_735_928_559)  # Linux
    assert o(30_003) == (1460, 8, True, None)  # Windows
    assert o(30_004) == (1460, 6, True, 1_234_567_890)  # macOS
    assert o(30_005) == (1200, None, None, None)  # NOP NOP MSS EOL
    assert o(30_006) == (65_535, 14, True, 1)  # odd order
    assert o(30_007) == (None, 0, True, 0)  # zero values are values, not nulls
    assert o(30_008) == (1460, 2, True, 4_000_000_000)  # data offset 15
    assert by_port(rows, 30_008)["ip_len"] == 20 + 60
    assert o(30_009) == (1400, 5, None, None)  # unknown options (TFO, MPTCP) skipped by length
    assert o(30_010) == (None, 15, None, None)
    flags = {p: by_port(rows, p)["tcp_flags"] for p in range(30_011, 30_017)}
    assert flags == {30_011: 0x0C2, 30_012: 0x110, 30_013: 0x029, 30_014: 0, 30_015: 0x1FF, 30_016: TCP_SYN}
    assert by_port(rows, 30_019)["tcp_ack"] == 0xDEADBEEF  # raw, although the ACK flag is clear
    assert rows[0]["ts"] == 1_700_000_200_123_456_789
    assert rows[-1]["ts"] == 1_700_000_201_999_999_999


def test_sll2_and_linktype_228():
    rows, report = rows_of("sll2_nsec_be.pcap")
    assert (report.kept, {k: v for k, v in report.skipped.items() if v}) == (10, {"ipv6": 1, "non_ip": 1})
    assert rows[0]["tcp_seq"] == rows[0]["dst_ip"] and rows[0]["ts"] == 1_700_000_300_000_000_001
    rows, report = rows_of("ipv4_usec_le.pcap")
    assert report.kept == 5
    assert rows[0]["ip_len"] == 152 and rows[0]["tcp_tsval"] == 9  # caplen 64 < len
    assert [(r["icmp_type"], r["icmp_code"], r["src_port"]) for r in rows[2:]] == [
        (0, 0, None),
        (11, 0, None),
        (3, 1, None),
    ]


def test_pcapng_one_section():
    rows, report = rows_of("one_section.pcapng")
    assert (report.records, report.kept) == (
        11,
        9,
    )  # the NRB, ISB, custom and local-use blocks are no records
    assert {k: v for k, v in report.skipped.items() if v} == {"non_ip": 1, "ipv6": 1}
    base = 1_700_000_500 * 10**9
    assert [r["ts"] for r in rows] == [
        base + 1_000,  # µs interface (default if_tsresol)
        base + 2,  # ns interface
        base + 3 * 1_953_125,  # 2^-20 s interface: 3 * 2048 ticks
        None,  # simple packet block
        base + 1_999_999_999,
        None,  # simple packet block
        base + 3_500_000_000,
        base + 4 * 10**9 - 1_953_125,
        base + 4 * 10**9 + 953,  # 1 tick = 953.67 ns, floored like wiretap
    ]
    assert rows[3]["src_ip"] == ip("192.0.2.200") and rows[3]["tcp_wscale"] == 8  # the SPB's packet is read


def test_pcapng_two_sections():
    for name in ("two_sections.pcapng", "two_sections.pcapng.gz"):
        rows, report = rows_of(name)
        assert (report.records, report.kept) == (10, 8)
        assert {k: v for k, v in report.skipped.items() if v} == {"unsupported_linktype": 1, "non_ip": 1}
        assert [r["ts"] is None for r in rows] == [False] * 4 + [True, False, False, True]
        assert rows[0]["ts"] == 1_700_000_600_123_456_789  # ns, little-endian section
        assert rows[1]["ts"] == 1_700_000_600_654_321_000  # µs, SLL2
        assert rows[5]["ts"] == 1_700_000_701_999_000_000  # ms, big-endian section
        assert rows[7]["tcp_flags"] == 0x1FF


def test_crafted_captures_are_what_the_generator_writes(tmp_path, monkeypatch):
    """The committed captures are make_captures.py's output (then rerun make_golden.sh, which needs tshark)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_captures", CAPTURES / "make_captures.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    monkeypatch.setattr(gen, "OUT", tmp_path)
    gen.main()
    assert sorted(p.name for p in tmp_path.iterdir()) == CRAFTED
    for name in CRAFTED:  # .gz compared decompressed: another zlib may compress the same bytes differently
        unpack = gzip.decompress if name.endswith(".gz") else bytes
        assert unpack((tmp_path / name).read_bytes()) == unpack((CAPTURES / name).read_bytes()), name
