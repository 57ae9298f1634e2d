"""The experiments flow: the papers' experiments as named, parameterised runs (conf/experiments/<name>.yaml).

An experiment is a configuration overlay with an `experiment:` section. Its run simulates its own world under
`var/experiments/<name>/` (at the overlay's scale and length, or as given), backfills it through every stage with
the nightly flow, evaluates the test days (`knn`: [GNN] Table 3 layout; `transfer`: every [TNSM] setting of each
pair), and writes `report.md` with the paper's numbers beside ours; everything is logged to MLflow.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from prefect import flow

from darkembed import tracking
from darkembed.config import Config, load_config
from darkembed.evaluate.knn_report import knn_table, table3_markdown
from darkembed.layout import Layout
from darkembed.store import is_complete
from flows.common import flow_tags
from flows.nightly import backfill

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "conf" / "experiments"


def experiment_names() -> list[str]:
    return sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))


def resolve_experiment(
    name: str,
    config: Sequence[str] | None = None,
    *,
    scale: float | None = None,
    days: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    home: str | Path = "var/experiments",
) -> tuple[Config, Path]:
    """The experiment's configuration with its world and data under `home/<name>/`, and that directory."""
    path = EXPERIMENTS / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(experiment_names())}")
    base = load_config(path, *(config or []), overrides=overrides)  # the user's files refine the experiment
    root = Path(home) / name
    world = root / "world"
    sim = {"out": str(world)}
    if scale is not None:
        sim["scale"] = scale
    if days is not None:
        sim["days"] = days
    data = base.model_dump(mode="json")
    default_world = str(Path(base.simulate.out))

    def rebase(pattern: str) -> str:
        return pattern.replace(default_world, str(world), 1) if pattern.startswith(default_world) else pattern

    for net in data["networks"]:
        for key in ("captures", "legacy_traces", "cowrie"):
            net[key] = [rebase(p) for p in net[key]]
    for sl in data["labels"]["scanner_lists"]:
        sl["path"] = rebase(sl["path"])
    data["data_root"] = str(root / "data")
    data["simulate"].update(sim)
    cfg = Config.model_validate(data)
    if cfg.experiment is None:
        raise ValueError(f"{path}: no `experiment:` section")
    return cfg, root


