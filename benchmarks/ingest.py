"""Ingest throughput: darkembed's compiled reader against dpkt and tshark, measured in the same run.

Writes a capture of N darknet-like packets (Ethernet/IPv4/TCP SYNs with realistic option layouts, some Mirai-like,
a little UDP/ICMP), then prints packets/s of

* darkembed parse-to-Arrow (`read_capture`), uncompressed and gzip;
* darkembed end-to-end to Parquet (`ingest_file`), one core;
* darkembed on 24 hourly files in parallel (`ingest_many`, all cores);
* a dpkt loop extracting the same fields, on a sample;
* tshark `-T fields` with the same fields, on a sample (when installed);

and the ratios. Medians of `--repeat` runs. Usage: `python benchmarks/ingest.py [--packets 5000000]`.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import median_seconds

from darkembed.simulate.pcap import _fold, _sum16


def build_frames(n: int, seed: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """`n` frames as rows of byte matrices grouped by layout, plus timestamps (vectorised, no per-packet Python)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 86_400 * 1_000_000, n)) + 1_672_531_200 * 1_000_000
    dst = (0xC6336400 + rng.integers(0, 256, n)).astype(np.uint32)
    src = rng.integers(0x01000000, 0xDF000000, n).astype(np.uint32)
    kind = rng.choice(4, size=n, p=[0.55, 0.3, 0.1, 0.05])  # 0 SYN no opts, 1 SYN opts, 2 UDP, 3 ICMP
    groups = []
    eth = np.frombuffer(b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00", np.uint8)
    opts = np.frombuffer(
        b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x01\x02\x03\x00\x00\x00\x00\x01\x03\x03\x07", np.uint8
    )
    for k, l4len in ((0, 20), (1, 40), (2, 8 + 12), (3, 8 + 28)):
        idx = np.flatnonzero(kind == k)
        m = idx.size
        frame = np.zeros((m, 14 + 20 + l4len), np.uint8)
        frame[:, :14] = eth
        ip = frame[:, 14:34]
        ip[:, 0] = 0x45
        tot = 20 + l4len
        ip[:, 2], ip[:, 3] = tot >> 8, tot & 0xFF
        ipid = rng.integers(0, 65536, m)
        ip[:, 4], ip[:, 5] = ipid >> 8, ipid & 0xFF
        ip[:, 8] = rng.integers(30, 255, m)
        ip[:, 9] = (6, 6, 17, 1)[k]
        for j in range(4):
            ip[:, 12 + j] = (src[idx] >> (24 - 8 * j)) & 0xFF
            ip[:, 16 + j] = (dst[idx] >> (24 - 8 * j)) & 0xFF
        csum = _fold(_sum16(ip))  # the header checksum, as the simulator writes it
        ip[:, 10], ip[:, 11] = csum >> 8, csum & 0xFF
        l4 = frame[:, 34:]
        sport = rng.integers(1024, 65536, m)
        dport = rng.choice([23, 2323, 22, 80, 443, 445, 3389, 8080], size=m)
        l4[:, 0], l4[:, 1], l4[:, 2], l4[:, 3] = sport >> 8, sport & 0xFF, dport >> 8, dport & 0xFF
        if k in (0, 1):
            seq = np.where(rng.random(m) < 0.3, dst[idx], rng.integers(0, 2**32, m, dtype=np.uint64))
            for j in range(4):
                l4[:, 4 + j] = (seq >> (24 - 8 * j)) & 0xFF
            l4[:, 12] = (5 if k == 0 else 10) << 4
            l4[:, 13] = 0x02
            l4[:, 14], l4[:, 15] = 0x04, 0x00
            if k == 1:
                l4[:, 20:40] = opts
        elif k == 3:
            l4[:, 0], l4[:, 1] = 3, 3
        groups.append((idx, frame))
    return ts, groups


def write_pcap(path: Path, ts: np.ndarray, groups) -> int:
    """Write frames in timestamp order as a microsecond libpcap file; returns the byte size."""
    n = ts.size
    sizes = np.zeros(n, np.int64)
    for idx, frame in groups:
        sizes[idx] = frame.shape[1]
    rec = 16 + sizes
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(rec, out=starts[1:])
    out = np.zeros(24 + starts[-1], np.uint8)
    out[:24] = np.frombuffer(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1), np.uint8)
    hdr = np.zeros((n, 4), "<u4")
    hdr[:, 0] = ts // 1_000_000
    hdr[:, 1] = ts % 1_000_000
    hdr[:, 2] = sizes
    hdr[:, 3] = sizes
    hb = hdr.view(np.uint8).reshape(n, 16)
    base = 24 + starts[:-1]
    out[base[:, None] + np.arange(16)] = hb
    for idx, frame in groups:
        out[(base[idx] + 16)[:, None] + np.arange(frame.shape[1])] = frame
    out.tofile(path)
    return out.size


