"""How hard is the simulated world? The port-histogram baseline (docs/realism.md, "Port baseline") on it.

For every day of one darknet of a simulated world: TCP packets of the hosts with at least 5 TCP packets; for each
true class (each scanner organisation its own class, not unknown) its `--top` most-hit TCP ports, unioned; a
host's features are the fractions of its TCP packets sent to each; leave-one-out `--k`-NN (cosine) majority vote
among the labelled hosts, macro precision/recall/F1 over the classes with more than 10 hosts. The second score lets
unknown hosts vote too (as `unknown`, a miss). On real darknet traffic the DarkVec authors' baseline reaches macro
F1 0.50. The implementation is `darkembed.simulate.baseline`, the same code `darkembed simulate --check` runs.

    python benchmarks/port_baseline.py [WORLD] [--network darknet-a] [--top 5] [--k 3]

WORLD defaults to a fresh world of the embedded default config written to a temporary folder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from darkembed.simulate.baseline import baseline_day  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("world", nargs="?", type=Path)
    ap.add_argument("--network", default="darknet-a")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--k", type=int, default=3)
    args = ap.parse_args()
    tmp = None
    world = args.world
    if world is None:
        from darkembed.config import load_config
        from darkembed.simulate import simulate

        tmp = Path(tempfile.mkdtemp(prefix="darkembed-world-"))
        simulate(load_config(), out=tmp)
        world = tmp
    try:
        days = sorted(p.name for p in (world / args.network).iterdir() if p.name[:2] == "20")
        f1_lab, f1_all = [], []
        for day in days:
            r = baseline_day(world, args.network, day, k=args.k, top=args.top)
            f1_lab.append(r.f1)
            f1_all.append(r.f1_all)
            print(f"{args.network} {day}: {r.hosts} hosts (>=5 TCP pkts), {r.labelled} labelled in "
                  f"{len(r.classes)} classes, {r.ports} ports")  # fmt: skip
            print(f"  {args.k}-NN labelled pool  macro P/R/F1 {r.precision:.2f}/{r.recall:.2f}/{r.f1:.2f}")
            print(f"  {args.k}-NN with unknowns  macro F1 {r.f1_all:.2f}")
            print(
                "  per-class F1 (labelled pool): " + ", ".join(f"{c} {v:.2f}" for c, v in r.per_class.items())
            )
        print(f"mean over {len(days)} day(s): macro F1 {np.mean(f1_lab):.3f} (labelled pool), "
              f"{np.mean(f1_all):.3f} (with unknowns); real darknet traffic: 0.50")  # fmt: skip
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
