"""Compiled (numba) kernels that index and decode libpcap and pcapng buffers.

Three passes over a capture held in memory as a `uint8` array, none of them Python per packet:

1. `count_*`: walk the record (block) headers and count records;
2. `index_*`: fill per-record arrays: data offset, captured length, link type, timestamp (ns) and a status code
   (`OK` or the reason the record is bad, e.g. `CAPLEN_GT_LEN`);
3. `decode`: decode every `OK` record's link, IPv4 and TCP/UDP/ICMP headers into compact column arrays, setting
   the status of records it skips (IPv6, non-IP, bad headers).

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
# libpcap


@_jit
def count_pcap(buf, be):
    """Number of complete records, and the offset where the walk stopped (== len(buf) when the file is whole)."""
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


@_jit
def index_pcap(buf, be, nano, snaplen, n, off, cap, ts, status):
    """Fill per-record arrays for the first `n` records of a libpcap buffer (see `count_pcap`)."""
    pos = 24
    for i in range(n):
        sec = np.int64(_u32(buf, pos, be))
        frac = np.int64(_u32(buf, pos + 4, be))
        c = np.int64(_u32(buf, pos + 8, be))
        orig = np.int64(_u32(buf, pos + 12, be))
        ts[i] = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        off[i] = pos + 16
        cap[i] = c
        if c > orig:
            status[i] = CAPLEN_GT_LEN
        elif snaplen > 0 and c > snaplen:
            status[i] = CAPLEN_GT_SNAPLEN
        else:
            status[i] = OK
        pos += 16 + c


# ----------------------------------------------------------------------------------------------------------------
# pcapng

_SHB = 0x0A0D0D0A
_IDB = 1
_PB = 2  # obsolete Packet Block
_SPB = 3
_EPB = 6
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


@_jit
def count_pcapng(buf):
    """Upper bound of packet records (EPB, SPB, PB), and the offset where the walk stopped."""
    n = 0
    pos = 0
    size = buf.shape[0]
    be = False
    while pos + 12 <= size:
        btype = _u32(buf, pos, be)
        if btype == _SHB:
            if pos + 12 > size:
                break
            magic_le = _u32(buf, pos + 8, False)
            be = magic_le != 0x1A2B3C4D
        blen = np.int64(_u32(buf, pos + 4, be))
        if blen < 12 or blen % 4 != 0 or pos + blen > size:
            break
        if btype == _EPB or btype == _SPB or btype == _PB:
            n += 1
        pos += blen
    return n, pos


@_jit
def index_pcapng(buf, n, off, cap, link, ts, status, boff, stop):
    """Walk pcapng blocks; fill per-record arrays for packet blocks. Returns (records filled, stop status).

    `boff[i]` is the offset of record i's block (for reports); `link[i]` the link type of its interface.
    `stop` is the offset returned by `count_pcapng`; the status returned says why the walk ended early
    (OK when the buffer was walked to its end).
    """
    if_link = np.full(_MAX_IF, -1, np.int32)
    if_res = np.full(_MAX_IF, 6, np.int64)
    if_snap = np.zeros(_MAX_IF, np.int64)
    if_tsoff = np.zeros(_MAX_IF, np.int64)
    nif = 0
    be = False
    pos = 0
    i = 0
    size = buf.shape[0]
    while pos + 12 <= size and i <= n:
        btype = _u32(buf, pos, be)
        if btype == _SHB:
            be = _u32(buf, pos + 8, False) != 0x1A2B3C4D
            nif = 0
        blen = np.int64(_u32(buf, pos + 4, be))
        if blen < 12 or blen % 4 != 0:
            return i, BAD_BLOCK
        if pos + blen > size:
            return i, TRUNCATED_RECORD
        body = pos + 8
        bend = pos + blen - 4
        if btype == _IDB:
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
            boff[i] = pos
            if btype == _EPB:
                if body + 20 > bend:
                    status[i] = BAD_BLOCK
                    off[i] = body
                    cap[i] = 0
                    link[i] = -1
                    ts[i] = NO_TS
                    i += 1
                    pos += blen
                    continue
                iface = np.int64(_u32(buf, body, be))
            else:
                iface = np.int64(_u16(buf, body, be))
            hi = np.int64(_u32(buf, body + 4, be))
            lo = np.int64(_u32(buf, body + 8, be))
            c = np.int64(_u32(buf, body + 12, be))
            orig = np.int64(_u32(buf, body + 16, be))
            off[i] = body + 20
            cap[i] = c
            if iface >= nif or iface >= _MAX_IF:
                status[i] = UNKNOWN_INTERFACE
                link[i] = -1
                ts[i] = NO_TS
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
    if pos < stop:
        return i, BAD_BLOCK
    return i, OK


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
):
    """Decode every record whose status is OK; returns the number kept. Sets the status of skipped records."""
    n = off.shape[0]
    k = 0
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
