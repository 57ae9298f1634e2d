"""The markdown report of a named experiment, from its tables (docs/method.md section 6 layouts).

Reads nothing itself: `darkembed.stages.experiments` collects the tables from the `results` partitions (and the
kNN scores) and the experiments flow logs them to MLflow as Parquet with `meta.json`; `render` turns the same
inputs into markdown, whether they come from the run that just finished or are downloaded from MLflow later
(`darkembed report`).

Tables (all optional, by name):
* `transfer`: per-day summaries of the pair settings (pair, method, day, setting, class, precision/recall/f1
  mean and std over folds), [TNSM] Tables II-IV and VII-IX.
* `knn`: `darkembed.stages.knn.knn_table` output (method, class, f1 mean/std over days, support), [GNN] Table 3.
* `sweep`: the same with a `value` column, one block per value of the swept parameter ([GNN] Fig. 4).
* `anchor_sweep`: the anchor-fraction rows of `protocol.anchor_sweep` with `setting`, [TNSM] "impact of anchors".
* `clusters`: cluster metrics per space (`setting`, `metric`, `value`), [TNSM] Table V.
* `knowledge`: knowledge-gain rows per space (`space`, `source`, `clusters`, `hosts`, `extended`), Table VI.
* `profiles`: the largest clusters of unknown hosts with their port and timing profile (analyst review list).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from darkembed.evaluate.knn_report import table3_markdown
from darkembed.evaluate.pair import SWEEP_HEADING, sweep_markdown
from darkembed.evaluate.protocol import sweep_curve
from darkembed.report import sweep_positions

#: The [TNSM] Table V rows and the metric names of `cluster.cluster_metrics`.
CLUSTER_ROWS = (("clusters", "clusters"), ("noise share", "noise_share"), ("homogeneity (no unknown)", "homogeneity"),
                ("silhouette mean (no noise)", "silhouette_mean"), ("silhouette std", "silhouette_std"))  # fmt: skip


@dataclass
class ExperimentTables:
    """What an experiment report is made of.

    Attributes:
        meta: name, title, kind (`knn`/`transfer`), header lines, `paper` reference numbers, optional `sweep`
            (`key`, `values`, `paper`: value -> reference).
        tables: see the module docstring.
        figures: caption -> path relative to the report.
    """

    meta: dict[str, Any]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)


def transfer_macro(table: pl.DataFrame) -> pl.DataFrame:
    """Macro P/R/F1 per pair, method and setting, averaged over the evaluation days (with both spreads)."""
    # results written before these columns existed
    for col in ("anchor_cosine", "anchor_p10", "classifier_seconds", "aligner_seconds"):
        if col not in table.columns:
            table = table.with_columns(pl.lit(float("nan")).alias(col))
    return (
        table.filter(pl.col("class") == "macro")
        .group_by(["pair", "method", "setting"], maintain_order=True)
        .agg(
            pl.col("anchor_cosine").fill_nan(None).mean().alias("anchor_cos"),
            pl.col("anchor_p10").fill_nan(None).mean().alias("anchor_p10"),
            pl.col("precision_mean").mean().alias("P"),
            pl.col("recall_mean").mean().alias("R"),
            pl.col("f1_mean").mean().alias("F1"),
            pl.col("f1_mean").std().alias("F1_std_over_days"),
            pl.col("f1_std").mean().alias("F1_std_over_folds"),
            pl.col("classifier_seconds").fill_nan(None).mean().alias("clf_s"),
            pl.col("aligner_seconds").fill_nan(None).mean().alias("aligner_s"),
            pl.len().alias("days"),
        )
    )


def headline_metrics(t: ExperimentTables) -> dict[str, float]:
    """The experiment's numbers as flat MLflow metrics."""
    out: dict[str, float] = {}
    if (tab := t.tables.get("transfer")) is not None and tab.height:
        for r in transfer_macro(tab).iter_rows(named=True):
            out[f"f1.{r['pair']}.{r['method']}.{r['setting']}"] = r["F1"]
    if (tab := t.tables.get("knn")) is not None and tab.height:
        for r in tab.filter(pl.col("class") == "macro").iter_rows(named=True):
            out[f"knn.macro_f1.{r['method']}"] = r["f1_mean"]
    if (tab := t.tables.get("sweep")) is not None and tab.height:
        for r in tab.filter(pl.col("class") == "macro").iter_rows(named=True):
            out[f"sweep.{r['method']}.{r['value']}"] = r["f1_mean"]
    return {k: v for k, v in out.items() if v is not None and not math.isnan(v)}


