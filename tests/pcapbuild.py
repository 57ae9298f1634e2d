"""Tiny capture builders for tests (struct-based; test data only, not a product writer)."""

from __future__ import annotations

import struct

import numpy as np

from darkembed.simulate.pcap import _fold, _sum16


def ipv4(
    src: int,
    dst: int,
    proto: int,
    payload: bytes,
    *,
    ttl: int = 64,
    ip_id: int = 1,
    flags_frag: int = 0,
    options: bytes = b"",
    total_len: int | None = None,
    ihl: int | None = None,
    checksum: int | None = None,
) -> bytes:
    """An IPv4 packet with a correct header checksum (or `checksum` as given)."""
    hl = ihl if ihl is not None else 5 + len(options) // 4
    tl = total_len if total_len is not None else 20 + len(options) + len(payload)
    hdr = struct.pack("!BBHHHBBHII", 0x40 | hl, 0, tl, ip_id, flags_frag, ttl, proto, 0, src, dst) + options
    c = ip_checksum(hdr) if checksum is None else checksum
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def ip_checksum(header: bytes) -> int:
    """The Internet checksum (RFC 1071) of `header` (its checksum field zero), by the simulator's helpers."""
    return int(_fold(_sum16(np.frombuffer(header, np.uint8)[None, :]))[0])


def tcp(
    sport: int,
    dport: int,
    seq: int,
    *,
    ack: int = 0,
    flags: int = 0x02,
    win: int = 1024,
    options: bytes = b"",
    doff: int | None = None,
) -> bytes:
    d = doff if doff is not None else 5 + len(options) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, d << 4, flags, win, 0, 0) + options


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ether(l3: bytes, ethertype: int = 0x0800) -> bytes:
    return b"\x00\x11\x22\x33\x44\x55" + b"\x66\x77\x88\x99\xaa\xbb" + struct.pack("!H", ethertype) + l3


def pcap(
    frames: list[tuple[float, bytes]],
    *,
    linktype: int = 1,
    snaplen: int = 65535,
    caplens: dict[int, int] | None = None,
    origlens: dict[int, int] | None = None,
) -> bytes:
    """A little-endian microsecond libpcap file. `caplens`/`origlens` override record header fields by index."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for i, (ts, data) in enumerate(frames):
        sec = int(ts)
        usec = round((ts - sec) * 1e6)
        cap = (caplens or {}).get(i, len(data))
        orig = (origlens or {}).get(i, len(data))
        out.append(struct.pack("<IIII", sec, usec, cap, orig) + data)
    return b"".join(out)


def syn(src: int, dst: int, dport: int, seq: int | None = None, sport: int = 40000) -> bytes:
    return ether(ipv4(src, dst, 6, tcp(sport, dport, dst if seq is None else seq)))
