"""Compiled (numba) kernels that index and decode libpcap and pcapng buffers.

Passes over a capture held in memory as a `uint8` array, none of them Python per packet:

1. `walk_*` (twice: to size the arrays, then to fill them): walk the record (block) headers, resynchronising on
   the next plausible record after a damaged header, and fill per-record arrays: data offset, captured length,
   link type, timestamp (ns) and a status code (`OK` or the reason the record is bad, e.g. `CAPLEN_GT_LEN`), plus
   the byte ranges skipped to resynchronise;
2. `decode`: decode every `OK` record's link, IPv4 and TCP/UDP/ICMP headers into compact column arrays, verifying
   the IPv4 header checksum and setting the status of records it skips (IPv6, non-IP, bad headers);
3. `max_ts_step`: whether the kept timestamps need the file's time-window check (docs/ingest.md).

Every read is bounded by the buffer and by the record's (block's) own length: the kernels run without numba's
bounds checks, so the bounds are the code's.

All kernels run without the GIL, so a thread pool parses several files at once.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Record status codes; `REASONS[code]` is the name used in ingest reports.
OK = 0
IPV6 = 1
NON_IP = 2
UNSUPPORTED_LINKTYPE = 3
TRUNCATED_RECORD = 4
CAPLEN_GT_LEN = 5
CAPLEN_GT_SNAPLEN = 6
SHORT_FRAME = 7
BAD_IP_HEADER = 8
IP_TRUNCATED = 9
L4_TRUNCATED = 10
BAD_TCP_HEADER = 11
BAD_BLOCK = 12
UNKNOWN_INTERFACE = 13
BAD_IP_CHECKSUM = 14
BAD_TIMESTAMP = 15
TS_OUTSIDE_WINDOW = 16
BAD_RECORD_HEADER = 17
BAD_BLOCK_HEADER = 18

REASONS = (
    "ok",
    "ipv6",
    "non_ip",
    "unsupported_linktype",
    "truncated_record",
    "caplen_gt_len",
    "caplen_gt_snaplen",
    "short_frame",
    "bad_ip_header",
    "ip_truncated",
    "l4_truncated",
    "bad_tcp_header",
    "bad_block",
    "unknown_interface",
    "bad_ip_checksum",
    "bad_timestamp",
    "ts_outside_window",
    "bad_record_header",  # a pcap byte range skipped to resynchronise (counted once per range)
    "bad_block_header",  # a pcapng byte range skipped to resynchronise (counted once per range)
)
#: Reasons that are normal traffic outside darkembed's scope, not damage: counted, never reported as bad.
NOT_DAMAGE = frozenset({"ipv6", "non_ip", "unsupported_linktype"})

NO_TS = np.iinfo(np.int64).min

# Link types (LINKTYPE_* values as stored in files).
LT_NULL = 0
LT_ETHERNET = 1
LT_RAW = 101
LT_LINUX_SLL = 113
LT_IPV4 = 228
LT_IPV6 = 229
LT_LINUX_SLL2 = 276
LT_LOOP = 108

# Option presence bits of `optmask`.
OPT_MSS = 1
OPT_WSCALE = 2
OPT_SACKP = 4
OPT_TS = 8

# Layer-4 kinds of `l4kind`.
L4_NONE = 0
L4_TCP = 1
L4_UDP = 2
L4_ICMP = 3

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@nb.njit(cache=True, nogil=True, inline="always")
def _u16(b, o, be):
    if be:
        return (np.uint32(b[o]) << 8) | np.uint32(b[o + 1])
    return (np.uint32(b[o + 1]) << 8) | np.uint32(b[o])


@nb.njit(cache=True, nogil=True, inline="always")
def _u32(b, o, be):
    if be:
        return (
            (np.uint32(b[o]) << 24)
            | (np.uint32(b[o + 1]) << 16)
            | (np.uint32(b[o + 2]) << 8)
            | np.uint32(b[o + 3])
        )
    return (
        (np.uint32(b[o + 3]) << 24)
        | (np.uint32(b[o + 2]) << 16)
        | (np.uint32(b[o + 1]) << 8)
        | np.uint32(b[o])
    )


# ----------------------------------------------------------------------------------------------------------------
# Plausibility checks used to resynchronise after a damaged record header (docs/ingest.md)


@nb.njit(cache=True, nogil=True, inline="always")
def _near(a, b, gap_ns):
    return gap_ns <= 0 or abs(a - b) <= gap_ns


@nb.njit(cache=True, nogil=True, inline="always")
def _ip_sum(buf, p, ihl):
    """Ones'-complement sum of an IPv4 header of `ihl` bytes at `p` (0xFFFF when its checksum is right)."""
    s = np.int64(0)
    for j in range(0, 20, 2):  # the fixed header, unrolled by the compiler
        s += (np.int64(buf[p + j]) << 8) | np.int64(buf[p + j + 1])
    for j in range(20, ihl, 2):  # options
        s += (np.int64(buf[p + j]) << 8) | np.int64(buf[p + j + 1])
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s


