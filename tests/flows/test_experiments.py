"""Named experiments: resolved into their own world and data root, run end to end, reported beside the paper."""

import datetime as dt
import re
from pathlib import Path

import mlflow
import pytest

from darkembed.stages.experiments import (
    evaluation_days,
    experiment_names,
    experiment_networks,
    resolve_experiment,
    with_value,
)
from flows.experiments import experiment


def test_every_experiment_resolves_into_its_own_directory(tmp_path):
    names = set(experiment_names())
    assert {"gnn-table3", "gnn-history", "gnn-epochs", "tnsm-table2", "tnsm-table3", "tnsm-table4",
            "tnsm-anchors", "tnsm-robustness", "gnn-table3-parity", "gnn-history-parity"} <= names  # fmt: skip
    for name in names:
        cfg, root = resolve_experiment(name, home=tmp_path)
        assert root == tmp_path / name
        assert cfg.experiment.name == name
        home = tmp_path / "worlds" / cfg.experiment.world if cfg.experiment.world else root
        assert cfg.data_root == str(home / "data")
        assert all(p.startswith(str(home / "world")) for n in cfg.networks for p in n.captures)
        assert cfg.labels.scanner_lists[0].path.startswith(str(home / "world"))
        days = evaluation_days(cfg)  # inside the world
        assert days[-1] <= cfg.simulate.start + dt.timedelta(days=cfg.simulate.days - 1)
        assert set(experiment_networks(cfg)) <= {n.name for n in cfg.networks}
    # the [TNSM] tables share one world, and their evaluation-independent partitions
    t2, _ = resolve_experiment("tnsm-table2", home=tmp_path)
    t3, _ = resolve_experiment("tnsm-table3", home=tmp_path)
    assert t2.data_root == t3.data_root
    assert t2.stage_hash("embeddings", "darknet-b", "idarkvec") == t3.stage_hash(
        "embeddings", "darknet-b", "idarkvec"
    )
    assert t2.stage_hash("results") != t3.stage_hash("results")  # customer with 1 day vs its whole history
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        resolve_experiment("nope", home=tmp_path)
    with pytest.raises(ValueError, match=r"evaluates days 32\.\.32 of a 20-day world"):
        evaluation_days(resolve_experiment("tnsm-table3", days=20, home=tmp_path)[0])


def test_a_sweep_point_replaces_one_setting_and_refuses_unknown_ones(tmp_path):
    cfg, _ = resolve_experiment("gnn-history", home=tmp_path)
    assert with_value(cfg, "gnn.history", 3).gnn.history == 3
    assert with_value(cfg, "gnn.history", 3).stage_hash("graph", "darknet-a") == cfg.stage_hash(
        "graph", "darknet-a"
    )
    with pytest.raises(ValueError, match="unknown setting 'histroy'"):
        with_value(cfg, "gnn.histroy", 3)
    with pytest.raises(ValueError, match="no section 'gnnn'"):
        with_value(cfg, "gnnn.history", 3)


def test_transfer_experiment_runs_and_reports_every_setting(tracking_env):
    small = {
        "adapt": {"epochs": 3, "min_steps": 0, "width": 64},
        "evaluate": {"dnn_epochs": 5},
        "simulate": {"min_hosts": 6},
        "experiment": {"first_test_day": 2},
    }
    res = experiment("tnsm-table4", scale=0.01, days=2, overrides=small, home=str(tracking_env / "exp"))
    report = (tracking_env / "exp" / "tnsm-table4" / "report.md").read_text()
    assert report.startswith("# [TNSM] Tables IV, V, VI")
    for setting in ("no_adaptation", "transfer", "align/linear", "align/nonlinear", "independent"):
        assert f"| honeypot~darknet-b | idarkvec | {setting} |" in report
    assert "honeypot~darknet-b.idarkvec.transfer" in " ".join(res["metrics"])
    # Tables V and VI, and the analyst's list, from the last evaluated day
    assert "## Clustering of the customer's hosts" in report and "| homogeneity (no unknown) |" in report
    assert "Knowledge gain: hosts / clusters explained" in report
    tables = tracking_env / "exp" / "tnsm-table4" / "tables"
    assert {"transfer", "clusters", "knowledge", "profiles"} <= {p.stem for p in tables.glob("*.parquet")}
    runs = mlflow.search_runs(experiment_names=["darkembed"], output_format="list")
    assert any(r.data.tags.get("experiment") == "tnsm-table4" for r in runs)


def test_report_renders_the_experiment_from_its_mlflow_run(tracking_env, tmp_path):
    from typer.testing import CliRunner

    from darkembed.cli import app

    small = {"adapt": {"epochs": 3, "min_steps": 0, "width": 64, "aligners": ["procrustes"]}, "evaluate": {"dnn_epochs": 5},
             "simulate": {"min_hosts": 6}, "experiment": {"first_test_day": 2}}  # fmt: skip
    res = experiment("tnsm-table3", scale=0.01, days=2, overrides=small, home=str(tracking_env / "exp"))
    local = Path(res["report"]).read_text()
    out = tmp_path / "docs" / "results.md"
    r = CliRunner().invoke(app, ["report", "tnsm-table3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    # the same tables as the run's own report, rebuilt from the logged Parquet tables
    macro = [line for line in local.splitlines() if line.startswith("| darknet-a~darknet-b | idarkvec |")]
    assert macro and all(line in text for line in macro)
    assert "MLflow run" in text
    figs = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert figs and all((out.parent / f).is_file() for f in figs)
    r = CliRunner().invoke(app, ["report", "tnsm-table3", "--scale", "0.5"])  # runs are picked by world scale
    assert r.exit_code != 0 and "has no finished run" in r.output
    r = CliRunner().invoke(app, ["report", "tnsm-table3", "--scale", "0.01"])
    assert r.exit_code == 0 and "| darknet-a~darknet-b | idarkvec | transfer |" in r.output
    r = CliRunner().invoke(app, ["report", "gnn-table3"])
    assert r.exit_code != 0 and "has no finished run" in r.output
