"""Vectorised libpcap writing: whole hours of Ethernet frames built as numpy byte matrices.

Packets arrive as a dict of equal-length column arrays (one row per packet, already sorted by time). Rows that
share a frame layout (VLAN tag or not, protocol, TCP options, payload length) are built together as one
`(n, record_length)` uint8 matrix, field by field, with the IPv4 header checksum and the TCP/UDP/ICMP checksums
computed on the matrix; the matrices are then scattered into one flat buffer in time order. No per-packet Python.

Columns (all numpy arrays of length P):
    ts_us int64 (microseconds since the epoch), src/dst uint32, proto uint8 (6, 17, 1, or 0 for an ARP frame),
    ttl uint8, ip_id uint16, df bool, sport/dport uint16, flags uint8 (TCP flags), seq/ack uint32, win uint16,
    opts int8 (TCP options layout, see `OPT_*`), tsval uint32 (TCP timestamp option), plen uint16 (UDP or ICMP
    echo payload bytes), icmp_type/icmp_code uint8, vlan uint16 (802.1Q VLAN id, 0 for an untagged frame).
For ICMP destination-unreachable rows, `seq` holds the destination address of the quoted datagram and
`sport`/`dport` its ports (the quoted datagram's source is `dst`, the darknet address that was spoofed).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

#: TCP option layouts: none (20-byte header), MSS only (ZMap-like), Linux SYN, Windows SYN.
OPT_NONE, OPT_MSS, OPT_LINUX, OPT_WINDOWS = 0, 1, 2, 3
OPT_LEN = np.array([0, 4, 20, 12], dtype=np.int64)
_OPT_BYTES = {
    OPT_MSS: bytes([2, 4, 5, 0xB4]),
    # MSS 1460, SACK permitted, timestamps (TSval filled per packet), NOP, window scale 7
    OPT_LINUX: bytes([2, 4, 5, 0xB4, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7]),
    # MSS 1460, NOP, window scale 8, NOP, NOP, SACK permitted
    OPT_WINDOWS: bytes([2, 4, 5, 0xB4, 1, 3, 3, 8, 1, 1, 4, 2]),
}

PROTO_ARP = 0
ETH_MIN = 60  # minimum Ethernet frame without FCS: short frames carry zero padding, as a sensor captures them
PCAP_GLOBAL_HEADER = (
    np.array([0xA1B2C3D4], "<u4").tobytes()
    + np.array([2, 4], "<u2").tobytes()
    + np.array([0, 0, 262144, 1], "<u4").tobytes()
)
_SENSOR_MAC = bytes.fromhex("001b21a0c0de")
_ROUTER_MAC = bytes.fromhex("00005e000101")

COLUMNS: dict[str, type] = {
    "ts_us": np.int64,
    "src": np.uint32,
    "dst": np.uint32,
    "proto": np.uint8,
    "ttl": np.uint8,
    "ip_id": np.uint16,
    "df": np.bool_,
    "sport": np.uint16,
    "dport": np.uint16,
    "flags": np.uint8,
    "seq": np.uint32,
    "ack": np.uint32,
    "win": np.uint16,
    "opts": np.int8,
    "tsval": np.uint32,
    "plen": np.uint16,
    "icmp_type": np.uint8,
    "icmp_code": np.uint8,
    "vlan": np.uint16,
}


def empty_columns(n: int) -> dict[str, np.ndarray]:
    """Zero-filled packet columns of length `n`."""
    return {k: np.zeros(n, dtype=t) for k, t in COLUMNS.items()}


def l4_length(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Transport bytes per row (TCP header with options, UDP header plus payload, ICMP message, ARP body)."""
    proto = cols["proto"]
    out = np.full(len(proto), 28, dtype=np.int64)  # ARP body
    tcp = proto == 6
    out[tcp] = 20 + OPT_LEN[cols["opts"][tcp]]
    udp = proto == 17
    out[udp] = 8 + cols["plen"][udp].astype(np.int64)
    icmp = proto == 1
    unreach = icmp & (cols["icmp_type"] == 3)
    out[icmp] = 8 + cols["plen"][icmp].astype(np.int64)
    out[unreach] = 8 + 28
    return out


