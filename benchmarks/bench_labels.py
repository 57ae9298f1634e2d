"""Labelling throughput: longest-prefix matching, fingerprints, Cowrie reading, a whole `label_day`.

Run: `python benchmarks/bench_labels.py [--hosts 1000000] [--cowrie-mb 20]`. Uses the real scanner lists in
../shared/data when present (else 20,000 random prefixes) and prints throughput with a ratio against references
measured in the same run: a per-prefix-length polars hash join (the usual vectorised formulation) and a Python
`ipaddress` loop (timed on a sample, extrapolated).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import ipaddress
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from darkembed.labels import ScannerIndex, label_day, load_scanner_list, read_cowrie
from darkembed.labels.fingerprints import host_fingerprints

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scanners"


def lists() -> list:
    folder = SHARED / "openfilters_internet_scanners" / "cidr"
    ipset = SHARED / "rasterburn1_acknowledged_scanners" / "acknowledged_scanners_base" / "ipset_IPv4"
    if folder.is_dir() and ipset.is_dir():
        return [load_scanner_list(folder, "folder"), load_scanner_list(ipset, "ipset")]
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp())
    for org in range(50):
        lines = [
            str(ipaddress.IPv4Network((int(a), int(p)), strict=False))
            for a, p in zip(rng.integers(0, 2**32, 400), rng.integers(16, 33, 400), strict=True)
        ]
        (tmp / f"org{org}_v4.txt").write_text("\n".join(lines))
    return [load_scanner_list(tmp, "folder")]


def hash_join_reference(index: ScannerIndex, ips: np.ndarray) -> np.ndarray:
    """LPM as one polars join per prefix length (longest first), for comparison."""
    entries = pl.DataFrame(
        {"start": index.start.astype(np.int64), "plen": index.plen, "entry": np.arange(len(index))}
    )
    hosts = pl.DataFrame({"ip": ips.astype(np.int64), "row": np.arange(ips.size)})
    result = np.full(ips.size, -1, dtype=np.int64)
    for plen in sorted(set(index.plen.tolist()), reverse=True):
        shift = 2 ** (32 - plen)
        level = entries.filter(pl.col("plen") == plen).select(
            (pl.col("start") // shift).alias("key"), "entry"
        )
        todo = hosts.filter(pl.Series(result[hosts["row"].to_numpy()] < 0))
        hit = todo.with_columns((pl.col("ip") // shift).alias("key")).join(level, on="key")
        result[hit["row"].to_numpy()] = hit["entry"].to_numpy()
    return result


def python_reference(index: ScannerIndex, ips: np.ndarray) -> np.ndarray:
    nets = sorted(
        (
            (ipaddress.IPv4Network((int(s), int(p))), i)
            for i, (s, p) in enumerate(zip(index.start, index.plen, strict=True))
        ),
        key=lambda x: -x[0].prefixlen,
    )
    by_len: dict[int, dict[int, int]] = {}
    for n, i in nets:
        by_len.setdefault(n.prefixlen, {})[int(n.network_address)] = i
    out = []
    for a in ips.tolist():
        e = -1
        for plen, table in by_len.items():
            key = a & ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF)
            if key in table:
                e = table[key]
                break
        out.append(e)
    return np.array(out)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1_000_000)
    ap.add_argument("--cowrie-mb", type=float, default=20)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(15)

    lsts, t_load = timed(lists)
    index, t_build = timed(ScannerIndex, lsts)
    print(
        f"load lists: {sum(len(x) for x in lsts)} prefixes in {t_load:.3f} s; index build {t_build * 1e3:.1f} ms"
    )
    ips = rng.integers(0, 2**32, args.hosts, dtype=np.uint64).astype(np.uint32)
    inside = rng.integers(0, len(index), args.hosts // 10)
    ips[: inside.size] = index.start[inside] + rng.integers(0, 2, inside.size).astype(np.uint32)
    m, t_ours = timed(index.match, ips)
    ref, t_join = timed(hash_join_reference, index, ips)
    assert np.array_equal(m.entry, ref), "hash-join reference disagrees"
    sample = ips[:20_000]
    py, t_py = timed(python_reference, index, sample)
    assert np.array_equal(m.entry[: sample.size], py), "python reference disagrees"
    t_py_all = t_py * ips.size / sample.size
    print(
        f"LPM {ips.size:,} addresses vs {len(index):,} prefixes: {t_ours * 1e3:.0f} ms "
        f"({ips.size / t_ours / 1e6:.1f} M addr/s); per-length polars join {t_join * 1e3:.0f} ms "
        f"(x{t_join / t_ours:.1f}); python dict loop ~{t_py_all:.1f} s extrapolated (x{t_py_all / t_ours:.0f}); "
        f"{int(m.matched.sum()):,} matched"
    )

    n_pk = 2 * args.hosts
    src = rng.choice(ips, n_pk)
    dst = rng.integers(0xC6336400, 0xC6336500, n_pk, dtype=np.uint64).astype(np.uint32)
    seq = np.where(rng.random(n_pk) < 0.2, dst, rng.integers(0, 2**32, n_pk, dtype=np.uint64)).astype(
        np.uint32
    )
    pk = pl.DataFrame(
        {
            "src_ip": src,
            "dst_ip": dst,
            "proto": np.full(n_pk, 6, np.uint8),
            "ip_id": rng.integers(0, 65536, n_pk).astype(np.uint16),
            "dst_port": rng.integers(0, 65536, n_pk).astype(np.uint16),
            "tcp_flags": np.full(n_pk, 2, np.uint16),
            "tcp_seq": seq,
            "tcp_win": np.full(n_pk, 1024, np.uint16),
            "icmp_type": pl.Series([None] * n_pk, dtype=pl.UInt8),
        }
    )
    fp, t_fp = timed(lambda: host_fingerprints(pk.lazy()).collect())
    print(
        f"fingerprints: {n_pk:,} packets, {fp.height:,} hosts in {t_fp:.2f} s ({n_pk / t_fp / 1e6:.1f} M pkt/s)"
    )
    out, t_day = timed(label_day, pk.lazy(), dt.date(2023, 1, 1), index, None)
    print(f"label_day: {out.height:,} hosts in {t_day:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cowrie.json.gz"
        line = json.dumps(
            {
                "eventid": "cowrie.login.failed",
                "username": "root",
                "password": "123456",
                "message": "login attempt [root/123456] failed",
                "sensor": "hp1",
                "timestamp": "2023-01-01T10:00:00.123456Z",
                "src_ip": "192.0.2.1",
                "session": "0123456789ab",
            }
        )
        n_lines = int(args.cowrie_mb * 1e6 / (len(line) + 1))
        with gzip.open(path, "wt", compresslevel=1) as fh:
            for i in range(n_lines):
                fh.write(line.replace("192.0.2.1", f"192.0.{(i >> 8) & 255}.{i & 255}") + "\n")
        (events, _), t_cw = timed(read_cowrie, [path])
        print(
            f"read_cowrie: {args.cowrie_mb:.0f} MB ({n_lines:,} lines, gzip) in {t_cw:.2f} s "
            f"({args.cowrie_mb / t_cw:.0f} MB/s; {events.height:,} events)"
        )


if __name__ == "__main__":
    main()