def dpkt_loop(path: Path, limit: int) -> int:
    import dpkt

    rows = []
    with open(path, "rb") as f:
        for i, (ts, buf) in enumerate(dpkt.pcap.Reader(f)):
            if i >= limit:
                break
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            row = [ts, ip.src, ip.dst, ip.p, ip.len, ip.ttl, ip.id, ip.off]
            l4 = ip.data
            if isinstance(l4, dpkt.tcp.TCP):
                row += [l4.sport, l4.dport, l4.flags, l4.seq, l4.ack, l4.win, dpkt.tcp.parse_opts(l4.opts)]
            elif isinstance(l4, dpkt.udp.UDP):
                row += [l4.sport, l4.dport]
            elif isinstance(l4, dpkt.icmp.ICMP):
                row += [l4.type, l4.code]
            rows.append(row)
    return len(rows)


TSHARK_FIELDS = [
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.len",
    "ip.ttl",
    "ip.id",
    "ip.frag_offset",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "tcp.flags",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.window_size_value",
    "tcp.options.mss_val",
    "tcp.options.wscale.shift",
    "tcp.options.sack_perm",
    "tcp.options.timestamp.tsval",
    "icmp.type",
    "icmp.code",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=5_000_000)
    ap.add_argument("--sample", type=int, default=200_000, help="packets for the dpkt and tshark references")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="keep the generated captures in this directory")
    args = ap.parse_args()

    from darkembed.ingest import ingest_file, ingest_many, read_capture

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="darkembed-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    n = args.packets
    t0 = time.perf_counter()
    ts, groups = build_frames(n)
    cap = tmp / "day.pcap"
    size = write_pcap(cap, ts, groups)
    gz = tmp / "day.pcap.gz"
    gz.write_bytes(gzip.compress(cap.read_bytes(), 3))
    sample = tmp / "sample.pcap"
    sts, sgroups = build_frames(args.sample, seed=2)
    write_pcap(sample, sts, sgroups)
    hourly = tmp / "hourly"
    hourly.mkdir(exist_ok=True)
    hour = (ts - ts[0]) // 3_600_000_000
    for h in range(24):
        sel = np.flatnonzero(hour == h)
        if sel.size:
            hg = []
            for idx, frame in groups:
                m = np.isin(idx, sel)
                pos = np.searchsorted(sel, idx[m])
                hg.append((pos, frame[m]))
            hp = hourly / f"h{h:02d}.pcap"
            write_pcap(hp, ts[sel], hg)
            (hourly / f"h{h:02d}.pcap.gz").write_bytes(gzip.compress(hp.read_bytes(), 3))
            hp.unlink()
    print(
        f"workload: {n:,} packets, {size / 1e6:.0f} MB pcap, {gz.stat().st_size / 1e6:.0f} MB gz "
        f"(built in {time.perf_counter() - t0:.1f} s); cores: {os.cpu_count()}"
    )

    read_capture(sample)  # compile / load the kernels once
    kept = read_capture(cap)[1].kept
    if kept != n:
        raise SystemExit(
            f"workload check: {kept:,} of {n:,} packets kept; the benchmark capture is malformed"
        )
    t_parse = median_seconds(lambda: read_capture(cap), args.repeat)
    t_parse_gz = median_seconds(lambda: read_capture(gz), args.repeat)
    t_e2e = median_seconds(lambda: ingest_file(gz, tmp / "out.parquet"), args.repeat)
    hfiles = sorted(hourly.glob("*.pcap.gz"))
    t_par = median_seconds(lambda: ingest_many(hfiles, tmp / "par", workers=0), args.repeat)
    t_read = median_seconds(lambda: cap.read_bytes(), args.repeat)

    t_dpkt = median_seconds(lambda: dpkt_loop(sample, args.sample), 1)
    t_tshark = None
    if shutil.which("tshark"):
        cmd = ["tshark", "-r", str(sample), "-n", "-T", "fields", "-E", "occurrence=f"]
        for f in TSHARK_FIELDS:
            cmd += ["-e", f]
        t_tshark = median_seconds(
            lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True), 1
        )

    rate = {
        "read bytes only (reference ceiling)": n / t_read,
        "darkembed parse-to-Arrow, pcap": n / t_parse,
        "darkembed parse-to-Arrow, pcap.gz": n / t_parse_gz,
        "darkembed end-to-end pcap.gz -> Parquet, 1 core": n / t_e2e,
        f"darkembed 24 hourly pcap.gz -> Parquet, {os.cpu_count()} threads": n / t_par,
        "dpkt loop (same fields)": args.sample / t_dpkt,
    }
    if t_tshark:
        rate["tshark -T fields (same fields)"] = args.sample / t_tshark
    width = max(map(len, rate))
    print(f"\n{'':{width}}  packets/s   x dpkt   x tshark")
    for k, v in rate.items():
        ts_ratio = f"{v / rate['tshark -T fields (same fields)']:8.1f}" if t_tshark else "     n/a"
        print(f"{k:{width}}  {v / 1e6:6.2f} M   {v / rate['dpkt loop (same fields)']:6.1f}   {ts_ratio}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