def _put(m: np.ndarray, off: int, values: np.ndarray, dtype: str) -> None:
    size = np.dtype(dtype).itemsize
    m[:, off : off + size] = np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(-1, size)


def _sum16(block: np.ndarray) -> np.ndarray:
    """Sum of big-endian 16-bit words of each row of a uint8 matrix (an odd length is zero-padded)."""
    b = block.astype(np.uint64)
    if b.shape[1] % 2:
        b = np.concatenate([b, np.zeros((b.shape[0], 1), np.uint64)], axis=1)
    return (b[:, 0::2] << np.uint64(8)).sum(axis=1) + b[:, 1::2].sum(axis=1)


def _fold(s: np.ndarray) -> np.ndarray:
    s = s.astype(np.uint64)
    for _ in range(3):
        s = (s & np.uint64(0xFFFF)) + (s >> np.uint64(16))
    return (~s & np.uint64(0xFFFF)).astype(np.uint16)


def _build_group(cols: dict[str, np.ndarray], idx: np.ndarray, vlan: bool, l4: int, frame: int) -> np.ndarray:
    """Records (16-byte pcap header + frame) of rows `idx`, which share one layout. Shape (n, 16 + frame)."""
    n = len(idx)
    c = {k: v[idx] for k, v in cols.items()}
    proto = int(c["proto"][0])
    m = np.zeros((n, 16 + frame), dtype=np.uint8)
    ts = c["ts_us"]
    _put(m, 0, ts // 1_000_000, "<u4")
    _put(m, 4, ts % 1_000_000, "<u4")
    m[:, 8:12] = np.frombuffer(np.array([frame], "<u4").tobytes(), np.uint8)
    m[:, 12:16] = m[:, 8:12]
    e = 16
    if proto == PROTO_ARP:
        m[:, e : e + 6] = 0xFF
    else:
        m[:, e : e + 6] = np.frombuffer(_SENSOR_MAC, np.uint8)
    m[:, e + 6 : e + 12] = np.frombuffer(_ROUTER_MAC, np.uint8)
    e += 12
    if vlan:
        m[:, e : e + 2] = (0x81, 0x00)
        _put(m, e + 2, c["vlan"] & 0x0FFF, ">u2")
        e += 4
    if proto == PROTO_ARP:
        m[:, e : e + 2] = (0x08, 0x06)
        a = e + 2
        m[:, a : a + 8] = (0, 1, 8, 0, 6, 4, 0, 1)  # Ethernet/IPv4, request
        m[:, a + 8 : a + 14] = np.frombuffer(_ROUTER_MAC, np.uint8)
        _put(m, a + 14, c["src"], ">u4")
        _put(m, a + 24, c["dst"], ">u4")
        return m
    m[:, e : e + 2] = (0x08, 0x00)
    ip = e + 2
    m[:, ip] = 0x45
    _put(m, ip + 2, np.full(n, 20 + l4), ">u2")
    _put(m, ip + 4, c["ip_id"], ">u2")
    _put(m, ip + 6, np.where(c["df"], 0x4000, 0), ">u2")
    m[:, ip + 8] = c["ttl"]
    m[:, ip + 9] = proto
    _put(m, ip + 12, c["src"], ">u4")
    _put(m, ip + 16, c["dst"], ">u4")
    _put(m, ip + 10, _fold(_sum16(m[:, ip : ip + 20])), ">u2")
    t = ip + 20
    src = c["src"].astype(np.uint64)
    dst = c["dst"].astype(np.uint64)
    pseudo = (
        (src >> np.uint64(16))
        + (src & np.uint64(0xFFFF))
        + (dst >> np.uint64(16))
        + (dst & np.uint64(0xFFFF))
    )
    if proto == 6:
        _put(m, t, c["sport"], ">u2")
        _put(m, t + 2, c["dport"], ">u2")
        _put(m, t + 4, c["seq"], ">u4")
        _put(m, t + 8, c["ack"], ">u4")
        _put(m, t + 12, ((l4 // 4) << 12) | c["flags"].astype(np.int64), ">u2")
        _put(m, t + 14, c["win"], ">u2")
        opt = int(c["opts"][0])
        if opt != OPT_NONE:
            m[:, t + 20 : t + l4] = np.frombuffer(_OPT_BYTES[opt], np.uint8)
            if opt == OPT_LINUX:
                _put(m, t + 28, c["tsval"], ">u4")
        s = pseudo + np.uint64(6 + l4) + _sum16(m[:, t : t + l4])
        _put(m, t + 16, _fold(s), ">u2")
    elif proto == 17:
        _put(m, t, c["sport"], ">u2")
        _put(m, t + 2, c["dport"], ">u2")
        _put(m, t + 4, np.full(n, l4), ">u2")
        s = _fold(pseudo + np.uint64(17 + l4) + _sum16(m[:, t : t + l4]))
        _put(m, t + 6, np.where(s == 0, 0xFFFF, s), ">u2")
    elif proto == 1:
        m[:, t] = c["icmp_type"]
        m[:, t + 1] = c["icmp_code"]
        if int(c["icmp_type"][0]) == 3:
            q = t + 8  # the quoted datagram: an IPv4 header (from the spoofed darknet address) and 8 bytes
            m[:, q] = 0x45
            _put(m, q + 2, np.full(n, 40), ">u2")
            _put(m, q + 4, c["ip_id"] ^ 0x5A5A, ">u2")
            m[:, q + 8] = 50
            m[:, q + 9] = 6
            _put(m, q + 12, c["dst"], ">u4")
            _put(m, q + 16, c["seq"], ">u4")
            _put(m, q + 10, _fold(_sum16(m[:, q : q + 20])), ">u2")
            _put(m, q + 20, c["dport"], ">u2")
            _put(m, q + 22, c["sport"], ">u2")
            _put(m, q + 24, c["ack"], ">u4")
        else:
            _put(m, t + 4, c["sport"], ">u2")  # identifier
            _put(m, t + 6, c["dport"], ">u2")  # sequence number
        _put(m, t + 2, _fold(_sum16(m[:, t : t + l4])), ">u2")
    else:  # pragma: no cover - guarded by the generator
        raise ValueError(f"unsupported protocol {proto}")
    return m


def build_records(cols: dict[str, np.ndarray]) -> bytes:
    """The pcap records (no global header) of all rows of `cols`, in row order.

    Args:
        cols: packet columns (see module docstring), sorted by `ts_us`.

    Returns:
        The concatenated records: per row a 16-byte header and an Ethernet frame of at least 60 bytes.
    """
    n = len(cols["ts_us"])
    if n == 0:
        return b""
    l4 = l4_length(cols)
    vlan = cols["vlan"] > 0
    eth = np.where(vlan, 18, 14)
    is_arp = cols["proto"] == PROTO_ARP
    frame = np.maximum(ETH_MIN, eth + np.where(is_arp, 28, 20 + l4))
    rec = 16 + frame
    offsets = np.zeros(n, dtype=np.int64)
    np.cumsum(rec[:-1], out=offsets[1:])
    buf = np.zeros(int(offsets[-1] + rec[-1]), dtype=np.uint8)
    icmp_kind = np.where(cols["icmp_type"] == 3, 1, 0)
    key = (
        l4 * 1_000_000
        + vlan.astype(np.int64) * 100_000
        + cols["proto"].astype(np.int64) * 100
        + cols["opts"].astype(np.int64) * 10
        + icmp_kind
    )
    order = np.argsort(key, kind="stable")
    sk = key[order]
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    ends = np.r_[starts[1:], n]
    for a, b in zip(starts, ends, strict=True):
        idx = order[a:b]
        i0 = idx[0]
        width = int(rec[i0])
        m = _build_group(cols, idx, bool(vlan[i0]), int(l4[i0]), width - 16)
        pos = offsets[idx][:, None] + np.arange(width, dtype=np.int64)[None, :]
        buf[pos] = m
    return buf.tobytes()


def write_pcap_gz(path: Path, records: bytes, level: int = 1) -> int:
    """Write a gzip-compressed libpcap file (microsecond, little-endian, Ethernet) holding `records`.

    The gzip header carries no file name and mtime 0, so the same records give the same bytes.

    Returns:
        The number of bytes written.
    """
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    data = comp.compress(PCAP_GLOBAL_HEADER) + comp.compress(records) + comp.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)
