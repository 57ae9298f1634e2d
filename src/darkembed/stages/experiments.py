"""The papers' experiments as named, parameterised runs: the catalogue, each experiment's configuration and
world, and its report.

An experiment is a configuration overlay with an `experiment:` section, `conf/experiments/<name>.yaml`,
shipped inside the package (`darkembed/experiments/`, read through `importlib.resources`) so that an installed
darkembed lists and runs them too. Its run simulates its own world (`ensure_world`), backfills it through
every stage (the experiments flow), evaluates the test days (`knn`: [GNN] Table 3 layout; `transfer`: every
[TNSM] setting of each pair, `stale_results` says which pair-days to adapt) and writes `report.md` with the
paper's numbers beside ours (`evaluate_experiment`). The catalogue functions import nothing heavy:
`darkembed experiment` lists at once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import yaml

from darkembed.config import Config, PairConfig, load_config

if TYPE_CHECKING:
    import polars as pl

#: The package folder holding the experiments' overlays (a link to conf/experiments in a checkout).
PACKAGE_FOLDER = "experiments"


def _folder():
    return resources.files("darkembed").joinpath(PACKAGE_FOLDER)


def experiment_names() -> list[str]:
    """The experiments' names, sorted."""
    return sorted(f.name.removesuffix(".yaml") for f in _folder().iterdir() if f.name.endswith(".yaml"))


def experiment_titles() -> dict[str, str]:
    """Name -> the `experiment.title` of its file (what it reproduces); empty when the file has none."""
    titles = {}
    for name in experiment_names():
        data = yaml.safe_load(_folder().joinpath(f"{name}.yaml").read_text()) or {}
        titles[name] = str((data.get("experiment") or {}).get("title", ""))
    return titles


@contextmanager
def experiment_file(name: str) -> Iterator[Path]:
    """The overlay of the experiment `name` as a file on disk, for the duration of the block.

    Raises:
        ValueError: there is no such experiment (the message lists the known ones).
    """
    if name not in experiment_names():
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(experiment_names())}")
    with resources.as_file(_folder().joinpath(f"{name}.yaml")) as path:
        yield path


class ExperimentResult(TypedDict):
    """What the experiments flow returns: the name, the report's path and its headline numbers."""

    experiment: str
    report: str
    metrics: dict[str, float]


