import json
import multiprocessing as mp

import pyarrow as pa
import pytest

from darkembed.layout import Layout
from darkembed.store import (
    MANIFEST,
    PartitionBusyError,
    PartitionMissingError,
    is_complete,
    partition_files,
    read_manifest,
    write_partition,
)


def _table(n):
    return pa.table({"x": pa.array(range(n), pa.int64())})


def test_partition_is_written_with_manifest_and_replaced_whole(tmp_path):
    lay = Layout(tmp_path)
    part = lay.packets("net", "2023-01-01")
    with write_partition(part, dataset="packets", config_hash="abc") as w:
        w.write_table("part-a.parquet", _table(3))
        w.write_table("part-b.parquet", _table(2))
    m = read_manifest(part)
    assert m["rows"] == 5 and m["files"] == {"part-a.parquet": 3, "part-b.parquet": 2}
    assert lay.days("packets", "net") == [__import__("datetime").date(2023, 1, 1)]
    with write_partition(part, dataset="packets") as w:
        w.write_table("part-c.parquet", _table(1))
    assert [p.name for p in partition_files(part)] == ["part-c.parquet"]
    assert sorted(p.name for p in part.parent.iterdir() if not p.name.endswith(".lock")) == [part.name]


def test_failure_keeps_the_previous_version(tmp_path):
    part = Layout(tmp_path).packets("net", "2023-01-01")
    with write_partition(part, dataset="packets") as w:
        w.write_table("part-a.parquet", _table(3))
    with pytest.raises(RuntimeError), write_partition(part, dataset="packets") as w:
        w.write_table("part-new.parquet", _table(9))
        raise RuntimeError("boom")
    assert read_manifest(part)["rows"] == 3
    assert [p.name for p in partition_files(part)] == ["part-a.parquet"]
    assert not list(part.parent.glob(".*tmp-*"))


def test_partition_without_manifest_does_not_exist(tmp_path):
    part = Layout(tmp_path).packets("net", "2023-01-01")
    part.mkdir(parents=True)
    (part / "part-a.parquet").write_bytes(b"junk")
    assert not is_complete(part)
    with pytest.raises(PartitionMissingError, match="run its stage first"):
        read_manifest(part)
    assert Layout(tmp_path).days("packets", "net") == []


def _hold(path, started, release):
    with write_partition(path, dataset="packets") as w:
        w.write_table("part-a.parquet", _table(1))
        started.set()
        release.wait(20)


def test_second_writer_of_the_same_partition_is_refused(tmp_path):
    part = Layout(tmp_path).packets("net", "2023-01-01")
    ctx = mp.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(part, started, release))
    p.start()
    try:
        assert started.wait(20)
        with pytest.raises(PartitionBusyError, match="another run"), write_partition(part, dataset="packets"):
            pass
    finally:
        release.set()
        p.join(20)
    assert read_manifest(part)["rows"] == 1


def test_killed_writer_leaves_no_visible_partition(tmp_path):
    part = Layout(tmp_path).packets("net", "2023-01-01")
    ctx = mp.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(part, started, release))
    p.start()
    assert started.wait(20)
    p.kill()
    p.join(20)
    assert not is_complete(part) and not part.exists()
    with write_partition(part, dataset="packets") as w:  # the next writer cleans the debris
        w.write_table("part-a.parquet", _table(2))
    assert json.loads((part / MANIFEST).read_text())["rows"] == 2
    assert not list(part.parent.glob(".*tmp-*"))
