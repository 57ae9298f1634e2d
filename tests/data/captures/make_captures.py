"""Write the crafted packet captures of tests/data/captures (deterministic: same bytes on every run).

Run from anywhere: `python tests/data/captures/make_captures.py`. The outputs are committed, and so are the
golden files tshark decodes from them (tests/data/golden/make_golden.sh); rerun both after a change here.

Every capture is valid: the edge cases are the ones a correct reader must handle (byte orders, timestamp
resolutions, link types, VLAN tags, IP options, fragments, TCP option layouts, pcapng block kinds), not damage.
Addresses come from the documentation prefixes 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24.

* ether_usec_le.pcap (+ .gz): libpcap µs little-endian, Ethernet; Mirai SYNs (23, 2323), Linux and Windows SYN
  option layouts, SYN-ACK / RST / RST-ACK backscatter, UDP (DNS, SSDP), ICMP echo and port unreachable,
  802.1Q and QinQ (0x88a8 + 0x8100) tags, ARP and IPv6 (also behind tags), padding, caplen < len, seconds > 2^31.
* raw_usec_be.pcap: libpcap µs big-endian, raw IPv4 (101); IP options (IHL 6, 8, 15), TCP and UDP fragments
  (first, middle, last), offset 8191, reserved flag bit, IP-in-IP, SCTP, IGMP, TTL 0 and 255.
* sll_nsec_le.pcap: libpcap ns little-endian, Linux SLL (113); TCP option layouts (none, MSS only, Linux,
  Windows, macOS, NOP/EOL padding, odd orders, data offset 15, unknown kinds, wscale 15) and all 9 flag bits.
* sll2_nsec_be.pcap: libpcap ns big-endian, Linux SLL2 (276); the common mix, ARP and IPv6.
* ipv4_usec_le.pcap: LINKTYPE_IPV4 (228) with snap length 64; ICMP echo reply, time exceeded, host unreachable.
* one_section.pcapng: one section, interfaces Ethernet (µs), raw (ns), SLL (2^-20 s); EPBs with options, SPBs,
  NRB, ISB, custom and local-use blocks to ignore.
* two_sections.pcapng (+ .gz): a little-endian then a big-endian section, SLL2 and ms interfaces, an unsupported
  link type (USER0), SPBs.
"""

from __future__ import annotations

import gzip
import ipaddress
import struct
from pathlib import Path

OUT = Path(__file__).resolve().parent

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z

# --------------------------------------------------------------------------------------------- checksums


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a: str) -> bytes:
    return ipaddress.IPv4Address(a).packed


def ip6(a: str) -> bytes:
    return ipaddress.IPv6Address(a).packed


# ----------------------------------------------------------------------------------------- transport layer

NOP = b"\x01"
EOL = b"\x00"


def mss(v: int) -> bytes:
    return struct.pack("!BBH", 2, 4, v)


def ws(v: int) -> bytes:
    return struct.pack("!BBB", 3, 3, v)


SACKP = b"\x04\x02"


def ts(val: int, ecr: int = 0) -> bytes:
    return struct.pack("!BBII", 8, 10, val, ecr)


def sack(*blocks: tuple[int, int]) -> bytes:
    return struct.pack("!BB", 5, 2 + 8 * len(blocks)) + b"".join(struct.pack("!II", a, b) for a, b in blocks)


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int = 0,
    flags: int = 0x002,
    win: int = 64240,
    opts: bytes = b"",
    payload: bytes = b"",
    urg: int = 0,
) -> bytes:
    """A TCP segment with a correct checksum; `flags` holds the 12 bits below the data offset nibble."""
    opts += b"\0" * (-len(opts) % 4)
    assert len(opts) <= 40, len(opts)
    doff = 5 + len(opts) // 4
    hdr = struct.pack("!HHIIHHHH", sport, dport, seq, ack, (doff << 12) | flags, win, 0, urg) + opts
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    ln = 8 + len(payload)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, ln)
    c = csum(pseudo + struct.pack("!HHHH", sport, dport, ln, 0) + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, ln, c) + payload


def icmp(typ: int, code: int, rest: bytes, payload: bytes = b"") -> bytes:
    body = rest + payload
    c = csum(struct.pack("!BBH", typ, code, 0) + body)
    return struct.pack("!BBH", typ, code, c) + body


