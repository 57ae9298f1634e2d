"""Longest-prefix matching of addresses against the acknowledged-scanner lists in force on a day.

The entries of the lists in force on a day (`ScannerList.in_force`, and for JSON entries `last_seen` plus the
grace days, see `darkembed.labels.scanners`) are merged and flattened into disjoint address intervals, each
carrying the longest prefix that covers it, so matching N addresses is one `numpy.searchsorted` over the interval
starts: O(N log P) for P prefixes, no Python loop per address. Nested prefixes of different organisations resolve
to the longest. The same prefix listed for several organisations (equal length) resolves deterministically: the
list declared first in the configuration wins; within one list, the alphabetically first class, then the
alphabetically first organisation. Such conflicts are counted and logged when the index is built.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from darkembed.labels.ipv4 import as_uint32
from darkembed.labels.scanner_list import ScannerList
from darkembed.labels.scanners import org_class

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScannerMatch:
    """Result of matching N addresses against a `ScannerIndex`.

    Attributes:
        entry: int64 (N,), index of the matched prefix in the index's entry arrays, -1 where none matched.
        index: the index matched against.
    """

    entry: np.ndarray
    index: ScannerIndex

    @property
    def matched(self) -> np.ndarray:
        """bool (N,), whether each address is covered by a listed prefix."""
        return self.entry >= 0

    def column(self, name: str) -> np.ndarray:
        """Per address, the matched entry's `start`, `plen`, `cls`, `org` or `list_name` (None where unmatched
        for the string columns, 0 for the numeric ones)."""
        values = getattr(self.index, name)
        if values.dtype == object:
            out = np.full(self.entry.size, None, dtype=object)
        else:
            out = np.zeros(self.entry.size, dtype=values.dtype)
        hit = self.entry >= 0
        out[hit] = values[self.entry[hit]]
        return out


class ScannerIndex:
    """The scanner prefixes in force on one day, flattened for vectorised longest-prefix matching.

    Attributes:
        day: the day the index applies to (None = every list and entry regardless of validity).
        start: uint32 (P,), network address of each kept prefix.
        plen: uint8 (P,), prefix length.
        cls: object (P,), class name.
        org: object (P,), organisation as written in its list.
        list_name: object (P,), name of the list the prefix comes from.
        conflicts: number of prefixes listed with different classes (resolved as in the module docstring).
    """

    def __init__(
        self,
        lists: Sequence[ScannerList],
        day: dt.date | None = None,
        org_classes: dict[str, str] | None = None,
    ) -> None:
        """Merge the lists in force on `day` (config order = priority) into one index.

        Args:
            lists: loaded lists, strongest first for equal-prefix conflicts.
            day: the labelling day; lists out of force and JSON entries past `last_seen` + grace are left out.
            org_classes: organisation -> class table (default `DEFAULT_ORG_CLASSES`); entries whose class is
                `unknown` are left out.
        """
        self.day = day
        starts, plens, prios, classes, orgs, names = [], [], [], [], [], []
        for prio, lst in enumerate(lists):
            if day is not None and not lst.in_force(day):
                continue
            keep = np.ones(len(lst), dtype=bool)
            if day is not None and lst.until.size:
                until = lst.until
                keep &= np.isnat(until) | (until >= np.datetime64(day, "D"))
            org_cls = np.array([org_class(o, org_classes) for o in lst.orgs], dtype=object)
            entry_cls = org_cls[lst.org]
            keep &= entry_cls != "unknown"
            starts.append(lst.start[keep])
            plens.append(lst.plen[keep])
            prios.append(np.full(int(keep.sum()), prio, dtype=np.int32))
            classes.append(entry_cls[keep])
            orgs.append(np.array(lst.orgs, dtype=object)[lst.org[keep]])
            names.append(np.full(int(keep.sum()), lst.name, dtype=object))
        cat = lambda xs, dt_: np.concatenate(xs) if xs else np.empty(0, dtype=dt_)  # noqa: E731
        start = cat(starts, np.uint32).astype(np.uint32)
        plen = cat(plens, np.uint8).astype(np.uint8)
        prio = cat(prios, np.int32)
        cls = cat(classes, object)
        org = cat(orgs, object)
        name = cat(names, object)
        # Deterministic winner per identical prefix: list priority, then class, then organisation.
        order = (
            np.lexsort((org.astype(str), cls.astype(str), prio, plen, start))
            if start.size
            else np.empty(0, int)
        )
        start, plen, cls, org, name = start[order], plen[order], cls[order], org[order], name[order]
        first = np.ones(start.size, dtype=bool)
        if start.size:
            first[1:] = (start[1:] != start[:-1]) | (plen[1:] != plen[:-1])
        groups = np.cumsum(first) - 1
        winners = cls[first]
        differs = ~first & (cls != winners[groups]) if start.size else first
        self.conflicts = int(np.unique(groups[differs]).size)
        self.start, self.plen = start[first], plen[first]
        self.cls, self.org, self.list_name = cls[first], org[first], name[first]
        if self.conflicts:
            log.info(
                "scanner index %s: %d prefixes listed with different classes; resolved by list order, then name",
                day,
                self.conflicts,
            )
        self._bounds, self._ids = _flatten(self.start, self.plen)

    def __len__(self) -> int:
        return int(self.start.size)

    def classes(self) -> list[str]:
        """The distinct classes of the index, sorted."""
        return sorted(set(self.cls.tolist()))

    def match(self, ips: np.ndarray | Iterable[int]) -> ScannerMatch:
        """Longest-prefix match of N addresses.

        Args:
            ips: uint32 (N,) addresses (a polars Series or an iterable of ints is converted).

        Returns:
            A `ScannerMatch` with, per address, the index of the longest covering prefix or -1.
        """
        if not isinstance(ips, np.ndarray | pl.Series):
            ips = np.fromiter(ips, dtype=np.uint64)
        ips = as_uint32(ips)
        if not self._bounds.size:
            return ScannerMatch(np.full(ips.size, -1, dtype=np.int64), self)
        pos = np.searchsorted(self._bounds, ips, side="right") - 1
        entry = np.where(pos >= 0, self._ids[np.maximum(pos, 0)], -1)
        return ScannerMatch(entry.astype(np.int64, copy=False), self)


def _flatten(start: np.ndarray, plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint intervals of nested CIDR prefixes, each with its longest covering prefix.

    CIDR blocks are either nested or disjoint, so a sweep in (start, length) order with a stack of open blocks
    emits a boundary wherever the innermost covering block changes.

    Args:
        start: uint32 (P,), unique (start, plen) pairs.
        plen: uint8 (P,).

    Returns:
        `bounds` uint32 (B,) sorted interval starts and `ids` int64 (B,) entry covering `[bounds[i],
        bounds[i+1])`, -1 for gaps. B <= 2P + 1.
    """
    if not start.size:
        return np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.int64)
    s64 = start.astype(np.int64)
    end = s64 + (np.int64(1) << (32 - plen.astype(np.int64))) - 1
    order = np.lexsort((plen, s64))
    bounds: list[int] = []
    ids: list[int] = []

    def emit(pos: int, ident: int) -> None:
        if pos > 0xFFFFFFFF:
            return
        if bounds and bounds[-1] == pos:
            ids[-1] = ident
        else:
            bounds.append(pos)
            ids.append(ident)

    stack: list[tuple[int, int]] = []  # (end, id) of the open blocks, innermost last
    for i in order.tolist():
        s = int(s64[i])
        while stack and stack[-1][0] < s:
            e, _ = stack.pop()
            emit(e + 1, stack[-1][1] if stack else -1)
        emit(s, i)
        stack.append((int(end[i]), i))
    while stack:
        e, _ = stack.pop()
        emit(e + 1, stack[-1][1] if stack else -1)
    return np.asarray(bounds, dtype=np.uint32), np.asarray(ids, dtype=np.int64)
