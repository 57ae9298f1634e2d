"""Benchmark: simulate one day of the default world (three networks) and compare with per-packet builders.

Prints the packets per second and the seconds per network of `darkembed.simulate`, and, on a sample of the same
packets (decoded back from the first capture), the packets per second of two per-packet references measured in
the same run: dpkt's packet builder (checksums by dpkt) and a naive `struct.pack` writer (checksums in Python),
both writing gzip level 1 like the simulator.

    python benchmarks/simulate.py [--scale 1.0] [--days 1] [--sample 20000] [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from darkembed.config import load_config  # noqa: E402
from darkembed.simulate import simulate  # noqa: E402


def _sample(path: Path, n: int) -> list[tuple[float, bytes]]:
    import dpkt

    out = []
    with gzip.open(path) as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            if isinstance(eth.data, dpkt.ip.IP):
                out.append((ts, bytes(eth.data)[: eth.data.len]))
            if len(out) >= n:
                break
    return out


def _dpkt_builder(sample: list[tuple[float, bytes]]) -> float:
    """Rebuild every packet field by field with dpkt (checksums recomputed) and write a gzip pcap."""
    import dpkt

    fields = []
    for ts, raw in sample:
        ip = dpkt.ip.IP(raw)
        fields.append((ts, ip.src, ip.dst, ip.ttl, ip.id, ip.p, ip.data))
    t0 = time.perf_counter()
    bio = io.BytesIO()
    with gzip.GzipFile(fileobj=bio, mode="wb", compresslevel=1, mtime=0) as gz:
        w = dpkt.pcap.Writer(gz)
        for ts, src, dst, ttl, ipid, p, l4 in fields:
            if p == 6:
                t = dpkt.tcp.TCP(sport=l4.sport, dport=l4.dport, seq=l4.seq, ack=l4.ack, flags=l4.flags,
                                 win=l4.win, opts=l4.opts)  # fmt: skip
            elif p == 17:
                t = dpkt.udp.UDP(sport=l4.sport, dport=l4.dport, data=l4.data)
            else:
                t = dpkt.icmp.ICMP(type=l4.type, code=l4.code, data=l4.data)
            ip = dpkt.ip.IP(src=src, dst=dst, ttl=ttl, id=ipid, p=p, data=t)
            eth = dpkt.ethernet.Ethernet(
                src=b"\x00\x00\x5e\x00\x01\x01", dst=b"\x00\x1b\x21\xa0\xc0\xde", data=ip
            )
            w.writepkt(bytes(eth), ts=ts)
    return time.perf_counter() - t0


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _struct_writer(sample: list[tuple[float, bytes]]) -> float:
    """A naive per-packet writer: struct.pack every header, checksums in Python, gzip level 1."""
    rows = []
    for ts, raw in sample:
        ihl = (raw[0] & 15) * 4
        ttl, p = raw[8], raw[9]
        ipid = struct.unpack("!H", raw[4:6])[0]
        rows.append((ts, raw[12:16], raw[16:20], ttl, ipid, p, raw[ihl:]))
    t0 = time.perf_counter()
    bio = io.BytesIO()
    with gzip.GzipFile(fileobj=bio, mode="wb", compresslevel=1, mtime=0) as gz:
        gz.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts, src, dst, ttl, ipid, p, l4 in rows:
            if p == 6:
                sport, dport, seq, ack, off, win = struct.unpack("!HHIIHH", l4[:16])
                hdr = struct.pack("!HHIIHHHH", sport, dport, seq, ack, off, win, 0, 0) + l4[20:]
                ck = _csum(src + dst + struct.pack("!BBH", 0, 6, len(hdr)) + hdr)
                l4b = hdr[:16] + struct.pack("!H", ck) + hdr[18:]
            else:
                l4b = l4
            iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4b), ipid, 0, ttl, p, 0, src, dst)
            iph = iph[:10] + struct.pack("!H", _csum(iph)) + iph[12:]
            frame = b"\x00\x1b\x21\xa0\xc0\xde\x00\x00\x5e\x00\x01\x01\x08\x00" + iph + l4b
            frame += b"\0" * max(0, 60 - len(frame))
            sec = int(ts)
            gz.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(frame), len(frame)) + frame)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--sample", type=int, default=20000, help="packets rebuilt by the per-packet references")
    ap.add_argument(
        "--out", type=Path, default=None, help="output folder (default: a temporary one, removed)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated world")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="darkembed-sim-"))
    try:
        cfg = load_config()
        res = simulate(cfg, out=out, days=args.days, scale=args.scale)
        total = sum(res.packets.values())
        print(f"darkembed simulate: scale {args.scale}, {args.days} day(s), {len(res.packets)} networks")
        for net, n in res.packets.items():
            mb = res.bytes[net] / 1e6
            print(
                f"  {net:<12} {n:>10,} packets  {res.seconds[net]:6.2f} s  {n / res.seconds[net]:>12,.0f} pkt/s  {mb:7.1f} MB"
            )
        rate = total / res.total_seconds
        print(
            f"  {'total':<12} {total:>10,} packets  {res.total_seconds:6.2f} s  {rate:>12,.0f} pkt/s (incl. population)"
        )
        first = sorted(out.glob("*/*/*_00.pcap.gz"))[0]
        sample = _sample(first, args.sample)
        for name, fn in (("dpkt builder", _dpkt_builder), ("struct.pack writer", _struct_writer)):
            secs = fn(sample)
            ref = len(sample) / secs
            print(
                f"reference {name:<20} {len(sample):>8,} packets  {ref:>12,.0f} pkt/s   simulator is {rate / ref:5.1f}x faster"
            )
    finally:
        if not (args.keep or args.out):
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