def dns_query(qid: int, name: str) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)


# ------------------------------------------------------------------------------------------- network layer


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ttl: int = 64,
    ip_id: int = 0,
    flags: int = 0b010,
    frag: int = 0,
    opts: bytes = b"",
    tos: int = 0,
    total_len: int | None = None,
) -> bytes:
    """An IPv4 packet; `flags` are the 3 flag bits (reserved, DF, MF), `frag` the offset in 8-byte units."""
    assert len(opts) % 4 == 0 and len(opts) <= 40
    ihl = 5 + len(opts) // 4
    tl = total_len if total_len is not None else ihl * 4 + len(payload)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, tos, tl, ip_id, (flags << 13) | frag, ttl, proto, 0, ip4(src), ip4(dst)
    )
    hdr += opts
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def ipv6(src: str, dst: str, nxt: int, payload: bytes, hlim: int = 64) -> bytes:
    return struct.pack("!IHBB", 0x6000_0000, len(payload), nxt, hlim) + ip6(src) + ip6(dst) + payload


def tcp6(sport: int, dport: int, seq: int, flags: int = 0x002) -> bytes:
    """A TCPv6 segment (checksum left zero: only the IPv6 header matters, it is skipped)."""
    return struct.pack("!HHIIHHHH", sport, dport, seq, 0, (5 << 12) | flags, 1024, 0, 0)


def arp_request(sha: bytes, spa: str, tpa: str) -> bytes:
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sha + ip4(spa) + b"\0" * 6 + ip4(tpa)


# ---------------------------------------------------------------------------------------------- link layer

MAC_GW = bytes.fromhex("0200c0000201")
MAC_SENSOR = bytes.fromhex("0200c6336401")
ETH_IP, ETH_IP6, ETH_ARP, ETH_8021Q, ETH_8021AD = 0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8


def eth(
    payload: bytes, etype: int = ETH_IP, vlans: tuple[tuple[int, int], ...] = (), pad: bool = True
) -> bytes:
    """An Ethernet II frame; `vlans` is (TPID, VLAN id) from outer to inner; padded to 60 bytes like a NIC."""
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    f = MAC_SENSOR + MAC_GW + tags + struct.pack("!H", etype) + payload
    return f + b"\0" * max(0, 60 - len(f)) if pad else f


def sll(payload: bytes, proto: int = ETH_IP, pkttype: int = 0) -> bytes:
    """Linux cooked capture v1 (16-byte header)."""
    return struct.pack("!HHH8sH", pkttype, 1, 6, MAC_GW + b"\0\0", proto) + payload


def sll2(payload: bytes, proto: int = ETH_IP, pkttype: int = 0, ifindex: int = 2) -> bytes:
    """Linux cooked capture v2 (20-byte header)."""
    return struct.pack("!HHIHBB8s", proto, 0, ifindex, 1, pkttype, 6, MAC_GW + b"\0\0") + payload


# --------------------------------------------------------------------------------------- the packets used

DARK = "203.0.113.{}"  # the "darknet" receiving everything


def mirai_syn(src: str, dst: str, dport: int, sport: int, ip_id: int) -> bytes:
    """Mirai `scanner.c`: seq = destination address, no options, window random, TTL 64."""
    seq = int(ipaddress.IPv4Address(dst))
    return ipv4(src, dst, 6, tcp(src, dst, sport, dport, seq, flags=0x002, win=14600), ip_id=ip_id, flags=0)


LINUX_SYN_OPTS = mss(1460) + SACKP + ts(3_735_928_559, 0) + NOP + ws(7)
WINDOWS_SYN_OPTS = mss(1460) + NOP + ws(8) + NOP + NOP + SACKP
MACOS_SYN_OPTS = mss(1460) + NOP + ws(6) + NOP + NOP + ts(1_234_567_890, 0) + SACKP + EOL + EOL


