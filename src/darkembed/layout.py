"""Every path under the data root, in one place.

```
<root>/packets/network=<net>/day=<YYYY-MM-DD>/part-<source-file>.parquet
<root>/labels/network=<net>/day=<d>/labels.parquet
<root>/corpus/network=<net>/day=<d>/...
<root>/graph/network=<net>/day=<d>/{edges,hosts,ports}.parquet
<root>/embeddings/method=<m>/network=<net>/day=<d>/embeddings.parquet
<root>/models/method=<m>/network=<net>/day=<d>/...
<root>/adapt/... and <root>/results/...
```
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def day_str(day: dt.date | str) -> str:
    """`YYYY-MM-DD` for a date or an ISO date string (validated)."""
    if isinstance(day, str):
        day = parse_day(day)
    return day.isoformat()


def parse_day(text: str) -> dt.date:
    """Parse `YYYY-MM-DD` (or `YYYYMMDD`) into a date, with a clear error."""
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"not a day: {text!r} (expected YYYY-MM-DD)")


def part_name(source: str | Path) -> str:
    """The partition file name for a source file: `part-<source file name, made path-safe>.parquet`."""
    name = Path(source).name
    return f"part-{_SAFE.sub('_', name)}.parquet"


@dataclass(frozen=True)
class Layout:
    """The data root and the path of every partition under it."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def partition(self, dataset: str, day: dt.date | str, network: str, method: str | None = None) -> Path:
        """The directory of one daily partition of `dataset`."""
        base = self.root / dataset
        if method is not None:
            base = base / f"method={method}"
        return base / f"network={network}" / f"day={day_str(day)}"

    def packets(self, network: str, day: dt.date | str) -> Path:
        return self.partition("packets", day, network)

    def labels(self, network: str, day: dt.date | str) -> Path:
        return self.partition("labels", day, network)

    def corpus(self, network: str, day: dt.date | str) -> Path:
        return self.partition("corpus", day, network)

    def graph(self, network: str, day: dt.date | str) -> Path:
        return self.partition("graph", day, network)

    def embeddings(self, method: str, network: str, day: dt.date | str) -> Path:
        return self.partition("embeddings", day, network, method)

    def models(self, method: str, network: str, day: dt.date | str) -> Path:
        return self.partition("models", day, network, method)

    def days(self, dataset: str, network: str, method: str | None = None) -> list[dt.date]:
        """The days for which a complete (manifested) partition of `dataset` exists, sorted."""
        from darkembed.store import is_complete

        base = self.root / dataset
        if method is not None:
            base = base / f"method={method}"
        base = base / f"network={network}"
        if not base.is_dir():
            return []
        out = []
        for p in base.iterdir():
            if p.name.startswith("day=") and is_complete(p):
                try:
                    out.append(parse_day(p.name[4:]))
                except ValueError:
                    continue
        return sorted(out)
