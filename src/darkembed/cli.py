"""The `darkembed` command line.

Commands that run a pipeline stage over configured networks go through the Prefect flows (imported lazily, so
the library itself stays Prefect-free); commands on explicit files call the library directly.
"""

from __future__ import annotations

import logging
import sys
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


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in ("numba", "urllib3", "alembic", "httpx", "mlflow", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error (no traceback) and return the exit to raise."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
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


def run() -> None:  # pragma: no cover - console entry point used by `python -m darkembed`
    app()
