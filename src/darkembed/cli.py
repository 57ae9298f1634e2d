"""The `darkembed` command line.

Commands that run a pipeline stage over configured networks go through the Prefect flows (imported lazily, so
the library itself stays Prefect-free); commands on explicit files call the library directly.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from darkembed.config import Config, ConfigError, load_config

app = typer.Typer(
    help="darkembed: host embeddings, labels and cross-network transfer for darknet and honeypot traffic.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

ConfigOpt = Annotated[
    list[Path] | None,
    typer.Option("--config", "-c", help="YAML file(s) overlaid on the embedded default, in order."),
]


class _State:
    config_paths: list[Path] = []  # noqa: RUF012
    verbose: bool = False


_T0 = time.monotonic()


class _Context(logging.Filter):
    """Adds to each record the time since the command started and, inside a Prefect task, the task run's name
    (which carries the partition: `adapt[darknet-a~darknet-b/2023-01-01]`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        seconds = int(time.monotonic() - _T0)
        record.elapsed = f"{seconds // 60:3d}:{seconds % 60:02d}"
        record.where = ""
        context = sys.modules.get("prefect.context")
        if context is not None:
            task_run = getattr(context.TaskRunContext.get(), "task_run", None)
            if task_run is not None:
                record.where = f"{task_run.name}: "
        return True


class _QuietPrefect(logging.Filter):
    """Keeps Prefect's own records (task and flow states, "Finished in state Completed()", the tracebacks of a
    failed task) off the console without -v: the command prints one line for a failure. Prefect's API handler still
    receives them, so the Prefect UI shows every run's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("prefect") or record.levelno >= logging.CRITICAL


#: Library loggers whose per-epoch and per-fit lines show only with -v; stage summaries and warnings always show.
_CHATTY = ("darkembed.adapt", "darkembed.evaluate", "darkembed.cluster", "darkembed.embed", "darkembed.report",
           "darkembed.ingest")  # fmt: skip
#: ... except these: per-fold progress of the evaluation.
_PROGRESS = ("darkembed.evaluate.protocol",)


def _setup_logging(verbose: bool) -> None:
    """Log lines with the time since the command started; rich on a terminal, plain lines in a pipe or a cron
    log. MLflow's and third-party libraries' INFO lines only with -v."""
    if console.is_terminal:
        handler: logging.Handler = RichHandler(
            console=console, show_path=False, show_time=False, rich_tracebacks=False, markup=False
        )
        fmt = "%(elapsed)s  %(where)s%(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(levelname)-7s %(elapsed)s  %(where)s%(message)s"
    handler.addFilter(_Context())
    if not verbose:
        handler.addFilter(_QuietPrefect())
    handler.setFormatter(logging.Formatter(fmt))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    # MLflow configures its own loggers when first imported: its level comes from the environment
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    for noisy in (
        "numba",
        "urllib3",
        "alembic",
        "httpx",
        "mlflow",
        "git",
        "gensim",
        "distributed",
        "openTSNE",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        for chatty in _CHATTY:
            logging.getLogger(chatty).setLevel(logging.WARNING)
        for name in _PROGRESS:
            logging.getLogger(name).setLevel(logging.INFO)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error (no traceback) and return the exit to raise."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def get_config() -> Config:
    try:
        return load_config(*_State.config_paths)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@app.callback()
def main(
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    _State.config_paths = list(config or [])
    _State.verbose = verbose
    _setup_logging(verbose)


@app.command("config")
def show_config() -> None:
    """Print the resolved configuration (default overlaid with --config files) and its hash."""
    import yaml

    cfg = get_config()
    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    console.print(f"config hash: {cfg.hash()}")


def prefect_env(cfg: Config, verbose: bool = False) -> None:
    """Prefect's settings for the local run, applied to the environment before Prefect is first imported (Prefect
    reads its settings once, at import): state under ./var/prefect when no server is configured, a start-up
    timeout of the ephemeral server that a busy machine does not exceed (`orchestration.server_startup_timeout`),
    and the local server's log lines (its SQLite "database is locked" retries, which Prefect's maintainers call
    noise) only with -v (`_QuietPrefect` keeps the client's off the console). Settings the environment already has
    win: they are the machine's."""
    if "prefect" in sys.modules:  # too late to take effect: a programming error in the command
        logging.getLogger(__name__).warning("Prefect was imported before its settings were applied")
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str(Path("var/prefect").resolve()))
        Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    timeout = str(cfg.orchestration.server_startup_timeout)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", timeout)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING" if verbose else "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def parse_day_opt(day: str | None, what: str = "--day") -> None:
    """Refuse a malformed day before anything starts (the flows parse it again)."""
    from darkembed.layout import parse_day

    if day is not None:
        try:
            parse_day(day)
        except ValueError as exc:
            raise fail(f"{what}: {exc}") from None


