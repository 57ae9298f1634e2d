"""Read libpcap and pcapng captures (optionally gzip-compressed) into `packets` tables.

Reads: capture files. Writes: nothing (returns a pyarrow Table conforming to `darkembed.schemas.PACKETS` and an
`IngestReport`).

Damaged input is a fact of life: every good record is kept, every bad one is counted by reason and reported with
its byte offset (in the decompressed stream for `.gz` files); after a damaged record header the reader
resynchronises on the next plausible record and reports the byte range it skipped; packets whose IPv4 header
checksum is wrong, or whose timestamp lies far outside the file's own time span, are not kept as rows. Only a file
that is not a capture at all raises `CaptureError`. The rules are in docs/ingest.md.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from darkembed.ingest import kernels as K
from darkembed.schemas import PACKETS

try:  # ISA-L inflates ~2.5x faster than zlib; same API.
    from isal import igzip as _gzip
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a dependency, zlib is the fallback
    import gzip as _gzip

    _zlib = zlib

log = logging.getLogger(__name__)

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("pcap", False, False),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": ("pcap", True, False),
    b"\x4d\x3c\xb2\xa1": ("pcap-ns", False, True),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": ("pcap-ns", True, True),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"


#: Default largest step between the timestamps of consecutive records of one file (docs/ingest.md).
MAX_TS_GAP_S = 86_400.0


class CaptureError(ValueError):
    """The file is not a capture darkembed can read (the message names it and says why)."""


@dataclass(frozen=True)
class CaptureChecks:
    """Integrity checks of the capture reader (docs/ingest.md).

    Attributes:
        verify_checksums: drop packets whose IPv4 header checksum is wrong (counted as `bad_ip_checksum`). Switch
            off for captures taken on a host with checksum offload: the packets are kept and counted in
            `IngestReport.flagged`.
        max_ts_gap_s: the largest plausible step, in seconds, between the timestamps of records of one file. It
            guides resynchronisation, and rows whose timestamp lies outside the file's main time span (a span
            where sorted timestamps never step by more than this) are dropped as `ts_outside_window`. 0 switches
            timestamp checks off.
    """

    verify_checksums: bool = True
    max_ts_gap_s: float = MAX_TS_GAP_S


@dataclass
class IngestReport:
    """What reading one source file did.

    Attributes:
        file: the source path.
        format: `pcap`, `pcap-ns`, `pcapng`, `trace` or `darkvec-log`.
        compressed: whether the file was gzip-compressed.
        records: records (packets) found.
        kept: rows returned.
        skipped: count per reason of records not returned (`ipv6`, `non_ip`, `bad_ip_header`, ...).
        bad: `(byte offset, reason)` of damaged records, at most `max_bad` of them (offsets in the decompressed
            stream for compressed files).
        bytes: bytes read from disk.
        seconds: wall time of the read.
        error: a problem that ended the read early (truncated file, corrupt gzip stream), or None.
        linktypes: the link types seen.
        gaps: `(offset, length, reason)` of byte ranges skipped to resynchronise after a damaged record header
            (`bad_record_header`, `bad_block_header`; offsets in the decompressed stream) and of decompressed data
            a damaged gzip stream lost (`gzip_corrupt`, `gzip_cut`; length -1 when unknown).
        gzip_lost: `(start, end)` compressed byte offsets not inflated because the gzip stream is damaged, or None.
        flagged: count per reason of rows kept although suspect (`bad_ip_checksum` when checksums are not
            verified).
    """

    file: str
    format: str = "unknown"
    compressed: bool = False
    records: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    bad: list[tuple[int, str]] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    linktypes: list[int] = field(default_factory=list)
    gaps: list[tuple[int, int, str]] = field(default_factory=list)
    gzip_lost: tuple[int, int] | None = None
    flagged: dict[str, int] = field(default_factory=dict)

    @property
    def damaged(self) -> int:
        """Records skipped because they were damaged (not counting out-of-scope IPv6 or non-IP frames)."""
        return sum(v for k, v in self.skipped.items() if k not in K.NOT_DAMAGE and k != "outside_day")

    def add_skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def as_row(self) -> dict:
        return {
            "file": self.file,
            "format": self.format,
            "records": self.records,
            "kept": self.kept,
            "skipped": dict(self.skipped),
            "bytes": self.bytes,
            "seconds": self.seconds,
            "error": self.error,
            "gaps": [list(g) for g in self.gaps],
            "flagged": dict(self.flagged),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IngestReport:
        """The report an `as_row` dict describes (with its damaged records when the row carries `bad`); what
        `as_row` leaves out (`compressed`, `linktypes`, `gzip_lost`) keeps its default."""
        return cls(
            file=row["file"],
            format=row["format"],
            records=row["records"],
            kept=row["kept"],
            skipped=dict(row["skipped"]),
            bad=[(int(o), str(r)) for o, r in row.get("bad", [])],
            bytes=row["bytes"],
            seconds=row["seconds"],
            error=row["error"],
            gaps=[(int(o), int(n), str(r)) for o, n, r in row.get("gaps", [])],
            flagged=dict(row.get("flagged", {})),
        )

    def summary(self) -> str:
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        msg = f"{self.file}: {self.kept}/{self.records} records kept ({self.format}); skipped: {skipped}"
        if self.bad:
            first = ", ".join(f"{r} at offset {o}" for o, r in self.bad[:3])
            msg += f"; first damaged: {first}"
        resync = [g for g in self.gaps if g[2] in ("bad_record_header", "bad_block_header")]
        if resync:
            ranges = ", ".join(f"{ln} bytes at offset {o}" for o, ln, _ in resync[:3])
            msg += f"; resynchronised after {len(resync)} damaged header(s), skipped {ranges}"
        if self.flagged:
            msg += "; kept although suspect: " + ", ".join(
                f"{k}={v}" for k, v in sorted(self.flagged.items())
            )
        if self.error:
            msg += f"; {self.error}"
        return msg


def _gunzip(raw: bytes, report: IngestReport) -> bytes:
    """Inflate every gzip member; on a corrupt or cut stream keep what inflated and say exactly what was lost."""
    try:  # fast path: whole, well-formed files inflate in one call, without joining chunks
        return _gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, _zlib.error):
        pass
    chunks: list[bytes] = []
    total = 0
    pos = 0
    while pos < len(raw):
        out, end, err = _inflate_member(raw, pos)
        chunks.append(out)
        total += len(out)
        if err is None:
            pos = end
            rest = raw[pos:]
            if rest and rest[:2] != GZIP_MAGIC:
                if rest.strip(b"\x00"):
                    report.error = f"trailing garbage after gzip member at compressed offset {pos} ignored"
                break
            continue
        if err == "cut":
            report.gzip_lost = (len(raw), len(raw))
            report.gaps.append((total, -1, "gzip_cut"))
            report.error = (
                f"gzip stream cut off (compressed size {len(raw)}): decompressed bytes from {total} on are missing "
                "(their length is unknown); kept what preceded the cut"
            )
        elif "check" in err and len(raw) - end <= 8:  # the last member fails its CRC-32 or length
            report.error = (
                f"corrupt gzip stream: the member at compressed offset {pos} inflated to its end ({len(out)} "
                f"bytes) but fails its trailer's {err.removeprefix('incorrect ')} (damaged somewhere, where is "
                "unknown); its records are checked one by one and damaged ones dropped"
            )
        else:
            lost = _isize_lost(raw, len(out))
            report.gzip_lost = (end, len(raw))
            report.gaps.append((total, lost, "gzip_corrupt"))
            what = (
                f"decompressed bytes {total}-{total + lost} lost"
                if lost >= 0
                else f"decompressed bytes from {total} on lost (length unknown)"
            )
            report.error = (
                f"corrupt gzip stream: inflate failed at compressed offset {end} ({err}); compressed bytes "
                f"{end}-{len(raw)} not inflated, {what}; the data inflated just before the failure may be damaged "
                "too: its records are checked one by one and damaged ones dropped"
            )
        break
    return b"".join(chunks)


def _inflate_member(raw: bytes, start: int) -> tuple[bytes, int, str | None]:
    """Inflate the gzip member at `start`: (output, offset, error).

    `offset` is where the member ended (no error) or the exact compressed offset at which inflation failed;
    `error` is None, "cut" (the input ended first) or zlib's message.
    """
    d = zlib.decompressobj(wbits=31)
    out: list[bytes] = []
    pos = start
    step = 1 << 16
    while pos < len(raw):
        chunk = raw[pos : pos + step]
        snap = d.copy()
        try:
            out.append(d.decompress(chunk))
        except zlib.error:
            d = snap  # error path only: find the exact byte that fails
            for j in range(len(chunk)):
                try:
                    out.append(d.decompress(chunk[j : j + 1]))
                except zlib.error as exc:
                    return (
                        b"".join(out),
                        pos + j,
                        str(exc).removeprefix("Error -3 while decompressing data: "),
                    )
            return b"".join(out), pos + len(chunk), "inflate failed"
        if d.eof:
            return b"".join(out), pos + len(chunk) - len(d.unused_data), None
        pos += len(chunk)
    return b"".join(out), len(raw), "cut"


def _isize_lost(raw: bytes, inflated: int) -> int:
    """Bytes a damaged last member did not deliver, from its trailer's ISIZE (size mod 2^32); -1 if implausible."""
    if len(raw) < 4:
        return -1
    lost = (int.from_bytes(raw[-4:], "little") - inflated) % (1 << 32)
    return lost if lost <= 1032 * len(raw) else -1  # deflate expands at most 1032:1