def mixed_ipv4() -> list[bytes]:
    """One of each common darknet packet kind, as IPv4 packets."""
    s1, s2, s3, s4 = "192.0.2.10", "198.51.100.77", "192.0.2.200", "198.51.100.5"
    return [
        mirai_syn(s1, DARK.format(7), 23, 41_234, 0x1A2B),
        mirai_syn(s1, DARK.format(250), 2323, 41_234, 0x1A2C),
        ipv4(
            s2,
            DARK.format(9),
            6,
            tcp(s2, DARK.format(9), 50_001, 22, 0x0BADF00D, opts=LINUX_SYN_OPTS),
            ttl=52,
            ip_id=0xBEEF,
        ),
        ipv4(
            s3,
            DARK.format(9),
            6,
            tcp(s3, DARK.format(9), 62_000, 3389, 0xFFFFFFFF, opts=WINDOWS_SYN_OPTS, win=65535),
            ttl=117,
            ip_id=0x7F00,
        ),
        # SYN-ACK backscatter (a victim of a spoofed flood answering), with MSS + SACKP + WS
        ipv4(
            s4,
            DARK.format(33),
            6,
            tcp(
                s4,
                DARK.format(33),
                443,
                1025,
                1_000_000_007,
                ack=2_863_311_531,
                flags=0x012,
                win=29200,
                opts=mss(1380) + NOP + NOP + SACKP + NOP + ws(9),
            ),
            ttl=57,
            ip_id=0,
        ),
        # RST and RST-ACK backscatter
        ipv4(
            s4,
            DARK.format(34),
            6,
            tcp(s4, DARK.format(34), 80, 33_000, 0, ack=123_456_789, flags=0x014, win=0),
            ttl=249,
            ip_id=54_321,
            flags=0,
        ),
        ipv4(
            s4,
            DARK.format(35),
            6,
            tcp(s4, DARK.format(35), 8080, 33_001, 987_654_321, flags=0x004, win=0),
            ttl=249,
            ip_id=1,
        ),
        ipv4(
            s2,
            DARK.format(40),
            17,
            udp(s2, DARK.format(40), 53_000, 53, dns_query(0x4242, "example.com")),
            ttl=50,
            ip_id=0x0102,
            flags=0,
        ),
        ipv4(
            s1,
            DARK.format(41),
            1,
            icmp(8, 0, struct.pack("!HH", 0x1234, 1), b"abcdefgh" * 4),
            ttl=63,
            ip_id=0x5555,
        ),
        # ICMP port unreachable: carries the offending IP header + 8 bytes of its UDP header
        ipv4(
            s4,
            DARK.format(42),
            1,
            icmp(
                3,
                3,
                b"\0" * 4,
                ipv4(
                    DARK.format(42),
                    s4,
                    17,
                    udp(DARK.format(42), s4, 5353, 161, b"x" * 4),
                    ttl=3,
                    ip_id=0xAAAA,
                )[:28],
            ),
            ttl=250,
            ip_id=0x0BBB,
            tos=0xC0,
        ),
    ]


# ------------------------------------------------------------------------------------------ capture files


def pcap(
    path: Path,
    linktype: int,
    records: list[tuple[int, int, bytes] | tuple[int, int, bytes, int]],
    *,
    nsec: bool = False,
    big: bool = False,
    snaplen: int = 262_144,
) -> None:
    """libpcap file; a record is (seconds, fraction in µs or ns, data[, original length])."""
    e = ">" if big else "<"
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for rec in records:
        sec, frac, data = rec[:3]
        orig = rec[3] if len(rec) > 3 else len(data)
        out.append(struct.pack(e + "IIII", sec, frac, len(data), orig) + data)
    path.write_bytes(b"".join(out))


