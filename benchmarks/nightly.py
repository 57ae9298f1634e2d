"""Seconds and peak memory of each nightly stage at several world scales, and each stage's growth in hosts.

Run: `python benchmarks/nightly.py --scale 0.2 1 5 [--home var/bench-nightly] [--threads 1]`.

For each scale it simulates a one-day world of the three default networks (two /24 darknets and a honeypot,
scale 1.0 = about 7,500 active hosts per darknet-day) unless one is there already, then runs every stage of the
nightly pipeline on that day, each in its own child process so that its peak resident memory (RSS) is its own:
ingest, labels, corpus, graph (all networks), i-DarkVec embeddings, leave-one-out kNN (every network), the
adaptation stage of both provider-customer pairs (every setting, 5 folds, clustering, bundles, figures without
t-SNE: what each day of a backfill runs) and the t-SNE map the last day of a backfill adds. Stages run one after
the other here (the flows overlap networks and pairs), with `--threads` torch threads (the flows' default on 2
cores with 4 concurrent tasks is 1).

Prints one row per stage and scale (seconds, peak RSS) and per stage the growth exponent: the least-squares slope
of log(seconds) against log(active hosts per darknet-day) over the scales (1 = linear; n log n over 1k-40k hosts
reads about 1.1-1.2; 2 = quadratic). The reference measured in the same run is the smallest scale.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ("darknet-a", "darknet-b", "honeypot")
PAIRS = (("darknet-a", "darknet-b"), ("honeypot", "darknet-b"))
STAGES = ("simulate", "ingest", "labels", "corpus", "graph", "embed", "knn", "adapt", "tsne")


def overlay(home: Path, scale: float, seed: int) -> Path:
    """A config overlay whose networks read the scale's world and whose data root is its own."""
    import yaml

    from darkembed.config import load_config

    base = load_config().model_dump(mode="json")
    world = home / "world"
    data = {
        "data_root": str(home / "data"),
        "tracking": {"uri": f"sqlite:///{home / 'mlflow.db'}", "artifacts": str(home / "mlartifacts")},
        "networks": base["networks"],
        "labels": {"scanner_lists": base["labels"]["scanner_lists"]},
        "simulate": {"out": str(world), "days": 1, "scale": scale, "seed": seed},
    }
    default_world = base["simulate"]["out"]
    for net in data["networks"]:
        for key in ("captures", "legacy_traces", "cowrie"):
            net[key] = [p.replace(default_world, str(world), 1) for p in net[key]]
    for sl in data["labels"]["scanner_lists"]:
        sl["path"] = sl["path"].replace(default_world, str(world), 1)
    path = home / "overlay.yaml"
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_stage(stage: str, cfg_path: Path, threads: int) -> dict:
    """One stage in a child process: wall seconds and the child's peak RSS (MiB)."""
    cmd = [sys.executable, __file__, "--stage", stage, "--config", str(cfg_path), "--threads", str(threads)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"stage {stage} failed:\n{err[-3000:]}")
    info = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    rss = info.get("peak_rss_mib")  # the stage's own seconds (in `info`) leave out the interpreter start
    return {
        "stage": stage,
        "seconds": seconds,
        "peak_rss_mib": rss,
        **{k: v for k, v in info.items() if k != "peak_rss_mib"},
    }


