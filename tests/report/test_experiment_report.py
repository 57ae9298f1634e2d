"""The experiment report: tables in the papers' layouts, paper numbers beside ours, round trip through files."""

import polars as pl
import pytest

from darkembed.report.experiment import ExperimentTables, headline_metrics, read_tables, render, write_tables


def _transfer():
    rows = []
    for day, f1 in (("2023-02-01", 0.9), ("2023-02-02", 0.7)):
        for setting, cos in (("transfer", float("nan")), ("align/linear", 0.5)):
            for cls in ("macro", "mirai"):
                rows.append({"setting": setting, "class": cls, "precision_mean": f1, "recall_mean": f1,
                             "f1_mean": f1 if setting == "transfer" else f1 / 2, "f1_std": 0.1,
                             "anchor_cosine": cos, "anchor_p10": cos / 2, "classifier_seconds": 2.0 if day.endswith("1") else 4.0,
                             "aligner_seconds": 0.0 if setting == "transfer" else 10.0,
                             "pair": "a~b", "method": "idarkvec", "day": day})  # fmt: skip
    return pl.DataFrame(rows)


def _anchor_sweep():
    rows = []
    for setting, base in (("transfer", 0.5), ("align/nonlinear", 0.2)):
        for fraction, reps in ((0.1, 2), (1.0, 1)):
            for r in range(reps):
                for fold in range(5):
                    rows.append({"fraction": fraction, "repeat": r, "fold": fold, "anchors": int(100 * fraction),
                                 "macro_precision": 0.0, "macro_recall": 0.0,
                                 "macro_f1": base + fraction / 2 + 0.01 * r, "aligner_seconds": 0.1,
                                 "setting": setting, "pair": "a~b", "method": "idarkvec", "day": "2023-02-01"})  # fmt: skip
    return pl.DataFrame(rows)


def test_transfer_report_averages_days_and_prints_the_paper_beside(tmp_path):
    t = ExperimentTables(
        meta={"name": "x", "title": "Table X", "kind": "transfer", "header": ["world: tiny"],
              "paper": {"a~b": {"transfer": "0.92"}}},
        tables={"transfer": _transfer(), "anchor_sweep": _anchor_sweep()},
        figures={"curve": "figures/curve.png"},
    )  # fmt: skip
    text = render(t)
    assert text.startswith("# Table X\n\nworld: tiny\n")
    # mean over the two days 0.9 / 0.7, std over days of the F1, paper column, anchor cosine only for aligners,
    # seconds per fold averaged over the days (the aligner's only for aligners)
    assert "| a~b | idarkvec | transfer | 0.80 | 0.80 | 0.80 | 0.10 | 0.14 | 0.92 | - | - | 3.0 | - |" in text
    assert (
        "| a~b | idarkvec | align/linear | 0.80 | 0.80 | 0.40 | 0.10 | 0.07 |  | 0.50 | 0.25 | 3.0 | 10.0 |"
        in text
    )
    # the anchor curve: one heading, then per pair the fractions with mean ± std over repeats x folds
    assert text.count("## Impact of the anchors") == 1 and "### a~b" in text
    assert "| 10 % | 0.56 ± 0.01 (10) | 0.26 ± 0.01 (10) |" in text
    assert "| 100 % | 1.00 ± 0.00 (100) | 0.70 ± 0.00 (100) |" in text
    assert "![curve](figures/curve.png)" in text
    assert headline_metrics(t)["f1.a~b.idarkvec.transfer"] == pytest.approx(0.8)
    # written as Parquet + JSON and read back, the same report
    write_tables(t, tmp_path / "tables")
    assert render(read_tables(tmp_path / "tables")) == text


def test_sweep_report_lists_each_value_with_the_paper():
    knn = pl.DataFrame({"method": ["igcngru"] * 2, "class": ["macro"] * 2, "f1_mean": [0.7, 0.8],
                        "f1_std": [0.01, 0.02], "support": [10, 10], "value": ["0", "5"]})  # fmt: skip
    t = ExperimentTables(meta={"name": "s", "kind": "knn", "sweep": {"key": "gnn.history", "paper": {"5": "0.796"}}},
                         tables={"sweep": knn})  # fmt: skip
    text = render(t)
    assert "## Sweep of `gnn.history`" in text
    assert "| igcngru | 0 | 0.70 ± 0.01 |  |" in text and "| igcngru | 5 | 0.80 ± 0.02 | 0.796 |" in text
    assert headline_metrics(t) == {"sweep.igcngru.0": 0.7, "sweep.igcngru.5": 0.8}


def test_sweep_report_orders_numeric_values_as_numbers():
    knn = pl.DataFrame({"method": ["igcngru"] * 3, "class": ["macro"] * 3, "f1_mean": [0.7, 0.9, 0.8],
                        "f1_std": [0.0] * 3, "support": [10] * 3, "value": ["10", "5", "1"]})  # fmt: skip
    text = render(ExperimentTables(meta={"name": "s", "kind": "knn", "sweep": {"key": "gnn.incremental_epochs"}},
                                   tables={"sweep": knn}))  # fmt: skip
    rows = [line.split(" | ")[1] for line in text.splitlines() if line.startswith("| igcngru |")]
    assert rows == ["1", "5", "10"]
