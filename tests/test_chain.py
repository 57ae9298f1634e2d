"""Incremental chains over days: where day d continues from, the declared first day, gaps, forks and the chain
length GCN-GRU counts."""

import datetime as dt
import multiprocessing as mp

import pyarrow as pa
import pytest

from darkembed.embed.chain import (
    ChainGapError,
    chain_length,
    chain_record,
    chain_stale,
    continue_chain,
    resume_from,
)
from darkembed.layout import Layout
from darkembed.store import PartitionBusyError, read_manifest, stale_reason, write_partition

D = [dt.date(2023, 1, i) for i in range(1, 8)]


def _checkpoint(lay, day, method="igcn", start=D[0]):
    prev = lay.models(method, "n", day - dt.timedelta(days=1)) if day > start else None
    with write_partition(
        lay.models(method, "n", day),
        dataset="models",
        inputs=[prev] if prev else [],
        extra={"chain": chain_record(day, start, prev)},
    ) as w:
        w.write_table("x.parquet", pa.table({"x": [1]}))


def test_chain_starts_on_its_first_day_continues_and_refuses_gaps(tmp_path):
    lay = Layout(tmp_path)
    assert resume_from(lay, "igcn", "n", D[0], D[0]) is None  # the declared first day starts fresh
    for d in D[:3]:
        _checkpoint(lay, d)
    assert resume_from(lay, "igcn", "n", D[3], D[0]) == lay.models("igcn", "n", D[2])
    assert resume_from(lay, "igcn", "n", D[1], D[0]) == lay.models(
        "igcn", "n", D[0]
    )  # rerun of day 2 from day 1
    with pytest.raises(
        ChainGapError, match=r"no checkpoint for 2023-01-05 .*run 2023-01-04 \.\. 2023-01-05 first"
    ):
        resume_from(lay, "igcn", "n", D[5], D[0])
    with pytest.raises(ChainGapError, match=r"run 2023-01-01 \.\. 2023-01-05 first"):
        resume_from(lay, "other", "n", D[5], D[0])  # chains are per method


def test_a_day_out_of_order_is_refused_unless_it_is_the_declared_first_day(tmp_path):
    lay = Layout(tmp_path)
    # Day 2 on a fresh data root: refused, naming the day to run first (no second chain is started).
    with pytest.raises(
        ChainGapError, match=r"no checkpoint for 2023-01-01 .*run 2023-01-01 \.\. 2023-01-01 first"
    ):
        resume_from(lay, "idarkvec", "n", D[1], D[0])
    with pytest.raises(ChainGapError, match=r"before the chain's first day 2023-01-02 \(embed.chain_start\)"):
        resume_from(lay, "idarkvec", "n", D[0], D[1])
    assert resume_from(lay, "idarkvec", "n", D[1], D[1]) is None  # declared: day 2 starts the chain
    with continue_chain(lay, "gcn", "n", D[4], D[0]) as prev:  # the daily GCN is no chain
        assert prev is None


def test_a_day_built_on_another_chain_is_stale(tmp_path):
    lay = Layout(tmp_path)
    _checkpoint(lay, D[1], "idarkvec", start=D[1])  # day 2 started a chain of its own
    m2 = read_manifest(lay.models("idarkvec", "n", D[1]))
    assert chain_stale(m2, "idarkvec", D[1], D[1]) is None
    assert "built on another chain (it continues nothing" in chain_stale(m2, "idarkvec", D[1], D[0])
    _checkpoint(lay, D[0], "idarkvec")
    _checkpoint(lay, D[1], "idarkvec")  # rebuilt in order
    m2 = read_manifest(lay.models("idarkvec", "n", D[1]))
    assert chain_stale(m2, "idarkvec", D[1], D[0]) is None
    assert stale_reason(lay.models("idarkvec", "n", D[1])) is None
    _checkpoint(lay, D[0], "idarkvec")  # day 1 rebuilt: day 2 continued a version that is gone
    assert "was rebuilt" in stale_reason(lay.models("idarkvec", "n", D[1]))
    # checkpoints from before the chain was recorded: their `continues` path says where they came from
    old = {"extra": {"continues": str(lay.models("idarkvec", "n", D[0]))}}
    assert chain_stale(old, "idarkvec", D[1], D[0]) is None
    assert chain_stale({"extra": {"continues": None}}, "idarkvec", D[1], D[0]) is not None


def _write_slowly(lay, day, started, release):
    with write_partition(lay.models("idarkvec", "n", day), dataset="models") as w:
        w.write_table("x.parquet", pa.table({"x": [2]}))
        started.set()
        release.wait(20)


def test_consecutive_days_at_once_do_not_fork_the_chain(tmp_path):
    lay = Layout(tmp_path)
    _checkpoint(lay, D[0], "idarkvec")
    ctx = mp.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_write_slowly, args=(lay, D[0], started, release))
    p.start()  # day 1 is being rerun now
    try:
        assert started.wait(20)
        with (
            pytest.raises(PartitionBusyError, match="writing this partition now"),
            continue_chain(lay, "idarkvec", "n", D[1], D[0]),
        ):
            pass
    finally:
        release.set()
        p.join(20)
    # ... and while day 2 continues day 1, a rerun of day 1 is refused
    with continue_chain(lay, "idarkvec", "n", D[1], D[0]) as prev:
        assert prev == lay.models("idarkvec", "n", D[0])
        with (
            pytest.raises(PartitionBusyError, match="continuing from it"),
            write_partition(prev, dataset="models"),
        ):
            pass


def test_chain_length_counts_consecutive_days_before(tmp_path):
    lay = Layout(tmp_path)
    assert chain_length(lay, "gcngru", "n", D[0], D[0]) == 0
    for d in (D[0], D[2], D[3]):
        _checkpoint(lay, d, "gcngru", start=d)
    assert chain_length(lay, "gcngru", "n", D[4], D[0]) == 2  # days 3 and 4; day 2 is missing
    assert chain_length(lay, "gcngru", "n", D[1], D[0]) == 1
    assert chain_length(lay, "gcngru", "n", D[4], D[3]) == 1  # not before the chain's first day
