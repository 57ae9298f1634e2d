"""The i-DarkVec corpus: sentences of senders per destination service (docs/method.md 3.2, 3.3, 7.6).

Reads: a day's `packets` partition (through `activity.active_packets`). Writes:
`<root>/corpus/network=<net>/day=<d>/sentences.parquet` (service, chunk, tokens as list<uint32>) and
`corpus.txt`, the same sentences as a gensim LineSentence file (one sentence per line, tokens are the senders'
addresses as decimal uint32) so Word2Vec trains from it at full speed in `corpus_file` mode.

Variants:

* `per-port` (default): per service, the senders in time order, consecutive repeats removed, cut into chunks of
  at most `max_sentence` tokens inside the service. Sentences are ordered by service popularity (packets,
  descending; `other` last) then chunk.
* `stream` (the authors' GNN code, parity): services ordered by popularity, the most popular group moved to the
  end, all concatenated into one stream, consecutive repeats removed, cut every `max_sentence` tokens (sentences
  straddle services).
* `hourly` (DarkVec): one sentence per (hour, service), in (hour, service) order, consecutive repeats removed,
  cut at `max_sentence` tokens.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

from darkembed.activity import OTHER
from darkembed.config import CorpusConfig

CORPUS = pa.schema(
    [
        pa.field("service", pa.int32(), nullable=False),
        pa.field("chunk", pa.int32(), nullable=False),
        pa.field("tokens", pa.list_(pa.uint32()), nullable=False),
    ]
)


def _dedup(lf: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Drop rows whose sender repeats the previous row's within the same `keys` group (rows already ordered)."""
    same = pl.col("src_ip") == pl.col("src_ip").shift(1)
    for k in keys:
        same = same & (pl.col(k) == pl.col(k).shift(1))
    return lf.filter(~same.fill_null(False))


def build_corpus(active: pl.LazyFrame, cfg: CorpusConfig) -> pl.DataFrame:
    """Sentences of the day (see the module docstring for the variants).

    Args:
        active: output of `activity.active_packets` (needs `ts`, `src_ip`, `service`).
        cfg: corpus configuration.

    Returns:
        DataFrame with columns `service` (Int32; -2 for `stream` sentences that straddle services), `chunk`
        (Int32, index of the sentence within its service or stream), `tokens` (List[UInt32]).
    """
    lf = active.select("ts", "src_ip", "service")
    popularity = (
        lf.group_by("service")
        .agg(pl.len().alias("n"))
        .with_columns(pl.when(pl.col("service") == OTHER).then(-1).otherwise(pl.col("n")).alias("rank_key"))
        .sort(["rank_key", "service"], descending=[True, False])
        .with_row_index("rank")
        .select("service", pl.col("rank").cast(pl.Int32))
    )
    size = cfg.max_sentence
    if cfg.variant == "per-port":
        # A stable sort on time alone (ties keep capture order) and window expressions per service are several
        # times faster than sorting on (service, time) over the whole day.
        rows = lf.sort("ts", maintain_order=True)
        if cfg.dedup_consecutive:
            prev = pl.col("src_ip").shift(1).over("service")
            rows = rows.filter((pl.col("src_ip") != prev).fill_null(True))
        rows = rows.with_columns(
            (pl.int_range(pl.len()).over("service") // size).cast(pl.Int32).alias("chunk")
        )
        out = rows.group_by(["service", "chunk"]).agg(pl.col("src_ip").alias("tokens"))
        return (
            out.join(popularity, on="service")
            .sort(["rank", "chunk"])
            .select("service", "chunk", "tokens")
            .collect()
        )
    if cfg.variant == "stream":
        # The most popular group goes last (the authors meant to push `other` to the end;
        # docs/method.md 7.1 item 8).
        n_groups = popularity.select(pl.len()).collect().item()
        order = popularity.with_columns(
            pl.when(pl.col("rank") == 0)
            .then(pl.lit(n_groups, pl.Int32))
            .otherwise(pl.col("rank"))
            .alias("rank")
        )
        rows = lf.join(order, on="service").sort(["rank", "ts"], maintain_order=True)
        if cfg.dedup_consecutive:
            rows = _dedup(rows, [])
        rows = rows.with_columns((pl.int_range(pl.len()) // size).cast(pl.Int32).alias("chunk"))
        out = rows.group_by("chunk", maintain_order=True).agg(pl.col("src_ip").alias("tokens"))
        return out.sort("chunk").select(pl.lit(-2, pl.Int32).alias("service"), "chunk", "tokens").collect()
    # hourly
    rows = lf.with_columns(pl.col("ts").dt.truncate("1h").alias("hour")).sort(
        ["hour", "service", "ts", "src_ip"]
    )
    if cfg.dedup_consecutive:
        rows = _dedup(rows, ["hour", "service"])
    rows = rows.with_columns(
        (pl.int_range(pl.len()).over(["hour", "service"]) // size).cast(pl.Int32).alias("part"),
    )
    out = rows.group_by(["hour", "service", "part"], maintain_order=True).agg(
        pl.col("src_ip").alias("tokens")
    )
    out = out.sort(["hour", "service", "part"]).with_columns(
        (pl.int_range(pl.len()).over("service")).cast(pl.Int32).alias("chunk")
    )
    return out.select("service", "chunk", "tokens").collect()


def write_line_sentences(corpus: pl.DataFrame, path: Path) -> tuple[int, int]:
    """Write sentences as a gensim LineSentence file; returns (sentences, tokens)."""
    lines = corpus.select(pl.col("tokens").cast(pl.List(pl.String)).list.join(" ").alias("line"))
    tokens = int(corpus.select(pl.col("tokens").list.len().sum()).item() or 0)
    with open(path, "w") as f:
        for chunk in lines.iter_slices(50_000):
            text = "\n".join(chunk["line"].to_list())
            if text:
                f.write(text)
                f.write("\n")
    return corpus.height, tokens
