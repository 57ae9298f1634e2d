"""Run time of private anchor discovery per party size: the PSI steps, the keyed-hash mode, the plain intersection.

Run: `python benchmarks/psi.py [--sizes 10000 100000] [--overlap 0.73]`. Two parties of `n` addresses each share
`overlap * n` of them ([TNSM] Table I's anchor share). Times each step of the exchange in one process (init,
respond, finish, complete: each party's computation; the files in between are a few MB), the message sizes, and
the ratio to the keyed-hash mode and to the plain `np.intersect1d` measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from darkembed.adapt import psi


def parties(n: int, overlap: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shared = round(overlap * n)
    pool = rng.choice(2**32, size=2 * n - shared, replace=False).astype(np.uint32)
    return pool[:n], np.r_[pool[:shared], pool[n:]]


def exchange(a: np.ndarray, b: np.ndarray, mode: str, key: bytes) -> tuple[dict[str, float], int, int]:
    t, sizes = {}, 0
    t0 = time.perf_counter()
    m1, sa = psi.init(a, key, mode)  # type: ignore[arg-type]
    t["init"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m2, sb, anchors_b = psi.respond(m1, b, key)
    t["respond"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m3, anchors_a = psi.finish(m2, sa, key)
    t["finish"] = time.perf_counter() - t0
    sizes = len(m1) + len(m2) + (len(m3) if m3 else 0)
    if m3 is not None:
        t0 = time.perf_counter()
        anchors_b = psi.complete(m3, sb, key)
        t["complete"] = time.perf_counter() - t0
    assert anchors_b is not None and np.array_equal(anchors_a, anchors_b)
    return t, sizes, int(anchors_a.size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--overlap", type=float, default=0.73)
    args = ap.parse_args()
    key = b"benchmark shared secret of 32 b."
    for n in args.sizes:
        a, b = parties(n, args.overlap)
        t0 = time.perf_counter()
        plain = np.intersect1d(a, b)
        t_plain = time.perf_counter() - t0
        th, _, mh = exchange(a, b, "hmac", key)
        tp, size, mp = exchange(a, b, "psi", key)
        assert mh == mp == plain.size
        total_h, total_p = sum(th.values()), sum(tp.values())
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in tp.items())
        print(f"n = {n:,} per party, {plain.size:,} shared")
        print(
            f"  psi   {total_p:8.1f} s  ({steps}); {2 * n / total_p:,.0f} addresses/s; messages {size / 1e6:.1f} MB"
        )
        print(f"  hmac  {total_h:8.2f} s  (psi / hmac = {total_p / total_h:.0f}x)")
        print(f"  plain {t_plain:8.4f} s  (psi / plain = {total_p / max(t_plain, 1e-9):,.0f}x)")


if __name__ == "__main__":
    main()