class Pcapng:
    """A pcapng writer for crafted files: each section has its own byte order."""

    def __init__(self) -> None:
        self.blocks: list[bytes] = []
        self.e = "<"

    def _opts(self, opts: list[tuple[int, bytes]]) -> bytes:
        if not opts:
            return b""
        b = b"".join(struct.pack(self.e + "HH", c, len(v)) + v + b"\0" * (-len(v) % 4) for c, v in opts)
        return b + struct.pack(self.e + "HH", 0, 0)

    def block(self, btype: int, body: bytes) -> None:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        self.blocks.append(struct.pack(self.e + "II", btype, n) + body + struct.pack(self.e + "I", n))

    def shb(self, big: bool = False, opts: list[tuple[int, bytes]] = ()) -> None:
        self.e = ">" if big else "<"
        self.block(0x0A0D0D0A, struct.pack(self.e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + self._opts(list(opts)))

    def idb(self, linktype: int, tsresol: int | None = None, name: str = "", snaplen: int = 0) -> None:
        opts = []
        if name:
            opts.append((2, name.encode()))
        if tsresol is not None:
            opts.append((9, bytes([tsresol])))
        self.block(1, struct.pack(self.e + "HHI", linktype, 0, snaplen) + self._opts(opts))

    def epb(
        self, iface: int, ticks: int, data: bytes, orig: int | None = None, opts: list[tuple[int, bytes]] = ()
    ) -> None:
        orig = len(data) if orig is None else orig
        head = struct.pack(self.e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig)
        self.block(6, head + data + b"\0" * (-len(data) % 4) + self._opts(list(opts)))

    def spb(self, data: bytes) -> None:
        self.block(3, struct.pack(self.e + "I", len(data)) + data)

    def nrb(self, ip: str, name: str) -> None:
        rec = ip4(ip) + name.encode() + b"\0"
        body = struct.pack(self.e + "HH", 1, len(rec)) + rec + b"\0" * (-len(rec) % 4)
        self.block(4, body + struct.pack(self.e + "HH", 0, 0))

    def isb(self, iface: int, ticks: int, received: int) -> None:
        body = struct.pack(self.e + "III", iface, ticks >> 32, ticks & 0xFFFFFFFF)
        self.block(5, body + self._opts([(4, struct.pack(self.e + "Q", received))]))

    def custom(self, data: bytes) -> None:
        """A Custom Block that may be copied (type 0x00000BAD), PEN 32473 (the documentation PEN)."""
        self.block(0x00000BAD, struct.pack(self.e + "I", 32473) + data)

    def write(self, path: Path) -> None:
        path.write_bytes(b"".join(self.blocks))


def gz(src: Path) -> None:
    """A deterministic gzip copy (no name, mtime 0)."""
    with (
        open(src.with_name(src.name + ".gz"), "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f,
    ):
        f.write(src.read_bytes())


# -------------------------------------------------------------------------------------------------- files


def ether_usec_le() -> None:
    """Ethernet, µs, little-endian: the common darknet mix, VLAN and QinQ tags, ARP/IPv6 to skip, padding."""
    pk = mixed_ipv4()
    s = "192.0.2.66"
    frames = [eth(p) for p in pk]
    frames.insert(2, eth(arp_request(MAC_GW, "203.0.113.1", "203.0.113.99"), ETH_ARP))
    frames.insert(5, eth(ipv6("2001:db8::1", "2001:db8:ffff::7", 6, tcp6(40_000, 23, 7)), ETH_IP6))
    frames += [
        # 802.1Q tagged masscan-like SYN: window 1024, ip_id = (dst ^ dport ^ seq) & 0xffff
        eth(
            ipv4(
                s,
                DARK.format(60),
                6,
                tcp(s, DARK.format(60), 44_444, 445, 0x01020304, win=1024, opts=mss(1460)),
                ip_id=(int(ipaddress.IPv4Address(DARK.format(60))) ^ 445 ^ 0x01020304) & 0xFFFF,
                ttl=240,
            ),
            vlans=((ETH_8021Q, 100),),
        ),
        # QinQ: 802.1ad outer + 802.1Q inner, UDP
        eth(
            ipv4(
                s,
                DARK.format(61),
                17,
                udp(s, DARK.format(61), 12_345, 1900, b"M-SEARCH * HTTP/1.1\r\n\r\n"),
                ip_id=7,
                flags=0,
            ),
            vlans=((ETH_8021AD, 200), (ETH_8021Q, 300)),
        ),
        # QinQ carrying ARP and IPv6: skipped
        eth(
            arp_request(MAC_GW, "203.0.113.1", "203.0.113.61"),
            ETH_ARP,
            vlans=((ETH_8021AD, 200), (ETH_8021Q, 300)),
        ),
        eth(
            ipv6("2001:db8::2", "2001:db8:ffff::8", 17, struct.pack("!HHHH", 5000, 53, 8, 0)),
            ETH_IP6,
            vlans=((ETH_8021Q, 5),),
        ),
        # ZMap-like SYN (ip_id 54321, window 65535), then a second ARP
        eth(
            ipv4(
                s,
                DARK.format(62),
                6,
                tcp(s, DARK.format(62), 54_321, 80, 2_222_222_222, win=65535),
                ip_id=54_321,
                ttl=250,
                flags=0,
            )
        ),
        eth(arp_request(MAC_SENSOR, "203.0.113.62", "203.0.113.1"), ETH_ARP),
    ]
    recs = [(T0 + i // 3, 1000 * i + 7, f) for i, f in enumerate(frames)]
    # A SYN with payload cut by the capture's snap length (caplen < len, headers complete)
    big = eth(
        ipv4(
            s,
            DARK.format(63),
            6,
            tcp(s, DARK.format(63), 1111, 80, 5, flags=0x018, payload=b"G" * 200),
            ip_id=99,
        )
    )
    recs.append((T0 + 10, 999_999, big[:80], len(big)))
    # Seconds beyond 2^31 (unsigned in libpcap): 2038-01-19T03:14:08Z + 1 s
    recs.append((2**31 + 1, 0, eth(mirai_syn("192.0.2.11", DARK.format(8), 23, 5555, 1))))
    p = OUT / "ether_usec_le.pcap"
    pcap(p, 1, recs)
    gz(p)


def raw_usec_be() -> None:
    """Raw IPv4 (101), µs, big-endian: IP options, fragments, DF/MF/reserved bits, IP-in-IP, SCTP."""
    s, d = "198.51.100.23", DARK.format(70)
    seg = tcp(s, d, 40_000, 80, 77_777, flags=0x018, win=502, payload=b"GET / HTTP/1.0\r")  # 20 + 16 bytes
    dgram = udp(s, d, 6000, 27_015, bytes(range(64)))  # 72 bytes
    pk = [
        # IHL 6: Router Alert option
        ipv4(s, d, 6, tcp(s, d, 1000, 23, 1, flags=0x002, win=5840), opts=b"\x94\x04\0\0", ip_id=0x0606),
        # IHL 15: Record Route with 9 empty slots + EOL
        ipv4(
            s,
            d,
            6,
            tcp(s, d, 1001, 23, 2, opts=mss(536)),
            opts=b"\x07\x27\x04" + b"\0" * 36 + EOL,
            ip_id=0x0F0F,
            ttl=128,
        ),
        # IHL 8: NOP + timestamp option (8 bytes, one filled slot) + NOP NOP EOL, carrying UDP
        ipv4(
            s,
            d,
            17,
            udp(s, d, 123, 123, b"\x1b" + b"\0" * 47),
            opts=NOP + b"\x44\x08\x09\x00" + struct.pack("!I", 12345) + NOP + NOP + EOL,
            ip_id=0x0808,
        ),
        # TCP split in two fragments: first (offset 0, MF) holds the whole TCP header, second offset 3
        ipv4(s, d, 6, seg[:24], ip_id=0x4444, flags=0b001, frag=0),
        ipv4(s, d, 6, seg[24:], ip_id=0x4444, flags=0b000, frag=3),
        # UDP in three fragments: first, middle (MF, offset 2) and last (offset 8)
        ipv4(s, d, 17, dgram[:16], ip_id=0x5555, flags=0b001, frag=0, ttl=30),
        ipv4(s, d, 17, dgram[16:64], ip_id=0x5555, flags=0b001, frag=2, ttl=30),
        ipv4(s, d, 17, dgram[64:], ip_id=0x5555, flags=0b000, frag=8, ttl=30),
        # a lone large-offset fragment of ICMP (offset 8191, the maximum)
        ipv4(s, d, 1, b"\xee" * 8, ip_id=0x6666, flags=0b000, frag=8191),
        # reserved ("evil") bit set together with DF
        ipv4(s, d, 6, tcp(s, d, 1002, 8080, 3), ip_id=0x7777, flags=0b110),
        # IP-in-IP (proto 4): only the outer header counts, no ports
        ipv4("192.0.2.1", d, 4, ipv4(s, "10.0.0.1", 6, tcp(s, "10.0.0.1", 1003, 23, 4)), ip_id=0x0404),
        # SCTP INIT: ports exist on the wire but PACKETS keeps ports for TCP and UDP only
        ipv4(
            s,
            d,
            132,
            struct.pack("!HHII", 2905, 2905, 0, 0) + struct.pack("!BBH", 1, 0, 20) + b"\0" * 16,
            ip_id=0x8484,
        ),
        # IGMP membership query
        ipv4("192.0.2.254", "224.0.0.1", 2, bytes.fromhex("1164ee9b00000000"), ttl=1, ip_id=0, flags=0),
        # TOS/ECN bits set, TTL 255 and 0
        ipv4(s, d, 17, udp(s, d, 1, 2, b""), tos=0x03, ttl=255, ip_id=0xFFFF),
        ipv4(s, d, 17, udp(s, d, 65_535, 0, b""), ttl=0, ip_id=0xFFFE, flags=0),
    ]
    recs = [(T0 + 100 + i, 500_000 + i, p) for i, p in enumerate(pk)]
    pcap(OUT / "raw_usec_be.pcap", 101, recs, big=True)


def tcp_option_layouts() -> list[bytes]:
    """TCP SYNs and others covering option layouts and the 9 flag bits."""
    s, d = "198.51.100.200", DARK.format(80)
    t = [
        tcp(s, d, 30_000, 80, 10, opts=b""),  # no options
        tcp(s, d, 30_001, 80, 11, opts=mss(1460), win=1024),  # MSS only (masscan-like)
        tcp(s, d, 30_002, 80, 12, opts=LINUX_SYN_OPTS),
        tcp(s, d, 30_003, 80, 13, opts=WINDOWS_SYN_OPTS, win=8192),
        tcp(s, d, 30_004, 80, 14, opts=MACOS_SYN_OPTS, win=65535),
        tcp(s, d, 30_005, 80, 15, opts=NOP + NOP + mss(1200) + EOL),  # NOP padding, EOL, zero padding
        tcp(s, d, 30_006, 80, 16, opts=ts(1, 2) + ws(14) + SACKP + mss(65_535)),  # odd order
        tcp(s, d, 30_007, 80, 17, opts=SACKP + NOP + NOP + ws(0) + NOP + ts(0, 0)),  # SACKP first, tsval 0
        # data offset 15 (40 bytes of options): Linux layout + SACK blocks + NOP fill
        tcp(
            s,
            d,
            30_008,
            80,
            18,
            flags=0x010,
            ack=99,
            opts=mss(1460)
            + SACKP
            + ts(4_000_000_000, 7)
            + NOP
            + ws(2)
            + NOP
            + NOP
            + sack((100, 200))
            + NOP
            + NOP
            + NOP
            + NOP
            + EOL,
        ),
        # unknown options around known ones: TFO cookie (34), MPTCP capable (30), then WS
        tcp(
            s,
            d,
            30_009,
            80,
            19,
            opts=mss(1400) + bytes([34, 10]) + b"\x11" * 8 + bytes([30, 4, 0x00, 0x81]) + ws(5),
        ),
        # window scale above the RFC 7323 maximum of 14: still reported as-is
        tcp(s, d, 30_010, 80, 20, opts=ws(15)),
        # SYN+ECE+CWR (ECN setup), NS+ACK, Xmas (FIN PSH URG), null scan, all 9 flags
        tcp(s, d, 30_011, 80, 21, flags=0x0C2, opts=mss(1460)),
        tcp(s, d, 30_012, 80, 22, flags=0x110, ack=1),
        tcp(s, d, 30_013, 80, 23, flags=0x029, urg=7),
        tcp(s, d, 30_014, 80, 24, flags=0x000),
        tcp(s, d, 30_015, 80, 25, flags=0x1FF, ack=3, urg=1),
        # a reserved bit (above NS) set together with SYN: only the 9 defined bits are kept
        tcp(s, d, 30_016, 80, 26, flags=0x802),
        # ACK carrying only a timestamp (NOP NOP TS), and a FIN-ACK with payload
        tcp(s, d, 30_017, 80, 27, flags=0x010, ack=5, opts=NOP + NOP + ts(555, 444), win=501),
        tcp(s, d, 30_018, 80, 28, flags=0x019, ack=6, payload=b"bye"),
        # a SYN with a non-zero acknowledgment field but no ACK flag: the raw wire value is kept
        tcp(s, d, 30_019, 80, 29, flags=0x002, ack=0xDEADBEEF),
    ]
    return [ipv4(s, d, 6, seg, ip_id=0x2000 + i, ttl=64 - i) for i, seg in enumerate(t)]


def sll_nsec_le() -> None:
    """Linux SLL (113), ns, little-endian: TCP option layouts and flags; ARP and IPv6 to skip."""
    pk = [sll(p, pkttype=0) for p in tcp_option_layouts()]
    pk.insert(3, sll(arp_request(MAC_GW, "203.0.113.1", "203.0.113.80"), ETH_ARP, pkttype=1))
    pk.insert(
        9, sll(ipv6("2001:db8::3", "2001:db8:ffff::80", 58, bytes.fromhex("8000000012340001")), ETH_IP6)
    )
    recs = [(T0 + 200, 123_456_789 + 1_000_000 * i, p) for i, p in enumerate(pk)]
    recs.append((T0 + 201, 999_999_999, sll(mixed_ipv4()[0], pkttype=4)))  # outgoing packet type
    pcap(OUT / "sll_nsec_le.pcap", 113, recs, nsec=True)


def sll2_nsec_be() -> None:
    """Linux SLL2 (276), ns, big-endian: the common mix plus ARP and IPv6."""
    pk = [sll2(p) for p in mixed_ipv4()]
    pk.insert(1, sll2(ipv6("2001:db8::4", "2001:db8:ffff::9", 17, struct.pack("!HHHH", 1, 2, 8, 0)), ETH_IP6))
    pk.append(sll2(arp_request(MAC_GW, "203.0.113.1", "203.0.113.81"), ETH_ARP, pkttype=1))
    recs = [(T0 + 300 + i, 1 + 111_111_111 * (i % 9), p) for i, p in enumerate(pk)]
    pcap(OUT / "sll2_nsec_be.pcap", 276, recs, nsec=True, big=True)


def ipv4_usec_le() -> None:
    """LINKTYPE_IPV4 (228), µs, little-endian, with a snap length of 64 cutting payloads (not headers)."""
    s, d = "192.0.2.150", DARK.format(90)
    pk = [
        ipv4(
            s,
            d,
            6,
            tcp(s, d, 2000, 80, 42, flags=0x018, ack=1, payload=b"P" * 100, opts=NOP + NOP + ts(9, 8)),
        ),
        ipv4(s, d, 17, udp(s, d, 2001, 161, b"\x30" + b"\0" * 99)),
        ipv4(s, d, 1, icmp(0, 0, struct.pack("!HH", 7, 8), b"Z" * 56), ttl=1),
        # ICMP time exceeded quoting an ICMP echo
        ipv4(
            "198.51.100.1",
            s,
            1,
            icmp(11, 0, b"\0" * 4, ipv4(s, d, 1, icmp(8, 0, b"\0\1\0\2"), ttl=1)[:28]),
            ttl=254,
            flags=0,
        ),
        # ICMP host unreachable quoting a TCP SYN (inner ports must not leak into the row)
        ipv4(
            "198.51.100.1",
            s,
            1,
            icmp(3, 1, b"\0" * 4, ipv4(s, d, 6, tcp(s, d, 2002, 443, 1, opts=mss(1460)))[:28]),
            ttl=254,
        ),
    ]
    recs = [(T0 + 400, 10 * i, p[:64], len(p)) for i, p in enumerate(pk)]
    pcap(OUT / "ipv4_usec_le.pcap", 228, recs, snaplen=64)


def pcapng_one_section() -> None:
    """pcapng, one little-endian section, three interfaces (Ethernet µs, raw IPv4 ns, SLL 2^-20 s),
    EPBs with options, SPBs (no timestamp), and blocks to ignore (NRB, ISB, custom)."""
    w = Pcapng()
    w.shb(opts=[(1, b"crafted for darkembed tests"), (4, b"make_captures.py")])
    w.idb(1, name="eth0")  # default if_tsresol: 10^-6
    w.idb(101, tsresol=9, name="raw0")
    w.idb(113, tsresol=0x80 | 20, name="any")
    mix = mixed_ipv4()
    opt = tcp_option_layouts()
    w.epb(
        0,
        (T0 + 500) * 10**6 + 1,
        eth(mix[0]),
        opts=[(1, b"a comment on a packet"), (2, struct.pack("<I", 1))],
    )
    w.epb(1, (T0 + 500) * 10**9 + 2, mix[1])
    w.nrb("203.0.113.7", "telnet.example")
    # 2^-20 s ticks: multiples of 2048 ticks are whole nanoseconds (2048 / 2^20 s = 1953125 ns)
    w.epb(2, (T0 + 500) * 2**20 + 2048 * 3, sll(mix[2]))
    w.epb(2, (T0 + 500) * 2**20 + 2**19, sll(arp_request(MAC_GW, "203.0.113.1", "203.0.113.2"), ETH_ARP))
    w.spb(eth(mix[3]))  # SPB: interface 0, no timestamp
    w.epb(0, (T0 + 501) * 10**6, eth(ipv6("2001:db8::5", "2001:db8:ffff::1", 6, tcp6(1, 2, 3)), ETH_IP6))
    w.isb(0, (T0 + 502) * 10**6, 123)
    w.custom(b"ignore me!!!")  # tshark lists a custom block as a frame without encapsulation; it is no packet
    w.block(0x80000001, b"a local-use block type")
    w.epb(1, (T0 + 501) * 10**9 + 999_999_999, opt[2])
    w.spb(eth(mix[9]))
    w.epb(0, (T0 + 503) * 10**6 + 500_000, eth(opt[8], vlans=((ETH_8021Q, 42),)))
    w.epb(2, (T0 + 503) * 2**20 + 2**20 - 2048, sll(opt[11]))
    # 1 tick = 953.674... ns: not a whole nanosecond; wiretap truncates (floor) to 953 ns
    w.epb(2, (T0 + 504) * 2**20 + 1, sll(opt[16]))
    w.write(OUT / "one_section.pcapng")


def pcapng_two_sections() -> None:
    """pcapng, a little-endian section then a big-endian one, each with its own interfaces (interface ids
    restart in each section); the second section has an unsupported link type (USER0 = 147) and SPBs."""
    w = Pcapng()
    mix = mixed_ipv4()
    opt = tcp_option_layouts()
    w.shb()
    w.idb(1, tsresol=9)
    w.idb(276, tsresol=6)
    w.epb(0, (T0 + 600) * 10**9 + 123_456_789, eth(mix[4]))
    w.epb(1, (T0 + 600) * 10**6 + 654_321, sll2(mix[5]))
    w.epb(0, (T0 + 601) * 10**9 + 1, eth(mix[6], vlans=((ETH_8021AD, 7), (ETH_8021Q, 8))))
    w.shb(big=True, opts=[(1, b"second section, big-endian")])
    w.idb(228, name="ipv4")  # µs by default
    w.idb(147, name="user0")
    w.idb(1, tsresol=3)  # milliseconds
    w.epb(0, (T0 + 700) * 10**6 + 7, mix[7])
    w.epb(1, (T0 + 700) * 10**6 + 8, mix[8])  # an IPv4 packet behind an unsupported link type
    w.spb(mix[9])  # SPB on interface 0 (LINKTYPE_IPV4) of this section
    w.epb(2, (T0 + 701) * 10**3 + 999, eth(opt[4]))
    w.epb(2, (T0 + 702) * 10**3, eth(arp_request(MAC_GW, "203.0.113.1", "203.0.113.3"), ETH_ARP))
    w.epb(0, (T0 + 703) * 10**6, opt[5])
    w.spb(opt[15])
    p = OUT / "two_sections.pcapng"
    w.write(p)
    gz(p)


def main() -> None:
    ether_usec_le()
    raw_usec_be()
    sll_nsec_le()
    sll2_nsec_be()
    ipv4_usec_le()
    pcapng_one_section()
    pcapng_two_sections()


if __name__ == "__main__":
    main()
