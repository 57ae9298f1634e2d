"""Whether a stage's partition of a network-day is current: complete, made with the configuration sections the
stage depends on, from inputs that have not changed since, and (checkpoints) on the configured chain.

Each manifest records its inputs (`store.changed_inputs`): source files by size, modification time and a digest
of both ends, input partitions by their manifest's digest. A replaced capture makes the day's `packets` stale; once
rebuilt, every partition that recorded the old `packets` manifest (labels, corpus, graph, reports, then the
embeddings, the checkpoints of this and later days, and the results) is stale in turn. See docs/pipeline.md.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from darkembed.config import Config
from darkembed.embed.chain import chain_stale, chain_start
from darkembed.layout import Layout
from darkembed.store import read_manifest, stale_reason


def capture_files(config: Config, network: str, day: dt.date) -> list[Path]:
    """The network's input files of the day as its capture and legacy-trace globs match them now."""
    from darkembed.ingest import expand_inputs

    patterns = config.network(network).inputs_for(day)
    return expand_inputs(patterns["captures"] + patterns["legacy_traces"])


def cowrie_patterns(config: Config, day: dt.date) -> list[str]:
    """The Cowrie log patterns of the day of every honeypot network (honeypot labels are global ground truth: every
    network's labels read them)."""
    return [p for n in config.networks for p in n.inputs_for(day)["cowrie"]]


def label_inputs(config: Config, network: str, day: dt.date) -> list[Path]:
    """The inputs of a network-day's `labels` partition as they are now: the day's Cowrie logs, the scanner lists
    in force that day and the network's `packets` partition (a Cowrie log that appears after the labels were made
    makes them stale)."""
    from darkembed.labels.cowrie import find_cowrie_logs
    from darkembed.labels.scanners import lists_in_force

    files, _ = find_cowrie_logs(cowrie_patterns(config, day))
    lists = [Path(lc.path) for lc in lists_in_force(config.labels, day)]
    return [*files, *lists, Layout(config.data_path).packets(network, day)]


def partition_stale(
    config: Config, stage: str, network: str, day: dt.date, method: str | None = None
) -> str | None:
    """Why the stage's partition of the network-day is not current, or None when it is.

    Args:
        stage: dataset name (`packets`, `labels`, `corpus`, `graph`, `reports`, `embeddings`, `models`,
            `results`).
        network: the network (for `results`, the pair `<provider>~<customer>`).
        method: the embedding method of `embeddings`, `models` and `results`.
    """
    part = Layout(config.data_path).partition(stage, day, network, method)
    expected = (
        capture_files(config, network, day)
        if stage == "packets"
        else label_inputs(config, network, day)
        if stage == "labels"
        else None
    )
    reason = stale_reason(part, config.stage_hash(stage, network, method), expected)
    if reason is None and stage == "models" and method is not None:
        reason = chain_stale(read_manifest(part), method, day, chain_start(config))
    return reason
