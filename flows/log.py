"""How the flows log: one MLflow parent run per flow run (tags, the resolved configuration), one nested run
per stage result of a network-day or pair-day, and one progress line per finished stage. Every flow logs
through this module; `darkembed.tracking` does the talking to MLflow."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from darkembed import tracking
from darkembed.config import Config

log = logging.getLogger(__name__)


def flow_tags(flow: str, **extra: object) -> dict[str, str]:
    """MLflow tags of a flow's parent run: flow name and run id (when run by Prefect), plus `extra`."""
    tags = {"flow": flow}
    try:
        from prefect.runtime import flow_run

        if flow_run.id:
            tags["flow_run_id"] = str(flow_run.id)
            tags["flow_run_name"] = str(flow_run.name)
    except Exception:  # outside a flow run
        pass
    tags.update(
        {k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v) for k, v in extra.items()}
    )
    return tags


@contextmanager
def flow_run(
    flow: str, name: str, config: Config, *, params: Mapping[str, Any] | None = None, **tags: object
) -> Iterator[None]:
    """The MLflow parent run of a flow run, `name`, tagged with `flow_tags(flow, **tags)`; the resolved
    configuration is logged in it (artifact and params), then `params`."""
    with tracking.run(name, config=config, tags=flow_tags(flow, **tags)):
        tracking.log_config(config)
        if params:
            tracking.log_params(params)
        yield


@contextmanager
def stage_run(name: str, **tags: object) -> Iterator[None]:
    """A nested run grouping the runs of one stage of a day (the embeddings of every method and network)."""
    with tracking.run(name, nested=True, tags=tags):
        yield


def numeric_metrics(prefix: str, result: Mapping[str, Any]) -> dict[str, float]:
    """Numbers of a stage result as `prefix.key` metrics (one level of nested dicts flattened)."""
    out: dict[str, float] = {}
    for k, v in result.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float):
            out[f"{prefix}.{k}"] = float(v)
        elif isinstance(v, Mapping):
            for k2, v2 in v.items():
                if isinstance(v2, int | float) and not isinstance(v2, bool):
                    out[f"{prefix}.{k}.{k2}"] = float(v2)
    return out


#: Result fields worth a word in a stage's progress line, in this order.
_HEADLINE = ("packets", "hosts", "active_hosts", "labelled", "sentences", "edges", "rows", "anchors", "files")


def progress(name: str, result: Mapping[str, Any], started: float | None = None, detail: str = "") -> None:
    """One progress line for a finished stage of one partition: its name, how long it took (from `started`,
    `time.time()` when its work began), its headline counts and `detail`."""
    words = [f"{k} {result[k]:,}" for k in _HEADLINE if isinstance(result.get(k), int)][:3]
    if detail:
        words.append(detail)
    took = f" in {time.time() - started:.1f} s" if started is not None else ""
    log.info("%s done%s%s", name, took, f": {', '.join(words)}" if words else "")


def log_stage(stage: str, result: Mapping[str, Any], started: float | None = None, **tags: Any) -> None:
    """One nested MLflow run for a stage result of one network-day (metrics + the result as JSON), and a progress
    line. `started` (`time.time()` when the stage's work began) makes the run's duration the work's."""
    name = f"{stage}[{result.get('network', '')}/{result.get('day', '')}]"
    with tracking.run(
        name,
        nested=True,
        started=started,
        tags={
            "stage": stage,
            **{k: v for k, v in result.items() if k in ("network", "day", "method")},
            **tags,
        },
    ):
        tracking.log_metrics(numeric_metrics(stage, result))
        tracking.log_dict(dict(result), f"{stage}/result.json")
        if "figure" in result:
            tracking.log_artifact(result["figure"], "figures")
    method = f"{result['method']}/" if result.get("method") else ""
    progress(f"{stage}[{method}{result.get('network', '')}/{result.get('day', '')}]", result, started)


def log_ingest_result(result: dict) -> None:
    """Metrics and the per-file report table of one network-day, in the active MLflow run."""
    reports = result["reports"]
    kept = sum(r["kept"] for r in reports)
    records = sum(r["records"] for r in reports)
    seconds = sum(r["seconds"] for r in reports)
    skipped: dict[str, int] = {}
    for r in reports:
        for k, v in r["skipped"].items():
            skipped[k] = skipped.get(k, 0) + v
    tracking.log_metrics(
        {
            "ingest.files": len(reports),
            "ingest.records": records,
            "ingest.packets": kept,
            "ingest.bytes": sum(r["bytes"] for r in reports),
            "ingest.seconds": seconds,
            "ingest.packets_per_s": kept / seconds if seconds else None,
            "ingest.files_with_errors": sum(1 for r in reports if r["error"]),
            **{f"ingest.skipped.{k}": v for k, v in skipped.items()},
        }
    )
    rows = [{**r, "skipped": ", ".join(f"{k}={v}" for k, v in r["skipped"].items())} for r in reports]
    for r in rows:
        r["bad"] = "; ".join(f"{reason}@{off}" for off, reason in r["bad"])
    import pandas as pd

    tracking.log_table(pd.DataFrame(rows), f"ingest/{result['network']}/{result['day']}/reports.json")


def log_ingest(result: dict, started: float | None = None) -> None:
    """One nested run for the ingest of one network-day (`log_ingest_result`), and a progress line."""
    name = f"ingest[{result['network']}/{result['day']}]"
    tags = {"stage": "ingest", "network": result["network"], "day": result["day"]}
    with tracking.run(name, nested=True, started=started, tags=tags):
        log_ingest_result(result)
    packets = sum(r["kept"] for r in result["reports"])
    progress(name, {"files": len(result["reports"]), "packets": packets}, started)


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


def log_experiment(res: Mapping[str, Any]) -> None:
    """An experiment's headline numbers, report, tables and figures (`evaluate_experiment`'s result) in the
    active run; the figures keep their folders under the report's directory."""
    root = Path(res["report"]).parent
    tracking.log_metrics(res["metrics"])
    tracking.log_artifact(res["report"])
    for f in res["tables"]:
        tracking.log_artifact(f, "tables")
    for p in res["figures"].values():
        tracking.log_artifact(p, str(Path(p).parent.relative_to(root)))
