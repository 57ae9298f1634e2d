"""Incremental chains over days: which checkpoint day d continues from, and whether a checkpoint is still on the
chain.

The incremental models (i-DarkVec, i-GCN, i-GCN-GRU, and GCN-GRU while it is fit) are chains: day d's model
continues day d-1's checkpoint (`<root>/models/method=<m>/network=<net>/day=<d-1>/`). A chain starts fresh on
its declared first day (`embed.chain_start`; by default the simulated world's first day, `simulate.start`) and on
no other: a day whose predecessor has no checkpoint is refused with the day to run first, so running days out of
order (or two consecutive days at once) never starts a second chain. A checkpoint records which day it continued
and the digest of that day's manifest: one built on another chain (another first day, or a predecessor rebuilt
since) is stale and is rebuilt (docs/pipeline.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from darkembed.layout import Layout


class ChainGapError(RuntimeError):
    """Day d cannot continue its chain: day d-1 has no checkpoint, or d is before the chain's first day."""


def chain_start(config: Any) -> dt.date:
    """The first day of every incremental chain: `embed.chain_start`, else the simulated world's first day."""
    return config.embed.chain_start or config.simulate.start


def is_chained(method: str) -> bool:
    """Whether an embedding method continues the previous day's checkpoint (all but the daily GCN)."""
    return method.partition("-")[0] != "gcn"


def resume_from(layout: Layout, method: str, network: str, day: dt.date, start: dt.date) -> Path | None:
    """The checkpoint directory of day-1, or None when the chain starts on `day` (its declared first day).

    Raises:
        ChainGapError: `day` is before `start`, or day-1 has no checkpoint; the message says which day to run
            first.
    """
    where = f"{method}[{network}/{day}]"
    if day < start:
        raise ChainGapError(
            f"{where}: {day} is before the chain's first day {start} (embed.chain_start); declare an earlier "
            f"embed.chain_start to start the chain there (every later day is then rebuilt)"
        )
    if day == start:
        return None
    prev = day - dt.timedelta(days=1)
    if prev in layout.days("models", network, method):
        return layout.models(method, network, prev)
    done = [d for d in layout.days("models", network, method) if start <= d < day]
    first = done[-1] + dt.timedelta(days=1) if done else start
    raise ChainGapError(
        f"{where}: no checkpoint for {prev} to continue (the chain starts on {start}, embed.chain_start); "
        f"run {first} .. {prev} first (backfill resumes there), or declare {day} the chain's first day with "
        f"embed.chain_start"
    )


@contextmanager
def continue_chain(
    layout: Layout, method: str, network: str, day: dt.date, start: dt.date
) -> Iterator[Path | None]:
    """`resume_from`, with the predecessor's checkpoint held in its present version (`store.reading`) until the
    block ends, so a run rewriting day d-1 meanwhile is refused instead of forking the chain.

    Raises:
        ChainGapError: as `resume_from`.
        PartitionBusyError: day d-1 is being written now.
    """
    from darkembed.store import reading

    prev = resume_from(layout, method, network, day, start) if is_chained(method) else None
    if prev is None:
        yield None
        return
    with reading(prev):
        yield prev


def chain_length(layout: Layout, method: str, network: str, day: dt.date, start: dt.date) -> int:
    """Consecutive days of the chain (from `start`) with a checkpoint just before `day` (0 when the chain starts
    on `day`)."""
    have = set(layout.days("models", network, method))
    n, d = 0, day - dt.timedelta(days=1)
    while d in have and d >= start:
        n, d = n + 1, d - dt.timedelta(days=1)
    return n


def chain_record(day: dt.date, start: dt.date, prev: Path | None) -> dict[str, str | None]:
    """What a checkpoint's manifest records about its chain (`extra.chain`)."""
    return {
        "start": start.isoformat(),
        "previous": (day - dt.timedelta(days=1)).isoformat() if prev is not None else None,
    }


def chain_stale(manifest: Mapping[str, Any], method: str, day: dt.date, start: dt.date) -> str | None:
    """Why a checkpoint is not on the chain that starts on `start` (None when it is).

    The checkpoint of the first day must start fresh; any later one must continue the day before (whether that
    day's checkpoint is the version it continued is checked through its recorded inputs).
    """
    if not is_chained(method):
        return None
    if day < start:
        return f"before the chain's first day {start}"
    extra = manifest.get("extra") or {}
    if "chain" in extra:
        previous = extra["chain"].get("previous")
    else:  # checkpoints written before the chain was recorded
        cont = extra.get("continues")
        previous = cont.rsplit("day=", 1)[-1] if cont else None
    want = None if day == start else (day - dt.timedelta(days=1)).isoformat()
    if previous != want:
        return (
            f"built on another chain (it continues {previous or 'nothing'}, the chain starting on {start} "
            f"continues {want or 'nothing'})"
        )
    return None