def render(t: ExperimentTables) -> str:
    """The whole markdown report."""
    meta = t.meta
    lines = [f"# {meta.get('title') or meta['name']}", "", *meta.get("header", []), ""]
    tables = t.tables
    if (tab := tables.get("transfer")) is not None:
        lines.append(_transfer_markdown(tab, meta.get("paper", {})))
    if (tab := tables.get("knn")) is not None and tab.height:
        paper = {row: {"all": " / ".join(f"{k} {v}" for k, v in cols.items())} for row, cols in
                 meta.get("paper", {}).items()}  # fmt: skip
        lines.append(table3_markdown(tab, f"3-NN F1 on {meta.get('network', '')}", paper or None))
    if (tab := tables.get("sweep")) is not None and tab.height:
        lines.append(_sweep_param_markdown(tab, meta.get("sweep", {})))
    if (tab := tables.get("anchor_sweep")) is not None and tab.height:
        lines.append("\n" + SWEEP_HEADING)
        for (pair,), g in tab.group_by("pair", maintain_order=True):
            curves = {s: sweep_curve(c) for (s,), c in g.group_by("setting", maintain_order=True)}
            lines.append(f"\n### {pair}\n" + sweep_markdown(curves, heading=False))
    if (tab := tables.get("clusters")) is not None and tab.height:
        lines.append(_clusters_markdown(tab, tables.get("knowledge")))
    if (tab := tables.get("profiles")) is not None and tab.height:
        lines.append(_profiles_markdown(tab))
    if t.figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{caption}]({path})" for caption, path in t.figures.items()]
    return "\n".join(lines).rstrip() + "\n"


