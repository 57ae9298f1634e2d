"""Daily features on a simulated paper-scale day: labels, corpus and graph against reading the day's packets.

Simulates one day of the default world at `--scale` (1.0 = ~2 M packets per darknet-day) and at 4x that scale,
ingests darknet-a, then times (median of `--repeat`):

* read: loading the day's `packets` partition into memory (the reference, measured in the same run);
* labels: scanner-list matching, fingerprints and precedence (`labels.label_day`);
* corpus: activity filter + per-port sentences + the LineSentence file;
* graph: activity filter + edges + 37 host and port features;

and prints seconds, packets/s and each stage's ratio to the read time (target: all three within 10x), for 1x and
4x (linearity). Usage: `python benchmarks/features.py [--scale 1.0] [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl
from _timing import median_seconds


def run_scale(scale: float, repeat: int, tmp: Path) -> dict[str, float]:
    from darkembed.activity import active_packets
    from darkembed.config import load_config
    from darkembed.corpus import build_corpus, write_line_sentences
    from darkembed.graph import build_graph
    from darkembed.ingest import expand_inputs, ingest_day
    from darkembed.labels import label_day, load_scanner_lists
    from darkembed.layout import Layout
    from darkembed.simulate import simulate

    world = tmp / f"world-{scale}"
    cfg = load_config(
        overrides={
            "data_root": str(tmp / f"data-{scale}"),
            "simulate": {"out": str(world), "days": 1, "scale": scale},
            "networks": [
                {
                    "name": "darknet-a",
                    "kind": "darknet",
                    "prefix": "198.51.100.0/24",
                    "captures": [str(world) + "/darknet-a/{day:%Y-%m-%d}/*.pcap.gz"],
                },
            ],
            "pairs": [],
            "labels": {
                "scanner_lists": [{"name": "world", "path": str(world / "scanners"), "format": "folder"}]
            },
        }
    )
    day = cfg.simulate.start
    simulate(cfg)
    part = Layout(cfg.data_path).packets("darknet-a", day)
    files = expand_inputs(cfg.network("darknet-a").inputs_for(day)["captures"])
    ingest_day(part, files, day)
    parquet = sorted(part.glob("*.parquet"))
    n = pl.scan_parquet(parquet).select(pl.len()).collect().item()

    def read():
        return pl.read_parquet(parquet)

    lists = load_scanner_lists(cfg.labels, day)

    def labels():
        return label_day(pl.scan_parquet(parquet), day, lists, None, cfg.labels)

    def corpus():
        c = build_corpus(active_packets(pl.scan_parquet(parquet), cfg.activity), cfg.corpus)
        write_line_sentences(c, tmp / "corpus.txt")

    def graph():
        return build_graph(active_packets(pl.scan_parquet(parquet), cfg.activity))

    read()
    out = {"packets": n}
    for name, fn in (("read", read), ("labels", labels), ("corpus", corpus), ("graph", graph)):
        out[name] = median_seconds(fn, repeat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="darkembed-features-") as tmp:
        rows = [(f, run_scale(args.scale * f, args.repeat, Path(tmp))) for f in (1, 4)]
    print(f"\n{'':6} {'packets':>11} {'stage':>7} {'seconds':>8} {'packets/s':>11} {'x read':>7}")
    for f, r in rows:
        for stage in ("read", "labels", "corpus", "graph"):
            print(
                f"{f}x{'':4} {r['packets']:>11,} {stage:>7} {r[stage]:8.2f} {r['packets'] / r[stage] / 1e6:9.2f} M "
                f"{r[stage] / r['read']:7.1f}"
            )
        total = r["labels"] + r["corpus"] + r["graph"]
        print(
            f"{f}x{'':4} {'':>11} {'all 3':>7} {total:8.2f} {r['packets'] / total / 1e6:9.2f} M "
            f"{total / r['read']:7.1f}"
        )
    (_, a), (_, b) = rows
    for stage in ("labels", "corpus", "graph"):
        per_a, per_b = a[stage] / a["packets"], b[stage] / b["packets"]
        print(f"linearity {stage}: seconds per packet 4x / 1x = {per_b / per_a:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
