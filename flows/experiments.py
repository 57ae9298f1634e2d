"""The experiments flow: the papers' experiments as named, parameterised runs (conf/experiments/<name>.yaml).

An experiment is a configuration overlay with an `experiment:` section. Its run simulates its own world under
`var/experiments/<name>/` (at the overlay's scale and length, or as given), backfills it through every stage with
the nightly flow, evaluates the test days (`knn`: [GNN] Table 3 layout; `transfer`: every [TNSM] setting of each
pair), and writes `report.md` with the paper's numbers beside ours; everything is logged to MLflow.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from prefect import flow

from darkembed import tracking
from darkembed.config import Config, load_config
from darkembed.layout import Layout
from darkembed.report.experiment import ExperimentTables, headline_metrics, render, write_tables
from darkembed.stages.knn import knn_table
from darkembed.stages.read import pair_name
from darkembed.store import is_complete, read_manifest
from flows.catalog import EXPERIMENTS, experiment_names
from flows.common import flow_tags
from flows.nightly import backfill
from flows.transfer import log_adapt
from tasks.adapt import adapt_pair


def resolve_experiment(
    name: str,
    config: Sequence[str] | None = None,
    *,
    scale: float | None = None,
    days: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    home: str | Path = "var/experiments",
) -> tuple[Config, Path]:
    """The experiment's configuration and its report directory `home/<name>/`.

    Its world and pipeline data live under `home/worlds/<world>/` when the experiment names a shared world, else
    under `home/<name>/`.
    """
    path = EXPERIMENTS / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(experiment_names())}")
    base = load_config(path, *(config or []), overrides=overrides)  # the user's files refine the experiment
    if base.experiment is None:
        raise ValueError(f"{path}: no `experiment:` section")
    root = Path(home) / name
    wroot = Path(home) / "worlds" / base.experiment.world if base.experiment.world else root
    world = wroot / "world"
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
    data["data_root"] = str(wroot / "data")
    data["simulate"].update(sim)
    return Config.model_validate(data), root


def evaluation_days(cfg: Config) -> list[dt.date]:
    """The evaluated days of the experiment (they must lie inside the simulated world)."""
    exp, sim = cfg.experiment, cfg.simulate
    first = exp.first_test_day or max(1, sim.days - exp.test_days + 1)
    last = first + exp.test_days - 1
    if last > sim.days:
        raise ValueError(
            f"experiment {exp.name} evaluates days {first}..{last} of a {sim.days}-day world; simulate more days "
            f"(--days {last}) or lower experiment.first_test_day"
        )
    return [sim.start + dt.timedelta(days=first - 1 + i) for i in range(exp.test_days)]


def experiment_networks(cfg: Config) -> list[str]:
    """The networks the experiment backfills."""
    exp = cfg.experiment
    if exp.networks:
        return list(exp.networks)
    if exp.kind == "knn":
        return [exp.network or cfg.networks[0].name]
    return list(dict.fromkeys(n for p in cfg.pairs for n in (p.provider, p.customer)))


def with_value(cfg: Config, key: str, value: Any) -> Config:
    """`cfg` with the dotted setting `key` replaced (a sweep point), validated."""
    data = cfg.model_dump(mode="json")
    node = data
    *parents, leaf = key.split(".")
    for k in parents:
        if not isinstance(node.get(k), dict):
            raise ValueError(f"sweep key {key!r}: no section {k!r}")
        node = node[k]
    if leaf not in node:
        raise ValueError(f"sweep key {key!r}: unknown setting {leaf!r}")
    node[leaf] = value
    return Config.model_validate(data)


def _collect_transfer(cfg: Config, days: list[dt.date], parts: dict[tuple, Path]) -> dict[str, pl.DataFrame]:
    """The tables of the report from the results partitions of the evaluated days."""
    frames: dict[str, list[pl.DataFrame]] = {}

    def add(name: str, frame: pl.DataFrame, key: tuple) -> None:
        pair, method, day = key
        tagged = frame.with_columns(
            pl.lit(pair).alias("pair"), pl.lit(method).alias("method"), pl.lit(day.isoformat()).alias("day")
        )
        frames.setdefault(name, []).append(tagged)

    last = max(days)
    for key, part in parts.items():
        add("transfer", pl.read_parquet(part / "summary.parquet"), key)
        if (part / "anchor_sweep.parquet").is_file():
            add("anchor_sweep", pl.read_parquet(part / "anchor_sweep.parquet"), key)
        if key[2] != last:  # clustering tables of the last evaluated day only (Tables V, VI are one day)
            continue
        if (part / "cluster_metrics.parquet").is_file():
            add("clusters", pl.read_parquet(part / "cluster_metrics.parquet"), key)
        for kn in sorted(part.glob("knowledge_*.parquet")):
            space = kn.stem.removeprefix("knowledge_")
            add("knowledge", pl.read_parquet(kn).with_columns(pl.lit(space).alias("space")), key)
        if (part / "unknown_clusters.parquet").is_file():
            add("profiles", pl.read_parquet(part / "unknown_clusters.parquet"), key)
    return {k: pl.concat(v, how="diagonal_relaxed") for k, v in frames.items()}


def _evaluate_transfer(cfg: Config, days: list[dt.date]) -> dict[tuple, Path]:
    """Every setting of each pair on each evaluated day (results already made with this configuration are kept),
    logged as nested runs of the experiment's run."""
    lay = Layout(cfg.data_path)
    parts = {}
    for d in days:
        for pair in cfg.pairs:
            for m in cfg.adapt.methods:
                part = lay.partition("results", d, pair_name(pair.provider, pair.customer), m)
                if not (
                    is_complete(part) and read_manifest(part).get("config_hash") == cfg.stage_hash("results")
                ):
                    started = time.time()
                    log_adapt(adapt_pair(cfg, pair.provider, pair.customer, d, m), started)
                parts[(pair_name(pair.provider, pair.customer), m, d)] = part
    return parts


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
    evaluated = evaluation_days(cfg)
    nets = experiment_networks(cfg)
    root.mkdir(parents=True, exist_ok=True)
    summary = Path(cfg.simulate.out) / "truth" / "summary.json"
    want = {
        k: v
        for k, v in cfg.simulate.model_dump(mode="json").items()
        if k in ("seed", "days", "scale", "start")
    }
    have = json.loads(summary.read_text()).get("config", {}) if summary.is_file() else {}
    if any(str(have.get(k)) != str(v) for k, v in want.items()):
        simulate(cfg)
    start, end = cfg.simulate.start, max(evaluated)
    points = [(None, cfg)]
    if exp.sweep:
        points = [(v, with_value(cfg, exp.sweep.key, v)) for v in exp.sweep.values]
    tables: dict[str, pl.DataFrame] = {}
    sweep_rows = []
    with tracking.run(f"experiment[{name}]", config=cfg, tags=flow_tags("experiments", experiment=name, scale=cfg.simulate.scale,
                                                              days=cfg.simulate.days)):  # fmt: skip
        tracking.log_config(cfg)
        for value, pcfg in points:
            resolved = root / ("config.yaml" if value is None else f"config-{value}.yaml")
            resolved.write_text(yaml.safe_dump(pcfg.model_dump(mode="json"), sort_keys=False))
            backfill(start=start.isoformat(), end=end.isoformat(), networks=nets, config=[str(resolved)],
                     evaluate=False)  # fmt: skip
            if exp.kind == "knn":
                net = exp.network or nets[0]
                table = knn_table(pcfg, net, list(pcfg.embed.methods), evaluated)
                if value is None:
                    tables["knn"] = table
                elif table.height:
                    sweep_rows.append(table.with_columns(pl.lit(str(value)).alias("value")))
            else:
                tables.update(_collect_transfer(pcfg, evaluated, _evaluate_transfer(pcfg, evaluated)))
        if sweep_rows:
            tables["sweep"] = pl.concat(sweep_rows, how="diagonal_relaxed")
        figures = _figures(root, tables, exp)
        if exp.kind == "transfer":
            figures.update(_day_figures(root, cfg, max(evaluated)))
        t = ExperimentTables(
            meta={
                "name": name,
                "title": exp.title or name,
                "kind": exp.kind,
                "network": exp.network or nets[0],
                "paper": exp.paper,
                "sweep": exp.sweep.model_dump(mode="json") if exp.sweep else None,
                "header": [
                    f"Simulated world: {cfg.simulate.days} days from {start}, scale {cfg.simulate.scale}, seed "
                    f"{cfg.simulate.seed}; networks {', '.join(nets)}; evaluated on {evaluated[0]} .. "
                    f"{evaluated[-1]} ({len(evaluated)} days). Config hash {cfg.hash()}.",
                    f"Reproduce: `darkembed experiment {name} --scale {cfg.simulate.scale} --days "
                    f"{cfg.simulate.days}`.",
                ],
            },
            tables=tables,
            figures={caption: str(Path(p).relative_to(root)) for caption, p in figures.items()},
        )
        report = root / "report.md"
        report.write_text(render(t))
        metrics = headline_metrics(t)
        tracking.log_metrics(metrics)
        tracking.log_artifact(report)
        for f in write_tables(t, root / "tables"):
            tracking.log_artifact(f, "tables")
        for p in figures.values():
            tracking.log_artifact(p, str(Path(p).parent.relative_to(root)))
    return {"experiment": name, "report": str(report), "metrics": metrics}


