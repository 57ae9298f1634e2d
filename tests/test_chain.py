"""Incremental chains over days: where day d continues from, gaps, and the chain length GCN-GRU counts."""

import datetime as dt

import pyarrow as pa
import pytest

from darkembed.embed.chain import ChainGapError, resume_from
from darkembed.layout import Layout
from darkembed.store import write_partition
from tasks.embed import _chain_length

D = [dt.date(2023, 1, i) for i in range(1, 8)]


def _checkpoint(lay, day, method="igcn"):
    with write_partition(lay.models(method, "n", day), dataset="models") as w:
        w.write_table("x.parquet", pa.table({"x": [1]}))


def test_chain_starts_continues_and_refuses_gaps(tmp_path):
    lay = Layout(tmp_path)
    assert resume_from(lay, "igcn", "n", D[0]) is None  # nothing before: a fresh chain
    for d in D[:3]:
        _checkpoint(lay, d)
    assert resume_from(lay, "igcn", "n", D[3]) == lay.models("igcn", "n", D[2])
    assert resume_from(lay, "igcn", "n", D[1]) == lay.models("igcn", "n", D[0])  # rerun of day 2 from day 1
    with pytest.raises(
        ChainGapError, match=r"no checkpoint for 2023-01-05 .*run 2023-01-04 \.\. 2023-01-05 first"
    ):
        resume_from(lay, "igcn", "n", D[5])
    assert resume_from(lay, "other", "n", D[5]) is None  # chains are per method


def test_chain_length_counts_consecutive_days_before(tmp_path):
    lay = Layout(tmp_path)
    assert _chain_length(lay, "gcngru", "n", D[0]) == 0
    for d in (D[0], D[2], D[3]):
        _checkpoint(lay, d, "gcngru")
    assert _chain_length(lay, "gcngru", "n", D[4]) == 2  # days 3 and 4; day 2 is missing
    assert _chain_length(lay, "gcngru", "n", D[1]) == 1