@_jit
def plausible_frame(buf, o, c, orig, lt, verify):
    """Whether the `c` captured bytes at `o` (original length `orig`) look like a real frame of link type `lt`.

    A frame is plausible when its link layer carries IPv4 with version 4, IHL >= 5, a total length that fits the
    original frame length (at most 64 bytes of trailer or padding) and, when `verify`, a right header checksum; or
    IPv6 with version 6 and a consistent payload length. Frames of link types darkembed does not decode are taken
    as plausible (the record header alone decides). Every read is bounded by `o + c`.
    """
    end = o + c
    lh = 0
    et = 0
    if lt == LT_ETHERNET:
        if c < 14:
            return False
        et = _u16(buf, o + 12, True)
        lh = 14
        tags = 0
        while (et == 0x8100 or et == 0x88A8 or et == 0x9100) and tags < 2:
            if o + lh + 4 > end:
                return False
            et = _u16(buf, o + lh + 2, True)
            lh += 4
            tags += 1
    elif lt == LT_LINUX_SLL:
        if c < 16:
            return False
        et = _u16(buf, o + 14, True)
        lh = 16
    elif lt == LT_LINUX_SLL2:
        if c < 20:
            return False
        et = _u16(buf, o, True)
        lh = 20
    elif lt == LT_NULL or lt == LT_LOOP:
        if c < 4:
            return False
        fam_le = _u32(buf, o, False)
        fam_be = _u32(buf, o, True)
        lh = 4
        if fam_le == 2 or fam_be == 2:
            et = 0x0800
        elif fam_le == 24 or fam_le == 28 or fam_le == 30 or fam_be == 24 or fam_be == 28 or fam_be == 30:
            et = 0x86DD
        else:
            return False
    elif lt == LT_RAW:
        if c < 1:
            return False
        v = buf[o] >> 4
        et = 0x0800 if v == 4 else (0x86DD if v == 6 else 0)
    elif lt == LT_IPV4:
        et = 0x0800
    elif lt == LT_IPV6:
        et = 0x86DD
    else:
        return True
    p = o + lh
    if et == 0x0800:
        if p + 20 > end or (buf[p] >> 4) != 4:
            return False
        ihl = np.int64(buf[p] & 15) * 4
        tot = np.int64(_u16(buf, p + 2, True))
        if ihl < 20 or tot < ihl or lh + tot > orig or orig - lh - tot > 64:
            return False
        return not (verify and p + ihl <= end and _ip_sum(buf, p, ihl) != 0xFFFF)
    if et == 0x86DD:
        if p + 40 > end or (buf[p] >> 4) != 6:
            return False
        pl = np.int64(_u16(buf, p + 4, True))
        return lh + 40 + pl <= orig and orig - lh - 40 - pl <= 64
    return False


@nb.njit(cache=True, nogil=True, inline="always")
def _gap(fill, goff, glen, ng, start, stop):
    """Record the skipped byte range [start, stop) as gap `ng` (when filling and room); returns the new count."""
    if fill and ng < goff.shape[0]:
        goff[ng] = start
        glen[ng] = stop - start
    return ng + 1