def _day_figures(root: Path, cfg: Config, day: dt.date) -> dict[str, Path]:
    """The figures of each pair's results on the last evaluated day, copied next to the report."""
    import shutil

    lay = Layout(cfg.data_path)
    out: dict[str, Path] = {}
    for pair in cfg.pairs:
        name = pair_name(pair.provider, pair.customer)
        for m in cfg.adapt.methods:
            src = lay.partition("results", day, name, m) / "figures"
            dst = root / "figures" / f"{name}-{m}"
            shutil.rmtree(dst, ignore_errors=True)
            if not src.is_dir():
                continue
            shutil.copytree(src, dst)
            for png in sorted(dst.rglob("*.png")):
                out[f"{name}, {m}, {day}: {png.relative_to(dst).with_suffix('')}"] = png
    return out


def _figures(root: Path, tables: dict[str, pl.DataFrame], exp: Any) -> dict[str, Path]:
    """The experiment's own figures (anchor curves, sweep curve) under `root/figures/`."""
    from darkembed.evaluate.protocol import sweep_curve
    from darkembed.report.figures import anchor_curve, sweep_plot

    out: dict[str, Path] = {}
    figs = root / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    if (tab := tables.get("anchor_sweep")) is not None and tab.height:
        for (pair,), g in tab.group_by("pair", maintain_order=True):
            curves = {}
            for (setting,), c in g.group_by("setting", maintain_order=True):
                cur = sweep_curve(c)
                curves[setting] = (cur["fraction"], cur["f1_mean"], cur["f1_std"])
            path = figs / f"anchors-{pair}.png"
            anchor_curve(curves, path, title=f"impact of the anchors, {pair}")
            out[f"impact of the anchors, {pair}"] = path
    if (tab := tables.get("sweep")) is not None and tab.height and exp.sweep:
        macro = tab.filter(pl.col("class") == "macro")
        path = figs / "sweep.png"
        sweep_plot(macro, exp.sweep.key, exp.sweep.paper, path)
        out[f"macro F1 against {exp.sweep.key}"] = path
    return out
