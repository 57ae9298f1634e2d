"""The layering of docs/design.md: the library and the stage layer import no Prefect, tasks hold no logic, and
`darkembed.adapt` does not depend on `darkembed.evaluate`."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import darkembed

ROOT = Path(__file__).resolve().parents[1]


def _library_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(darkembed.__path__, "darkembed.")]
    return [n for n in names if n not in ("darkembed.cli", "darkembed.__main__")]


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_library_and_stage_layer_import_no_prefect():
    modules = _library_modules()
    assert "darkembed.stages.adapt" in modules and "darkembed.stages.ingest" in modules
    loaded = _imported_after(modules)
    assert not {m for m in loaded if m == "prefect" or m.startswith("prefect.")}


def test_adaptation_does_not_import_evaluation():
    adapt = [m for m in _library_modules() if m.startswith("darkembed.adapt")]
    assert not {m for m in _imported_after(adapt) if m.startswith("darkembed.evaluate")}


def test_each_task_is_one_stage_entry_point():
    """Every task module only wraps functions of `darkembed.stages` (no function bodies of its own but the retry
    rule), and each task runs a stage entry point."""
    import importlib

    from prefect import Task

    for path in sorted((ROOT / "tasks").glob("*.py")):
        tree = ast.parse(path.read_text())
        defs = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        assert defs == (["io_errors_only"] if path.stem == "common" else []), path
        mod = importlib.import_module(f"tasks.{path.stem}")
        for name, obj in vars(mod).items():
            if isinstance(obj, Task):
                assert obj.fn.__module__.startswith("darkembed.stages."), (path, name)