# ----------------------------------------------------------------------------------------------------------------
# libpcap


@nb.njit(cache=True, nogil=True, inline="always")
def _ip_len_fits(buf, o, c, lt):
    """False when an Ethernet or raw IPv4 frame holds more than 64 bytes beyond its IP total length: its caplen
    is then more likely damaged (spanning later records) than the frame's trailer that long."""
    p = o
    if lt == LT_ETHERNET:
        if c < 34 or buf[o + 12] != 8 or buf[o + 13] != 0:
            return True
        p = o + 14
    elif lt == LT_RAW or lt == LT_IPV4:
        if c < 20:
            return True
    else:
        return True
    if (buf[p] >> 4) != 4:
        return True
    return c <= (p - o) + np.int64(_u16(buf, p + 2, True)) + 64


@_jit
def count_pcap(buf, be):
    """Records found by following caplen from the first record, and the offset where that stopped: the usual
    array size for `walk_pcap` (exact for an undamaged file)."""
    n = 0
    pos = 24
    size = buf.shape[0]
    while pos + 16 <= size:
        cap = np.int64(_u32(buf, pos + 8, be))
        if pos + 16 + cap > size:
            break
        pos += 16 + cap
        n += 1
    return n, pos


@nb.njit(cache=True, nogil=True, inline="always")
def _pcap_rec(buf, q, be, nano):
    """(timestamp ns, caplen, original length, fraction in range) of the record header at `q` (16 bytes there)."""
    sec = np.int64(_u32(buf, q, be))
    frac = np.int64(_u32(buf, q + 4, be))
    c = np.int64(_u32(buf, q + 8, be))
    orig = np.int64(_u32(buf, q + 12, be))
    if nano:
        return sec * 1_000_000_000 + frac, c, orig, frac < 1_000_000_000
    return sec * 1_000_000_000 + frac * 1000, c, orig, frac < 1_000_000


@_jit
def _pcap_follower(buf, q, t, ref, have_ref, be, nano, snaplen, lt, gap_ns, verify):
    """How the record header at `q` vouches for the record (timestamp `t`) that ends there.

    Checksums are not looked at here (`verify` is unused): a capture with checksum offload still walks.

    0: it does not (implausible); 1: plausible, its timestamp near `t`; 2: plausible, near the reference `ref`
    only; 3: the end of the file (or a last record cut by it) follows.
    """
    size = buf.shape[0]
    if q + 16 > size:
        return 3
    t2, c2, o2, fok2 = _pcap_rec(buf, q, be, nano)
    if not fok2 or c2 > o2 or (snaplen > 0 and c2 > snaplen):
        return 0
    if q + 16 + c2 > size:
        if _near(t2, t, gap_ns) or (have_ref and _near(t2, ref, gap_ns)):
            return 3
        return 0
    if not plausible_frame(buf, q + 16, c2, o2, lt, False):
        return 0
    if _near(t2, t, gap_ns):
        return 1
    if have_ref and _near(t2, ref, gap_ns):
        return 2
    return 0


@_jit
def _pcap_candidate(buf, q, ref, have_ref, be, nano, snaplen, lt, gap_ns, verify):
    """Whether a record plausibly starts at `q`: a consistent header, a plausible frame, vouched for by the next."""
    size = buf.shape[0]
    if q + 16 > size:
        return False
    t, c, orig, fok = _pcap_rec(buf, q, be, nano)
    if not fok or c == 0 or c > orig or (snaplen > 0 and c > snaplen) or q + 16 + c > size:
        return False
    if not plausible_frame(buf, q + 16, c, orig, lt, verify):
        return False
    f = _pcap_follower(buf, q + 16 + c, t, ref, have_ref, be, nano, snaplen, lt, gap_ns, verify)
    if f == 3:
        return not have_ref or _near(t, ref, gap_ns)
    return f > 0


