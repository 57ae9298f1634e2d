"""The command line as a user meets it: help texts, the experiment list, and bad input refused in one line before
anything starts (no Prefect server, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from darkembed import cli

ROOT = Path(__file__).resolve().parents[1]


def _invoke(*args: str):
    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})


def test_help_keeps_the_bracketed_hints():
    out = _invoke("simulate", "--help").output
    for key in (
        "[simulate.out]",
        "[simulate.days]",
        "[simulate.scale]",
        "[simulate.seed]",
        "[simulate.start]",
    ):
        assert key in out
    assert "[GNN] Table 3 layout" in _invoke("evaluate", "knn", "--help").output


def test_the_experiment_list_names_each_with_its_title_without_importing_prefect():
    code = (
        "import sys; from typer.testing import CliRunner; from darkembed.cli import app; "
        "r = CliRunner().invoke(app, ['experiment']); sys.stdout.write(r.output); "
        "print('prefect' in sys.modules, 'polars' in sys.modules, 'mlflow' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    lines = out.stdout.splitlines()
    assert lines[-1] == "False False False"  # nothing heavy on this path
    listed = dict(line.split(None, 1) for line in lines[:-1])
    assert listed["tnsm-table2"].startswith("[TNSM] Table II")
    assert listed["gnn-table3"].startswith("[GNN] Table 3")
    assert len(listed) == len(list((ROOT / "conf" / "experiments").glob("*.yaml")))


BAD_FILES = {
    "latin1.yaml": ("seed: 3 # caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
    "placeholder.yaml": (b"networks:\n  - name: x\n    captures: ['/d/{day.__class__}/*']\n", "placeholder"),
    "duplicate.yaml": (b"ingest:\n  workers: 2\n  workers: 3\n", "duplicate key 'workers'"),
    "empty.yaml": (b"networks: []\npairs: []\n", "networks: empty"),
    "prefix.yaml": (b"networks:\n  - name: x\n    prefix: 999.1.1.1/33\n", "not an IPv4 prefix"),
    "method.yaml": (b"adapt:\n  methods: ['../x']\n", "unknown embedding method"),
    "bomb.yaml": (
        ("a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))).encode(),
        "alias bomb",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_config_file_is_one_line_naming_it(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    data, match = BAD_FILES[name]
    (tmp_path / name).write_bytes(data)
    r = _invoke("-c", name, "nightly", "--day", "2023-01-01")
    assert r.exit_code == 2, r.output
    assert match in r.output and name in r.output
    assert not (tmp_path / "var" / "prefect").exists()  # refused before Prefect was set up


BAD_ARGS = [
    (["nightly", "--day", "notadate"], "--day: not a day: 'notadate'"),
    (["nightly", "--day", "2023-01-01", "-n", "nowhere"], "unknown network 'nowhere'"),
    (["ingest", "--network", "nowhere", "--day", "2023-01-01"], "unknown network 'nowhere'"),
    (["ingest", "--network", "darknet-a", "--day", "2023-13-01"], "not a day"),
    (["backfill", "2023-01-05", "2023-01-01"], "END 2023-01-01 is before START 2023-01-05"),
    (["backfill", "yesterday", "2023-01-01"], "START: not a day"),
    (["transfer", "-p", "darknet-a", "-c", "nowhere", "-d", "2023-01-01"], "unknown network 'nowhere'"),
    (["transfer", "-p", "darknet-a", "-c", "darknet-b", "-d", "2023-01-01", "-m", "../../etc"],
     "--method '../../etc' is not an embedding method"),
    (["experiment", "no-such-thing"], "unknown experiment 'no-such-thing'"),
    (["evaluate", "knn", "--start", "2023-02-30"], "--start: not a day"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "match"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_arguments_are_refused_before_anything_starts(tmp_path, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    r = _invoke(*args)
    assert r.exit_code == 2, r.output
    assert match in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "var" / "prefect").exists()


def test_the_real_command_prints_one_line_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{ROOT}"
    darkembed = Path(sys.executable).parent / "darkembed"
    out = subprocess.run([str(darkembed), "nightly", "--day", "notadate"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: --day: not a day: 'notadate' (expected YYYY-MM-DD)"]


def test_experiment_passes_its_name_and_options_to_the_flow(tmp_path, monkeypatch):
    """`darkembed experiment NAME` reaches the experiments flow with its name (a flow parameter called `name` once
    collided with the runner's own argument) and prints the report the flow wrote."""
    import flows.experiments

    monkeypatch.chdir(tmp_path)
    report = tmp_path / "report.md"
    report.write_text("# the report\n")
    seen = {}

    def experiment(**kwargs):
        seen.update(kwargs)
        return {"report": str(report)}

    monkeypatch.setattr(flows.experiments, "experiment", experiment)
    r = _invoke("experiment", "tnsm-table3", "--scale", "1.0", "--days", "34", "--home", "exp")
    assert r.exit_code == 0, r.output
    assert seen == {"name": "tnsm-table3", "scale": 1.0, "days": 34, "home": "exp", "config": []}
    assert "# the report\n" in r.output
