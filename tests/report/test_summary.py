"""The demo's closing tables: every setting named in a legend, one number per cell, and where each pair's summary
and figures are."""

import datetime as dt

import polars as pl
from rich.console import Console

from darkembed.config import load_config
from darkembed.layout import Layout
from darkembed.report.summary import SETTING_LEGEND, demo_summary
from darkembed.store import write_partition

DAY = dt.date(2023, 1, 1)


def test_the_transfer_table_has_a_legend_one_value_per_cell_and_the_paths(tracking_env):
    cfg = load_config(overrides={"pairs": [{"provider": "darknet-a", "customer": "darknet-b"}]})
    part = Layout(cfg.data_path).partition("results", DAY, "darknet-a~darknet-b", "idarkvec")
    settings = ["no_adaptation", "transfer", "align/linear", "independent"]
    with write_partition(part, dataset="results") as w:
        pl.DataFrame(
            {"setting": settings, "class": ["macro"] * 4, "f1_mean": [0.1, 0.9, 0.5, 0.8]}
        ).write_parquet(w.tmp / "summary.parquet")
        for space, hosts in (("reference", [30, 70]), ("transfer", [60, 40]), ("align", [45, 55])):
            pl.DataFrame({"source": ["mirai", "unexplained"], "hosts": hosts}).write_parquet(
                w.tmp / f"knowledge_{space}.parquet"
            )
    text, narrow = (_render(cfg, width) for width in (300, 80))
    for s in settings:
        assert f"{s}: {SETTING_LEGEND[s]}" in text
    # the table itself fits a plain 80-column terminal with every name and value whole
    table = [
        [c.strip() for c in line.split("│")[1:-1]] for line in narrow.splitlines() if line.startswith("│")
    ]
    header = [
        [c.strip() for c in line.split("┃")[1:-1]] for line in narrow.splitlines() if line.startswith("┃")
    ]
    assert ["setting", "darknet-a -> darknet-b"] in header
    cells = {row[0]: row[1] for row in table if len(row) == 2}
    assert [cells[s] for s in settings] == ["0.10", "0.90", "0.50", "0.80"]
    assert [cells[f"explained ({sp})"] for sp in ("reference", "transfer", "align")] == [
        "30/100 (30%)", "60/100 (60%)", "45/100 (45%)"
    ]  # fmt: skip
    assert f"{part / 'summary.md'}" in text and f"{part / 'figures'}/" in text


def _render(cfg, width: int) -> str:
    console = Console(width=width, record=True)
    for r in demo_summary(cfg, DAY):
        console.print(r)
    return console.export_text()