@_jit
def walk_pcap(buf, be, nano, snaplen, lt, gap_ns, verify, fill, off, cap, ts, status, goff, glen):
    """Walk the records of a libpcap buffer, resynchronising after damaged record headers.

    With `fill`, the first `len(off)` records and the first `len(goff)` gaps are written; the counts returned are
    the true ones, so a caller whose arrays were too small calls again with arrays of those sizes (the walk is
    deterministic). The first record is taken when its header is consistent and its frame plausible. A record
    whose header is consistent (fraction of a second in range, caplen <= original length and snaplen, inside the
    buffer), whose timestamp is within `gap_ns` of the previous good record's and whose caplen does not exceed its
    IPv4 total length by more than 64 bytes is taken as is. Any other record is taken only when its frame is
    plausible and the next header vouches for it (`_pcap_follower`); when caplen
    exceeds the original length, the record ending where the original length says is tried first (a damaged
    caplen). Otherwise the walk scans forward, from the data of the previous record (whose caplen may have been
    the damaged one), for the next offset where `_pcap_candidate` holds, and records the skipped byte range.

    Returns:
        (records, gaps, truncated): `truncated` is the offset of a last record cut off by the end of the buffer,
        or -1.
    """
    size = buf.shape[0]
    pos = np.int64(24)
    n = 0
    ng = 0
    have_ref = False
    ref = np.int64(0)
    last = np.int64(-1)
    trunc = np.int64(-1)
    while pos < size:
        if pos + 16 > size:
            trunc = pos
            break
        t, c, orig, fok = _pcap_rec(buf, pos, be, nano)
        fits = pos + 16 + c <= size
        cons = fok and c <= orig and (snaplen <= 0 or c <= snaplen)
        st = -1
        ext = np.int64(0)
        if cons and fits and have_ref and _near(t, ref, gap_ns) and _ip_len_fits(buf, pos + 16, c, lt):
            st = OK
            ext = c
            ref = t
        else:
            if (
                fok
                and c > orig
                and pos + 16 + orig <= size
                and plausible_frame(buf, pos + 16, orig, orig, lt, False)
            ):
                f = _pcap_follower(
                    buf, pos + 16 + orig, t, ref, have_ref, be, nano, snaplen, lt, gap_ns, verify
                )
                if f == 1 or f == 2 or (f == 3 and pos + 16 + orig == size):
                    st = CAPLEN_GT_LEN
                    ext = orig
            if st < 0 and fits and plausible_frame(buf, pos + 16, c, max(c, orig), lt, False):
                f = _pcap_follower(buf, pos + 16 + c, t, ref, have_ref, be, nano, snaplen, lt, gap_ns, verify)
                if f > 0:
                    ext = c
                    if not fok:
                        st = BAD_TIMESTAMP
                    elif c > orig:
                        st = CAPLEN_GT_LEN
                    elif snaplen > 0 and c > snaplen:
                        st = CAPLEN_GT_SNAPLEN
                    else:
                        st = OK
                    if fok and (f == 1 or (f == 3 and (not have_ref or _near(t, ref, gap_ns)))):
                        ref = t
                        have_ref = True
            if st < 0 and pos == 24 and cons and fits and plausible_frame(buf, pos + 16, c, orig, lt, False):
                st = OK  # the first record sits where the file header ends: no follower needed to place it
                ext = c
                ref = t
                have_ref = True
        if st >= 0:
            if fill and n < off.shape[0]:
                off[n] = pos + 16
                cap[n] = ext
                ts[n] = t
                status[n] = st
            n += 1
            last = pos
            pos = pos + 16 + ext
            continue
        # Damaged: resynchronise on the next plausible record.
        start = last + 16 if last >= 0 else pos + 1
        q = start
        found = -1
        while q + 16 <= size:
            if q != pos and _pcap_candidate(buf, q, ref, have_ref, be, nano, snaplen, lt, gap_ns, verify):
                found = q
                break
            q += 1
        if found < 0:
            if cons and not fits:
                trunc = pos
            else:
                ng = _gap(fill, goff, glen, ng, pos, size)
            break
        gstart = pos
        if found < pos:  # the previous record's caplen was the damaged one: it goes into the gap
            n -= 1
            gstart = last
        ng = _gap(fill, goff, glen, ng, gstart, found)
        last = -1
        pos = found
    return n, ng, trunc


