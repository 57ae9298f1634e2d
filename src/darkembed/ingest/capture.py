"""Read libpcap and pcapng captures (optionally gzip-compressed) into `packets` tables.

Reads: capture files. Writes: nothing (returns a pyarrow Table conforming to `darkembed.schemas.PACKETS` and an
`IngestReport`).

Damaged input is a fact of life: every good record is kept, every bad one is counted by reason and reported with
its byte offset (in the decompressed stream for `.gz` files); only a file that is not a capture at all raises
`CaptureError`.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

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


class CaptureError(ValueError):
    """The file is not a capture darkembed can read (the message names it and says why)."""


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
        }

    def summary(self) -> str:
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        msg = f"{self.file}: {self.kept}/{self.records} records kept ({self.format}); skipped: {skipped}"
        if self.bad:
            first = ", ".join(f"{r} at offset {o}" for o, r in self.bad[:3])
            msg += f"; first damaged: {first}"
        if self.error:
            msg += f"; {self.error}"
        return msg


def _gunzip(raw: bytes, report: IngestReport) -> bytes:
    """Inflate every gzip member; on a corrupt or cut stream keep what inflated and note the error."""
    try:  # fast path: whole, well-formed files inflate in one call, without joining chunks
        return _gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, _zlib.error):
        pass
    chunks: list[bytes] = []
    data = raw
    pos = 0
    while data:
        d = _zlib.decompressobj(wbits=31)
        try:
            chunks.append(d.decompress(data))
            chunks.append(d.flush())
        except (zlib.error, _zlib.error) as exc:
            # Salvage what a fresh, slower, incremental pass can inflate before the damage.
            chunks.append(_salvage(data))
            report.error = f"corrupt gzip stream after compressed offset {pos}: {exc}; kept what preceded it"
            break
        if not d.eof:
            report.error = f"gzip stream cut off (compressed size {len(raw)}); kept what preceded the cut"
            break
        used = len(data) - len(d.unused_data)
        pos += used
        data = d.unused_data
        if data and data[:2] != GZIP_MAGIC:
            if data.strip(b"\x00"):
                report.error = f"trailing garbage after gzip member at compressed offset {pos} ignored"
            break
    return b"".join(chunks)


def _salvage(data: bytes) -> bytes:
    d = zlib.decompressobj(wbits=31)
    out: list[bytes] = []
    step = 512  # error path only: small steps lose little before the damage
    for i in range(0, len(data), step):
        try:
            out.append(d.decompress(data[i : i + step]))
        except zlib.error:
            break
    return b"".join(out)


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


def read_capture(path: str | Path, *, max_bad: int = 1000) -> tuple[pa.Table, IngestReport]:
    """Read a libpcap or pcapng file (optionally `.gz`) into a `packets` table.

    Args:
        path: the capture file.
        max_bad: how many damaged records to report with their byte offset.

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
    idx = _index_pcapng(buf, report) if fmt == "pcapng" else _index_pcap(buf, report)
    table = _decode(buf, idx, report, max_bad)
    report.seconds = time.perf_counter() - t0
    return table, report


def _index_pcap(buf: np.ndarray, report: IngestReport):
    _, be, nano = PCAP_MAGICS[bytes(buf[:4])]
    if buf.shape[0] < 24:
        report.error = f"capture header cut off ({buf.shape[0]} of 24 bytes)"
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.int32), z, np.zeros(0, np.int8), z
    hdr = buf[:24].tobytes()
    order = ">" if be else "<"
    snaplen = int(np.frombuffer(hdr[16:20], dtype=f"{order}u4")[0])
    linktype = int(np.frombuffer(hdr[20:24], dtype=f"{order}u4")[0]) & 0xFFFF
    n, stop = K.count_pcap(buf, be)
    off = np.empty(n, np.int64)
    cap = np.empty(n, np.int64)
    ts = np.empty(n, np.int64)
    status = np.empty(n, np.int8)
    K.index_pcap(buf, be, nano, snaplen, n, off, cap, ts, status)
    if stop < buf.shape[0]:
        report.add_skip("truncated_record")
        report.bad.append((int(stop), "truncated_record"))
        report.error = report.error or (
            f"last record cut off at offset {stop} ({buf.shape[0] - stop} bytes of a record left)"
        )
    report.linktypes = [linktype]
    link = np.full(n, linktype, np.int32)
    return off, cap, link, ts, status, off - 16


def _index_pcapng(buf: np.ndarray, report: IngestReport):
    n, stop = K.count_pcapng(buf)
    off = np.empty(n, np.int64)
    cap = np.empty(n, np.int64)
    link = np.empty(n, np.int32)
    ts = np.empty(n, np.int64)
    status = np.empty(n, np.int8)
    boff = np.empty(n, np.int64)
    got, why = K.index_pcapng(buf, n, off, cap, link, ts, status, boff, stop)
    off, cap, link, ts, status, boff = (a[:got] for a in (off, cap, link, ts, status, boff))
    if stop < buf.shape[0] or why != K.OK:
        reason = K.REASONS[why] if why != K.OK else "truncated_record"
        if stop + 12 > buf.shape[0] or why == K.TRUNCATED_RECORD:
            reason = "truncated_record"
        report.add_skip(reason)
        report.bad.append((int(stop), reason))
        report.error = report.error or f"block walk stopped at offset {stop}: {reason}"
    report.linktypes = sorted({int(x) for x in np.unique(link) if x >= 0})
    return off, cap, link, ts, status, boff


def _decode(buf: np.ndarray, idx, report: IngestReport, max_bad: int) -> pa.Table:
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
    k = K.decode(buf, off, cap, link, status, keep, *cols.values())
    report.records += n
    report.kept = int(k)
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


def empty_packets() -> pa.Table:
    """A `packets` table with no rows."""
    return PACKETS.empty_table()
