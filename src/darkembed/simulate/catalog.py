"""The simulated Internet population: classes, their targets at scale 1.0, ports, tools and address blocks.

Targets are the daily averages of docs/method.md section 6.6 ([GNN] Table 2, one /24 darknet): active hosts (at least
5 packets), distinct destination ports and packets per darknet-day. Netsystems has no published address block in
the bundled source list and is left out; its share of traffic goes to nobody (the totals stay near 2 M packets).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

# Tool fingerprints of the probes (docs/data-formats.md section 5).
# `none`: the host sends no TCP probes (backscatter, UDP and ICMP noise).
TOOL_MIRAI, TOOL_ZMAP, TOOL_MASSCAN, TOOL_LINUX, TOOL_WINDOWS, TOOL_RAW, TOOL_NONE = range(7)
TOOL_NAMES = ("mirai", "zmap", "masscan", "linux", "windows", "raw", "none")


@dataclass(frozen=True)
class ClassSpec:
    """One true class of the simulated world.

    Attributes:
        name: the class label in the answer key (scanner classes are named after the organisation).
        kind: mirai | scanner | bruteforcer | exploiter | spammer | unknown.
        hosts: active hosts per darknet-day at scale 1.0.
        ports: distinct destination ports per darknet-day (the whole class).
        packets: packets per darknet-day at scale 1.0 (the whole class).
        lifetime: mean lifetime of a host in days (churn); hosts that leave are replaced.
        spread: sigma of the lognormal spread of per-host volume (heavy tails).
        pattern: scanner port pattern (fixed_hours | rotation | wide | slow), None for others.
        tool: default tool fingerprint of the class (scanners) or None when it is drawn per host.
        blocks: bundled CIDR file of the organisation (scanners only).
        both: share of hosts seen by all darknets; None means solved from the configured anchor share.
        honeypot: probability that an active host also reaches the honeypot on a day.
        darknet: probability that an active host reaches the darknets at all on a day (exploiters rarely do).
        ports_month: distinct destination ports of the class over the 31 days of [GNN] Table 2; with `ports` it
            sets how much of a scanner organisation's port set changes from one day to the next (`renewal`).
    """

    name: str
    kind: str
    hosts: float
    ports: int
    packets: float
    lifetime: float
    spread: float
    pattern: str | None = None
    tool: int | None = None
    blocks: str | None = None
    both: float | None = None
    honeypot: float = 0.6
    darknet: float = 1.0
    ports_month: int | None = None

    @property
    def renewal(self) -> float:
        """Share of the class's daily port set replaced per day: a set of `ports` ports that loses a share r a
        day shows `ports * (1 + 30 r)` distinct ports over 31 days, which is solved for r from `ports_month`
        (0 without it)."""
        if not self.ports_month or self.ports_month <= self.ports:
            return 0.0
        return min(1.0, (self.ports_month - self.ports) / (30.0 * self.ports))


#: Lognormal sigma of the packets per day of a scanner organisation's hosts: most send a few dozen packets a day,
#: some only a handful (heavy tails are the rule in darknet traffic, docs/realism.md).
SCANNER_SPREAD = 1.0

CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec("mirai", "mirai", 2158, 95, 63942, 4.6, 1.5, honeypot=0.7),
    ClassSpec("bruteforcer", "bruteforcer", 246, 1020, 328747, 10.0, 1.5, honeypot=0.8),
    ClassSpec("spammer", "spammer", 252, 7048, 157785, 10.0, 1.5, honeypot=0.5),
    ClassSpec("exploiter", "exploiter", 27, 8, 4780, 2.0, 1.2, honeypot=0.95, darknet=0.8),
    ClassSpec(
        "shadowserver",
        "scanner",
        287,
        38,
        7046,
        200,
        SCANNER_SPREAD,
        "fixed_hours",
        TOOL_ZMAP,
        "shadowserver_v4.txt",
        1.0,
        0.95,
        ports_month=42,
    ),
    ClassSpec(
        "driftnet",
        "scanner",
        252,
        2247,
        18221,
        200,
        SCANNER_SPREAD,
        "rotation",
        TOOL_MASSCAN,
        "driftnet_v4.txt",
        1.0,
        0.95,
        ports_month=9246,
    ),
    ClassSpec(
        "internetcensus",
        "scanner",
        224,
        234,
        6900,
        60,
        SCANNER_SPREAD,
        "slow",
        TOOL_MASSCAN,
        "bitsight_v4.txt",
        1.0,
        0.9,
        ports_month=252,
    ),
    ClassSpec(
        "censys",
        "scanner",
        245,
        12455,
        109706,
        60,
        SCANNER_SPREAD,
        "wide",
        TOOL_ZMAP,
        "censys_v4.txt",
        1.0,
        0.95,
        ports_month=65069,
    ),
    ClassSpec(
        "rapid7",
        "scanner",
        283,
        25,
        6046,
        60,
        SCANNER_SPREAD,
        "fixed_hours",
        TOOL_LINUX,
        "rapid7_v4.txt",
        0.2,
        0.5,
        ports_month=139,
    ),
    ClassSpec(
        "onyphe",
        "scanner",
        97,
        158,
        1393,
        60,
        SCANNER_SPREAD,
        "slow",
        TOOL_MASSCAN,
        "onyphe_v4.txt",
        1.0,
        0.9,
        ports_month=186,
    ),
    ClassSpec(
        "shodan",
        "scanner",
        31,
        1007,
        10350,
        60,
        SCANNER_SPREAD,
        "rotation",
        TOOL_RAW,
        "shodan_v4.txt",
        0.75,
        0.9,
        ports_month=1232,
    ),
    ClassSpec(
        "securitytrails",
        "scanner",
        17,
        15,
        3478,
        200,
        SCANNER_SPREAD,
        "fixed_hours",
        TOOL_LINUX,
        "recordedfuture_v4.txt",
        1.0,
        0.9,
        ports_month=207,
    ),
    ClassSpec(
        "intrinsec",
        "scanner",
        9,
        6,
        303,
        200,
        SCANNER_SPREAD,
        "fixed_hours",
        TOOL_ZMAP,
        "intrinsec_v4.txt",
        1.0,
        0.9,
        ports_month=8,
    ),
    ClassSpec("unknown", "unknown", 3594, 49461, 1279188, 3.0, 2.2, honeypot=0.5),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
CLASS_INDEX: dict[str, int] = {c.name: i for i, c in enumerate(CLASSES)}

#: Look-alikes per class kind: hosts that behave like the class but that no labelling source names, as a share of
#: the class's labelled hosts (they are taken from the unknown hosts' budget). Mirai-like bots whose variant
#: randomises the sequence number; brute-forcers, spammers and exploiters that never reach the honeypot. Scanner
#: hosts left out of their organisation's published list are the scanners' look-alikes (`simulate.list_coverage`).
#: No paper counts them; the shares are set so that the unlabelled share of active hosts stays that of the data
#: (docs/realism.md).
LOOKALIKE_SHARE = {"mirai": 0.15, "bruteforcer": 0.3, "spammer": 0.3, "exploiter": 0.3}

# Unknown background behaviours and their share of unknown hosts.
UNKNOWN_SUBTYPES = ("prober", "telnet", "horizontal", "backscatter", "udp", "icmp")
UNKNOWN_SHARES = np.array([0.46, 0.07, 0.01, 0.26, 0.15, 0.05])
# Relative volume per unknown subtype (the horizontal scanners are the heavy hitters).
UNKNOWN_VOLUME = np.array([1.0, 0.6, 6.0, 0.8, 0.4, 0.3])
# Extra unknown hosts that send fewer than 5 packets a day, relative to the unknown target.
LOW_VOLUME_SHARE = 0.6

# Popular destination ports of Internet background radiation, most popular first.
POPULAR_PORTS = np.array(
    [
        445,
        22,
        23,
        80,
        443,
        3389,
        8080,
        1433,
        3306,
        5900,
        21,
        25,
        6379,
        8443,
        9200,
        135,
        139,
        8888,
        81,
        2323,
        5555,
        8081,
        110,
        143,
        993,
        995,
        53,
        111,
        1723,
        5432,
        27017,
        11211,
        2375,
        7547,
        37215,
        8000,
        8001,
        8008,
        9000,
        9090,
        10000,
        5060,
        1900,
        161,
        123,
        502,
        102,
        47808,
        20000,
        1521,
        3128,
        8291,
        8728,
        6443,
        2222,
        49152,
        60001,
        5985,
        5986,
        88,
        389,
        636,
        4443,
        4444,
        7001,
        7777,
        9001,
        9999,
        50000,
        500,
        1080,
        1194,
    ],
    dtype=np.int64,
)
IOT_PORTS = np.array(
    [
        80,
        8080,
        5555,
        7547,
        37215,
        52869,
        81,
        8081,
        60001,
        2222,
        22,
        8443,
        49152,
        5358,
        9000,
        8000,
        88,
        8888,
        6789,
        23231,
        26,
        2223,
        9530,
        5500,
        85,
        8181,
        7574,
        4567,
        5678,
        8088,
        9527,
        1023,
        2323,
        37777,
        34567,
        8090,
        8099,
        9090,
        10001,
        10554,
        554,
        1025,
        4000,
        50000,
        3000,
        10000,
        83,
        84,
        82,
        8001,
    ],
    dtype=np.int64,
)
BRUTE_SERVICES = np.array([22, 23, 2222, 2223, 3389, 5900, 1433, 3306, 21, 8022], dtype=np.int64)
BRUTE_WEIGHTS = np.array([0.42, 0.16, 0.08, 0.03, 0.12, 0.05, 0.05, 0.04, 0.03, 0.02])
COWRIE_PORTS = {22: "ssh", 2222: "ssh", 8022: "ssh", 23: "telnet", 2223: "telnet"}
EXPLOIT_PORTS = np.array([80, 8080, 443, 8443, 7547, 5555, 22, 23], dtype=np.int64)
EXPLOIT_WEIGHTS = np.array([0.3, 0.2, 0.1, 0.08, 0.1, 0.1, 0.07, 0.05])
SMTP_PORTS = np.array([25, 587, 465], dtype=np.int64)
SMTP_WEIGHTS = np.array([0.7, 0.2, 0.1])
#: A spammer's share of SMTP probes at a darknet: uniform in [SPAM_SMTP_MIN, SPAM_SMTP_MIN + SPAM_SMTP_SPAN]. The
#: class is labelled from the honeypot's mail relaying (SSH tunnels), not from what reaches the darknet, where
#: spam bots scan thousands of ports a day ([GNN] Table 2).
SPAM_SMTP_MIN = 0.0
SPAM_SMTP_SPAN = 0.1
#: Share of the spammers the honeypot sees that log in and relay mail through SSH tunnels (Cowrie's
#: direct-tcpip requests); the rest only knock on its ports like any darknet.
SPAM_TUNNEL_SHARE = 0.6
UDP_PORTS = np.array(
    [53, 123, 161, 1900, 5060, 11211, 137, 389, 500, 5353, 3478, 19, 69, 1434], dtype=np.int64
)
UDP_PAYLOAD = np.array([29, 48, 40, 94, 420, 15, 50, 64, 312, 46, 20, 1, 20, 1], dtype=np.int64)
BACKSCATTER_SPORTS = np.array([80, 443, 53, 22, 25565, 27015, 3074, 8080, 6667, 3478], dtype=np.int64)


def load_blocks(filename: str) -> list[tuple[int, int]]:
    """The (network address, prefix length) blocks of a bundled CIDR file, in file order."""
    text = resources.files("darkembed.simulate").joinpath("blocks", filename).read_text()
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        addr, _, plen = line.partition("/")
        a, b, c, d = (int(x) for x in addr.split("."))
        out.append(((a << 24) | (b << 16) | (c << 8) | d, int(plen or 32)))
    return out


def block_addresses(blocks: list[tuple[int, int]]) -> np.ndarray:
    """All usable addresses of the blocks (network and broadcast excluded for blocks larger than /31), uint32."""
    parts = []
    for net, plen in blocks:
        size = 1 << (32 - plen)
        a = np.arange(net, net + size, dtype=np.int64)
        if size > 2:
            a = a[1:-1]
        parts.append(a)
    return np.unique(np.concatenate(parts)).astype(np.uint32)


def ip_str(ip: int) -> str:
    """Dotted-quad string of an IPv4 address given as an int."""
    ip = int(ip)
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"
