"""Open-set answers on a simulated world: coverage, answered precision and the truly unknown hosts given a class.

Run (after building a world and its embeddings, see docs/open-set.md):
`python benchmarks/open_set.py -c my-world.yaml --world var/w --day 2023-01-02 [--provider darknet-a]
[--customer darknet-b] [--quantile 0.05] [--score gate] [--thresholds class] [--activity off]`. Evaluates every setting of the pair's day (no clustering) and joins the
per-host answers with the simulator's answer key (`truth/truth.parquet`): the share of the customer's hosts whose
true class is `unknown` that receive a known class, closed world (the prediction) and open set (the answer),
beside the labelled macro F1 of both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from pathlib import Path

import numpy as np
import polars as pl

from darkembed.config import load_config
from darkembed.evaluate.abstain import forced_share
from darkembed.evaluate.pair import evaluate_pair
from darkembed.stages.read import load_network_day


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--config", required=True)
    ap.add_argument("--world", required=True, type=Path, help="the simulated world (has truth/truth.parquet)")
    ap.add_argument("--day", required=True)
    ap.add_argument("--provider", default="darknet-a")
    ap.add_argument("--customer", default="darknet-b")
    ap.add_argument("--method", default="idarkvec")
    ap.add_argument("--quantile", type=float, default=None, help="evaluate.abstain_quantile override")
    ap.add_argument("--k", type=int, default=None, help="evaluate.abstain_k override")
    ap.add_argument("--calibration", choices=["customer", "provider"], default=None,
                    help="evaluate.abstain_calibration override")  # fmt: skip
    ap.add_argument(
        "--score", choices=["neighbour", "gate"], default=None, help="evaluate.abstain_score override"
    )
    ap.add_argument("--thresholds", choices=["pooled", "class"], default=None,
                    help="evaluate.abstain_thresholds override")  # fmt: skip
    ap.add_argument(
        "--activity", choices=["on", "off"], default=None, help="evaluate.abstain_activity override"
    )
    ap.add_argument("--no-transfer", action="store_true", help="skip the canonical transfer setting")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    over = {
        k: v
        for k, v in {
            "abstain_quantile": args.quantile,
            "abstain_k": args.k,
            "abstain_calibration": args.calibration,
            "abstain_score": args.score,
            "abstain_thresholds": args.thresholds,
            "abstain_activity": None if args.activity is None else args.activity == "on",
        }.items()
        if v is not None
    }
    if over:
        cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update=over)})
    day = dt.date.fromisoformat(args.day)
    prov, _ = load_network_day(cfg, args.method, args.provider, day)
    cust, own = load_network_day(cfg, args.method, args.customer, day, activity=True)
    transferred = None
    if args.method == "idarkvec" and not args.no_transfer:  # canonical transfer, as the adapt stage builds it
        from darkembed.adapt.anchors import find_anchors
        from darkembed.layout import Layout
        from darkembed.stages.adapt import canonical_transfer
        from darkembed.stages.read import CORPUS_FILE

        lay = Layout(cfg.data_path)
        corpus = lay.corpus(args.customer, day) / CORPUS_FILE
        transfer = canonical_transfer(cfg, lay.models(args.method, args.provider, day), corpus, cust)
        transferred = transfer(find_anchors(prov.ips, cust.ips).ips)
    t0 = time.perf_counter()
    res = evaluate_pair(prov, cust, cfg, customer_own_labels=own, transferred=transferred, cluster=False)
    seconds = time.perf_counter() - t0
    truth = (
        pl.read_parquet(args.world / "truth" / "truth.parquet")
        .filter((pl.col("network") == args.customer) & (pl.col("day") == day))
        .select("src_ip", pl.col("class").alias("true_class"))
    )
    e = cfg.evaluate
    print(f"{args.provider} -> {args.customer}, {day}, {args.method}: {prov.ips.size} provider and {cust.ips.size} "
          f"customer hosts, {res.anchors} anchors; abstain_k {e.abstain_k}, quantile {e.abstain_quantile}, "
          f"calibration {e.abstain_calibration}, score {e.abstain_score}, thresholds {e.abstain_thresholds}, "
          f"activity gate {'on' if e.abstain_activity else 'off'}; "
          f"{seconds:.0f} s")  # fmt: skip
    head = f"{'setting':<18} {'F1 closed':>9} {'F1 open':>8} {'coverage':>8} {'ans.prec':>8} {'forced before':>13} {'after':>6}"
    print(head)
    for name, r in res.settings.items():
        preds = r.predictions().join(truth, on="src_ip", how="left")
        tc = preds["true_class"].fill_null("?").to_numpy()
        o = r.open_set()
        print(f"{name:<18} {r.macro_f1:9.3f} {o['open_f1']:8.3f} {o['coverage']:8.2f} "
              f"{o['answered_precision']:8.3f} {forced_share(tc, preds['prediction'].to_numpy()):13.2f} "
              f"{forced_share(tc, preds['answer'].to_numpy()):6.2f}")  # fmt: skip
    print(f"truly unknown customer hosts: {int(np.sum(tc == 'unknown'))} of {tc.size}")


if __name__ == "__main__":
    main()
