"""Import the research group's legacy text traces into the `packets` schema (compatibility import).

Two formats (docs/data-formats.md section 2), gzip-compressed or not, space-separated, `-` for a missing value:

* hourly `trace_YYYYMMDD_HH_MM_SS_MS.log.gz` with a header row: `ts ethtype src_ip src_port dst_ip dst_port proto
  pck_len tcp_flags mirai tcp_seq ttl t_mss t_win t_ts t_sack t_sackp`;
* the older DarkVec logs: `ts src_ip dst_port proto pck_len` (header optional).

Rows whose required fields (timestamp, source address, protocol) do not parse are skipped, counted as
`bad_row` and reported with their line number. The precomputed `mirai` flag is not imported: darkembed computes
the fingerprint itself from `tcp_seq` and `dst_ip`.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import polars as pl
import pyarrow as pa

from darkembed.ingest.capture import CaptureError, IngestReport, read_raw
from darkembed.schemas import PACKETS, conform

TRACE_COLUMNS = [
    "ts",
    "ethtype",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "proto",
    "pck_len",
    "tcp_flags",
    "mirai",
    "tcp_seq",
    "ttl",
    "t_mss",
    "t_win",
    "t_ts",
    "t_sack",
    "t_sackp",
]
DARKVEC_COLUMNS = ["ts", "src_ip", "dst_port", "proto", "pck_len"]
_PROTO_NAMES = {"tcp": 6, "udp": 17, "icmp": 1}
_FLAG_LETTERS = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16, "U": 32, "E": 64, "C": 128, "N": 256}


def ipv4_to_u32(col: pl.Expr) -> pl.Expr:
    """Dotted-quad strings to UInt32 (null where not a valid address)."""
    parts = col.str.strip_chars().str.split_exact(".", 3)
    octs = [parts.struct.field(f"field_{i}").cast(pl.UInt32, strict=False) for i in range(4)]
    valid = pl.all_horizontal([o.is_not_null() & (o <= 255) for o in octs]) & col.str.count_matches(
        r"^\s*\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\s*$"
    ).eq(1)
    value = octs[0] * 16777216 + octs[1] * 65536 + octs[2] * 256 + octs[3]
    return pl.when(valid).then(value).otherwise(None).cast(pl.UInt32)


def _int(col: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(col).str.strip_chars().cast(pl.Int64, strict=False).cast(dtype, strict=False)


def _flags(col: str) -> pl.Expr:
    s = pl.col(col).str.strip_chars()
    as_int = s.cast(pl.Int64, strict=False)
    as_hex = s.str.strip_prefix("0x").str.to_integer(base=16, strict=False)
    letters = sum(
        (s.str.contains(letter, literal=True).cast(pl.Int64) * bit for letter, bit in _FLAG_LETTERS.items()),
        pl.lit(0, pl.Int64),
    )
    is_letters = s.str.contains(r"^[FSRPAUECN.]+$")
    hexlike = s.str.starts_with("0x")
    return (
        pl.when(hexlike)
        .then(as_hex)
        .when(as_int.is_not_null())
        .then(as_int)
        .when(is_letters)
        .then(letters)
        .otherwise(None)
        .cast(pl.UInt16, strict=False)
    )


def _proto(col: str) -> pl.Expr:
    s = pl.col(col).str.strip_chars().str.to_lowercase()
    named = s.replace_strict(_PROTO_NAMES, default=None, return_dtype=pl.Int64)
    return pl.coalesce(s.cast(pl.Int64, strict=False), named).cast(pl.UInt8, strict=False)


def read_legacy(path: str | Path, *, max_bad: int = 1000) -> tuple[pa.Table, IngestReport]:
    """Read a legacy trace or DarkVec log into a `packets` table.

    Raises:
        CaptureError: the file is neither format (the message names it and shows its first line).
    """
    path = Path(path)
    t0 = time.perf_counter()
    report = IngestReport(file=str(path))
    raw = read_raw(path, report)
    text_head = raw[:4096].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    tokens = text_head.split()
    if tokens[:3] == TRACE_COLUMNS[:3]:
        report.format, columns, has_header = "trace", TRACE_COLUMNS, True
    elif tokens == DARKVEC_COLUMNS:
        report.format, columns, has_header = "darkvec-log", DARKVEC_COLUMNS, True
    elif len(tokens) == 5 and _is_float(tokens[0]):
        report.format, columns, has_header = "darkvec-log", DARKVEC_COLUMNS, False
    else:
        raise CaptureError(
            f"{path}: not a capture (libpcap/pcapng) nor a legacy text trace (header 'ts ethtype src_ip ...' "
            f"or DarkVec log 'ts src_ip dst_port proto pck_len'); first line: {text_head[:120]!r}"
        )
    if not raw.strip():
        report.seconds = time.perf_counter() - t0
        return PACKETS.empty_table(), report
    df = pl.read_csv(
        io.BytesIO(raw),
        separator=" ",
        has_header=False,
        skip_rows=1 if has_header else 0,
        new_columns=columns,
        infer_schema=False,
        null_values=["-"],
        truncate_ragged_lines=True,
    ).with_row_index("line", offset=2 if has_header else 1)
    # Ragged lines: a row with fewer fields than the header has nulls, more fields are cut off.
    for c in columns:
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(c))
    ts = pl.col("ts").str.strip_chars().cast(pl.Float64, strict=False)
    out = df.select(
        "line",
        # Microsecond fraction: round at the microsecond to undo float error, then store as ns.
        ((ts * 1e6).round(0).cast(pl.Int64, strict=False) * 1000).alias("ts"),
        ipv4_to_u32(pl.col("src_ip")).alias("src_ip"),
        (ipv4_to_u32(pl.col("dst_ip")) if "dst_ip" in columns else pl.lit(None, pl.UInt32)).alias("dst_ip"),
        _proto("proto").alias("proto"),
        _int("pck_len", pl.UInt16).alias("ip_len"),
        (_int("ttl", pl.UInt8) if "ttl" in columns else pl.lit(None, pl.UInt8)).alias("ttl"),
        pl.lit(None, pl.UInt16).alias("ip_id"),
        pl.lit(None, pl.UInt16).alias("frag_off"),
        pl.lit(None, pl.UInt8).alias("ip_flags"),
        (_int("src_port", pl.UInt16) if "src_port" in columns else pl.lit(None, pl.UInt16)).alias("src_port"),
        _int("dst_port", pl.UInt16).alias("dst_port"),
        (_flags("tcp_flags") if "tcp_flags" in columns else pl.lit(None, pl.UInt16)).alias("tcp_flags"),
        (_int("tcp_seq", pl.UInt32) if "tcp_seq" in columns else pl.lit(None, pl.UInt32)).alias("tcp_seq"),
        pl.lit(None, pl.UInt32).alias("tcp_ack"),
        (
            _opt("t_win", pl.UInt16, zero_is_null=False) if "t_win" in columns else pl.lit(None, pl.UInt16)
        ).alias("tcp_win"),
        (_opt("t_mss", pl.UInt16) if "t_mss" in columns else pl.lit(None, pl.UInt16)).alias("tcp_mss"),
        pl.lit(None, pl.UInt8).alias("tcp_wscale"),
        (_sackp() if "t_sackp" in columns else pl.lit(None, pl.Boolean)).alias("tcp_sackp"),
        (_opt("t_ts", pl.UInt32) if "t_ts" in columns else pl.lit(None, pl.UInt32)).alias("tcp_tsval"),
        pl.lit(None, pl.UInt8).alias("icmp_type"),
        pl.lit(None, pl.UInt8).alias("icmp_code"),
    )
    # Ports only mean something for TCP and UDP.
    l4 = pl.col("proto").is_in([6, 17])
    out = out.with_columns(
        pl.when(l4).then(pl.col("src_port")).alias("src_port"),
        pl.when(l4).then(pl.col("dst_port")).alias("dst_port"),
    )
    good = pl.col("ts").is_not_null() & pl.col("src_ip").is_not_null() & pl.col("proto").is_not_null()
    bad = out.filter(~good)
    report.records = out.height
    if bad.height:
        report.add_skip("bad_row", bad.height)
        report.bad = [(int(line), "bad_row") for line in bad["line"].head(max_bad).to_list()]
    out = out.filter(good).drop("line")
    out = out.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    table = conform(out.to_arrow(), PACKETS, str(path))
    report.kept = table.num_rows
    report.seconds = time.perf_counter() - t0
    return table, report


def _opt(col: str, dtype: pl.DataType, zero_is_null: bool = True) -> pl.Expr:
    v = _int(col, dtype)
    # The authors' tools write 0 (or '-') for an absent option.
    return pl.when(v != 0).then(v) if zero_is_null else v


def _sackp() -> pl.Expr:
    v = pl.col("t_sackp").str.strip_chars()
    return pl.when(v.is_in(["1", "true", "True"])).then(pl.lit(True))


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