def read_raw(path: Path, report: IngestReport) -> bytes:
    """The file's bytes, inflated when gzip-compressed (size and compression noted in the report)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read: {exc.strerror}") from exc
    report.bytes = len(raw)
    if raw[:2] == GZIP_MAGIC:
        report.compressed = True
        raw = _gunzip(raw, report)
    return raw


def load_bytes(path: Path, report: IngestReport) -> np.ndarray:
    """The file's bytes (inflated when gzip-compressed) as a uint8 array."""
    return np.frombuffer(read_raw(path, report), dtype=np.uint8)


def sniff(head: bytes) -> str | None:
    """`pcap`, `pcap-ns`, `pcapng` from the first bytes, or None."""
    if head[:4] in PCAP_MAGICS:
        return PCAP_MAGICS[head[:4]][0]
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return None


def read_capture(
    path: str | Path, *, max_bad: int = 1000, checks: CaptureChecks | None = None
) -> tuple[pa.Table, IngestReport]:
    """Read a libpcap or pcapng file (optionally `.gz`) into a `packets` table.

    Args:
        path: the capture file.
        max_bad: how many damaged records to report with their byte offset.
        checks: integrity checks (default `CaptureChecks()`: verify checksums, one-day timestamp steps).

    Returns:
        The table (one row per kept IPv4 packet, in file order; schema `PACKETS`) and the report.

    Raises:
        CaptureError: the file is not a libpcap/pcapng capture, or cannot be read.
    """
    path = Path(path)
    t0 = time.perf_counter()
    report = IngestReport(file=str(path))
    buf = load_bytes(path, report)
    if buf.shape[0] == 0:
        report.format = "empty"
        report.error = report.error or "empty file (no capture header): nothing to read"
        report.seconds = time.perf_counter() - t0
        return empty_packets(), report
    fmt = sniff(bytes(buf[:4]))
    if fmt is None:
        where = "inflated content" if report.compressed else "first bytes"
        raise CaptureError(
            f"{path}: not a pcap or pcapng capture ({where} {bytes(buf[:8]).hex(' ')}); "
            "darkembed reads libpcap, pcapng and their .gz files"
        )
    report.format = fmt
    checks = checks or CaptureChecks()
    gap_ns = int(checks.max_ts_gap_s * 1e9)
    if fmt == "pcapng":
        idx = _index_pcapng(buf, report)
    else:
        idx = _index_pcap(buf, report, gap_ns, checks.verify_checksums)
    table = _decode(buf, idx, report, max_bad, checks.verify_checksums, gap_ns)
    report.seconds = time.perf_counter() - t0
    return table, report


