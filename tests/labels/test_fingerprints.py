"""Packet fingerprints per host on hand-built `PACKETS` frames."""

from __future__ import annotations

import polars as pl

from darkembed.config import FingerprintConfig
from darkembed.labels.fingerprints import FINGERPRINT_COLUMNS, host_fingerprints
from darkembed.schemas import TCP_CWR, TCP_ECE
from tests.labels.helpers import RST, SYN, SYNACK, ip, packets, pkt

DST = "198.51.100.7"


def masscan_id(dst: str, port: int, seq: int) -> int:
    return (ip(dst) ^ port ^ seq) & 0xFFFF


def rows() -> list[dict]:
    r = []
    # A: one Mirai SYN (seq == dst) with ECE+CWR set, one plain SYN
    r += [pkt("10.0.0.1", tcp_seq=ip(DST), tcp_flags=SYN | TCP_ECE | TCP_CWR), pkt("10.0.0.1")]
    # B: SYN-ACKs whose seq equals dst: not Mirai (ACK set); only backscatter
    r += [pkt("10.0.0.2", tcp_seq=ip(DST), tcp_flags=SYNACK)] * 2
    # C: two ZMap probes (below the default threshold of 3); D: three; E: three with the wrong window
    r += [pkt("10.0.0.3", ip_id=54321, tcp_win=65535)] * 2
    r += [pkt("10.0.0.4", ip_id=54321, tcp_win=65535, dst_port=p) for p in (22, 80, 443)]
    r += [pkt("10.0.0.5", ip_id=54321, tcp_win=1024)] * 3
    # F: three masscan SYNs to different ports and sequence numbers
    r += [
        pkt("10.0.0.6", dst_port=p, tcp_seq=s, tcp_win=1024, ip_id=masscan_id(DST, p, s))
        for p, s in ((80, 111), (443, 2222), (8080, 3_000_000_000))
    ]
    # K: the masscan relation with another window (masscan sends 1024)
    r += [
        pkt("10.0.0.11", dst_port=p, tcp_seq=s, tcp_win=5840, ip_id=masscan_id(DST, p, s))
        for p, s in ((80, 1), (81, 2), (82, 3))
    ]
    # G: RST and ICMP port unreachable only; H: an RST and a SYN (a scanner, not backscatter)
    r += [pkt("10.0.0.7", tcp_flags=RST), pkt("10.0.0.7", proto=1, icmp_type=3, icmp_code=3)]
    r += [pkt("10.0.0.8", tcp_flags=RST), pkt("10.0.0.8")]
    # I: an ICMP echo request: neither scanner fingerprint nor backscatter
    r += [pkt("10.0.0.9", proto=1, icmp_type=8, icmp_code=0)]
    # J: a legacy-log packet without dst_ip and a null seq never matches Mirai
    r += [pkt("10.0.0.10", dst=None, tcp_seq=None)]
    return r


def test_counts_and_flags_per_host():
    out = host_fingerprints(packets(rows())).collect()
    assert dict(zip(out.columns, out.dtypes, strict=True)) == FINGERPRINT_COLUMNS
    assert out["src_ip"].to_list() == sorted(ip(f"10.0.0.{i}") for i in range(1, 12))
    got = {
        f"10.0.0.{r['src_ip'] & 255}": (
            r["packets"],
            r["mirai_packets"],
            r["zmap_packets"],
            r["masscan_packets"],
            r["backscatter_packets"],
            r["mirai"],
            r["zmap"],
            r["masscan"],
            r["backscatter"],
        )
        for r in out.iter_rows(named=True)
    }
    assert got == {
        "10.0.0.1": (2, 1, 0, 0, 0, True, False, False, False),
        "10.0.0.2": (2, 0, 0, 0, 2, False, False, False, True),
        "10.0.0.3": (2, 0, 2, 0, 0, False, False, False, False),
        "10.0.0.4": (3, 0, 3, 0, 0, False, True, False, False),
        "10.0.0.5": (3, 0, 0, 0, 0, False, False, False, False),
        "10.0.0.6": (3, 0, 0, 3, 0, False, False, True, False),
        "10.0.0.7": (2, 0, 0, 0, 2, False, False, False, True),
        "10.0.0.8": (2, 0, 0, 0, 1, False, False, False, False),
        "10.0.0.9": (1, 0, 0, 0, 0, False, False, False, False),
        "10.0.0.10": (1, 0, 0, 0, 0, False, False, False, False),
        "10.0.0.11": (3, 0, 0, 0, 0, False, False, False, False),
    }


def test_thresholds_come_from_config():
    cfg = FingerprintConfig(
        mirai_min_packets=2,
        zmap_min_packets=2,
        zmap_window=None,
        masscan_min_packets=4,
        backscatter_min_packets=3,
    )
    out = host_fingerprints(packets(rows()).lazy(), cfg).collect()
    flagged = {
        k: sorted(f"10.0.0.{x & 255}" for x in out.filter(pl.col(k))["src_ip"])
        for k in ("mirai", "zmap", "masscan", "backscatter")
    }
    assert flagged == {
        "mirai": [],
        "zmap": ["10.0.0.3", "10.0.0.4", "10.0.0.5"],  # any window now
        "masscan": [],
        "backscatter": [],
    }

    # masscan window: any window flags F and K; 65535 flags neither
    def masscan_hosts(window):
        out = host_fingerprints(packets(rows()), FingerprintConfig(masscan_window=window)).collect()
        return sorted(f"10.0.0.{x & 255}" for x in out.filter(pl.col("masscan"))["src_ip"])

    assert masscan_hosts(None) == ["10.0.0.11", "10.0.0.6"]
    assert masscan_hosts(65535) == []


def test_empty_day_gives_an_empty_frame_with_the_columns():
    out = host_fingerprints(packets([])).collect()
    assert out.height == 0
    assert out.columns == list(FINGERPRINT_COLUMNS)