def _transfer_tables(cfg: Config, days: list[dt.date]) -> tuple[pl.DataFrame, str]:
    lay = Layout(cfg.data_path)
    frames = []
    for pair in cfg.pairs:
        for m in cfg.adapt.methods:
            for d in days:
                part = lay.partition("results", d, f"{pair.provider}~{pair.customer}", m)
                if is_complete(part):
                    frames.append(
                        pl.read_parquet(part / "summary.parquet").with_columns(
                            pl.lit(f"{pair.provider}~{pair.customer}").alias("pair"),
                            pl.lit(m).alias("method"),
                            pl.lit(d.isoformat()).alias("day"),
                        )
                    )
    if not frames:
        return pl.DataFrame(), "no results\n"
    table = pl.concat(frames, how="diagonal_relaxed")
    macro = (
        table.filter(pl.col("class") == "macro")
        .group_by(["pair", "method", "setting"], maintain_order=True)
        .agg(
            pl.col("precision_mean").mean().alias("P"),
            pl.col("recall_mean").mean().alias("R"),
            pl.col("f1_mean").mean().alias("F1"),
            pl.col("f1_mean").std().alias("F1_std_over_days"),
            pl.col("f1_std").mean().alias("F1_std_over_folds"),
        )
    )
    paper = cfg.experiment.paper if cfg.experiment else {}
    lines = [
        "| pair | method | setting | P | R | F1 | F1 std (folds) | paper F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in macro.iter_rows(named=True):
        ref = paper.get(r["pair"], {}).get(r["setting"], "")
        lines.append(
            f"| {r['pair']} | {r['method']} | {r['setting']} | {r['P']:.2f} | {r['R']:.2f} | {r['F1']:.2f} | "
            f"{(r['F1_std_over_folds'] or 0):.2f} | {ref} |"
        )
    per = (
        table.filter(pl.col("class") != "macro")
        .group_by(["pair", "setting", "class"], maintain_order=True)
        .agg(pl.col("f1_mean").mean())
        .pivot(on="setting", index=["pair", "class"], values="f1_mean")
        .sort(["pair", "class"])
    )
    cols = [c for c in per.columns if c not in ("pair", "class")]
    lines += ["", "Per-class F1 (mean over the evaluation days):", ""]
    lines += ["| pair | class | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for r in per.iter_rows(named=True):
        cells = ["-" if r[c] is None else f"{r[c]:.2f}" for c in cols]
        lines.append(f"| {r['pair']} | {r['class']} | " + " | ".join(cells) + " |")
    return macro, "\n".join(lines) + "\n"


@flow(name="experiments", flow_run_name="experiment[{name}]")
def experiment(
    name: str,
    scale: float | None = None,
    days: int | None = None,
    config: Sequence[str] | None = None,
    overrides: dict | None = None,
    home: str = "var/experiments",
) -> dict:
    """Run a named experiment end to end and write its report; returns the report path and headline numbers."""
    from darkembed.simulate import simulate

    cfg, root = resolve_experiment(name, config, scale=scale, days=days, overrides=overrides, home=home)
    exp = cfg.experiment
    root.mkdir(parents=True, exist_ok=True)
    resolved = root / "config.yaml"
    resolved.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    summary = Path(cfg.simulate.out) / "truth" / "summary.json"
    want = {
        k: v
        for k, v in cfg.simulate.model_dump(mode="json").items()
        if k in ("seed", "days", "scale", "start")
    }
    have = json.loads(summary.read_text()).get("config", {}) if summary.is_file() else {}
    if any(str(have.get(k)) != str(v) for k, v in want.items()):
        simulate(cfg)
    start = cfg.simulate.start
    end = start + dt.timedelta(days=cfg.simulate.days - 1)
    backfill(start=start.isoformat(), end=end.isoformat(), config=[str(resolved)])
    test = [end - dt.timedelta(days=i) for i in range(min(exp.test_days, cfg.simulate.days))][::-1]
    head = [
        f"# {exp.title or exp.name}",
        "",
        f"Simulated world: {cfg.simulate.days} days from {start}, scale {cfg.simulate.scale}, seed "
        f"{cfg.simulate.seed}; evaluated on {test[0]} .. {test[-1]} ({len(test)} days). Config hash {cfg.hash()}.",
        f"Reproduce: `darkembed experiment {name} --scale {cfg.simulate.scale} --days {cfg.simulate.days}`.",
        "",
        "",
    ]
    metrics: dict[str, float] = {}
    if exp.kind == "knn":
        net = exp.network or cfg.networks[0].name
        table = knn_table(cfg, net, list(cfg.embed.methods), test)
        paper = {
            row: {"all": " / ".join(f"{k} {v}" for k, v in cols.items())} for row, cols in exp.paper.items()
        }
        body = table3_markdown(table, f"3-NN F1 on {net}", paper or None)
        for r in table.filter(pl.col("class") == "macro").iter_rows(named=True):
            metrics[f"knn.macro_f1.{r['method']}"] = r["f1_mean"]
    else:
        table, body = _transfer_tables(cfg, test)
        for r in table.iter_rows(named=True) if table.height else []:
            metrics[f"f1.{r['pair']}.{r['method']}.{r['setting']}"] = r["F1"]
    report = root / "report.md"
    report.write_text("\n".join(head) + body)
    with tracking.run(f"experiment[{name}]", config=cfg, tags=flow_tags("experiments", experiment=name)):
        tracking.log_config(cfg)
        tracking.log_metrics(metrics)
        tracking.log_artifact(report)
        if table.height:
            tracking.log_table(table, f"tables/{name}.json")
    return {"experiment": name, "report": str(report), "metrics": metrics}
