"""The analyst's view of the clusters of unknown hosts: what they send, to which ports, and when.

[TNSM] section VIII, docs/method.md 5.7 and 5.9: a mostly unknown cluster is a candidate new class, which an
analyst names from its ports and activity pattern; Fig. 6a shows the noise hosts that alignment puts into
clusters.

Reads: a network-day's `packets` (a polars LazyFrame of the PACKETS schema) and, per clustered host, its
address (uint32), HDBSCAN cluster id (`darkembed.cluster`, -1 = noise) and label (`unknown` = none).
Writes: PNG figures (returned paths); the profile table is returned for the caller to store or log.

* `cluster_profiles` ranks the largest clusters made mostly of unknown hosts (`cluster.unknown_clusters`) and
  describes each by its traffic: packets, destination services, SYN-only share, darknet addresses reached,
  first and last packet, active hours and an hour-of-day sparkline.
* `cluster_activity_figures` draws the activity pattern (`report.activity`) of each profiled cluster's hosts.
* `noise_reassigned_figure` maps the customer's hosts that HDBSCAN left as noise in their own embedding space
  and that join a cluster once aligned to the provider's space.

The packet statistics are polars aggregations of the packets joined with a small src_ip -> cluster frame, in
one scan; only the per-cluster results (a few rows each) are formatted in Python.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from darkembed.activity import proto_name
from darkembed.cluster import NOISE, UnknownCluster, unknown_clusters
from darkembed.report.activity import activity_figure, activity_frame
from darkembed.schemas import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG
from darkembed.vocabulary import UNKNOWN

#: Sparkline levels: no packets, then eight heights.
SPARK = " ▁▂▃▄▅▆▇█"

#: The columns of `cluster_profiles`, in order.
PROFILE_SCHEMA: dict[str, pl.DataType] = {
    "rank": pl.Int64(),  # 1 = largest cluster
    "cluster": pl.Int64(),
    "hosts": pl.Int64(),  # members of the cluster
    "hosts_seen": pl.Int64(),  # members with packets in the frame
    "unknown_share": pl.Float64(),  # share of members without a label
    "labels": pl.String(),  # known labels of the members, most common first: "mirai 3, censys 1"; "" if none
    "packets": pl.Int64(),
    "packets_per_host": pl.Float64(),  # median over the hosts seen
    "ports": pl.Int64(),  # distinct destination services (protocol and port; ICMP counts once)
    "top_ports": pl.String(),  # "23/tcp 61%, 2323/tcp 20%, icmp <1%": shares of the cluster's packets
    "syn_share": pl.Float64(),  # share of the cluster's packets that are TCP SYN-only
    "dsts_per_host": pl.Float64(),  # median distinct darknet addresses reached per host
    "first_seen": pl.String(),  # UTC HH:MM (MM-DD HH:MM when first and last packet fall on different days)
    "last_seen": pl.String(),
    "active_hours": pl.Float64(),  # median per host of the clock hours in which it sent packets
    "hour_profile": pl.String(),  # 24 characters, packets per UTC hour of day 0..23 on the SPARK scale
}

# The six classic flags: a SYN-only packet has SYN and none of the others (ECN bits may be set, as in RFC
# 3168's ECN-setup SYN).
_CLASSIC_FLAGS = TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG


def _host_arrays(
    ips: np.ndarray, clusters: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-host inputs as uint32, int64 and str arrays (n,), checked for shape and unique addresses."""
    ips = np.asarray(ips, dtype=np.uint32)
    clusters = np.asarray(clusters, dtype=np.int64)
    labels = np.asarray(labels, dtype=object).astype(str)
    if not (ips.ndim == 1 and ips.shape == clusters.shape == labels.shape):
        raise ValueError(f"ips {ips.shape}, clusters {clusters.shape} and labels {labels.shape} must be (n,)")
    if np.unique(ips).size != ips.size:
        raise ValueError("ips must be unique: one row per host")
    return ips, clusters, labels


def _percent(share: pl.Expr) -> pl.Expr:
    """A share (0..1) as whole percent text, `<1` for a share under half a percent (not a misleading 0)."""
    pct = (100 * share).round(0).cast(pl.Int64)
    return pl.when(pct == 0).then(pl.lit("<1")).otherwise(pct.cast(pl.String))


def _members(ips: np.ndarray, labels: np.ndarray, picked: Sequence[UnknownCluster]) -> pl.DataFrame:
    """src_ip (UInt32), cluster (Int64), label of the members of `picked` (not empty)."""
    rows = np.concatenate([c.members for c in picked])
    ids = np.repeat(np.array([c.cluster for c in picked], dtype=np.int64), [c.size for c in picked])
    return pl.DataFrame(
        {"src_ip": ips[rows], "cluster": ids, "label": labels[rows]},
        schema={"src_ip": pl.UInt32, "cluster": pl.Int64, "label": pl.String},
    )


