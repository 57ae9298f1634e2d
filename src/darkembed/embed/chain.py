"""Incremental chains over days: which checkpoint day d continues from.

The incremental models (i-DarkVec, i-GCN, i-GCN-GRU) are chains: day d's model continues day d-1's checkpoint
(`<root>/models/method=<m>/network=<net>/day=<d-1>/`). A chain starts fresh on a day with no earlier checkpoint;
a gap (an earlier checkpoint exists but not d-1's) is an error that says which day to run first, so a failed or
changed day can be rerun from d-1 without replaying the month and a backfill resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from darkembed.layout import Layout


class ChainGapError(RuntimeError):
    """Day d cannot continue the chain: day d-1 has no checkpoint although earlier days do."""


def resume_from(layout: Layout, method: str, network: str, day: dt.date) -> Path | None:
    """The checkpoint directory of day-1, or None when the chain starts on `day`.

    Raises:
        ChainGapError: earlier checkpoints exist but not the previous day's.
    """
    days = [d for d in layout.days("models", network, method) if d < day]
    if not days:
        return None
    prev = day - dt.timedelta(days=1)
    if days[-1] != prev:
        raise ChainGapError(
            f"{method}[{network}/{day}]: no checkpoint for {prev} (last one: {days[-1]}); "
            f"run {days[-1] + dt.timedelta(days=1)} .. {prev} first (backfill resumes there)"
        )
    return layout.models(method, network, prev)
