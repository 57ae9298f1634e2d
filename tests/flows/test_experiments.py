"""Named experiments: resolved into their own world and data root, run end to end, reported beside the paper."""

import mlflow
import pytest

from flows.experiments import experiment, experiment_names, resolve_experiment


def test_every_experiment_resolves_into_its_own_directory(tmp_path):
    assert {"gnn-table3", "tnsm-table3", "tnsm-table4", "tnsm-robustness"} <= set(experiment_names())
    for name in experiment_names():
        cfg, root = resolve_experiment(name, home=tmp_path)
        assert root == tmp_path / name
        assert cfg.experiment.name == name
        assert cfg.data_root == str(root / "data")
        assert all(p.startswith(str(root / "world")) for n in cfg.networks for p in n.captures)
        assert cfg.labels.scanner_lists[0].path.startswith(str(root / "world"))
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        resolve_experiment("nope", home=tmp_path)


def test_transfer_experiment_runs_and_reports_every_setting(tracking_env):
    small = {"adapt": {"epochs": 3, "width": 64}, "evaluate": {"dnn_epochs": 5}, "simulate": {"min_hosts": 6}}
    res = experiment("tnsm-table4", scale=0.01, days=2, overrides=small, home=str(tracking_env / "exp"))
    report = (tracking_env / "exp" / "tnsm-table4" / "report.md").read_text()
    assert report.startswith("# [TNSM] Table IV")
    for setting in ("no_adaptation", "transfer", "align/linear", "align/nonlinear", "independent"):
        assert f"| honeypot~darknet-b | idarkvec | {setting} |" in report
    assert "honeypot~darknet-b.idarkvec.transfer" in " ".join(res["metrics"])
    runs = mlflow.search_runs(experiment_names=["darkembed"], output_format="list")
    assert any(r.data.tags.get("experiment") == "tnsm-table4" for r in runs)