def sparkline(counts: Sequence[float] | np.ndarray) -> str:
    """One character per count on the `SPARK` scale: a blank for zero, `█` for the maximum.

    Any non-zero count shows at least `▁`, so a quiet hour is told apart from a silent one.
    """
    c = np.asarray(counts, dtype=float)
    top = c.max() if c.size else 0.0
    if top <= 0:
        return SPARK[0] * c.size
    levels = np.where(c > 0, np.maximum(1, np.ceil(8 * c / top)), 0).astype(int)
    return "".join(SPARK[i] for i in levels)


def cluster_profiles(
    packets: pl.LazyFrame,
    ips: np.ndarray,
    clusters: np.ndarray,
    labels: np.ndarray,
    *,
    top: int = 10,
    min_unknown_share: float = 0.5,
    ports_shown: int = 5,
) -> pl.DataFrame:
    """The `top` largest clusters of mostly unknown hosts, ranked by size, with their port and timing profile.

    A cluster qualifies when at least `min_unknown_share` of its hosts are unknown; among those, the clusters
    whose hosts sent no packet in `packets` are passed over (nothing to profile), and the `top` largest of the
    rest are ranked 1..n (ties by cluster id).

    Args:
        packets: the day's packets (reads `ts`, `src_ip`, `dst_ip`, `proto`, `dst_port`, `tcp_flags`).
        ips: address of each clustered host, uint32 (n,), unique.
        clusters: its cluster id, int (n,); -1 = noise.
        labels: its label, str (n,); `unknown` = none.
        top: clusters profiled at most.
        min_unknown_share: least share of unknown hosts in a profiled cluster (0..1).
        ports_shown: services listed in `top_ports`.

    Returns:
        One row per profiled cluster with the columns of `PROFILE_SCHEMA` (see the comments there), sorted by
        rank; empty, with that schema, when no cluster qualifies or no qualifying cluster sent packets.
    """
    ips, clusters, labels = _host_arrays(ips, clusters, labels)
    empty = pl.DataFrame(schema=PROFILE_SCHEMA)
    candidates = unknown_clusters(clusters, labels, min_unknown_share=min_unknown_share, top=None)
    if not candidates or top < 1:
        return empty
    members = _members(ips, labels, candidates)
    base = (
        packets.select("ts", "src_ip", "dst_ip", "proto", "dst_port", "tcp_flags")
        .join(members.lazy().select("src_ip", "cluster"), on="src_ip", how="inner")
        .with_columns(
            ((pl.col("proto") == 6) & ((pl.col("tcp_flags") & _CLASSIC_FLAGS) == TCP_SYN))
            .fill_null(False)
            .alias("syn_only")
        )
    )
    per_host, per_service, per_hour = pl.collect_all(
        [
            base.group_by("cluster", "src_ip").agg(
                pl.len().alias("packets"),
                pl.col("dst_ip").drop_nulls().n_unique().alias("dsts"),
                pl.col("ts").dt.truncate("1h").drop_nulls().n_unique().alias("hours"),
                pl.col("syn_only").sum().alias("syn"),
                pl.col("ts").min().alias("first"),
                pl.col("ts").max().alias("last"),
            ),
            base.group_by("cluster", "proto", "dst_port").agg(pl.len().alias("n")),
            base.filter(pl.col("ts").is_not_null())
            .group_by("cluster", pl.col("ts").dt.hour().alias("hour"))
            .agg(pl.len().alias("n")),
        ]
    )
    seen = set(per_host["cluster"].unique().to_list())
    picked = [c for c in candidates if c.cluster in seen][:top]
    if not picked:
        return empty
    ranks = pl.DataFrame(
        {
            "rank": range(1, len(picked) + 1),
            "cluster": [c.cluster for c in picked],
            "hosts": [c.size for c in picked],
            "unknown_share": [c.unknown_share for c in picked],
        },
        schema={"rank": pl.Int64, "cluster": pl.Int64, "hosts": pl.Int64, "unknown_share": pl.Float64},
    )
    traffic = per_host.group_by("cluster").agg(
        pl.len().alias("hosts_seen"),
        pl.col("packets").sum(),
        pl.col("packets").median().alias("packets_per_host"),
        (pl.col("syn").sum() / pl.col("packets").sum()).alias("syn_share"),
        pl.col("dsts").median().alias("dsts_per_host"),
        pl.col("hours").median().alias("active_hours"),
        pl.col("first").min(),
        pl.col("last").max(),
    )
    one_day = pl.col("first").dt.date() == pl.col("last").dt.date()
    traffic = traffic.with_columns(
        *(
            pl.when(one_day)
            .then(pl.col(c).dt.strftime("%H:%M"))
            .otherwise(pl.col(c).dt.strftime("%m-%d %H:%M"))
            .alias(f"{c}_seen")
            for c in ("first", "last")
        )
    )
    names = {p: proto_name(p) for p in per_service["proto"].unique().to_list()}
    services = (
        per_service.with_columns(
            (pl.col("n") / pl.col("n").sum().over("cluster")).alias("share"),
            pl.col("proto").replace_strict(names, return_dtype=pl.String).alias("name"),
        )
        .with_columns(
            pl.when(pl.col("dst_port").is_null())
            .then(pl.col("name"))
            .otherwise(pl.format("{}/{}", pl.col("dst_port"), pl.col("name")))
            .alias("name")
        )
        .sort(["cluster", "n", "proto", "dst_port"], descending=[False, True, False, False], nulls_last=True)
    )
    ports = services.group_by("cluster", maintain_order=True).agg(
        pl.len().alias("ports"),
        pl.format("{} {}%", pl.col("name"), _percent(pl.col("share")))
        .head(ports_shown)
        .str.join(", ")
        .alias("top_ports"),
    )
    mix = (
        members.filter(pl.col("label") != UNKNOWN)
        .group_by("cluster", "label")
        .len()
        .sort(["cluster", "len", "label"], descending=[False, True, False])
        .group_by("cluster", maintain_order=True)
        .agg(pl.format("{} {}", pl.col("label"), pl.col("len")).str.join(", ").alias("labels"))
    )
    hours = np.zeros((len(picked), 24))
    row = {c.cluster: i for i, c in enumerate(picked)}
    for cid, hour, n in per_hour.filter(pl.col("cluster").is_in(list(row))).iter_rows():
        hours[row[cid], hour] = n
    profile = pl.DataFrame(
        {"cluster": [c.cluster for c in picked], "hour_profile": [sparkline(h) for h in hours]},
        schema={"cluster": pl.Int64, "hour_profile": pl.String},
    )
    out = (
        ranks.join(traffic, on="cluster", how="left")
        .join(ports, on="cluster", how="left")
        .join(mix, on="cluster", how="left")
        .join(profile, on="cluster", how="left")
        .with_columns(pl.col("labels").fill_null(""))
        .sort("rank")
    )
    return out.select([pl.col(c).cast(t) for c, t in PROFILE_SCHEMA.items()])


