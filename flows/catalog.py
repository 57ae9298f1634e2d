"""The experiments' catalogue (conf/experiments/<name>.yaml): names and one-line titles, read without importing
Prefect or the pipeline, so that `darkembed experiment` lists them at once."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "conf" / "experiments"


def experiment_names() -> list[str]:
    """The experiments' names, sorted."""
    return sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))


def experiment_titles() -> dict[str, str]:
    """Name -> the `experiment.title` of its file (what it reproduces); empty when the file has none."""
    import yaml

    titles = {}
    for name in experiment_names():
        data = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text()) or {}
        titles[name] = str((data.get("experiment") or {}).get("title", ""))
    return titles
