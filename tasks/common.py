"""Helpers shared by the Prefect tasks: retry only on I/O errors."""

from __future__ import annotations

from typing import Any


def io_errors_only(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn`: retry a task only when it failed on an I/O error (computations fail fast)."""
    try:
        state.result()
    except (OSError, TimeoutError, ConnectionError) as exc:
        return not isinstance(exc, FileNotFoundError)  # a missing input does not appear by retrying
    except Exception:
        return False
    return False


def packets_lazy(config: Any, network: str, day: Any):
    """The day's `packets` partition of a network as a polars LazyFrame (PartitionMissingError if absent)."""
    import polars as pl

    from darkembed.layout import Layout
    from darkembed.store import partition_files

    files = partition_files(Layout(config.data_path).packets(network, day))
    if not files:
        from darkembed.schemas import PACKETS

        return pl.from_arrow(PACKETS.empty_table()).lazy()
    return pl.scan_parquet(files)


def active_lazy(config: Any, network: str, day: Any):
    """The day's active packets of a network (`activity.active_packets` with the network's SYN rule)."""
    from darkembed.activity import active_packets

    net = config.network(network)
    syn_only = net.kind == "honeypot" and config.activity.honeypot_syn_only
    return active_packets(packets_lazy(config, network, day), config.activity, syn_only=syn_only)