def child(stage: str, cfg_path: str, threads: int) -> None:
    """Run one stage on the world's day (called in the child process); prints a JSON line."""
    import resource

    from darkembed.config import load_config
    from darkembed.torchutil import set_default_device, set_threads

    cfg = load_config(cfg_path)
    set_threads(threads, 1)
    set_default_device(cfg.compute.device)
    day = cfg.simulate.start
    info: dict = {}
    t0 = time.perf_counter()
    if stage == "simulate":
        from darkembed.simulate import simulate

        simulate(cfg)
    elif stage == "ingest":
        from darkembed.stages.ingest import commit_packets, ingest_source, plan_day

        for n in NETWORKS:
            plan = plan_day(cfg, n, day)
            reps = [ingest_source(cfg, n, day, f, name, plan["staging"])
                    for f, name in zip(plan["files"], plan["names"], strict=True)]  # fmt: skip
            commit_packets(cfg, n, day, plan, reps)
    elif stage in ("labels", "corpus", "graph"):
        from darkembed.stages.corpus import build_corpus
        from darkembed.stages.graph import build_graph
        from darkembed.stages.labels import label_day

        fn = {"labels": label_day, "corpus": build_corpus, "graph": build_graph}[stage]
        for n in NETWORKS:
            fn(cfg, n, day)
    elif stage == "embed":
        from darkembed.stages.embed import embed_idarkvec

        info["hosts"] = {n: embed_idarkvec(cfg, n, day)["hosts"] for n in NETWORKS}
    elif stage == "knn":
        from darkembed.stages.knn import knn_day

        for n in NETWORKS:
            knn_day(cfg, "idarkvec", n, day)
    elif stage == "adapt":
        from darkembed.stages.adapt import adapt_pair

        info["macro_f1"] = {}
        for p, c in PAIRS:
            res = adapt_pair(cfg, p, c, day, last_day=False)
            info["macro_f1"][f"{p}~{c}"] = {k: round(v, 3) for k, v in res["macro_f1"].items()}
            info.setdefault("parts", {})[f"{p}~{c}"] = {k: round(v, 1) for k, v in res["seconds"].items()}
    elif stage == "tsne":
        from darkembed.report.figures import tsne_embedding
        from darkembed.stages.read import load_network_day

        for _, c in PAIRS[:1]:  # one map per customer-day: the aligned customer hosts
            cust, _ = load_network_day(cfg, "idarkvec", c, day)
            tsne_embedding(cust.X, seed=cfg.evaluate.seed)
    else:
        raise SystemExit(f"unknown stage {stage}")
    info["seconds"] = time.perf_counter() - t0
    info["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(info))


def growth(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of log(seconds) on log(hosts)."""
    import math

    xs = [math.log(h) for h, _ in points]
    ys = [math.log(max(s, 1e-3)) for _, s in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, nargs="+", default=[0.2, 1.0])
    ap.add_argument("--home", type=Path, default=ROOT / "var" / "bench-nightly")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per stage")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--skip", nargs="*", default=[], choices=STAGES[1:], help="stages not run (e.g. tsne)")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        child(args.stage, args.config, args.threads)
        return
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    rows = []
    for scale in args.scale:
        home = (args.home / f"scale-{scale:g}").resolve()
        cfg_path = overlay(home, scale, args.seed)
        summary = home / "world" / "truth" / "summary.json"
        for stage in STAGES:
            if (stage == "simulate" and summary.is_file()) or stage in args.skip:
                continue
            r = run_stage(stage, cfg_path, args.threads)
            r["scale"] = scale
            rows.append(r)
            print(
                f"scale {scale:g} {stage:<9} {r['seconds']:8.1f} s  {r['peak_rss_mib'] or 0:7.0f} MiB",
                flush=True,
            )
        hosts = next(r["hosts"] for r in rows if r["scale"] == scale and r["stage"] == "embed")
        for r in rows:
            if r["scale"] == scale:
                r["darknet_hosts"] = hosts["darknet-a"]
    print("\n| stage | " + " | ".join(f"scale {s:g}: s (MiB)" for s in args.scale) + " | growth exponent |")
    print("|---" * (len(args.scale) + 2) + "|")
    for stage in (*STAGES[1:], "nightly total"):
        cells, pts = [], []
        for s in args.scale:
            sel = [r for r in rows if r["scale"] == s and (r["stage"] == stage or stage == "nightly total")
                   and r["stage"] not in ("simulate", "tsne")]  # fmt: skip
            if not sel:
                cells.append("-")
                continue
            sec = sum(r["seconds"] for r in sel)
            rss = max(r["peak_rss_mib"] or 0 for r in sel)
            cells.append(f"{sec:.1f} ({rss:.0f})")
            pts.append((sel[0]["darknet_hosts"], sec))
        if stage == "tsne":  # the last day's extra, not part of every nightly day
            cells = []
            pts = []
            for s in args.scale:
                sel = [r for r in rows if r["scale"] == s and r["stage"] == "tsne"]
                cells.append(f"{sel[0]['seconds']:.1f} ({sel[0]['peak_rss_mib']:.0f})" if sel else "-")
                if sel:
                    pts.append((sel[0]["darknet_hosts"], sel[0]["seconds"]))
        slope = f"{growth(pts):.2f}" if len(pts) > 1 else "-"
        print(f"| {stage} | " + " | ".join(cells) + f" | {slope} |")
    hosts = {s: next(r["darknet_hosts"] for r in rows if r["scale"] == s) for s in args.scale}
    print(
        "\nactive hosts per darknet-day (darknet-a): "
        + ", ".join(f"scale {s:g}: {h}" for s, h in hosts.items())
    )
    print(
        "nightly total = ingest .. adapt of one day, both pairs, without t-SNE (drawn on a backfill's last day)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