class ExperimentReport(ExperimentResult):
    """`evaluate_experiment`'s result: the flow's result plus the files it logs (tables, figure captions ->
    figures), all under the report's directory."""

    tables: list[str]
    figures: dict[str, str]


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

    Raises:
        ValueError: an unknown experiment, or an overlay without an `experiment:` section.
    """
    with experiment_file(name) as path:
        # the user's files refine the experiment
        base = load_config(path, *(config or []), overrides=overrides)
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


def evaluation_days(config: Config) -> list[dt.date]:
    """The evaluated days of the experiment (they must lie inside the simulated world).

    Raises:
        ValueError: the evaluated days run past the world's last day.
    """
    exp, sim = config.experiment, config.simulate
    first = exp.first_test_day or max(1, sim.days - exp.test_days + 1)
    last = first + exp.test_days - 1
    if last > sim.days:
        raise ValueError(
            f"experiment {exp.name} evaluates days {first}..{last} of a {sim.days}-day world; simulate more days "
            f"(--days {last}) or lower experiment.first_test_day"
        )
    return [sim.start + dt.timedelta(days=first - 1 + i) for i in range(exp.test_days)]


def experiment_networks(config: Config) -> list[str]:
    """The networks the experiment backfills."""
    exp = config.experiment
    if exp.networks:
        return list(exp.networks)
    if exp.kind == "knn":
        return [exp.network or config.networks[0].name]
    return list(dict.fromkeys(n for p in config.pairs for n in (p.provider, p.customer)))


def with_value(config: Config, key: str, value: Any) -> Config:
    """`config` with the dotted setting `key` replaced (a sweep point), validated.

    Raises:
        ValueError: `key` names no section or no setting.
    """
    data = config.model_dump(mode="json")
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


def sweep_points(config: Config) -> list[tuple[Any, Config]]:
    """The configurations the experiment runs: (value, configuration) per value of its sweep, or (None, the
    experiment's configuration) without a sweep."""
    sweep = config.experiment.sweep
    if not sweep:
        return [(None, config)]
    return [(v, with_value(config, sweep.key, v)) for v in sweep.values]


def ensure_world(config: Config) -> bool:
    """Simulate the experiment's world unless the one in `simulate.out` was made with the same seed, length,
    scale and start; returns whether it was simulated."""
    from darkembed.simulate import simulate

    summary = Path(config.simulate.out) / "truth" / "summary.json"
    want = {
        k: v
        for k, v in config.simulate.model_dump(mode="json").items()
        if k in ("seed", "days", "scale", "start")
    }
    have = json.loads(summary.read_text()).get("config", {}) if summary.is_file() else {}
    if all(str(have.get(k)) == str(v) for k, v in want.items()):
        return False
    simulate(config)
    return True


def write_point_config(root: Path, value: Any, config: Config) -> Path:
    """The resolved configuration of a sweep point (`value`; None: the experiment's own) beside the report."""
    path = root / ("config.yaml" if value is None else f"config-{value}.yaml")
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def _results_parts(config: Config, days: list[dt.date]) -> list[tuple[PairConfig, str, dt.date, Path]]:
    """The `results` partition of each evaluated day, pair and adapted method, in that order."""
    from darkembed.layout import Layout
    from darkembed.stages.read import pair_name

    lay = Layout(config.data_path)
    return [
        (p, m, d, lay.partition("results", d, pair_name(p.provider, p.customer), m))
        for d in days
        for p in config.pairs
        for m in config.adapt.methods
    ]


def stale_results(config: Config, days: list[dt.date]) -> list[tuple[PairConfig, str, dt.date]]:
    """The (pair, method, day) of the evaluated days whose results are not complete and made with this
    configuration (`Config.stage_hash`; their inputs are not checked): the pair-days the experiment adapts."""
    from darkembed.store import is_complete, read_manifest

    return [
        (p, m, d)
        for p, m, d, part in _results_parts(config, days)
        if not (is_complete(part) and read_manifest(part).get("config_hash") == config.stage_hash("results"))
    ]


def point_tables(config: Config, value: Any, days: list[dt.date]) -> dict[str, pl.DataFrame]:
    """The report tables of one configuration of the experiment (a sweep point `value`, or None), read once
    its days are built and evaluated: the kNN scores (`knn`, or the `sweep` rows of the value), or the tables
    of the pairs' results (`transfer` and the others of `_collect_transfer`)."""
    import polars as pl

    from darkembed.stages.knn import knn_table

    exp = config.experiment
    if exp.kind == "transfer":
        return _collect_transfer(days, _results_parts(config, days))
    net = exp.network or experiment_networks(config)[0]
    table = knn_table(config, net, list(config.embed.methods), days)
    if value is None:
        return {"knn": table}
    return {"sweep": table.with_columns(pl.lit(str(value)).alias("value"))} if table.height else {}


def _collect_transfer(
    days: list[dt.date], parts: list[tuple[PairConfig, str, dt.date, Path]]
) -> dict[str, pl.DataFrame]:
    """The tables of the report from the results partitions of the evaluated days (`_results_parts`)."""
    import polars as pl

    from darkembed.stages.read import pair_name

    frames: dict[str, list[pl.DataFrame]] = {}

    def add(name: str, frame: pl.DataFrame, key: tuple) -> None:
        pair, method, day = key
        tagged = frame.with_columns(
            pl.lit(pair).alias("pair"), pl.lit(method).alias("method"), pl.lit(day.isoformat()).alias("day")
        )
        frames.setdefault(name, []).append(tagged)

    last = max(days)
    for pair, method, day, part in parts:
        key = (pair_name(pair.provider, pair.customer), method, day)
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


def evaluate_experiment(
    name: str, config: Config, root: Path, points: list[dict[str, pl.DataFrame]], days: list[dt.date]
) -> ExperimentReport:
    """The experiment's report from the tables of its configurations (`point_tables`, in sweep order): its own
    figures, the figures of each pair's last evaluated day, `root/report.md`, and the tables as Parquet with
    `meta.json` under `root/tables/` (what `darkembed report` reads back from MLflow)."""
    import polars as pl

    from darkembed.report.experiment import ExperimentTables, headline_metrics, render, write_tables

    exp = config.experiment
    nets = experiment_networks(config)
    tables: dict[str, pl.DataFrame] = {}
    sweep_rows = []
    for point in points:
        for key, table in point.items():
            if key == "sweep":
                sweep_rows.append(table)
            else:
                tables[key] = table
    if sweep_rows:
        tables["sweep"] = pl.concat(sweep_rows, how="diagonal_relaxed")
    figures = _figures(root, tables, exp)
    if exp.kind == "transfer":
        figures.update(_day_figures(root, config, max(days)))
    sim = config.simulate
    t = ExperimentTables(
        meta={
            "name": name,
            "title": exp.title or name,
            "kind": exp.kind,
            "network": exp.network or nets[0],
            "paper": exp.paper,
            "sweep": exp.sweep.model_dump(mode="json") if exp.sweep else None,
            "header": [
                f"Simulated world: {sim.days} days from {sim.start}, scale {sim.scale}, seed {sim.seed}; "
                f"networks {', '.join(nets)}; evaluated on {days[0]} .. {days[-1]} ({len(days)} days). "
                f"Config hash {config.hash()}.",
                f"Reproduce: `darkembed experiment {name} --scale {sim.scale} --days {sim.days}`.",
            ],
        },
        tables=tables,
        figures={caption: str(Path(p).relative_to(root)) for caption, p in figures.items()},
    )
    report = root / "report.md"
    report.write_text(render(t))
    return ExperimentReport(
        experiment=name,
        report=str(report),
        metrics=headline_metrics(t),
        tables=[str(f) for f in write_tables(t, root / "tables")],
        figures={caption: str(p) for caption, p in figures.items()},
    )


def _day_figures(root: Path, config: Config, day: dt.date) -> dict[str, Path]:
    """The figures of each pair's results on the last evaluated day, copied next to the report."""
    import shutil

    from darkembed.layout import Layout
    from darkembed.stages.read import pair_name

    lay = Layout(config.data_path)
    out: dict[str, Path] = {}
    for pair in config.pairs:
        name = pair_name(pair.provider, pair.customer)
        for m in config.adapt.methods:
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
    import polars as pl

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