def cluster_activity_figures(
    packets: pl.LazyFrame,
    ips: np.ndarray,
    clusters: np.ndarray,
    labels: np.ndarray,
    profiles: pl.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    title_prefix: str = "",
    max_hosts: int = 3000,
) -> list[Path]:
    """One activity figure per profiled cluster, `out_dir/cluster-<id>.png`, in rank order.

    The packets of all profiled clusters' members are read in one scan (`ts`, `src_ip`, `dst_ip`, `dst_port`),
    then `activity_frame` and `activity_figure` draw each cluster's hosts, coloured by their labels.

    Args:
        packets: the day's packets.
        ips: address of each clustered host, uint32 (n,), unique.
        clusters: its cluster id, int (n,).
        labels: its label, str (n,); `unknown` = none.
        profiles: `cluster_profiles` output (reads `rank`, `cluster`, `hosts`, `unknown_share`).
        out_dir: folder of the PNG files.
        title_prefix: put before each title, e.g. the network and day.
        max_hosts: the most active hosts drawn per cluster.

    Returns:
        The paths written; a cluster whose hosts sent no packet gets no figure.
    """
    if profiles.is_empty():
        return []
    ips, clusters, labels = _host_arrays(ips, clusters, labels)
    ids = profiles["cluster"].to_list()
    mine = np.isin(clusters, ids)
    hosts = pl.DataFrame(
        {"src_ip": ips[mine], "cluster": clusters[mine], "label": labels[mine]},
        schema={"src_ip": pl.UInt32, "cluster": pl.Int64, "label": pl.String},
    )
    sent = (
        packets.select("ts", "src_ip", "dst_ip", "dst_port")
        .join(hosts.lazy().select("src_ip", "cluster"), on="src_ip", how="inner")
        .collect()
        .partition_by("cluster", as_dict=True, include_key=False)
    )
    out = []
    for r in profiles.sort("rank").iter_rows(named=True):
        cid = r["cluster"]
        if (cid,) not in sent:
            continue
        frame = activity_frame(
            sent[(cid,)].lazy(), hosts.filter(pl.col("cluster") == cid).select("src_ip", "label"), max_hosts
        )
        title = (
            f"{title_prefix}cluster {cid} (rank {r['rank']}): {r['hosts']} hosts, "
            f"{r['unknown_share']:.0%} unknown"
        )
        out.append(activity_figure(frame, Path(out_dir) / f"cluster-{cid}.png", title))
    return out


