"""The labels stage: the labels of a network-day's sources.

Reads: the day's `packets` partition, the scanner lists (`labels.scanner_lists`) and the Cowrie logs of every
honeypot network (honeypot labels are global ground truth). Writes: `labels/network=<n>/day=<d>/labels.parquet`.
See docs/method.md for the labelling rules.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TypedDict

from darkembed.config import Config
from darkembed.labels import label_day as _label_day
from darkembed.labels import labels_table, load_scanner_lists, read_cowrie
from darkembed.labels.cowrie import find_cowrie_logs
from darkembed.layout import Layout
from darkembed.lineage import cowrie_patterns
from darkembed.schemas import LABELS
from darkembed.stages.read import LABELS_FILE, active_lazy, packets_lazy
from darkembed.store import write_partition

log = logging.getLogger(__name__)


class LabelsResult(TypedDict):
    """A `labels` partition: host counts per label (all and active hosts) and per source, and what the day's
    Cowrie logs held."""

    network: str
    day: str
    partition: str
    hosts: int
    labels: dict[str, int]
    active_hosts: int
    active_labels: dict[str, int]
    sources: dict[str, int]
    cowrie_files: int
    cowrie_missing: list[str]
    cowrie_problems: int
    cowrie_skipped: dict[str, int]
    cowrie_bad_timestamps: int
    cowrie_damaged: list


def cowrie_files(config: Config, day: dt.date) -> tuple[list[Path], list[str]]:
    """Cowrie logs of the day from every honeypot network (honeypot labels are global ground truth), and the
    configured patterns without a file that day (each logged as a warning)."""
    files, missing = find_cowrie_logs(cowrie_patterns(config, day))
    for pattern in missing:
        log.warning(
            "labels %s: no Cowrie log matches %s (nor %s.gz); labelling without it", day, pattern, pattern
        )
    return files, missing


def label_day(config: Config, network: str, day: dt.date) -> LabelsResult:
    """Label the network's active sources of `day`; returns counts per label and source."""
    lists = load_scanner_lists(config.labels, day)
    files, missing = cowrie_files(config, day)
    events = report = None
    if files:
        events, report = read_cowrie(files)
    frame = _label_day(packets_lazy(config, network, day), day, lists, events, config.labels)
    table = labels_table(frame, f"labels[{network}/{day}]")
    part = Layout(config.data_path).labels(network, day)
    with write_partition(
        part,
        dataset="labels",
        # what `lineage.label_inputs` finds now: a Cowrie log that appears later makes the labels stale
        inputs=[
            *files,
            *[sl.path for sl in lists if getattr(sl, "path", None)],
            Layout(config.data_path).packets(network, day),
        ],
        config_hash=config.stage_hash("labels", network),
    ) as w:
        w.write_table(LABELS_FILE, table, LABELS)
    per_label = frame.group_by("label").len().sort("label")
    active = active_lazy(config, network, day).select("src_ip").unique().collect()
    per_active = frame.join(active, on="src_ip").group_by("label").len().sort("label")
    per_source = frame.explode("sources").group_by("sources").len().sort("sources")
    return {
        "network": network,
        "day": day.isoformat(),
        "partition": str(part),
        "hosts": frame.height,
        "labels": dict(per_label.iter_rows()),
        "active_hosts": active.height,
        "active_labels": dict(per_active.iter_rows()),
        "sources": {str(k): v for k, v in per_source.iter_rows()},
        "cowrie_files": len(files),
        "cowrie_missing": missing,
        "cowrie_problems": len(report.problems) if report else 0,
        "cowrie_skipped": report.skipped if report else {},
        "cowrie_bad_timestamps": report.bad_timestamps if report else 0,
        "cowrie_damaged": report.damaged if report else [],
    }