def check_networks(cfg: Config, names: list[str] | None) -> None:
    """Refuse unknown network names before anything starts."""
    try:
        for n in names or []:
            cfg.network(n)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@app.command("ingest")
def ingest(
    files: Annotated[list[Path] | None, typer.Argument(help="Capture or trace files (with --out).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Directory for part-<file>.parquet.")
    ] = None,
    network: Annotated[
        list[str] | None, typer.Option("--network", "-n", help="Configured network(s).")
    ] = None,
    day: Annotated[
        str | None, typer.Option("--day", "-d", help="YYYY-MM-DD (default: yesterday UTC).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Parallel parsers (0 = one per core).")] = 0,
) -> None:
    """Ingest captures into Parquet.

    Either `darkembed ingest FILES... --out DIR` (files as given), or `darkembed ingest --network NET --day D`
    (the network's configured inputs of that day into the data root, through the ingest flow, logged to MLflow).
    """
    if files:
        if out is None:
            raise fail("files given without --out DIR: say where the Parquet files go")
        _ingest_files(files, out, workers)
        return
    if out is not None:
        raise fail("--out needs FILES; for configured networks use --network/--day")
    cfg = get_config()
    parse_day_opt(day)
    check_networks(cfg, network)
    results = _run_flow("flows.ingest", "ingest_flow", day=day, networks=network)
    _print_reports([r for res in results for r in res["reports"]])


def _ingest_files(files: list[Path], out: Path, workers: int) -> None:
    import json

    from rich.progress import Progress

    from darkembed.ingest import CaptureError, ingest_many

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise fail(f"no such file: {', '.join(missing)}")
    with Progress(console=console, transient=True) as bar:
        job = bar.add_task("ingest", total=len(files))
        try:
            results = ingest_many(files, out, workers=workers, progress=lambda _r: bar.advance(job))
        except CaptureError as exc:
            raise fail(str(exc)) from None
    reports = [r.as_row() | {"bad": r.bad} for _, r in results]
    (out / "ingest_report.json").write_text(json.dumps(reports, indent=2))
    _print_reports(reports)


def _print_reports(reports: list[dict]) -> None:
    from rich.table import Table

    t = Table(title="ingest report")
    for col in ("file", "format", "records", "kept", "skipped", "seconds", "error"):
        t.add_column(col, overflow="fold")
    for r in reports:
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(r["skipped"].items())) or "-"
        t.add_row(
            Path(r["file"]).name,
            r["format"],
            str(r["records"]),
            str(r["kept"]),
            skipped,
            f"{r['seconds']:.2f}",
            r["error"] or "",
        )
    Console().print(t)