def reassigned_noise(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Hosts that are noise before the alignment and in a cluster after it, bool (n,).

    Args:
        before: cluster id per host in the network's own embedding space, int (n,); -1 = noise.
        after: cluster id per host after alignment to the provider's space, int (n,).
    """
    before = np.asarray(before, dtype=np.int64)
    after = np.asarray(after, dtype=np.int64)
    if before.ndim != 1 or before.shape != after.shape:
        raise ValueError(f"before {before.shape} and after {after.shape} must both be (n,)")
    return (before == NOISE) & (after != NOISE)


def noise_reassigned_figure(
    coords: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str,
    max_categories: int = 12,
) -> Path:
    """t-SNE map of the noise hosts that the alignment puts into clusters ([TNSM] Fig. 6a).

    Grey: noise before and after. Light: hosts clustered before, in the colour of their cluster after (so that
    a reassigned host stands next to the cluster it joins in the same colour; light grey if noise after).
    Large, outlined: the reassigned hosts, coloured by their new cluster; the `max_categories` clusters that
    receive the most get a colour and a legend entry each, the others one `other clusters` entry. Legend
    entries carry host counts.

    Args:
        coords: 2-D map of the customer's hosts, float (n, 2), e.g. from `figures.tsne_embedding`.
        before: cluster id per host in its own embedding space, int (n,); -1 = noise.
        after: cluster id per host after alignment, int (n,).
        path: PNG file.
        title: figure title.
        max_categories: new clusters coloured at most.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from darkembed.report.figures import PALETTE, save_figure

    moved = reassigned_noise(before, after)
    before = np.asarray(before, dtype=np.int64)
    after = np.asarray(after, dtype=np.int64)
    coords = np.asarray(coords, dtype=float)
    if coords.shape != (moved.size, 2):
        raise ValueError(f"coords must be ({moved.size}, 2), got {coords.shape}")
    ids, counts = np.unique(after[moved], return_counts=True)
    shown = [int(c) for _, c in sorted(zip(-counts, ids, strict=True))][:max_categories]
    colour = {cid: PALETTE[i % len(PALETTE)] for i, cid in enumerate(shown)}
    light, grey = "#9ecae1", "#cccccc"

    fig = Figure(figsize=(7.5, 6))
    ax = fig.add_subplot()
    handles = []

    def entry(color: str, label: str, size: float, **kw) -> None:
        handles.append(Line2D([], [], ls="", marker="o", ms=size, color=color, label=label, **kw))

    both = (before == NOISE) & (after == NOISE)
    if both.any():
        ax.scatter(coords[both, 0], coords[both, 1], s=3, c=grey, linewidths=0)
        entry(grey, f"noise before and after ({int(both.sum())})", 4)
    was = before != NOISE
    if was.any():
        cols = [colour.get(int(c), light if c != NOISE else grey) for c in after[was]]
        ax.scatter(coords[was, 0], coords[was, 1], s=4, c=cols, alpha=0.3, linewidths=0)
        entry(light, f"clustered before ({int(was.sum())})", 4, alpha=0.5)
    for cid in shown:
        m = moved & (after == cid)
        ax.scatter(coords[m, 0], coords[m, 1], s=22, color=colour[cid], edgecolors="black", linewidths=0.4)
        entry(colour[cid], f"noise → cluster {cid} ({int(m.sum())})", 6, markeredgecolor="black")
    rest = moved & ~np.isin(after, shown)
    if rest.any():
        ax.scatter(
            coords[rest, 0], coords[rest, 1], s=22, color="#555555", edgecolors="black", linewidths=0.4
        )
        entry("#555555", f"noise → other clusters ({int(rest.sum())})", 6, markeredgecolor="black")
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    if handles:
        ax.legend(
            handles=handles, title=f"reassigned noise: {int(moved.sum())} of {moved.size} hosts", fontsize=7,
            loc="center left", bbox_to_anchor=(1, 0.5),
        )  # fmt: skip
    return save_figure(fig, path)
