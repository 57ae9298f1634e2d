"""The transfer flow: one provider-customer pair on one day (what `darkembed transfer` runs), and the MLflow
logging of a pair's results shared with the nightly flow."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from prefect import flow

from darkembed import tracking
from darkembed.torchutil import set_threads
from flows.common import config_from, flow_tags, progress, resolve_day
from tasks.adapt import adapt_pair


def log_adapt(res: dict, started: float | None = None) -> None:
    """One nested run per pair-day (macro F1 per setting, cluster metrics, figures, markdown summary) and one
    nested run per setting inside it with the per-class scores; and a progress line. `started` (`time.time()`
    when the pair's work began) makes the run's duration the work's."""
    import polars as pl

    tags = {"stage": "adapt", "pair": res["pair"], "day": res["day"], "method": res["method"]}
    name = f"adapt[{res['method']}/{res['pair']}/{res['day']}]"
    best = max(res["macro_f1"].items(), key=lambda kv: kv[1], default=None)
    progress(name, res, started, f"best {best[0]} (macro F1 {best[1]:.2f})" if best else "")
    with tracking.run(name, nested=True, started=started, tags=tags):
        tracking.log_metrics({f"macro_f1.{k}": v for k, v in res["macro_f1"].items()})
        # open-set answers beside the closed-world F1: coverage.<setting>, answered_precision.<setting>, ...
        tracking.log_metrics(
            {f"{m}.{s}": v for s, o in res.get("open_set", {}).items() for m, v in o.items()}
        )
        tracking.log_metrics({f"cluster.{k}": v for k, v in res["clusters"].items()})
        tracking.log_metrics({f"seconds.{k}": v for k, v in res["seconds"].items()})
        tracking.log_metrics({"anchors": res["anchors"], "customer_hosts": res["customer_hosts"]})
        tracking.log_artifact(res["summary_md"])
        for fig in res["figures"]:
            tracking.log_artifact(fig, "figures")
        # The provider's shipment as registered models: a customer loads them by name and version.
        for b in sorted(Path(res["partition"], "bundles").iterdir()):
            name = f"darkembed-{res['provider']}-{b.name}-{res['method']}"
            tracking.register_bundle(b, f"bundles/{b.name}", name, tags={**tags, "bundle": b.name})
        summary = pl.read_parquet(f"{res['partition']}/summary.parquet")
        tracking.log_table(summary, "tables/summary.json")
        for setting in res["macro_f1"]:
            rows = summary.filter(pl.col("setting") == setting)
            with tracking.run(setting, nested=True, tags={**tags, "setting": setting}):
                metrics = {}
                for r in rows.iter_rows(named=True):
                    for m in ("precision", "recall", "f1"):
                        metrics[f"{m}.{r['class']}"] = r[f"{m}_mean"]
                    metrics[f"f1_std.{r['class']}"] = r["f1_std"]
                tracking.log_metrics(metrics)


@flow(name="transfer", flow_run_name="transfer[{provider}~{customer}/{day}]")
def transfer_flow(
    provider: str,
    customer: str,
    day: str | None = None,
    method: str = "idarkvec",
    config: Sequence[str] | None = None,
) -> dict:
    """Every [TNSM] setting, clustering and the exchange bundles for one pair and day (embeddings must exist)."""
    cfg = config_from(config)
    d = resolve_day(day)
    set_threads(cfg.orchestration.torch_threads, cfg.orchestration.max_workers)
    cfg.network(provider)
    cfg.network(customer)
    with tracking.run(
        f"transfer[{provider}~{customer}/{d}]",
        config=cfg,
        tags=flow_tags("transfer", day=d, networks=[provider, customer], method=method),
    ):
        tracking.log_config(cfg)
        started = time.time()
        res = adapt_pair(cfg, provider, customer, d, method)
        log_adapt(res, started)
    return res
