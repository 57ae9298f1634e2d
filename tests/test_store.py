import contextlib
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
    release_scratch,
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


@contextlib.contextmanager
def _held_by_another_process(part):
    """A forked process writing `part` (holding its lock) until the block ends."""
    ctx = mp.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(part, started, release))
    p.start()
    try:
        assert started.wait(20)
        yield
    finally:
        release.set()
        p.join(20)


def test_second_writer_of_the_same_partition_is_refused(tmp_path):
    part = Layout(tmp_path).packets("net", "2023-01-01")
    with (
        _held_by_another_process(part),
        pytest.raises(PartitionBusyError, match="another run"),
        write_partition(part, dataset="packets"),
    ):
        pass
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


def _crash_in_write(path, started):
    """A writer killed mid-write: the partition's temporary (and an ingest staging directory) stay behind."""
    from darkembed.ingest.files import staging_dir

    staging_dir(path)
    with write_partition(path, dataset="packets") as w:
        w.write_table("part-a.parquet", _table(5))
        started.set()
        __import__("time").sleep(60)


def _kill_mid_write(part):
    ctx = mp.get_context("fork")
    started = ctx.Event()
    p = ctx.Process(target=_crash_in_write, args=(part, started))
    p.start()
    assert started.wait(20)
    p.kill()
    p.join(20)


def test_temporaries_live_outside_the_dataset_so_globs_never_see_them(tmp_path):
    import polars as pl

    from darkembed.store import SCRATCH, scratch_dir

    lay = Layout(tmp_path)
    good = lay.packets("net", "2023-01-01")
    with write_partition(good, dataset="packets") as w:
        w.write_table("part-a.parquet", _table(3))
    part = lay.packets("net", "2023-01-02")
    _kill_mid_write(part)
    debris = sorted(p.name for p in (tmp_path / SCRATCH / "packets" / "network=net").iterdir())
    assert len(debris) == 2 and {d.split(".")[-1].split("-")[0] for d in debris} == {"tmp", "staging"}
    assert not part.exists()
    # A plain hive scan of the dataset sees only complete partitions, even with a crashed writer's debris.
    scan = pl.scan_parquet(tmp_path / "packets" / "**" / "*.parquet", hive_partitioning=True).collect()
    assert scan.height == 3 and scan["day"].unique().to_list() == [__import__("datetime").date(2023, 1, 1)]
    live = scratch_dir(part)  # a live writer's temporary (this process holds its lease)
    with write_partition(part, dataset="packets") as w:  # the rerun removes the dead debris, not the live one
        w.write_table("part-a.parquet", _table(2))
    left = list((tmp_path / SCRATCH / "packets" / "network=net").iterdir())
    assert left == [live]
    release_scratch(live)
    assert read_manifest(part)["rows"] == 2
    assert (
        pl.scan_parquet(tmp_path / "packets" / "**" / "*.parquet", hive_partitioning=True).collect().height
        == 5
    )


def test_sweep_removes_dead_debris_anywhere_and_keeps_live_temporaries(tmp_path):
    from darkembed.store import scratch_dir, sweep_debris

    lay = Layout(tmp_path)
    dead = [lay.packets("a", "2023-01-01"), lay.partition("results", "2023-01-01", "a~b", "idarkvec")]
    for part in dead:
        _kill_mid_write(part)
    # debris of an older version: hidden beside the partition
    old_style = lay.corpus("a", "2023-01-01").parent / f".day=2023-01-01.tmp-{'0' * 32}"
    old_style.mkdir(parents=True)
    (old_style / "x.parquet").write_bytes(b"x")
    with write_partition(lay.graph("a", "2023-01-01"), dataset="graph") as w:
        w.write_table("edges.parquet", _table(1))
    ctx = mp.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(lay.labels("a", "2023-01-01"), started, release))
    holder.start()
    try:
        assert started.wait(20)
        mine = scratch_dir(lay.packets("b", "2023-01-01"), "staging")
        removed = sweep_debris(tmp_path)
        assert len(removed) == 5 and old_style in removed  # 2 per killed writer, and the old-style one
        assert mine.is_dir()
        live = [p for p in (tmp_path / ".tmp" / "labels" / "network=a").iterdir()]
        assert len(live) == 1  # the other process's live write is untouched
    finally:
        release.set()
        holder.join(20)
    release_scratch(mine)
    assert read_manifest(lay.labels("a", "2023-01-01"))["rows"] == 1
    assert read_manifest(lay.graph("a", "2023-01-01"))["rows"] == 1
    assert sweep_debris(tmp_path) == []
    leftovers = [p for p in tmp_path.rglob("*") if p.is_dir() and "-" in p.name and p.name[-33:-32] == "-"]
    assert leftovers == []


