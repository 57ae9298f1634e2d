"""The IPv4 packets a network receives from the simulated population on one day.

`ActiveDay` draws who is active on a day, which networks see them, their volume and their activity window;
`day_packets` turns that into one network's packet columns (`darkembed.simulate.pcap`), one behaviour at a time:
Mirai bots, scanner organisations, brute-forcers, spammers, exploiters and the unknown subtypes, then the fields
every TCP probe carries (`tool_fields`). Each network-day draws from its own generator (`seeded_rng`), and the
functions below draw from it in a fixed order, so the same seed gives the same packets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkembed.config import SimulateConfig
from darkembed.simulate import catalog as C
from darkembed.simulate.pcap import OPT_LINUX, OPT_MSS, OPT_NONE, OPT_WINDOWS, empty_columns
from darkembed.simulate.population import UDP_SCANNERS, Population, Schedules

#: Classes labelled from honeypot logs: their look-alikes are the hosts the honeypot never sees.
HONEYPOT_KINDS = ("bruteforcer", "spammer", "exploiter")

#: Spammers and brute-forcers scan the popular services among the `SPAM_TOP` / `BRUTE_TOP` most popular ports
#: (with their wide pools, about the 7,048 and 1,020 ports a day of [GNN] Table 2).
SPAM_TOP = 1000
BRUTE_TOP = 100

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR


@dataclass(frozen=True)
class SimNetwork:
    """An observed network: name, kind, first address and size of its prefix, index (for seeds)."""

    name: str
    kind: str
    base: int
    size: int
    index: int


def seeded_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of one purpose (and day, network) of the world of `seed`."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *key]))


def _durations(rng: np.random.Generator, kinds: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """Hours of activity per host-day by behaviour."""
    n = len(kinds)
    dur = np.full(n, 24.0)
    u = rng.random(n)
    dur = np.where(kinds == "bruteforcer", 2 + 14 * u, dur)
    dur = np.where(kinds == "spammer", 4 + 20 * u, dur)
    dur = np.where(kinds == "exploiter", 0.5 + 5.5 * u, dur)
    unk = kinds == "unknown"
    sub = np.where(unk, variant, 0)
    lo = np.array([0.5, 24, 4, 0.1, 1, 0.5])[sub]
    hi = np.array([24, 24, 24, 3, 24, 12])[sub]
    return np.where(unk, lo + (hi - lo) * u, dur)


class ActiveDay:
    """The world on one day: who is active, where they are seen, their volume and activity window."""

    def __init__(
        self, pop: Population, d: int, nets: list[SimNetwork], sim: SimulateConfig, seed: int
    ) -> None:
        rng = seeded_rng(seed, 3, d)
        self.alive = pop.alive(d)
        n = len(self.alive)
        cls = pop.cls[self.alive]
        darknets = [x for x in nets if x.kind == "darknet"]
        q = pop.both[cls]
        part = rng.random(n) < np.array([s.darknet for s in C.CLASSES])[cls]
        glob = rng.random(n) < q
        which = rng.integers(0, max(len(darknets), 1), n)
        hp = np.array([s.honeypot for s in C.CLASSES])[cls]
        # the look-alikes of the classes the honeypot labels never reach it
        honeypot_labelled = np.array([s.kind in HONEYPOT_KINDS for s in C.CLASSES])[cls]
        hp = np.where(pop.lookalike[self.alive] & honeypot_labelled, 0.0, hp)
        self.visible: dict[str, np.ndarray] = {}
        j = 0
        for x in nets:
            if x.kind == "darknet":
                self.visible[x.name] = part & (glob | (which == j))
                j += 1
            else:
                self.visible[x.name] = rng.random(n) < hp
        sd = 0.3 * sim.drift
        self.factor = rng.lognormal(-(sd**2) / 2, sd, n) if sd > 0 else np.ones(n)
        kinds = np.array([s.kind for s in C.CLASSES])[cls]
        self.start = rng.uniform(0, 24, n)
        self.dur = _durations(rng, kinds, pop.variant[self.alive])


def tool_fields(
    rng: np.random.Generator,
    cols: dict[str, np.ndarray],
    tool: np.ndarray,
    aux: np.ndarray,
    tsbase: np.ndarray,
    day_start_us: int,
    probe: np.ndarray,
) -> None:
    """Fill the probe fields (seq, IP id, window, options, source port, DF, TSval) of the TCP SYN rows `probe`."""
    n = int(probe.sum())
    if n == 0:
        return
    t = tool[probe]
    a = aux[probe].astype(np.int64)
    dst = cols["dst"][probe]
    dport = cols["dport"][probe].astype(np.uint32)
    seq = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    seq = np.where(t == C.TOOL_MIRAI, dst, seq)
    ip_id = rng.integers(0, 65536, n).astype(np.uint32)
    ip_id = np.where(t == C.TOOL_ZMAP, 54321, ip_id)
    ip_id = np.where(t == C.TOOL_MASSCAN, (dst ^ dport ^ seq) & 0xFFFF, ip_id)
    raw_win = np.array([1024, 4096, 14600, 29200, 65535])[a % 5]
    win = np.select(
        [t == C.TOOL_MIRAI, t == C.TOOL_ZMAP, t == C.TOOL_MASSCAN, t == C.TOOL_LINUX, t == C.TOOL_WINDOWS],
        [rng.integers(0, 65536, n), 65535, 1024, 64240, 64240],
        raw_win,
    )
    opts = np.select(
        [t == C.TOOL_ZMAP, t == C.TOOL_LINUX, t == C.TOOL_WINDOWS],
        [OPT_MSS, OPT_LINUX, OPT_WINDOWS],
        OPT_NONE,
    )
    rnd = rng.integers(0, 65536, n)
    sport = np.select(
        [t == C.TOOL_MIRAI, t == C.TOOL_ZMAP, t == C.TOOL_MASSCAN, t == C.TOOL_WINDOWS],
        [rnd, 32768 + rnd % 28232, 40000 + (a % 20000), 49152 + rnd % 16384],
        32768 + rnd % 28232,
    )
    cols["seq"][probe] = seq
    cols["ip_id"][probe] = ip_id.astype(np.uint16)
    cols["win"][probe] = win.astype(np.uint16)
    cols["opts"][probe] = opts.astype(np.int8)
    cols["sport"][probe] = sport.astype(np.uint16)
    cols["df"][probe] = (t == C.TOOL_LINUX) | (t == C.TOOL_WINDOWS)
    ms = (cols["ts_us"][probe] - day_start_us) // 1000
    cols["tsval"][probe] = ((tsbase[probe].astype(np.int64) + ms) & 0xFFFFFFFF).astype(np.uint32)


@dataclass
class _Batch:
    """The packets of one network-day while they are generated: per packet, its host's attributes and the
    fields filled in so far. Every behaviour draws from `rng`, in the order `day_packets` calls them."""

    rng: np.random.Generator
    sched: Schedules
    d: int  # day index (into the schedules)
    cols: dict[str, np.ndarray]  # the packet columns (`pcap.empty_columns`)
    cls: np.ndarray  # class index of the packet's host
    kind: np.ndarray  # behaviour kind of the packet's host (`catalog.ClassSpec.kind`)
    var: np.ndarray  # variant of the packet's host
    aux: np.ndarray  # int64: the host's own number, from which its mix of ports is derived
    u: np.ndarray  # one uniform draw per packet that the behaviours split on
    hours: np.ndarray  # hour of day of the packet (fraction included)
    dport: np.ndarray  # int64: destination port, or what ICMP rows store in the `dport` column


def _mirai_ports(b: _Batch) -> None:
    """Mirai bots: Telnet (23, a tenth on 2323) for the classic bots, their family's ports for the variants."""
    rng, u, var = b.rng, b.u, b.var
    m = b.kind == "mirai"
    if m.any():
        fam = b.sched.mirai[b.d]
        vm = var[m]
        fam_port = fam[vm, rng.integers(0, fam.shape[1], int(m.sum()))]
        port = np.where(vm == 0, np.where(u[m] < 0.1, 2323, 23), np.where(u[m] < 0.3, 23, fam_port))
        rnd = rng.random(int(m.sum())) < 0.0008
        b.dport[m] = np.where(rnd, rng.integers(1, 65536, int(m.sum())), port)