def _index_pcap(buf: np.ndarray, report: IngestReport, gap_ns: int, verify: bool):
    _, be, nano = PCAP_MAGICS[bytes(buf[:4])]
    if buf.shape[0] < 24:
        report.error = f"capture header cut off ({buf.shape[0]} of 24 bytes)"
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.int32), z, np.zeros(0, np.int8), z
    hdr = buf[:24].tobytes()
    order = ">" if be else "<"
    snaplen = int(np.frombuffer(hdr[16:20], dtype=f"{order}u4")[0])
    linktype = int(np.frombuffer(hdr[20:24], dtype=f"{order}u4")[0]) & 0xFFFF
    n, ng = K.count_pcap(buf, be)[0], 4  # exact for an undamaged file; a damaged one may need a second walk
    while True:
        off, cap, ts = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
        status = np.empty(n, np.int8)
        goff, glen = np.empty(ng, np.int64), np.empty(ng, np.int64)
        got, gaps, trunc = K.walk_pcap(
            buf, be, nano, snaplen, linktype, gap_ns, verify, True, off, cap, ts, status, goff, glen
        )
        if got <= n and gaps <= ng:
            break
        n, ng = max(n, got), max(ng, gaps)
    off, cap, ts, status, goff, glen = off[:got], cap[:got], ts[:got], status[:got], goff[:gaps], glen[:gaps]
    _note_gaps(report, goff, glen, "bad_record_header", buf.shape[0])
    if trunc >= 0:
        report.add_skip("truncated_record")
        report.bad.append((int(trunc), "truncated_record"))
        report.error = report.error or (
            f"last record cut off at offset {trunc} ({buf.shape[0] - trunc} bytes of a record left)"
        )
    report.linktypes = [linktype]
    link = np.full(got, linktype, np.int32)
    return off, cap, link, ts, status, off - 16


