"""Acknowledged-scanner lists: loading the configured lists, and the class of each listed organisation.

Reads list files only (no dataset); `darkembed.labels.assign` turns the matches into the `labels` dataset. The
formats are read by `darkembed.labels.list_formats` (docs/data-formats.md section 4) into the `ScannerList`s of
`darkembed.labels.scanner_list`; `darkembed.labels.scanner_index` matches addresses against the lists in force.

Validity:
    A `ScannerList` is in force from `valid_from` to `valid_to` (both inclusive, UTC days, None = unbounded).
    A JSON entry additionally stops matching `last_seen_grace_days` days after its `last_seen` (the address may
    have been handed to someone else since); it is never held back *before* `last_seen`, since the list does
    not say when a scanner was first seen.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

from darkembed.config import DEFAULT_ORG_CLASSES, LabelsConfig, ScannerListConfig
from darkembed.labels.list_formats import FOLDER_SUFFIX, load_csv, load_folder, load_ipset, load_json
from darkembed.labels.scanner_list import ListBuilder, LoadReport, ScannerList, ScannerListError

log = logging.getLogger(__name__)


def load_scanner_list(
    path: str | Path,
    format: str,
    *,
    name: str | None = None,
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
    last_seen_grace_days: int | None = 30,
) -> ScannerList:
    """Load one scanner list.

    Args:
        path: the file or directory (see `darkembed.labels.list_formats` for each format).
        format: `csv`, `folder`, `ipset` or `json`.
        name: the list's name in label sources; defaults to the file or directory name.
        valid_from: first day (inclusive) the list is in force; None = unbounded.
        valid_to: last day (inclusive) the list is in force; None = unbounded.
        last_seen_grace_days: `json` only: days after `last_seen` an entry keeps matching; None ignores it.

    Returns:
        The list, with a `LoadReport` of what was read and skipped (malformed lines with file and line).

    Raises:
        ScannerListError: the path is missing, or a file is not a list at all.
    """
    cfg = ScannerListConfig(
        path=str(path),
        format=format,  # type: ignore[arg-type]
        name=name,
        valid_from=valid_from,
        valid_to=valid_to,
        last_seen_grace_days=last_seen_grace_days,
    )
    return _load(cfg)


def _load(cfg: ScannerListConfig) -> ScannerList:
    path = Path(cfg.path)
    if not path.exists():
        raise ScannerListError(f"{path}: scanner list not found (labels.scanner_lists[].path)")
    report = LoadReport()
    b = ListBuilder(report)
    if cfg.format == "folder":
        load_folder(path, b)
    elif cfg.format == "csv":
        load_csv(path, b)
    elif cfg.format == "ipset":
        load_ipset(path, b)
    elif cfg.format == "json":
        load_json(path, b, cfg.last_seen_grace_days)
    else:  # pragma: no cover - the config validates the format
        raise ScannerListError(f"{path}: unknown scanner list format {cfg.format!r}")
    lst = b.build(cfg.name or path.name, path, cfg.format, cfg)
    log.info(
        "scanner list %s (%s): %d prefixes of %d organisations, %d duplicates, %d IPv6 skipped, %d malformed",
        lst.name,
        cfg.format,
        len(lst),
        len(lst.orgs),
        report.duplicates,
        report.ipv6_skipped,
        len(report.problems),
    )
    return lst


def lists_in_force(cfg: LabelsConfig, day: dt.date | None = None) -> list[ScannerListConfig]:
    """The configured scanner lists in force on `day` (all of them when no day is given), in config order."""
    return [
        lc
        for lc in cfg.scanner_lists
        if day is None
        or ((lc.valid_from is None or lc.valid_from <= day) and (lc.valid_to is None or day <= lc.valid_to))
    ]


def load_scanner_lists(cfg: LabelsConfig, day: dt.date | None = None) -> list[ScannerList]:
    """Load the configured scanner lists (only those in force on `day` when a day is given), in config order."""
    return [_load(lc) for lc in lists_in_force(cfg, day)]


_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "net", "org"})


def normalise_org(org: str) -> str:
    """The class-like form of an organisation name.

    Lowercase; `nethash.` prefix, `.ipset`/`.txt` suffixes and `_v4`/`_v6` dropped; a domain name is reduced to
    its label left of the public suffix (`censys.io` -> `censys`, `rnd.group-ib.com` -> `group-ib`,
    `ncsc.gov.uk` -> `ncsc`).
    """
    name = org.strip().lower()
    name = re.sub(r"^nethash\.", "", name)
    name = re.sub(r"\.(ipset|ip6set|txt)$", "", name)
    name = FOLDER_SUFFIX.sub("", name)
    if "." in name:
        labels = [x for x in name.split(".") if x]
        if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL:
            name = labels[-3]  # ncsc.gov.uk -> ncsc
        elif len(labels) >= 2:
            name = labels[-2]
    return name


def org_class(org: str, table: dict[str, str] | None = None) -> str:
    """The class of an organisation: the table's entry for the raw name, else for the normalised name, else
    the normalised name itself."""
    table = DEFAULT_ORG_CLASSES if table is None else table
    raw = org.strip().lower()
    if raw in table:
        return table[raw]
    norm = normalise_org(raw)
    return table.get(norm, norm)