@app.command("simulate")
def simulate_cmd(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder \\[simulate.out].")] = None,
    days: Annotated[
        int | None, typer.Option("--days", min=1, help="Number of days \\[simulate.days].")
    ] = None,
    scale: Annotated[
        float | None,
        typer.Option(
            "--scale",
            min=0.0001,
            help="Hosts multiplier; 1.0 = ~2 M packets per darknet-day \\[simulate.scale].",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed \\[simulate.seed].")] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First day, YYYY-MM-DD \\[simulate.start].")
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option("--check", help="Validate the world in this folder instead of generating one."),
    ] = None,
) -> None:
    """Generate a simulated world of darknets and a honeypot (captures, Cowrie logs, scanner lists, answer key),
    or validate one with --check (exits 1 when targets are badly missed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from darkembed.layout import parse_day
    from darkembed.simulate import simulate
    from darkembed.simulate.check import check_world

    if check is not None:
        if not (check / "truth" / "summary.json").is_file():
            raise fail(
                f"{check}: not a simulated world (no truth/summary.json); generate one with darkembed simulate"
            )
        with console.status(f"checking {check} ..."):
            rep = check_world(check)
        out_console = Console()
        t = Table(title=f"{check}: per class and network, mean per day (measured / target)")
        for col in ("network", "class", "hosts (>=5 pkts)", "ports", "packets", "status"):
            t.add_column(col, justify="left" if col in ("network", "class", "status") else "right")
        for r in rep.rows:
            style = {"FAIL": "bold red", "warn": "yellow", "ok": "green"}.get(r["status"], "dim")
            t.add_row(
                r["network"],
                r["class"],
                f"{r['hosts']:.0f} / {r['hosts_target']:.0f}",
                f"{r['ports']:.0f} / {r['ports_target']:.0f}",
                f"{r['packets']:.0f} / {r['packets_target']:.0f}",
                f"[{style}]{r['status']}[/]",
            )
        out_console.print(t)
        a = Table(title="anchors: share of a darknet's active hosts seen by the other")
        for col in ("pair", "day", "anchors", "share (>=5 pkts)", "share (all)", "target"):
            a.add_column(col)
        for r in rep.anchors:
            a.add_row(
                r["pair"],
                r["day"],
                str(r["anchors"]),
                f"{r['share_active']:.3f}",
                f"{r['share_all']:.3f}",
                f"{r['target']:.2f}",
            )
        out_console.print(a)
        f = Table(title="fingerprints: hosts found in the captures / hosts using the tool (answer key)")
        for col in ("network", "fingerprint", "found", "expected", "matched"):
            f.add_column(col)
        for r in rep.fingerprints:
            f.add_row(r["network"], r["fingerprint"], str(r["found"]), str(r["expected"]), str(r["matched"]))
        out_console.print(f)
        fr = Table(title="frames")
        for col in ("network", "files", "ip_packets", "non_ip", "bad"):
            fr.add_column(col, justify="right")
        for r in rep.frames:
            fr.add_row(*(str(r[c]) for c in ("network", "files", "ip_packets", "non_ip", "bad")))
        out_console.print(fr)
        if rep.cowrie:
            c = Table(title="Cowrie: host-days with login attempts")
            for col in ("network", "class", "host_days", "over_10_logins"):
                c.add_column(col)
            for r in rep.cowrie:
                c.add_row(r["network"], r["class"], str(r["host_days"]), str(r["over_10_logins"]))
            out_console.print(c)
        rt = Table(title="realism: the darknets beside real darknet traffic (mean per darknet-day)")
        for col in ("statistic", "measured", "real", "source", "status"):
            rt.add_column(col, justify="right" if col == "measured" else "left")
        for r in rep.realism:
            style = {"FAIL": "bold red", "warn": "yellow", "ok": "green"}.get(r["status"], "dim")
            rt.add_row(
                r["statistic"], f"{r['measured']:.3g}", r["target"], r["source"], f"[{style}]{r['status']}[/]"
            )
        out_console.print(rt)
        bt = Table(title="port baseline per darknet-day (labelled hosts vote / every host votes)")
        for col in (
            "network",
            "day",
            "hosts",
            "labelled",
            "classes",
            "ports",
            "macro F1",
            "F1 with unknowns",
        ):
            bt.add_column(col)
        for r in rep.baseline:
            bt.add_row(
                *(str(r[c]) for c in ("network", "day", "hosts", "labelled", "classes", "ports")),
                f"{r['f1']:.3f}",
                f"{r['f1_all']:.3f}",
            )
        out_console.print(bt)
        for w in rep.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        for p in rep.problems:
            console.print(f"[bold red]problem:[/] {p}")
        if not rep.ok:
            raise typer.Exit(1)
        console.print("[green]world OK[/]")
        return

    cfg = get_config()
    try:
        day0 = parse_day(start) if start else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("simulating", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        try:
            res = simulate(cfg, out=out, days=days, scale=scale, seed=seed, start=day0, progress=progress)
        except ValueError as exc:
            raise fail(str(exc)) from None
    total = sum(res.packets.values())
    console.print(
        f"wrote {res.out}: {total:,} packets in {res.total_seconds:.1f} s "
        f"({total / max(res.total_seconds, 1e-9):,.0f} packets/s); check it with darkembed simulate --check {res.out}"
    )


def _day(day: str | None):
    """The day a command runs: as given (already checked), or yesterday UTC (the flows' default)."""
    from flows.common import resolve_day

    return resolve_day(day)


def _days(start, end) -> list:
    import datetime as dt

    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _run_flow(module: str, flow_name: str, /, **kwargs):
    """Import the flow `module.flow_name` with Prefect configured first (`prefect_env`), run it with `kwargs` (any
    parameter name, `name` included: the two above are positional-only), and turn a failure into one clear error
    line. SIGTERM, SIGHUP (the terminal closed) and Ctrl-C stop the run: its MLflow runs end FAILED, Prefect's
    local server is stopped with it, and the command exits at once without waiting for task threads."""
    import importlib
    import signal

    cfg = get_config()
    prefect_env(cfg, _State.verbose)
    fn = getattr(importlib.import_module(module), flow_name)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, on_term) for s in (signal.SIGTERM, signal.SIGHUP)}
    where = os.environ.get("PREFECT_API_URL") or "Prefect's local server (starts in 10 s to a minute)"
    logging.getLogger(__name__).info("%s: starting on %s", flow_name, where)
    try:
        return fn(**kwargs, config=[str(p) for p in _State.config_paths])
    except KeyboardInterrupt as exc:
        code = 128 + int(str(exc).split()[-1]) if str(exc).startswith("signal") else 130
        console.print(f"[bold red]interrupted[/] ({exc or 'Ctrl-C'}): stopping")
        _exit_now(code)
    except Exception as exc:
        raise fail(_flow_error(exc, cfg), 1) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _exit_now(code: int) -> None:
    """Run the exit handlers (they stop Prefect's local server and end the active MLflow runs), then exit without
    joining task threads, which may be in the middle of minutes of work."""
    import atexit

    # Libraries torn down mid-work log their shutdown (SQLAlchemy resetting pooled connections of a closed event
    # loop, asyncio's pending tasks, handlers of closed streams): noise after a deliberate stop, not news.
    logging.disable(logging.CRITICAL)
    logging.raiseExceptions = False
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _flow_error(exc: Exception, cfg: Config) -> str:
    text = str(exc)
    if "Timed out while attempting to connect to ephemeral Prefect API server" in text:
        return (
            f"Prefect's local server did not start within {os.environ.get('PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS')}"
            " s; raise orchestration.server_startup_timeout, or run a Prefect server and set PREFECT_API_URL"
        )
    hint = "" if _State.verbose else " (darkembed -v ... shows Prefect's log and the traceback)"
    return f"{type(exc).__name__}: {text}{hint}"


