"""One label per host and day, by precedence, with every source that matched.

Reads one day of the `packets` dataset of one network, the scanner lists in force that day and (for a
honeypot) that day's Cowrie events; returns the rows of the `labels` dataset (schema `LABELS`).

The hosts are the day's packet sources: a Cowrie source that sent no captured packet is not labelled (it has no
embedding to label); their number is logged. Each host collects candidate kinds:
    * `scanner`: its address falls in a scanner prefix in force (longest prefix; the class is the label),
    * `mirai`, `zmap`, `masscan`, `backscatter`: packet fingerprints over the thresholds,
    * `exploiter`, `brute-forcer`, `spammer`: Cowrie rules.
The label is the first kind of `LabelsConfig.precedence` the host matched (a scanner's label is its class name,
the others are the kind's name), else `unknown`. With the default precedence (scanner > mirai > exploiter >
brute-forcer > spammer) honeypot labels only fill hosts that no list or fingerprint labelled, and `zmap`,
`masscan` and `backscatter` never label: they are tool/victim evidence, recorded in `sources` only.

Source strings (the `source` column and the `sources` list, always in this order):
    `scanner:<list name>`, `fingerprint:mirai`, `fingerprint:zmap`, `fingerprint:masscan`,
    `fingerprint:backscatter`, `honeypot:exploiter`, `honeypot:brute-forcer`, `honeypot:spammer`,
    `external:mirai`, `external:exploiter`, `external:brute-forcer`, `external:spammer`;
    an `unknown` host's `source` is `none`. External labels (e.g. a spam blocklist, docs/method.md 7.6) come in
    through `label_day(..., external=...)`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import polars as pl
import pyarrow as pa

from darkembed.config import LabelsConfig
from darkembed.labels.cowrie import HONEYPOT_COLUMNS, honeypot_labels
from darkembed.labels.fingerprints import host_fingerprints
from darkembed.labels.scanner_index import ScannerIndex
from darkembed.labels.scanner_list import ScannerList
from darkembed.schemas import LABELS, conform
from darkembed.vocabulary import UNKNOWN

log = logging.getLogger(__name__)

#: Kinds an `external` labels frame may carry.
EXTERNAL_KINDS = ("mirai", "exploiter", "brute-forcer", "spammer")
NO_SOURCE = "none"

#: Source string of every non-scanner kind.
KIND_SOURCES: dict[str, str] = {
    "mirai": "fingerprint:mirai",
    "zmap": "fingerprint:zmap",
    "masscan": "fingerprint:masscan",
    "backscatter": "fingerprint:backscatter",
    "exploiter": "honeypot:exploiter",
    "brute-forcer": "honeypot:brute-forcer",
    "spammer": "honeypot:spammer",
}


def label_day(
    packets: pl.LazyFrame | pl.DataFrame,
    day: dt.date,
    scanner_lists: Sequence[ScannerList] | ScannerIndex,
    cowrie_events: pl.DataFrame | pl.LazyFrame | None = None,
    cfg: LabelsConfig | None = None,
    external: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Label every source host of one network's day.

    Args:
        packets: the day's packets (schema `PACKETS`), lazy or eager.
        day: the UTC day; picks the scanner lists (and JSON entries) in force and the Cowrie events counted.
        scanner_lists: loaded lists in priority order (an index is built for `day` with `cfg.org_classes`), or
            a prebuilt `ScannerIndex`.
        cowrie_events: the day's Cowrie events as `read_cowrie` returns them, or None (no honeypot).
        cfg: the `labels` configuration section; defaults to `LabelsConfig()`.
        external: optional labels from outside (e.g. a spam blocklist feed): columns `src_ip` (uint32) and
            `label`, one of `EXTERNAL_KINDS`. Such a label counts as that kind for the precedence, with source
            `external:<kind>` (an internal source of the same kind is preferred as `source`).

    Returns:
        One row per source host, sorted by `src_ip`, with the columns of `LABELS` (see `schemas.LABELS`).
    """
    cfg = cfg or LabelsConfig()
    index = (
        scanner_lists
        if isinstance(scanner_lists, ScannerIndex)
        else ScannerIndex(scanner_lists, day=day, org_classes=cfg.org_classes)
    )
    hosts = host_fingerprints(packets, cfg.fingerprints).collect()

    m = index.match(hosts["src_ip"].to_numpy())
    hit = m.matched
    hosts = hosts.with_columns(
        pl.Series("scanner", hit, dtype=pl.Boolean),
        pl.Series("scanner_class", m.column("cls").tolist(), dtype=pl.String),
        pl.Series("org", m.column("org").tolist(), dtype=pl.String),
        pl.Series("scanner_list", m.column("list_name").tolist(), dtype=pl.String),
        pl.Series("prefix", m.column("start"), dtype=pl.UInt32),
        pl.Series("prefix_len", m.column("plen"), dtype=pl.UInt8),
    ).with_columns(
        pl.when("scanner").then(pl.col("prefix")).alias("prefix"),
        pl.when("scanner").then(pl.col("prefix_len")).alias("prefix_len"),
    )

    hp_cols = [c for c in HONEYPOT_COLUMNS if c != "src_ip"]
    if cowrie_events is not None:
        hp = honeypot_labels(cowrie_events, cfg.honeypot, day)
        outside = hp.join(hosts.select("src_ip"), on="src_ip", how="anti").height
        if outside:
            log.info(
                "labels %s: %d Cowrie sources sent no captured packet and are not labelled", day, outside
            )
        hosts = hosts.join(hp, on="src_ip", how="left")
    else:
        hosts = hosts.with_columns([pl.lit(None, dtype=HONEYPOT_COLUMNS[c]).alias(c) for c in hp_cols])
    hosts = hosts.with_columns(
        [pl.col(c).fill_null(0 if HONEYPOT_COLUMNS[c] == pl.Int64() else False) for c in hp_cols]
    )

    hosts = _join_external(hosts, external)

    def source_of(kind: str) -> pl.Expr:
        if kind == "scanner":
            return pl.concat_str([pl.lit("scanner:"), pl.col("scanner_list")])
        return pl.lit(KIND_SOURCES.get(kind) or f"external:{kind[4:]}")

    # The `sources` lists are built once per distinct combination of matched kinds (a handful per day) and
    # joined back: building a list per host in polars (concat_list + drop_nulls) costs ~1 s per million hosts.
    order = ["scanner", *KIND_SOURCES, *(f"ext:{k}" for k in EXTERNAL_KINDS)]
    mask = pl.sum_horizontal([pl.col(k).cast(pl.UInt16) * (1 << i) for i, k in enumerate(order)])
    hosts = hosts.with_columns(mask.cast(pl.UInt16).alias("_mask"))
    combos = hosts.select("_mask", "scanner_list").unique()
    combos = combos.with_columns(
        pl.Series(
            "sources",
            [
                [
                    f"scanner:{lst}" if k == "scanner" else KIND_SOURCES.get(k) or f"external:{k[4:]}"
                    for i, k in enumerate(order)
                    if bits & (1 << i)
                ]
                for bits, lst in combos.iter_rows()
            ],
            dtype=pl.List(pl.String),
        )
    )
    hosts = hosts.join(combos, on=["_mask", "scanner_list"], how="left", nulls_equal=True)

    label: pl.Expr = pl.lit(UNKNOWN)
    source: pl.Expr = pl.lit(NO_SOURCE)
    for kind in reversed(cfg.precedence):
        value = pl.col("scanner_class") if kind == "scanner" else pl.lit(kind)
        if kind in EXTERNAL_KINDS:
            ext = f"ext:{kind}"
            label = pl.when(pl.col(kind) | pl.col(ext)).then(value).otherwise(label)
            source = (
                pl.when(pl.col(kind)).then(source_of(kind)).when(ext).then(source_of(ext)).otherwise(source)
            )
        else:
            label = pl.when(pl.col(kind)).then(value).otherwise(label)
            source = pl.when(pl.col(kind)).then(source_of(kind)).otherwise(source)

    out = hosts.with_columns(label.alias("label"), source.alias("source")).sort("src_ip")
    table = conform(out.select(LABELS.names).to_arrow(), LABELS, f"labels {day}")
    counts = out["label"].value_counts(sort=True)
    log.info(
        "labels %s: %d hosts, %d labelled; %s",
        day,
        out.height,
        out.height - int((out["label"] == UNKNOWN).sum()),
        ", ".join(f"{r['label']}={r['count']}" for r in counts.head(12).iter_rows(named=True)),
    )
    return pl.from_arrow(table)  # type: ignore[return-value]