def _index_pcapng(buf: np.ndarray, report: IngestReport):
    z64, z32, z8 = np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int8)
    n, ng, _ = K.walk_pcapng(buf, False, z64, z64, z32, z64, z8, z64, z64, z64)
    off, cap, ts, boff = (np.empty(n, np.int64) for _ in range(4))
    link = np.empty(n, np.int32)
    status = np.empty(n, np.int8)
    goff, glen = np.empty(ng, np.int64), np.empty(ng, np.int64)
    n, ng, trunc = K.walk_pcapng(buf, True, off, cap, link, ts, status, boff, goff, glen)
    _note_gaps(report, goff, glen, "bad_block_header", buf.shape[0])
    if trunc >= 0:
        report.add_skip("truncated_record")
        report.bad.append((int(trunc), "truncated_record"))
        report.error = report.error or f"last block cut off at offset {trunc}"
    report.linktypes = sorted({int(x) for x in np.unique(link) if x >= 0})
    return off, cap, link, ts, status, boff


def _note_gaps(report: IngestReport, goff: np.ndarray, glen: np.ndarray, reason: str, size: int) -> None:
    """Report byte ranges skipped to resynchronise (each counted once as `reason`)."""
    for o, ln in zip(goff.tolist(), glen.tolist(), strict=True):
        report.gaps.append((o, ln, reason))
        report.bad.append((o, reason))
        report.add_skip(reason)
    if len(goff) and goff[-1] + glen[-1] == size:
        report.error = report.error or (
            f"damaged {reason.replace('_', ' ')} at offset {goff[-1]}: no plausible record follows it; "
            f"the last {glen[-1]} bytes are unreadable"
        )