@app.command("nightly")
def nightly_cmd(
    day: Annotated[
        str | None, typer.Option("--day", "-d", help="YYYY-MM-DD (default: yesterday UTC).")
    ] = None,
    network: Annotated[
        list[str] | None, typer.Option("--network", "-n", help="Configured network(s).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Rebuild the features and embeddings even when they are current.")
    ] = False,
) -> None:
    """Run every stage for one day on the configured networks (what the nightly deployment runs)."""
    cfg = get_config()
    parse_day_opt(day)
    check_networks(cfg, network)
    results = _run_flow("flows.nightly", "nightly", day=day, networks=network, force=force)
    console.print(f"nightly: {len(results)} stage results; browse them with: darkembed ui")


@app.command("backfill")
def backfill_cmd(
    start: Annotated[str, typer.Argument(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Argument(help="Last day, YYYY-MM-DD (inclusive).")],
    network: Annotated[
        list[str] | None, typer.Option("--network", "-n", help="Configured network(s).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Recompute days that are already complete.")] = False,
) -> None:
    """Run the pipeline on each day of a range, in order; resumes after the last complete day."""
    cfg = get_config()
    parse_day_opt(start, "START")
    parse_day_opt(end, "END")
    check_networks(cfg, network)
    days = _days(_day(start), _day(end))
    if not days:
        raise fail(f"END {end} is before START {start}")
    ran = _run_flow("flows.nightly", "backfill", start=start, end=end, networks=network, force=force)
    console.print(f"backfill: ran {len(ran)} day(s): {', '.join(ran) or 'none (all complete)'}")


@app.command("demo")
def demo_cmd(
    fresh: Annotated[bool, typer.Option(help="Regenerate the world and recompute every day.")] = False,
) -> None:
    """The main job on the embedded default: simulate a small world, backfill it through every stage, summarise."""
    import datetime as dt
    import json

    from darkembed.simulate import simulate

    cfg = get_config()
    sim = cfg.simulate
    summary = Path(sim.out) / "truth" / "summary.json"
    if (
        fresh
        or not summary.is_file()
        or json.loads(summary.read_text()).get("config", {}).get("seed") != sim.seed
    ):
        with console.status(f"simulating {sim.days} days at scale {sim.scale} into {sim.out} ..."):
            res = simulate(cfg)
        console.print(f"world: {sum(res.packets.values()):,} packets written to {res.out}")
    else:
        console.print(f"world: reusing {sim.out} (darkembed demo --fresh regenerates it)")
    start = sim.start
    end = start + dt.timedelta(days=sim.days - 1)
    with console.status(
        f"backfill {start} .. {end}: ingest, labels, corpus, graph, embeddings, evaluation ..."
    ):
        ran = _run_flow(
            "flows.nightly", "backfill", start=start.isoformat(), end=end.isoformat(), force=fresh
        )
    console.print(f"backfill: ran {len(ran)} day(s)")
    import shutil

    from darkembed.report.summary import demo_summary

    out = Console(
        width=shutil.get_terminal_size((160, 40)).columns
    )  # piped output: wide enough for the tables
    for table in demo_summary(cfg, end):
        out.print(table)
    console.print("browse runs, metrics and figures: [bold]darkembed ui[/] (MLflow at http://127.0.0.1:5000)")


@app.command("transfer")
def transfer_cmd(
    provider: Annotated[str, typer.Option("--provider", "-p", help="The network with labels.")],
    customer: Annotated[str, typer.Option("--customer", "-c", help="The network without labels.")],
    day: Annotated[
        str | None, typer.Option("--day", "-d", help="YYYY-MM-DD (default: yesterday UTC).")
    ] = None,
    method: Annotated[str, typer.Option("--method", "-m", help="Embedding method.")] = "idarkvec",
) -> None:
    """Transfer a provider's knowledge to a customer on one day: every setting, clustering, bundles, summary."""
    cfg = get_config()
    parse_day_opt(day)
    check_networks(cfg, [provider, customer])
    if method not in cfg.embed.methods:
        raise fail(f"--method {method!r} is not an embedding method of this configuration: "
                   f"{', '.join(cfg.embed.methods)} (embed.methods)")  # fmt: skip
    res = _run_flow(
        "flows.transfer", "transfer_flow", provider=provider, customer=customer, day=day, method=method
    )
    sys.stdout.write(Path(res["summary_md"]).read_text())
    console.print(f"results: {res['partition']}")


@app.command("experiment")
def experiment_cmd(
    name: Annotated[str | None, typer.Argument(help="Experiment (conf/experiments/NAME.yaml).")] = None,
    scale: Annotated[float | None, typer.Option(help="World scale (default: the experiment's).")] = None,
    days: Annotated[int | None, typer.Option(help="Days to simulate (default: the experiment's).")] = None,
    home: Annotated[Path, typer.Option(help="Where experiments keep their worlds, data and reports.")] = Path(
        "var/experiments"
    ),
) -> None:
    """Run one of the papers' experiments end to end and print its report (without NAME: list them)."""
    from darkembed.stages.experiments import experiment_names, experiment_titles

    if not name:
        titles = experiment_titles()
        width = max(map(len, titles))
        sys.stdout.write("".join(f"{n:<{width}}  {t}\n" for n, t in titles.items()))
        return
    if name not in experiment_names():
        raise fail(f"unknown experiment {name!r}; known: {', '.join(experiment_names())}")
    res = _run_flow("flows.experiments", "experiment", name=name, scale=scale, days=days, home=str(home))
    sys.stdout.write(Path(res["report"]).read_text())
    console.print(f"report: {res['report']}")


@app.command("report")
def report_cmd(
    names: Annotated[
        list[str] | None, typer.Argument(help="Experiments (default: every one with a finished run).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Markdown file; its figures go to figures/NAME/ beside it (without --out: text only).",
        ),
    ] = None,
    scale: Annotated[
        float | None, typer.Option(help="Only runs of a world at this scale (default: the latest run).")
    ] = None,
) -> None:
    """Render the experiments' reports from their latest finished MLflow runs (tables beside the papers')."""
    import tempfile

    from darkembed.report.experiment import from_mlflow, render
    from darkembed.stages.experiments import experiment_names, resolve_experiment

    wanted = list(names or experiment_names())
    unknown = [n for n in wanted if n not in experiment_names()]
    if unknown:
        raise fail(f"unknown experiment(s) {unknown}; known: {', '.join(experiment_names())}")
    cfg = get_config()
    with tempfile.TemporaryDirectory() as tmp:
        base = out.parent if out else Path(tmp)
        parts = []
        for name in wanted:
            # the tracking store of the experiment's own configuration (the user's files refine it)
            exp_cfg, _ = resolve_experiment(name, [str(p) for p in _State.config_paths])
            t = from_mlflow(exp_cfg.tracking, name, base, scale)
            if t is None:
                if names:
                    raise fail(f"experiment {name!r} has no finished run in {cfg.tracking.uri}; run: "
                               f"darkembed experiment {name}")  # fmt: skip
                continue
            parts.append(render(t))
        if not parts:
            raise fail(f"no finished experiment run in {cfg.tracking.uri}; run: darkembed experiment NAME")
        text = "\n\n".join(parts)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
            console.print(f"report: {out} ({len(parts)} experiment(s))")
        else:
            sys.stdout.write(text)


evaluate_app = typer.Typer(help="Evaluations over what the pipeline wrote.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


@evaluate_app.command("knn")
def evaluate_knn_cmd(
    network: Annotated[
        str | None, typer.Option("--network", "-n", help="Network (default: the first).")
    ] = None,
    method: Annotated[
        list[str] | None, typer.Option("--method", "-m", help="Methods (default: configured).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day (default: first with embeddings).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (default: last with embeddings).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the table as markdown here.")] = None,
) -> None:
    """Leave-one-out 3-NN F1 per class and method, mean ± std over days (the \\[GNN] Table 3 layout)."""
    from darkembed.evaluate.knn_report import table3_markdown
    from darkembed.layout import Layout, parse_day
    from darkembed.stages.knn import knn_table

    cfg = get_config()
    parse_day_opt(start, "--start")
    parse_day_opt(end, "--end")
    try:
        net = cfg.network(network).name if network else cfg.networks[0].name
    except (ConfigError, IndexError) as exc:
        raise fail(str(exc) or "no network configured") from None
    methods = list(method or cfg.embed.methods)
    lay = Layout(cfg.data_path)
    days = sorted({d for m in methods for d in lay.days("embeddings", net, m)})
    if start:
        days = [d for d in days if d >= parse_day(start)]
    if end:
        days = [d for d in days if d <= parse_day(end)]
    if not days:
        raise fail(
            f"no embeddings of {methods} on {net} in the data root {cfg.data_root}: run the pipeline first"
        )
    table = knn_table(cfg, net, methods, days)
    text = table3_markdown(table, f"3-NN F1 on {net}, {days[0]} .. {days[-1]} ({len(days)} days)")
    sys.stdout.write(text)
    if out:
        out.write_text(text)


@app.command("deploy")
def deploy_cmd(
    prefect_file: Annotated[Path, typer.Option(help="The deployments file.")] = Path("infra/prefect.yaml"),
) -> None:
    """Register the work pools (cpu, gpu), the GPU concurrency limit and the deployments on a Prefect server."""
    prefect_env(get_config(), _State.verbose)
    from flows.deploy import deploy_all, ensure_pools

    config = _State.config_paths[-1] if _State.config_paths else None
    if len(_State.config_paths) > 1:
        raise fail("deploy takes one --config file (the deployments pass it to every flow run)")
    try:
        if not __import__("os").environ.get("PREFECT_API_URL"):
            deploy_all(prefect_file, config)  # raises the explanation
        created = ensure_pools()
        deploy_all(prefect_file, config)
    except Exception as exc:
        raise fail(str(exc)) from None
    console.print(
        f"work pools ready (created: {', '.join(created) or 'none'}); deployments registered from {prefect_file}.\n"
        "start workers: prefect worker start --pool cpu   (and --pool gpu on GPU machines)"
    )


@app.command("ui")
def ui_cmd(
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Start the MLflow UI on the configured local store (and say how to open the Prefect UI)."""
    import subprocess

    from darkembed import tracking

    cfg = get_config()
    art = Path(cfg.tracking.artifacts).resolve()
    exp_id = tracking.setup(cfg.tracking)
    console.print(
        f"MLflow UI on http://{host}:{port} (store {cfg.tracking.uri}); Ctrl-C stops it.\n"
        f"The runs: [bold]{runs_url(host, port, exp_id)}[/] (the experiment {cfg.tracking.experiment!r} in the "
        "Model training view; the UI's own start page is its GenAI view).\n"
        "Prefect UI: run `PREFECT_HOME=var/prefect prefect server start` in another terminal, then open "
        "http://127.0.0.1:4200",
        highlight=False,
    )
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        cfg.tracking.uri,
        "--default-artifact-root",
        art.as_uri(),
        "--host",
        host,
        "--port",
        str(port),
    ]
    raise typer.Exit(subprocess.call(cmd))


@app.command("keygen")
def keygen_cmd(
    out: Annotated[
        Path, typer.Argument(help="Private key file to create (PEM, mode 0600); OUT.pub beside it.")
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
) -> None:
    """Create the Ed25519 key pair a provider signs exchange bundles with; prints the public key for customers."""
    from darkembed.adapt.exchange import BundleError, generate_signing_key

    try:
        text = generate_signing_key(out, overwrite=force)
    except (FileExistsError, OSError, BundleError) as exc:
        raise fail(str(exc)) from None
    sys.stdout.write(text + "\n")
    console.print(
        f"private key {out} (keep it secret: set exchange.signing_key or $DARKEMBED_SIGNING_KEY to it); public key "
        f"{out}.pub: customers add it to exchange.trusted_keys"
    )


def runs_url(host: str, port: int, experiment_id: str) -> str:
    """The MLflow UI's page of the experiment's runs, in the Model training view (MLflow 3 opens in its GenAI view,
    which shows traces, not runs; this query parameter selects the view)."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


psi_app = typer.Typer(
    help="Private anchor discovery as a file exchange (docs/private-anchors.md): init -> respond -> finish -> "
    "complete, each step reading the previous message and writing the next.",
    no_args_is_help=True,
)
app.add_typer(psi_app, name="psi")
_KEY = Annotated[
    Path, typer.Option("--key", "-k", help="The shared secret agreed out of band (>= 16 bytes).")
]
_STATE = Annotated[
    Path, typer.Option("--state", "-s", help="This party's private state file (never send it).")
]
_IPS = Annotated[
    Path,
    typer.Option("--ips", help="This party's addresses: text (one dotted IPv4 a line) or Parquet (src_ip)."),
]


def _psi_call(fn, *args):
    from darkembed.adapt.psi import ExchangeError

    try:
        return fn(*args)
    except (ExchangeError, OSError, ValueError) as exc:
        raise fail(str(exc), 1) from None


def _psi_result(path: Path, anchors) -> None:
    from darkembed.adapt.psi import write_anchors

    write_anchors(path, anchors)
    console.print(f"{anchors.size} anchors (position in the agreed intersection -> own address): {path}")


@psi_app.command("init")
def psi_init_cmd(
    ips: _IPS, key: _KEY, state: _STATE,
    out: Annotated[Path, typer.Option("--out", "-o", help="Message 1, for the other party.")],
    mode: Annotated[str, typer.Option(help="psi (private set intersection) or hmac (keyed hashing).")] = "psi",
) -> None:  # fmt: skip
    """Initiator: write message 1 from this party's addresses."""
    from darkembed.adapt import psi

    msg, st = _psi_call(lambda: psi.init(psi.read_ips(ips), psi.read_key(key), mode))
    st.save(state)
    out.write_bytes(msg)
    console.print(f"message 1 ({mode}, session {st.session.hex()}): {out}; state: {state}")


@psi_app.command("respond")
def psi_respond_cmd(
    ips: _IPS, key: _KEY, state: _STATE,
    message: Annotated[Path, typer.Option("--in", "-i", help="Message 1 from the initiator.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Message 2, for the initiator.")],
    result: Annotated[Path | None, typer.Option(help="hmac mode: this party's anchors (Parquet).")] = None,
) -> None:  # fmt: skip
    """Responder: read message 1, write message 2 (and, in hmac mode, this party's anchors)."""
    from darkembed.adapt import psi

    data = message.read_bytes()
    _psi_call(psi.refuse_answered, data, state, psi.read_key(key), str(message))
    msg, st, anchors = _psi_call(
        lambda: psi.respond(data, psi.read_ips(ips), psi.read_key(key), str(message))
    )
    st.save(state)
    out.write_bytes(msg)
    console.print(f"message 2 (session {st.session.hex()}): {out}; state: {state}")
    if anchors is not None:
        _psi_result(result or state.with_suffix(".anchors.parquet"), anchors)


@psi_app.command("finish")
def psi_finish_cmd(
    key: _KEY, state: _STATE,
    message: Annotated[Path, typer.Option("--in", "-i", help="Message 2 from the responder.")],
    result: Annotated[Path, typer.Option(help="This party's anchors (Parquet).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="psi mode: message 3, for the responder.")] = None,
) -> None:  # fmt: skip
    """Initiator: read message 2, write this party's anchors (and, in psi mode, message 3)."""
    from darkembed.adapt import psi

    st = _psi_call(lambda: psi.State.from_bytes(state.read_bytes(), str(state)))
    msg, anchors = _psi_call(psi.finish, message.read_bytes(), st, psi.read_key(key), str(message))
    if msg is not None and out is None:
        raise fail("psi mode: --out is needed for message 3 (the responder needs it)")
    st.save(state)
    if msg is not None:
        out.write_bytes(msg)
        console.print(f"message 3: {out}")
    _psi_result(result, anchors)


@psi_app.command("complete")
def psi_complete_cmd(
    key: _KEY, state: _STATE,
    message: Annotated[Path, typer.Option("--in", "-i", help="Message 3 from the initiator.")],
    result: Annotated[Path, typer.Option(help="This party's anchors (Parquet).")],
) -> None:  # fmt: skip
    """Responder (psi mode): read message 3, write this party's anchors."""
    from darkembed.adapt import psi

    st = _psi_call(lambda: psi.State.from_bytes(state.read_bytes(), str(state)))
    anchors = _psi_call(psi.complete, message.read_bytes(), st, psi.read_key(key), str(message))
    st.save(state)
    _psi_result(result, anchors)


def run() -> None:  # pragma: no cover - console entry point used by `python -m darkembed`
    app()