def _scanner_ports(b: _Batch) -> None:
    """Scanner organisations: their day's ports, at the hours their sweep pattern gives; some also probe UDP."""
    rng, u, d, sched, cols = b.rng, b.u, b.d, b.sched, b.cols
    for spec in C.CLASSES:
        if spec.kind != "scanner":
            continue
        m = b.cls == C.CLASS_INDEX[spec.name]
        k = int(m.sum())
        if k == 0:
            continue
        ports = sched.org_ports[d][spec.name]
        if spec.pattern == "rotation":
            # one sweep a day through the set, a slice an hour
            per_hour = -(-len(ports) // 24)
            h = rng.integers(0, 24, k)
            i = np.minimum(h * per_hour + rng.integers(0, per_hour, k), len(ports) - 1)
            b.dport[m] = ports[i]
            b.hours[m] = h + rng.random(k)
        else:
            i = np.minimum(np.searchsorted(sched.org_cum[d][spec.name], rng.random(k)), len(ports) - 1)
            b.dport[m] = ports[i]
            if spec.pattern == "fixed_hours":  # each port at its own hour of the day
                b.hours[m] = sched.org_hours[d][spec.name][i] + rng.random(k)
            else:  # wide, slow: all day long
                b.hours[m] = rng.random(k) * 24
        if spec.name in UDP_SCANNERS:
            udp = m & (u < 0.08)
            j = rng.integers(0, 5, int(udp.sum()))
            cols["proto"][udp] = 17
            b.dport[udp] = C.UDP_PORTS[j]
            cols["plen"][udp] = C.UDP_PAYLOAD[j]


def _service_ports(b: _Batch) -> None:
    """Brute-forcers, spammers and exploiters: their services, mixed with scans in proportions of the host's own
    (fractions drawn from its `aux` number)."""
    rng, u, var, aux, kind = b.rng, b.u, b.var, b.aux, b.kind
    f1 = (aux % 1000) / 1000.0
    f2 = (aux // 1000 % 1000) / 1000.0
    popular = b.sched.popular[b.d]
    m = kind == "bruteforcer"
    if m.any():
        # the honeypot sees them brute-force; a darknet sees them look for targets: some hammer one service,
        # others mostly scan (the class covers 1,020 ports a day, [GNN] Table 2); each host has its own mix
        k = int(m.sum())
        focus = 0.15 + 0.8 * f1[m]  # share of the host's main service
        primary = C.BRUTE_SERVICES[var[m]]
        second = C.BRUTE_SERVICES[
            (var[m] + 1 + (aux[m] // 10**6) % (len(C.BRUTE_SERVICES) - 1)) % len(C.BRUTE_SERVICES)
        ]
        pool = b.sched.brute_pool[b.d]
        scan = np.where(
            rng.random(k) < f2[m], popular[_zipf_rank(rng, k, BRUTE_TOP)], pool[rng.integers(0, len(pool), k)]
        )
        side = u[m] < focus + (1 - focus) / 3
        b.dport[m] = np.where(u[m] < focus, primary, np.where(side, second, scan))
    m = kind == "spammer"
    if m.any():
        # at a darknet, spam bots are aggressive horizontal scanners ([GNN] Table 2: 7,048 ports a day); the
        # SMTP ports are a small share of their probes, the rest the popular services and a wide pool, in a mix
        # of the host's own
        k = int(m.sum())
        smtp = C.SMTP_PORTS[rng.choice(3, size=k, p=C.SMTP_WEIGHTS)]
        pool = b.sched.spam_pool[b.d]
        zipf = popular[_zipf_rank(rng, k, SPAM_TOP)]
        wide = np.where(rng.random(k) < f2[m], zipf, pool[rng.integers(0, len(pool), k)])
        b.dport[m] = np.where(u[m] < C.SPAM_SMTP_MIN + C.SPAM_SMTP_SPAN * f1[m], smtp, wide)
    m = kind == "exploiter"
    if m.any():
        k = int(m.sum())
        cw = np.cumsum(C.EXPLOIT_WEIGHTS) / C.EXPLOIT_WEIGHTS.sum()
        n_e = len(C.EXPLOIT_PORTS)
        first = np.minimum(np.searchsorted(cw, f1[m]), n_e - 1)
        second = (first + 1 + (aux[m] // 10**6) % (n_e - 1)) % n_e  # a second service, never the first
        third = C.EXPLOIT_PORTS[rng.integers(0, n_e, k)]
        own = np.where(u[m] < 0.5 + 0.3 * f2[m], C.EXPLOIT_PORTS[first], C.EXPLOIT_PORTS[second])
        b.dport[m] = np.where(rng.random(k) < 0.85, own, third)


def _backscatter_rows(b: _Batch, m: np.ndarray) -> None:
    """Backscatter (rows `m`): SYN-ACK, RST or ICMP unreachable from flood victims."""
    rng, aux, cols = b.rng, b.aux, b.cols
    k = int(m.sum())
    if k:
        bk = aux[m] % 4
        cols["sport"][m] = C.BACKSCATTER_SPORTS[aux[m] // 4 % len(C.BACKSCATTER_SPORTS)]
        # the flood's spoofed source ports: Linux (32768-60999) or Windows (49152-65535) ephemeral ranges
        b.dport[m] = np.where(
            aux[m] % 5 < 3, 32768 + rng.integers(0, 28232, k), 49152 + rng.integers(0, 16384, k)
        )
        cols["flags"][m] = np.where(bk < 2, 0x12, np.where(rng.random(k) < 0.5, 0x04, 0x14))
        cols["seq"][m] = rng.integers(0, 2**32, k, dtype=np.uint64).astype(np.uint32)
        cols["ack"][m] = rng.integers(0, 2**32, k, dtype=np.uint64).astype(np.uint32)
        cols["win"][m] = np.where(bk < 2, 65535, 0)
        cols["ip_id"][m] = rng.integers(0, 65536, k)
        icmp = m.copy()
        icmp[m] = bk == 3
        ki = int(icmp.sum())
        cols["proto"][icmp] = 1
        cols["icmp_type"][icmp] = 3
        cols["icmp_code"][icmp] = np.array([1, 3, 13])[rng.integers(0, 3, ki)]
        cols["seq"][icmp] = rng.integers(0x01000000, 0xDF000000, ki).astype(np.uint32)  # quoted destination


def _udp_noise_rows(b: _Batch, m: np.ndarray) -> None:
    """UDP noise (rows `m`): the known UDP services with their payloads, or any port with a small payload."""
    rng, cols = b.rng, b.cols
    k = int(m.sum())
    if k:
        j = rng.integers(0, len(C.UDP_PORTS) + 3, k)
        known = j < len(C.UDP_PORTS)
        jj = np.minimum(j, len(C.UDP_PORTS) - 1)
        b.dport[m] = np.where(known, C.UDP_PORTS[jj], rng.integers(1, 65536, k))
        cols["plen"][m] = np.where(
            known, C.UDP_PAYLOAD[jj], np.array([0, 8, 16, 32, 64])[rng.integers(0, 5, k)]
        )
        cols["proto"][m] = 17
        cols["sport"][m] = rng.integers(1024, 65536, k)
        cols["ip_id"][m] = rng.integers(0, 65536, k)


def _echo_rows(b: _Batch, m: np.ndarray) -> None:
    """ICMP echo requests (rows `m`): the host's identifier in `sport`, a random sequence number in `dport`."""
    rng, cols = b.rng, b.cols
    k = int(m.sum())
    if k:
        cols["proto"][m] = 1
        cols["icmp_type"][m] = 8
        cols["plen"][m] = 56
        cols["sport"][m] = b.aux[m] & 0xFFFF
        cols["dport"][m] = rng.integers(0, 65536, k)
        cols["ip_id"][m] = rng.integers(0, 65536, k)
        b.dport[m] = cols["dport"][m]


def _unknown_rows(b: _Batch) -> np.ndarray:
    """The unknown subtypes (`catalog.UNKNOWN_SUBTYPES`, by variant); returns the backscatter rows, bool (P,)."""
    rng, u, var, aux = b.rng, b.u, b.var, b.aux
    unk = b.kind == "unknown"
    backscatter = np.zeros(len(u), dtype=bool)
    if unk.any():
        popular = b.sched.popular[b.d]
        # prober: half of a host's probes on its favourite port, the rest Zipf-like over the popular ranking
        m = unk & (var == 0)
        k = int(m.sum())
        if k:
            # favourite port: one of the 40 most popular, or for one host in seven anywhere in the top ~1000
            rank = aux[m] % 40 + (aux[m] % 7 == 0) * (aux[m] % 997)
            fav = popular[np.minimum(rank, len(popular) - 1)]
            zipf = popular[np.minimum(rng.zipf(1.3, k) - 1, len(popular) - 1)]
            b.dport[m] = np.where(u[m] < 0.5, fav, zipf)
        m = unk & (var == 1)  # telnet bots without the Mirai fingerprint
        b.dport[m] = np.where(u[m] < 0.6, 23, np.where(u[m] < 0.8, 2323, 22))
        m = unk & (var == 2)  # horizontal scanners over every port
        b.dport[m] = rng.integers(1, 65536, int(m.sum()))
        backscatter = unk & (var == 3)
        _backscatter_rows(b, backscatter)
        _udp_noise_rows(b, unk & (var == 4))
        _echo_rows(b, unk & (var == 5))
    return backscatter


def _finish(b: _Batch, pop: Population, g: np.ndarray, backscatter: np.ndarray, day_start_us: int) -> None:
    """Write `dport` where the protocol has one, the timestamps, the probe fields of TCP SYNs and the IP ids
    still unset."""
    rng, cols, dport = b.rng, b.cols, b.dport
    tcp = cols["proto"] == 6
    udp = cols["proto"] == 17
    cols["dport"][tcp | udp] = dport[tcp | udp]
    icmp_echo = (cols["proto"] == 1) & (cols["icmp_type"] == 8)
    cols["dport"][icmp_echo] = dport[icmp_echo]
    cols["dport"][(cols["proto"] == 1) & (cols["icmp_type"] == 3)] = dport[
        (cols["proto"] == 1) & (cols["icmp_type"] == 3)
    ]
    cols["sport"][udp & (cols["sport"] == 0)] = rng.integers(
        1024, 65536, int((udp & (cols["sport"] == 0)).sum())
    )
    cols["ts_us"] = day_start_us + np.minimum((b.hours * US_PER_HOUR).astype(np.int64), US_PER_DAY - 1)
    probe = tcp & (cols["flags"] == 0x02)
    tool_fields(rng, cols, pop.tool[g], b.aux, pop.tsbase[g], day_start_us, probe)
    other = ~probe & ~backscatter & (cols["ip_id"] == 0)
    cols["ip_id"][other] = rng.integers(0, 65536, int(other.sum()))


def day_packets(
    pop: Population,
    sched: Schedules,
    day: ActiveDay,
    d: int,
    net: SimNetwork,
    sim: SimulateConfig,
    seed: int,
    day_start_us: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The IPv4 packets one network receives from the population on one day (unsorted).

    Returns:
        (packet columns of length P, global host index of each visible host (V,), packets per visible host (V,)).
    """
    rng = seeded_rng(seed, 4, d, net.index)
    vis = day.visible[net.name]
    hosts = day.alive[vis]
    v = len(hosts)
    jit = rng.lognormal(-(sim.jitter**2) / 2, sim.jitter, v) if sim.jitter > 0 else np.ones(v)
    lam = pop.rate[hosts] * day.factor[vis] * jit
    cnt = rng.poisson(lam)
    low = pop.low[hosts]
    cnt = np.where(low, np.clip(cnt, 1, 4), np.maximum(cnt, 5)).astype(np.int64)
    p = int(cnt.sum())
    cols = empty_columns(p)
    hof = np.repeat(np.arange(v), cnt)  # local host of each packet
    g = hosts[hof]  # global host of each packet
    cls = pop.cls[g]
    cols["src"] = pop.ip[g]
    cols["dst"] = (net.base + rng.integers(0, net.size, p)).astype(np.uint32)
    cols["ttl"] = pop.ttl[g]
    cols["proto"][:] = 6
    cols["flags"][:] = 0x02
    u = rng.random(p)
    hours = (day.start[vis][hof] + rng.random(p) * day.dur[vis][hof]) % 24
    b = _Batch(
        rng=rng,
        sched=sched,
        d=d,
        cols=cols,
        cls=cls,
        kind=np.array([s.kind for s in C.CLASSES])[cls],
        var=pop.variant[g],
        aux=pop.aux[g].astype(np.int64),
        u=u,
        hours=hours,
        dport=np.zeros(p, dtype=np.int64),
    )
    _mirai_ports(b)
    _scanner_ports(b)
    _service_ports(b)
    backscatter = _unknown_rows(b)
    _finish(b, pop, g, backscatter, day_start_us)
    return cols, hosts, cnt


def _zipf_rank(rng: np.random.Generator, n: int, top: int) -> np.ndarray:
    """`n` Zipf-like ranks (exponent 1.3) below `top`; draws beyond it are uniform below it."""
    rank = rng.zipf(1.3, n) - 1
    return np.where(rank < top, rank, rng.integers(0, top, n))