def _decode(
    buf: np.ndarray, idx, report: IngestReport, max_bad: int, verify: bool = True, gap_ns: int = 0
) -> pa.Table:
    off, cap, link, ts, status, roff = idx
    n = off.shape[0]
    z = np.zeros
    keep = np.empty(n, np.int64)
    cols = dict(
        src=z(n, np.uint32),
        dst=z(n, np.uint32),
        proto=z(n, np.uint8),
        iplen=z(n, np.uint16),
        ttl=z(n, np.uint8),
        ipid=z(n, np.uint16),
        frag=z(n, np.uint16),
        ipflags=z(n, np.uint8),
        l4kind=z(n, np.uint8),
        sport=z(n, np.uint16),
        dport=z(n, np.uint16),
        tflags=z(n, np.uint16),
        seq=z(n, np.uint32),
        ack=z(n, np.uint32),
        win=z(n, np.uint16),
        mss=z(n, np.uint16),
        wscale=z(n, np.uint8),
        tsval=z(n, np.uint32),
        optmask=z(n, np.uint8),
        icmp_type=z(n, np.uint8),
        icmp_code=z(n, np.uint8),
    )
    flagged = np.zeros(1, np.int64)
    k = int(K.decode(buf, off, cap, link, status, keep, *cols.values(), verify, flagged))
    if flagged[0]:
        report.flagged["bad_ip_checksum"] = int(flagged[0])
    outside = _outside_window(ts[keep[:k]], gap_ns)
    if outside is not None:
        status[keep[:k][outside]] = K.TS_OUTSIDE_WINDOW
        inside = ~outside
        keep = keep[:k][inside]
        cols = {name: a[:k][inside] for name, a in cols.items()}
        k = int(inside.sum())
    report.records += n
    report.kept = k
    counts = np.bincount(status.astype(np.int64), minlength=len(K.REASONS))
    for code in range(1, len(K.REASONS)):
        report.add_skip(K.REASONS[code], int(counts[code]))
    if max_bad:
        damaged = np.zeros(len(K.REASONS), bool)
        for code, name in enumerate(K.REASONS):
            damaged[code] = code != K.OK and name not in K.NOT_DAMAGE
        bad_idx = np.flatnonzero(damaged[status.astype(np.int64)])[: max(0, max_bad - len(report.bad))]
        report.bad.extend((int(roff[i]), K.REASONS[status[i]]) for i in bad_idx)
        report.bad.sort()
    c = {name: a[:k] for name, a in cols.items()}
    tsk = ts[keep[:k]]
    kind = c["l4kind"]
    is_tcp = kind == K.L4_TCP
    has_ports = is_tcp | (kind == K.L4_UDP)
    is_icmp = kind == K.L4_ICMP
    om = c["optmask"]

    def arr(values: np.ndarray, valid: np.ndarray | None, typ: pa.DataType) -> pa.Array:
        if valid is None:
            return pa.array(values, type=typ)
        return pa.array(values, type=typ, mask=~valid)

    ts_valid = tsk != K.NO_TS
    arrays = [
        arr(tsk, None if ts_valid.all() else ts_valid, PACKETS.field("ts").type),
        arr(c["src"], None, pa.uint32()),
        arr(c["dst"], None, pa.uint32()),
        arr(c["proto"], None, pa.uint8()),
        arr(c["iplen"], None, pa.uint16()),
        arr(c["ttl"], None, pa.uint8()),
        arr(c["ipid"], None, pa.uint16()),
        arr(c["frag"], None, pa.uint16()),
        arr(c["ipflags"], None, pa.uint8()),
        arr(c["sport"], has_ports, pa.uint16()),
        arr(c["dport"], has_ports, pa.uint16()),
        arr(c["tflags"], is_tcp, pa.uint16()),
        arr(c["seq"], is_tcp, pa.uint32()),
        arr(c["ack"], is_tcp, pa.uint32()),
        arr(c["win"], is_tcp, pa.uint16()),
        arr(c["mss"], (om & K.OPT_MSS) != 0, pa.uint16()),
        arr(c["wscale"], (om & K.OPT_WSCALE) != 0, pa.uint8()),
        arr(np.ones(k, bool), (om & K.OPT_SACKP) != 0, pa.bool_()),
        arr(c["tsval"], (om & K.OPT_TS) != 0, pa.uint32()),
        arr(c["icmp_type"], is_icmp, pa.uint8()),
        arr(c["icmp_code"], is_icmp, pa.uint8()),
    ]
    return pa.Table.from_arrays(arrays, schema=PACKETS)


def _outside_window(ts: np.ndarray, gap_ns: int) -> np.ndarray | None:
    """Mask of timestamps outside the file's main time span, or None when every timestamp is inside it.

    The span is the largest group of the sorted timestamps in which no step exceeds `gap_ns` (ties: the earliest
    group). Rows without a timestamp (`NO_TS`) are never outside. See docs/ingest.md.
    """
    if gap_ns <= 0 or ts.shape[0] < 2 or K.max_ts_step(ts) <= gap_ns:
        return None  # consecutive steps within the gap: one span (the usual case, one linear pass)
    valid = ts != K.NO_TS
    order = np.sort(ts[valid])
    breaks = np.flatnonzero(np.diff(order) > gap_ns) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [order.shape[0]]))
    g = int(np.argmax(ends - starts))
    lo, hi = order[starts[g]], order[ends[g] - 1]
    return valid & ((ts < lo) | (ts > hi))


def empty_packets() -> pa.Table:
    """A `packets` table with no rows."""
    return PACKETS.empty_table()
