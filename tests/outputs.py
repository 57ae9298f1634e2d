"""Content digests of a data root's partitions, to show that a change of code leaves the outputs as they were.

    python -m tests.outputs snapshot ROOT OUT.json          # every data file's content digest
    python -m tests.outputs compare BEFORE.json AFTER.json   # exit 1 and list the differences
    python -m tests.outputs compare ROOT_A ROOT_B            # the same on two data roots, floats to 1e-9
    python -m tests.outputs golden ROOT OUT.json             # the machine-independent part (`golden`)

A Parquet file is digested by its schema and its column values (not its bytes: the writer's metadata would differ
with nothing else changed); JSON manifests by their stable fields (not the timestamps, the absolute paths or the
code version); figures are left out (matplotlib embeds dates); every other file by its bytes. Digests round floats
to 10 significant digits, which a sum's last-bit jitter (the order polars adds a group's terms in is not fixed)
can still cross now and then; comparing two data roots instead compares floats with a relative tolerance of 1e-9.
`golden` keeps what does not depend on the machine's floating-point arithmetic in training and evaluation, for a
golden file that the test suite checks on any machine (tests/flows/test_nightly.py).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq

#: Manifest fields that say how a partition was made, not what it holds.
_VOLATILE = {"created_at", "code", "inputs", "partition"}
#: Stages whose tables contain no float computed by training or evaluation (exact on any machine).
EXACT_STAGES = ("packets", "labels", "corpus", "graph")


def _value(v):
    """A float to 10 significant digits (a sum's last bits depend on the order of its terms), else as is."""
    return float(f"{v:.10g}") if isinstance(v, float) else v


def _table_digest_stable(t: pa.Table) -> str:
    """Digest of the values (buffer layout independent), leaving out timings (columns named `*seconds*`, rows
    whose `metric` is `seconds`)."""
    h = hashlib.sha256(str(t.schema.remove_metadata()).encode())
    data = {c: v for c, v in t.to_pydict().items() if "seconds" not in c}
    if "metric" in data:
        keep = [i for i, m in enumerate(data["metric"]) if m != "seconds"]
        data = {c: [v[i] for i in keep] for c, v in data.items()}
    data = {c: [_value(x) for x in v] for c, v in data.items()}
    h.update(json.dumps(data, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _markdown_digest(text: str) -> str:
    """Digest of a markdown file without its timing columns (table headers starting `s/`)."""
    out, drop = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = line.split("|")
            if any(c.strip().startswith("s/") for c in cells):
                drop = [i for i, c in enumerate(cells) if c.strip().startswith("s/")]
            line = "|".join(c for i, c in enumerate(cells) if i not in drop)
        else:
            drop = []
        out.append(line)
    return hashlib.sha256("\n".join(out).encode()).hexdigest()


def _stable(v):
    """A manifest value without timings (`seconds` keys) and absolute paths (`continues`), at any depth."""
    if isinstance(v, dict):
        return {k: _stable(x) for k, x in v.items() if k not in ("seconds", "continues")}
    if isinstance(v, list):
        return [_stable(x) for x in v]
    return v


def _manifest_digest(path: Path) -> str:
    m = json.loads(path.read_text())
    keep = _stable({k: v for k, v in m.items() if k not in _VOLATILE})
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()


def _files(root: Path):
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel.startswith((".tmp", "keys/")) or "/." in f"/{rel}" or p.suffix == ".png":
            continue
        yield rel, p


def snapshot(root: Path) -> dict[str, str]:
    """Every data file under `root` (relative path) with the digest of its content."""
    out = {}
    for rel, p in _files(root):
        if p.suffix == ".parquet":
            out[rel] = _table_digest_stable(pq.read_table(p))
        elif p.name == "_manifest.json":
            out[rel] = _manifest_digest(p)
        elif p.suffix == ".md":
            out[rel] = _markdown_digest(p.read_text())
        elif p.suffix in (".json", ".pem", ".pub", ".sig"):
            continue  # bundle manifests carry signatures and times; their tensors are compared below
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def golden(root: Path) -> dict[str, dict]:
    """The machine-independent part of a data root, for a golden file: the exact stages' tables (non-float columns
    by digest, float columns by their sum, compared with a tolerance), and the row count, columns and host list of
    every embeddings table and of every pair's predictions."""
    out: dict[str, dict] = {}
    for rel, p in _files(root):
        stage = rel.split("/", 1)[0]
        if p.suffix != ".parquet" or not (
            stage in EXACT_STAGES or stage == "embeddings" or p.name == "predictions.parquet"
        ):
            continue
        t = pq.read_table(p)
        floats = [c for c in t.column_names if pa.types.is_floating(t.schema.field(c).type)]
        if stage in EXACT_STAGES:
            exact = t.drop_columns(floats)
            out[rel] = {
                "digest": _table_digest_stable(exact),
                "float_sums": {c: float(pa.compute.sum(t.column(c)).as_py() or 0.0) for c in floats},
            }
        else:
            hosts = t.column("src_ip").to_pylist() if "src_ip" in t.column_names else []
            key = [t.num_rows, t.column_names, sorted(hosts)]
            out[rel] = {"digest": hashlib.sha256(json.dumps(key).encode()).hexdigest()}
    return out


def check_golden(root: Path, expected: dict[str, dict], rtol: float = 1e-9) -> list[str]:
    """The differences between a data root and a golden file made by `golden`, one line each."""
    import math

    got = golden(root)
    lines = [f"missing: {k}" for k in sorted(expected.keys() - got.keys())]
    lines += [f"unexpected: {k}" for k in sorted(got.keys() - expected.keys())]
    for k in sorted(expected.keys() & got.keys()):
        e, g = expected[k], got[k]
        if e["digest"] != g["digest"]:
            lines.append(f"differs: {k}")
        for c, v in e.get("float_sums", {}).items():
            w = g.get("float_sums", {}).get(c)
            if w is None or not math.isclose(v, w, rel_tol=rtol, abs_tol=1e-9):
                lines.append(f"differs: {k} column {c} (sum {w} instead of {v})")
    return lines


def compare(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The differences, one line each (empty when the two snapshots are equal)."""
    lines = [f"missing after: {k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"new after: {k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"differs: {k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return lines


def _tables_equal(a: pa.Table, b: pa.Table) -> bool:
    import numpy as np

    if a.schema.remove_metadata() != b.schema.remove_metadata() or a.num_rows != b.num_rows:
        return False
    for col in a.column_names:
        if "seconds" in col:
            continue
        x, y = a.column(col), b.column(col)
        if pa.types.is_floating(x.type):
            if not np.allclose(x.to_numpy(), y.to_numpy(), rtol=1e-9, atol=0, equal_nan=True):
                return False
        elif col == "value" and "metric" in a.column_names:  # long-format metrics: timings left out
            keep = [m != "seconds" for m in a.column("metric").to_pylist()]
            xs = np.array([v for v, k in zip(x.to_pylist(), keep, strict=True) if k], dtype=float)
            ys = np.array([v for v, k in zip(y.to_pylist(), keep, strict=True) if k], dtype=float)
            if not np.allclose(xs, ys, rtol=1e-9, atol=0, equal_nan=True):
                return False
        elif not x.equals(y):
            return False
    return True


def compare_roots(a: Path, b: Path) -> list[str]:
    """The differences between two data roots (floats compared to a relative 1e-9), one line each."""
    sa, sb = snapshot(a), snapshot(b)
    lines = [f"missing after: {k}" for k in sorted(sa.keys() - sb.keys())]
    lines += [f"new after: {k}" for k in sorted(sb.keys() - sa.keys())]
    for k in sorted(sa.keys() & sb.keys()):
        if sa[k] == sb[k]:
            continue
        if k.endswith(".parquet") and _tables_equal(pq.read_table(a / k), pq.read_table(b / k)):
            continue
        lines.append(f"differs: {k}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "snapshot":
        snap = snapshot(Path(argv[1]))
        Path(argv[2]).write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
        print(f"{len(snap)} files digested -> {argv[2]}")
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        if Path(argv[1]).is_dir():
            diff = compare_roots(Path(argv[1]), Path(argv[2]))
            n = len(snapshot(Path(argv[1])))
        else:
            a, b = (json.loads(Path(x).read_text()) for x in argv[1:])
            diff, n = compare(a, b), len(a)
        print("\n".join(diff) if diff else f"equal: {n} files")
        return 1 if diff else 0
    if len(argv) == 3 and argv[0] == "golden":
        Path(argv[2]).write_text(json.dumps(golden(Path(argv[1])), indent=1, sort_keys=True) + "\n")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