# ----------------------------------------------------------------------------------------------------------------
# pcapng

_SHB = 0x0A0D0D0A
_IDB = 1
_PB = 2  # obsolete Packet Block
_SPB = 3
_NRB = 4
_ISB = 5
_EPB = 6
_DSB = 10
_CB = 0x00000BAD
_CB_NOCOPY = 0x40000BAD
_MAX_IF = 4096


@_jit
def _ticks_to_ns(ticks, res):
    # res: if_tsresol byte. Bit 7 clear: 10^-r s per tick; set: 2^-r.
    r = res & 0x7F
    if res & 0x80:
        if r > 40:
            return np.int64(0)
        whole = ticks >> r
        part = ticks & ((np.int64(1) << r) - 1)
        return whole * 1_000_000_000 + ((part * 1_000_000_000) >> r)
    if r <= 9:
        m = np.int64(1)
        for _ in range(9 - r):
            m *= 10
        return ticks * m
    d = np.int64(1)
    for _ in range(r - 9):
        d *= 10
    return ticks // d


@nb.njit(cache=True, nogil=True, inline="always")
def _ng_order(buf, q, be):
    """Byte order of the block at `q` (an SHB carries its own), or -1 when an SHB's magic is wrong."""
    if _u32(buf, q, be) != _SHB:
        return 1 if be else 0
    m = _u32(buf, q + 8, False)
    if m == 0x1A2B3C4D:
        return 0
    if m == 0x4D3C2B1A:
        return 1
    return -1


@_jit
def _ng_length(buf, q, be):
    """Length of a well-formed block at `q` (leading and trailing lengths agree, inside the buffer), else -1."""
    size = buf.shape[0]
    if q + 12 > size:
        return np.int64(-1)
    blen = np.int64(_u32(buf, q + 4, be))
    if blen < 12 or blen % 4 != 0 or q + blen > size:
        return np.int64(-1)
    if np.int64(_u32(buf, q + blen - 4, be)) != blen:
        return np.int64(-1)
    return blen


@_jit
def _ng_candidate(buf, q, be, nif):
    """Whether a block plausibly starts at `q`: a known type, matching lengths, sane packet-block fields, and
    followed by another well-formed block, a block cut off by the end of the buffer, or the end itself."""
    size = buf.shape[0]
    if q + 12 > size:
        return False
    o = _ng_order(buf, q, be)
    if o < 0:
        return False
    qbe = o == 1
    btype = _u32(buf, q, qbe)
    known = btype == _SHB or (btype >= 1 and btype <= _DSB) or btype == _CB or btype == _CB_NOCOPY
    if not known:
        return False
    blen = _ng_length(buf, q, qbe)
    if blen < 0:
        return False
    if btype == _EPB:
        if blen < 32 or np.int64(_u32(buf, q + 8, qbe)) >= nif:
            return False
        if 32 + np.int64(_u32(buf, q + 20, qbe)) > blen:
            return False
    elif btype == _SPB:
        if blen < 16 or nif == 0:
            return False
    elif btype == _IDB and blen < 20:
        return False
    nxt = q + blen
    if nxt == size or nxt + 12 > size:
        return True
    no = _ng_order(buf, nxt, qbe)
    if no >= 0 and _ng_length(buf, nxt, no == 1) > 0:
        return True
    nlen = np.int64(_u32(buf, nxt + 4, qbe))
    return nlen >= 12 and nlen % 4 == 0 and nxt + nlen > size  # the last block, cut off