def _join_external(hosts: pl.DataFrame, external: pl.DataFrame | None) -> pl.DataFrame:
    """Add one boolean `ext:<kind>` column per `EXTERNAL_KINDS` entry (false without an external frame)."""
    if external is None or external.is_empty():
        return hosts.with_columns([pl.lit(False).alias(f"ext:{k}") for k in EXTERNAL_KINDS])
    missing = {"src_ip", "label"} - set(external.columns)
    if missing:
        raise ValueError(f"external labels need columns src_ip and label; missing {sorted(missing)}")
    bad = sorted(set(external["label"].unique().to_list()) - set(EXTERNAL_KINDS))
    if bad:
        raise ValueError(f"external labels {bad} are not among {', '.join(EXTERNAL_KINDS)}")
    flags = (
        external.select(pl.col("src_ip").cast(pl.UInt32), "label")
        .unique()
        .with_columns(pl.lit(True).alias("_hit"))
        .pivot(on="label", index="src_ip", values="_hit")
    )
    flags = flags.rename({k: f"ext:{k}" for k in EXTERNAL_KINDS if k in flags.columns})
    hosts = hosts.join(flags, on="src_ip", how="left")
    return hosts.with_columns(
        [
            pl.col(f"ext:{k}").fill_null(False)
            if f"ext:{k}" in hosts.columns
            else pl.lit(False).alias(f"ext:{k}")
            for k in EXTERNAL_KINDS
        ]
    )


def labels_table(frame: pl.DataFrame, where: str = "labels") -> pa.Table:
    """The `labels` frame as an Arrow table conforming to `LABELS` (for `store` writers)."""
    return conform(frame.to_arrow(), LABELS, where)