def test_changed_inputs_compare_files_and_upstream_partitions(tmp_path):
    import os

    from darkembed.store import stale_reason

    lay = Layout(tmp_path)
    cap = tmp_path / "cap.pcap"
    cap.write_bytes(b"a" * 200_000)
    part = lay.packets("n", "2023-01-01")
    with write_partition(part, dataset="packets", inputs=[cap], config_hash="h") as w:
        w.write_table("part-a.parquet", _table(1))
    down = lay.corpus("n", "2023-01-01")
    with write_partition(down, dataset="corpus", inputs=[part], config_hash="h") as w:
        w.write_table("sentences.parquet", _table(1))
    assert stale_reason(part, "h", [cap]) is None and stale_reason(down, "h") is None
    assert stale_reason(part, "other") == "made with other settings"
    new = tmp_path / "cap2.pcap"
    new.write_bytes(b"b")
    assert "new input(s)" in stale_reason(part, "h", [cap, new])
    # same size and time, different ends: a different file copied in with its time preserved
    st = cap.stat()
    cap.write_bytes(b"a" * 199_999 + b"z")
    os.utime(cap, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert stale_reason(part, "h") == f"input {cap} was modified"
    cap.write_bytes(b"a" * 300_000)  # the complete capture replaces a truncated one
    assert "changed size (200000 -> 300000 bytes)" in stale_reason(part, "h")
    assert stale_reason(down, "h") is None  # the upstream partition itself has not been rebuilt yet
    with write_partition(part, dataset="packets", inputs=[cap], config_hash="h") as w:
        w.write_table("part-a.parquet", _table(2))
    assert stale_reason(part, "h") is None
    assert stale_reason(down, "h") == f"input partition {part} was rebuilt"
    cap.unlink()
    assert stale_reason(part, "h") == f"input {cap} is gone"
    # manifests written before mtime_ns was recorded compare size and time
    old = read_manifest(down) | {"inputs": [{"path": str(new), "bytes": 1, "mtime": new.stat().st_mtime}]}
    (down / MANIFEST).write_text(json.dumps(old))
    assert stale_reason(down, "h") is None


def test_a_reader_holds_the_version_it_continues_from(tmp_path):
    from darkembed.store import reading

    part = Layout(tmp_path).models("m", "n", "2023-01-01")
    with pytest.raises(PartitionMissingError), reading(part):
        pass
    with write_partition(part, dataset="models") as w:
        w.write_table("x.parquet", _table(1))
    with (
        reading(part),
        pytest.raises(PartitionBusyError, match="continuing from it"),
        write_partition(part, dataset="models"),
    ):
        pass
    with (
        _held_by_another_process(part),
        pytest.raises(PartitionBusyError, match="writing this partition now"),
        reading(part),
    ):
        pass


def test_a_folder_input_is_compared_by_its_files(tmp_path):
    from darkembed.store import stale_reason

    folder = tmp_path / "scanners"
    folder.mkdir()
    (folder / "censys.txt").write_text("1.2.3.0/24\n")
    part = Layout(tmp_path / "data").labels("n", "2023-01-01")
    with write_partition(part, dataset="labels", inputs=[folder]) as w:
        w.write_table("labels.parquet", _table(1))
    assert stale_reason(part) is None
    (folder / "shodan.txt").write_text("5.6.7.0/24\n")
    assert stale_reason(part) == f"input directory {folder} changed (shodan.txt)"