def _f(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _transfer_markdown(table: pl.DataFrame, paper: Mapping[str, Mapping[str, str]]) -> str:
    if not table.height:
        return "no results\n"
    macro = transfer_macro(table)
    lines = [
        "## Macro averages (5-fold, mean over the evaluation days)",
        "",
        "| pair | method | setting | P | R | F1 | F1 std (folds) | F1 std (days) | paper F1 | anchor cos | "
        "anchor P@10 | s/fold classifier | s/fold aligner |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in macro.iter_rows(named=True):
        ref = paper.get(r["pair"], {}).get(r["setting"], "")
        aligner_s = r["aligner_s"] if r["setting"].startswith("align/") else None
        lines.append(
            f"| {r['pair']} | {r['method']} | {r['setting']} | {_f(r['P'])} | {_f(r['R'])} | {_f(r['F1'])} | "
            f"{_f(r['F1_std_over_folds'])} | {_f(r['F1_std_over_days'])} | {ref} | {_f(r['anchor_cos'])} | "
            f"{_f(r['anchor_p10'])} | {_f(r['clf_s'], 1)} | {_f(aligner_s, 1)} |"
        )
    lines += ["", "anchor cos: mean cosine between the aligned vectors of the test fold's anchors (never seen by "
              "the aligner) and their provider vectors, a check a customer without labels can make; anchor P@10: "
              "the share of those anchors whose provider vector is among the 10 nearest to the aligned one (robust "
              "where every vector points the same way and every cosine is high). Seconds per fold: classifier "
              "training (one classifier per fold, shared by the provider-space settings) and aligner fit + "
              "transform, on this machine."]  # fmt: skip
    per = (
        table.filter(pl.col("class") != "macro")
        .group_by(["pair", "method", "setting", "class"], maintain_order=True)
        .agg(pl.col("f1_mean").mean())
        .pivot(on="setting", index=["pair", "method", "class"], values="f1_mean")
        .sort(["pair", "method", "class"])
    )
    cols = [c for c in per.columns if c not in ("pair", "method", "class")]
    lines += ["", "## Per-class F1 (mean over the evaluation days)", ""]
    lines += ["| pair | method | class | " + " | ".join(cols) + " |", "|---" * (len(cols) + 3) + "|"]
    for r in per.iter_rows(named=True):
        lines.append(
            f"| {r['pair']} | {r['method']} | {r['class']} | " + " | ".join(_f(r[c]) for c in cols) + " |"
        )
    return "\n".join(lines) + "\n"


def _sweep_param_markdown(table: pl.DataFrame, sweep: Mapping[str, Any]) -> str:
    key = sweep.get("key", "value")
    paper = {str(k): v for k, v in (sweep.get("paper") or {}).items()}
    macro = table.filter(pl.col("class") == "macro").with_columns(pl.col("value").cast(pl.Utf8))
    xs, _ = sweep_positions(macro["value"].to_list())
    macro = macro.sort(
        ["method", pl.col("value").replace_strict(xs, return_dtype=pl.Float64)], maintain_order=True
    )
    lines = ["", f"## Sweep of `{key}` (macro 3-NN F1, mean ± std over the test days)", "",
             f"| method | {key} | macro F1 | paper |", "|---|---|---|---|"]  # fmt: skip
    for r in macro.iter_rows(named=True):
        lines.append(
            f"| {r['method']} | {r['value']} | {_f(r['f1_mean'])} ± {_f(r['f1_std'])} | "
            f"{paper.get(str(r['value']), '')} |"
        )
    return "\n".join(lines) + "\n"


def _clusters_markdown(clusters: pl.DataFrame, knowledge: pl.DataFrame | None) -> str:
    groups = clusters.select("pair", "method", "day").unique(maintain_order=True)
    lines = ["", "## Clustering of the customer's hosts (HDBSCAN; [TNSM] Tables V and VI)"]
    for g in groups.iter_rows(named=True):
        sub = clusters.filter((pl.col("pair") == g["pair"]) & (pl.col("method") == g["method"]) &
                              (pl.col("day") == g["day"]))  # fmt: skip
        spaces = list(dict.fromkeys(sub["space"].to_list()))
        lines += ["", f"### {g['pair']}, {g['method']}, {g['day']}", "",
                  "| | " + " | ".join(spaces) + " |", "|---" * (len(spaces) + 1) + "|"]  # fmt: skip
        for caption, metric in CLUSTER_ROWS:
            vals = []
            for s in spaces:
                v = sub.filter((pl.col("space") == s) & (pl.col("metric") == metric))["value"]
                vals.append(_f(v[0] if v.len() else None, 0 if metric == "clusters" else 2))
            lines.append(f"| {caption} | " + " | ".join(vals) + " |")
        if knowledge is None or not knowledge.height:
            continue
        kn = knowledge.filter((pl.col("pair") == g["pair"]) & (pl.col("method") == g["method"]) &
                              (pl.col("day") == g["day"]))  # fmt: skip
        sources = list(dict.fromkeys(kn["source"].to_list()))
        lines += ["", "Knowledge gain: hosts / clusters explained by each label source (a cluster is explained when one "
                  "label covers at least half of its hosts; `own` = the customer's own labels, `provider` = with the "
                  "provider's; in brackets the unlabelled hosts of those clusters, newly explained):", "",
                  "| | " + " | ".join(spaces) + " |", "|---" * (len(spaces) + 1) + "|"]  # fmt: skip
        for src in sources:
            cells = []
            for s in spaces:
                r = kn.filter((pl.col("space") == s) & (pl.col("source") == src))
                ext = (
                    f" (+{r['extended'][0]})"
                    if r.height and "extended" in r.columns and r["extended"][0]
                    else ""
                )
                cells.append("-" if not r.height else f"{r['hosts'][0]} / {r['clusters'][0]}{ext}")
            lines.append(f"| {src} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _profiles_markdown(profiles: pl.DataFrame) -> str:
    cols = [c for c in profiles.columns if c not in ("pair", "method", "day", "space")]
    lines = ["", "## Largest clusters of unknown hosts (for an analyst to review)", "",
             "| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]  # fmt: skip
    for r in profiles.iter_rows(named=True):
        lines.append("| " + " | ".join(_f(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_tables(t: ExperimentTables, directory: Path) -> list[Path]:
    """Write the tables as Parquet and the metadata as JSON into `directory`; returns the files."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, tab in t.tables.items():
        tab.write_parquet(directory / f"{name}.parquet")
        out.append(directory / f"{name}.parquet")
    (directory / "meta.json").write_text(
        json.dumps({"meta": t.meta, "figures": t.figures}, indent=2, default=str)
    )
    out.append(directory / "meta.json")
    return out


def read_tables(directory: Path) -> ExperimentTables:
    """The inverse of `write_tables` (what `darkembed report` downloads from MLflow)."""
    import json

    blob = json.loads((directory / "meta.json").read_text())
    tables = {p.stem: pl.read_parquet(p) for p in sorted(directory.glob("*.parquet"))}
    return ExperimentTables(blob["meta"], tables, blob.get("figures", {}))


def from_mlflow(
    tracking: Any, name: str, out_dir: Path, scale: float | None = None
) -> ExperimentTables | None:
    """The tables of the latest finished run of experiment `name` (at world `scale` when given), downloaded from
    MLflow, with its figures under `out_dir/figures/<name>/` (the paths in `figures` are relative to `out_dir`);
    None without such a run."""
    import shutil
    import tempfile

    from darkembed import tracking as tr

    tags = {"flow": "experiments", "experiment": name} | ({"scale": str(scale)} if scale is not None else {})
    run = tr.latest_run(tracking, tags)
    if run is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        t = read_tables(tr.download_run_artifacts(run.info.run_id, "tables", tmp))
        figs = out_dir / "figures" / name
        if t.figures:
            shutil.rmtree(figs, ignore_errors=True)
            local = tr.download_run_artifacts(run.info.run_id, "figures", Path(tmp) / "dl")
            for src in local.rglob("*.png"):
                dst = figs / src.relative_to(local)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    t.meta.setdefault("header", []).append(f"MLflow run {run.info.run_id} ({run.info.run_name}).")
    t.figures = {
        c: str(Path("figures") / name / Path(p).relative_to("figures")) for c, p in t.figures.items()
    }
    return t