@_jit
def walk_pcapng(buf, fill, off, cap, link, ts, status, boff, goff, glen):
    """Walk pcapng blocks, resynchronising after damaged block headers; fill per-record arrays when `fill`.

    A block is taken when its leading and trailing lengths agree and it lies inside the buffer. Otherwise the walk
    scans forward for the next offset where `_ng_candidate` holds and records the skipped byte range. Every read of
    a block's body is bounded by its length. `boff[i]` is the offset of record i's block (for reports); `link[i]`
    the link type of its interface.

    Returns:
        (records, gaps, truncated): `truncated` is the offset of a last block cut off by the end of the buffer,
        or -1.
    """
    if_link = np.full(_MAX_IF, -1, np.int32)
    if_res = np.full(_MAX_IF, 6, np.int64)
    if_snap = np.zeros(_MAX_IF, np.int64)
    if_tsoff = np.zeros(_MAX_IF, np.int64)
    nif = 0
    be = False
    pos = np.int64(0)
    i = 0
    ng = 0
    trunc = np.int64(-1)
    size = buf.shape[0]
    while pos < size:
        if pos + 12 > size:
            trunc = pos
            break
        o = _ng_order(buf, pos, be)
        blen = np.int64(-1)
        if o >= 0:
            blen = _ng_length(buf, pos, o == 1)
        if blen < 0:
            q = pos + 1
            found = -1
            while q + 12 <= size:
                if _ng_candidate(buf, q, be, nif):
                    found = q
                    break
                q += 1
            if found < 0:
                hlen = np.int64(_u32(buf, pos + 4, be))
                if o >= 0 and hlen >= 12 and hlen % 4 == 0 and pos + hlen > size:
                    trunc = pos
                else:
                    ng = _gap(fill, goff, glen, ng, pos, size)
                break
            ng = _gap(fill, goff, glen, ng, pos, found)
            pos = found
            continue
        be = o == 1
        btype = _u32(buf, pos, be)
        body = pos + 8
        bend = pos + blen - 4
        if btype == _SHB:
            nif = 0
        elif btype == _IDB:
            if nif < _MAX_IF and body + 8 <= bend:
                if_link[nif] = _u16(buf, body, be)
                if_snap[nif] = _u32(buf, body + 4, be)
                if_res[nif] = 6
                if_tsoff[nif] = 0
                q = body + 8
                while q + 4 <= bend:
                    code = _u16(buf, q, be)
                    ln = np.int64(_u16(buf, q + 2, be))
                    if code == 0 or q + 4 + ln > bend:
                        break
                    if code == 9 and ln >= 1:
                        if_res[nif] = buf[q + 4]
                    elif code == 14 and ln >= 8:
                        hi = np.int64(_u32(buf, q + 4, be))
                        lo = np.int64(_u32(buf, q + 8, be))
                        if be:
                            if_tsoff[nif] = (hi << 32) | lo
                        else:
                            if_tsoff[nif] = (lo << 32) | hi
                    q += 4 + ((ln + 3) // 4) * 4
            nif += 1
        elif btype == _EPB or btype == _PB:
            if fill:
                boff[i] = pos
                off[i] = body + 20
                cap[i] = 0
                link[i] = -1
                ts[i] = NO_TS
                if body + 20 > bend:  # too short for its fixed fields: nothing past the block is read
                    status[i] = BAD_BLOCK
                else:
                    iface = np.int64(_u32(buf, body, be)) if btype == _EPB else np.int64(_u16(buf, body, be))
                    hi = np.int64(_u32(buf, body + 4, be))
                    lo = np.int64(_u32(buf, body + 8, be))
                    c = np.int64(_u32(buf, body + 12, be))
                    orig = np.int64(_u32(buf, body + 16, be))
                    cap[i] = c
                    if iface >= nif or iface >= _MAX_IF:
                        status[i] = UNKNOWN_INTERFACE
                    else:
                        link[i] = if_link[iface]
                        ts[i] = _ticks_to_ns((hi << 32) | lo, if_res[iface]) + if_tsoff[iface] * 1_000_000_000
                        if body + 20 + c > bend:
                            status[i] = BAD_BLOCK
                        elif c > orig:
                            status[i] = CAPLEN_GT_LEN
                        elif if_snap[iface] > 0 and c > if_snap[iface]:
                            status[i] = CAPLEN_GT_SNAPLEN
                        else:
                            status[i] = OK
            i += 1
        elif btype == _SPB:
            if fill:
                boff[i] = pos
                ts[i] = NO_TS
                off[i] = body + 4
                if nif == 0 or body + 4 > bend:
                    status[i] = UNKNOWN_INTERFACE if nif == 0 else BAD_BLOCK
                    cap[i] = 0
                    link[i] = -1
                else:
                    orig = np.int64(_u32(buf, body, be))
                    room = bend - (body + 4)
                    c = orig
                    if if_snap[0] > 0 and c > if_snap[0]:
                        c = if_snap[0]
                    if c > room:
                        c = room
                    cap[i] = c
                    link[i] = if_link[0]
                    status[i] = OK
            i += 1
        pos += blen
    return i, ng, trunc


# ----------------------------------------------------------------------------------------------------------------
# Packet decoding


@_jit
def decode(
    buf,
    off,
    cap,
    link,
    status,
    # outputs, compact (index k = k-th kept record):
    keep_idx,
    src,
    dst,
    proto,
    iplen,
    ttl,
    ipid,
    frag,
    ipflags,
    l4kind,
    sport,
    dport,
    tflags,
    seq,
    ack,
    win,
    mss,
    wscale,
    tsval,
    optmask,
    icmp_type,
    icmp_code,
    verify,
    flagged,
):
    """Decode every record whose status is OK; returns the number kept. Sets the status of skipped records.

    With `verify`, a record whose IPv4 header checksum is wrong gets `BAD_IP_CHECKSUM`; without it, the record is
    kept and `flagged[0]` counts it (captures from hosts with checksum offload).
    """
    n = off.shape[0]
    k = 0
    flagged[0] = 0
    for i in range(n):
        if status[i] != OK:
            continue
        o = off[i]
        end = o + cap[i]
        lt = link[i]
        p = o
        # ---- link layer -> start of the IPv4 header
        if lt == LT_ETHERNET:
            if o + 14 > end:
                status[i] = SHORT_FRAME
                continue
            et = _u16(buf, o + 12, True)
            p = o + 14
            while et == 0x8100 or et == 0x88A8 or et == 0x9100:
                if p + 4 > end:
                    break
                et = _u16(buf, p + 2, True)
                p += 4
            if et == 0x8100 or et == 0x88A8 or et == 0x9100:
                status[i] = SHORT_FRAME
                continue
            if et == 0x86DD:
                status[i] = IPV6
                continue
            if et != 0x0800:
                status[i] = NON_IP
                continue
        elif lt == LT_RAW or lt == LT_IPV4:
            p = o
        elif lt == LT_IPV6:
            status[i] = IPV6
            continue
        elif lt == LT_LINUX_SLL or lt == LT_LINUX_SLL2:
            hl = 16 if lt == LT_LINUX_SLL else 20
            if o + hl > end:
                status[i] = SHORT_FRAME
                continue
            et = _u16(buf, o + 14, True) if lt == LT_LINUX_SLL else _u16(buf, o, True)
            p = o + hl
            if et == 0x86DD:
                status[i] = IPV6
                continue
            if et != 0x0800:
                status[i] = NON_IP
                continue
        elif lt == LT_NULL or lt == LT_LOOP:
            if o + 4 > end:
                status[i] = SHORT_FRAME
                continue
            fam_le = _u32(buf, o, False)
            fam_be = _u32(buf, o, True)
            p = o + 4
            if fam_le == 2 or fam_be == 2:
                pass
            elif fam_le == 24 or fam_le == 28 or fam_le == 30 or fam_be == 24 or fam_be == 28 or fam_be == 30:
                status[i] = IPV6
                continue
            else:
                status[i] = NON_IP
                continue
        else:
            status[i] = UNSUPPORTED_LINKTYPE
            continue
        # ---- IPv4
        if p >= end:
            status[i] = IP_TRUNCATED
            continue
        ver = buf[p] >> 4
        if ver == 6 and (lt == LT_RAW):
            status[i] = IPV6
            continue
        if ver != 4:
            status[i] = BAD_IP_HEADER
            continue
        ihl = np.int64(buf[p] & 15) * 4
        if ihl < 20:
            status[i] = BAD_IP_HEADER
            continue
        if p + ihl > end:
            status[i] = IP_TRUNCATED
            continue
        tot = np.int64(_u16(buf, p + 2, True))
        if tot < ihl:
            status[i] = BAD_IP_HEADER
            continue
        if _ip_sum(buf, p, ihl) != 0xFFFF:
            if verify:
                status[i] = BAD_IP_CHECKSUM
                continue
            flagged[0] += 1
        ff = _u16(buf, p + 6, True)
        pr = buf[p + 9]
        fo = ff & 0x1FFF
        p4 = p + ihl
        l4end = end if p + tot > end else p + tot
        kind = L4_NONE
        if fo == 0:
            if pr == 6:
                if p4 + 20 > l4end:
                    status[i] = L4_TRUNCATED
                    continue
                doff = np.int64(buf[p4 + 12] >> 4)
                if doff < 5:
                    status[i] = BAD_TCP_HEADER
                    continue
                kind = L4_TCP
            elif pr == 17:
                if p4 + 8 > l4end:
                    status[i] = L4_TRUNCATED
                    continue
                kind = L4_UDP
            elif pr == 1:
                if p4 + 2 > l4end:
                    status[i] = L4_TRUNCATED
                    continue
                kind = L4_ICMP
        # ---- kept: write the row
        keep_idx[k] = i
        src[k] = _u32(buf, p + 12, True)
        dst[k] = _u32(buf, p + 16, True)
        proto[k] = pr
        iplen[k] = tot
        ttl[k] = buf[p + 8]
        ipid[k] = _u16(buf, p + 4, True)
        frag[k] = fo
        ipflags[k] = ff >> 13
        l4kind[k] = kind
        optmask[k] = 0
        if kind == L4_TCP:
            sport[k] = _u16(buf, p4, True)
            dport[k] = _u16(buf, p4 + 2, True)
            seq[k] = _u32(buf, p4 + 4, True)
            ack[k] = _u32(buf, p4 + 8, True)
            tflags[k] = ((np.uint32(buf[p4 + 12]) & 1) << 8) | np.uint32(buf[p4 + 13])
            win[k] = _u16(buf, p4 + 14, True)
            q = p4 + 20
            oend = p4 + np.int64(buf[p4 + 12] >> 4) * 4
            if oend > l4end:
                oend = l4end
            m = 0
            while q < oend:
                kd = buf[q]
                if kd == 0:
                    break
                if kd == 1:
                    q += 1
                    continue
                if q + 1 >= oend:
                    break
                ln = np.int64(buf[q + 1])
                if ln < 2 or q + ln > oend:
                    break
                if kd == 2 and ln == 4:
                    mss[k] = _u16(buf, q + 2, True)
                    m |= OPT_MSS
                elif kd == 3 and ln == 3:
                    wscale[k] = buf[q + 2]
                    m |= OPT_WSCALE
                elif kd == 4 and ln == 2:
                    m |= OPT_SACKP
                elif kd == 8 and ln == 10:
                    tsval[k] = _u32(buf, q + 2, True)
                    m |= OPT_TS
                q += ln
            optmask[k] = m
        elif kind == L4_UDP:
            sport[k] = _u16(buf, p4, True)
            dport[k] = _u16(buf, p4 + 2, True)
        elif kind == L4_ICMP:
            icmp_type[k] = buf[p4]
            icmp_code[k] = buf[p4 + 1]
        k += 1
    return k


@_jit
def max_ts_step(ts):
    """Largest absolute difference between consecutive timestamps in file order, `NO_TS` entries skipped."""
    best = np.int64(0)
    prev = NO_TS
    for i in range(ts.shape[0]):
        t = ts[i]
        if t == NO_TS:
            continue
        if prev != NO_TS:
            d = t - prev if t > prev else prev - t
            if d > best:
                best = d
        prev = t
    return best
