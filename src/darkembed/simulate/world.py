"""Generate a simulated world: captures, Cowrie logs, scanner lists and the answer key.

Writes under `out`:

```
<out>/<network>/<YYYY-MM-DD>/<network>_<YYYYMMDD>_<HH>.pcap.gz   24 hourly libpcap files per network and day
<out>/honeypot/cowrie/cowrie.json.<YYYY-MM-DD>                   Cowrie JSON lines (per honeypot network)
<out>/scanners/<org>_v4.txt                                        published scanner lists (partial coverage)
<out>/truth/truth.parquet                                          the answer key (`darkembed.schemas.TRUTH`)
<out>/truth/summary.json                                           config, targets and per network-day counts
```
Every random draw comes from `numpy.random.Generator`s seeded from `(seed, purpose, day, network)`, so a network-
day does not depend on the others and the same seed gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from darkembed import __version__
from darkembed.config import Config, NetworkConfig, SimulateConfig
from darkembed.schemas import TRUTH
from darkembed.simulate import catalog as C
from darkembed.simulate.cowrie import honeypot_day
from darkembed.simulate.pcap import (
    OPT_LINUX,
    OPT_MSS,
    OPT_NONE,
    OPT_WINDOWS,
    PROTO_ARP,
    build_records,
    empty_columns,
    write_pcap_gz,
)
from darkembed.simulate.population import (
    UDP_SCANNERS,
    Population,
    Schedules,
    build_population,
    build_schedules,
)

log = logging.getLogger(__name__)

#: Classes labelled from honeypot logs: their look-alikes are the hosts the honeypot never sees.
HONEYPOT_KINDS = ("bruteforcer", "spammer", "exploiter")
#: Suffix of the answer key's `behaviour` of a look-alike (a host of a class no labelling source names).
LOOKALIKE = ":lookalike"

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


@dataclass
class SimulateResult:
    """What `simulate` wrote and how long it took."""

    out: Path
    packets: dict[str, int] = field(default_factory=dict)  # per network, all days
    seconds: dict[str, float] = field(default_factory=dict)  # per network, all days (generation + writing)
    bytes: dict[str, int] = field(default_factory=dict)  # compressed capture bytes per network
    total_seconds: float = 0.0


def sim_networks(networks: list[NetworkConfig]) -> list[SimNetwork]:
    """The simulated networks from the config's `networks` (each needs a `prefix`)."""
    out = []
    for i, n in enumerate(networks):
        if not n.prefix:
            raise ValueError(
                f"network {n.name!r} has no prefix; the simulator needs one (e.g. 198.51.100.0/24)"
            )
        net = ipaddress.ip_network(n.prefix, strict=False)
        if net.version != 4 or not 16 <= net.prefixlen <= 30:
            raise ValueError(f"network {n.name!r}: prefix {n.prefix} must be IPv4 between /16 and /30")
        out.append(SimNetwork(n.name, n.kind, int(net.network_address), net.num_addresses, i))
    if not any(n.kind == "darknet" for n in out):
        raise ValueError("the simulator needs at least one network of kind darknet in `networks`")
    return out


def _rng(seed: int, *key: int) -> np.random.Generator:
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


class _Day:
    """The world on one day: who is active, where they are seen, their volume and activity window."""

    def __init__(
        self, pop: Population, d: int, nets: list[SimNetwork], sim: SimulateConfig, seed: int
    ) -> None:
        rng = _rng(seed, 3, d)
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


def _tool_fields(
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


def _packets(
    pop: Population,
    sched: Schedules,
    day: _Day,
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
    rng = _rng(seed, 4, d, net.index)
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
    kind = np.array([s.kind for s in C.CLASSES])[cls]
    var = pop.variant[g]
    aux = pop.aux[g].astype(np.int64)
    cols["src"] = pop.ip[g]
    cols["dst"] = (net.base + rng.integers(0, net.size, p)).astype(np.uint32)
    cols["ttl"] = pop.ttl[g]
    cols["proto"][:] = 6
    cols["flags"][:] = 0x02
    u = rng.random(p)
    hours = (day.start[vis][hof] + rng.random(p) * day.dur[vis][hof]) % 24
    dport = np.zeros(p, dtype=np.int64)

    m = kind == "mirai"
    if m.any():
        fam = sched.mirai[d]
        vm = var[m]
        fam_port = fam[vm, rng.integers(0, fam.shape[1], int(m.sum()))]
        port = np.where(vm == 0, np.where(u[m] < 0.1, 2323, 23), np.where(u[m] < 0.3, 23, fam_port))
        rnd = rng.random(int(m.sum())) < 0.0008
        dport[m] = np.where(rnd, rng.integers(1, 65536, int(m.sum())), port)

    for spec in C.CLASSES:
        if spec.kind != "scanner":
            continue
        m = cls == C.CLASS_INDEX[spec.name]
        k = int(m.sum())
        if k == 0:
            continue
        ports = sched.org_ports[d][spec.name]
        if spec.pattern == "rotation":
            # one sweep a day through the set, a slice an hour
            per_hour = -(-len(ports) // 24)
            h = rng.integers(0, 24, k)
            i = np.minimum(h * per_hour + rng.integers(0, per_hour, k), len(ports) - 1)
            dport[m] = ports[i]
            hours[m] = h + rng.random(k)
        else:
            i = np.minimum(np.searchsorted(sched.org_cum[d][spec.name], rng.random(k)), len(ports) - 1)
            dport[m] = ports[i]
            if spec.pattern == "fixed_hours":  # each port at its own hour of the day
                hours[m] = sched.org_hours[d][spec.name][i] + rng.random(k)
            else:  # wide, slow: all day long
                hours[m] = rng.random(k) * 24
        if spec.name in UDP_SCANNERS:
            udp = m & (u < 0.08)
            j = rng.integers(0, 5, int(udp.sum()))
            cols["proto"][udp] = 17
            dport[udp] = C.UDP_PORTS[j]
            cols["plen"][udp] = C.UDP_PAYLOAD[j]

    # hosts of a class differ: each host has its own mix (fractions drawn from its `aux` number)
    f1 = (aux % 1000) / 1000.0
    f2 = (aux // 1000 % 1000) / 1000.0
    popular = sched.popular[d]
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
        pool = sched.brute_pool[d]
        scan = np.where(
            rng.random(k) < f2[m], popular[_zipf_rank(rng, k, BRUTE_TOP)], pool[rng.integers(0, len(pool), k)]
        )
        side = u[m] < focus + (1 - focus) / 3
        dport[m] = np.where(u[m] < focus, primary, np.where(side, second, scan))
    m = kind == "spammer"
    if m.any():
        # at a darknet, spam bots are aggressive horizontal scanners ([GNN] Table 2: 7,048 ports a day); the
        # SMTP ports are a small share of their probes, the rest the popular services and a wide pool, in a mix
        # of the host's own
        k = int(m.sum())
        smtp = C.SMTP_PORTS[rng.choice(3, size=k, p=C.SMTP_WEIGHTS)]
        pool = sched.spam_pool[d]
        zipf = popular[_zipf_rank(rng, k, SPAM_TOP)]
        wide = np.where(rng.random(k) < f2[m], zipf, pool[rng.integers(0, len(pool), k)])
        dport[m] = np.where(u[m] < C.SPAM_SMTP_MIN + C.SPAM_SMTP_SPAN * f1[m], smtp, wide)
    m = kind == "exploiter"
    if m.any():
        k = int(m.sum())
        cw = np.cumsum(C.EXPLOIT_WEIGHTS) / C.EXPLOIT_WEIGHTS.sum()
        n_e = len(C.EXPLOIT_PORTS)
        first = np.minimum(np.searchsorted(cw, f1[m]), n_e - 1)
        second = (first + 1 + (aux[m] // 10**6) % (n_e - 1)) % n_e  # a second service, never the first
        third = C.EXPLOIT_PORTS[rng.integers(0, n_e, k)]
        own = np.where(u[m] < 0.5 + 0.3 * f2[m], C.EXPLOIT_PORTS[first], C.EXPLOIT_PORTS[second])
        dport[m] = np.where(rng.random(k) < 0.85, own, third)

    unk = kind == "unknown"
    backscatter = np.zeros(p, dtype=bool)
    if unk.any():
        popular = sched.popular[d]
        # prober: half of a host's probes on its favourite port, the rest Zipf-like over the popular ranking
        m = unk & (var == 0)
        k = int(m.sum())
        if k:
            # favourite port: one of the 40 most popular, or for one host in seven anywhere in the top ~1000
            rank = aux[m] % 40 + (aux[m] % 7 == 0) * (aux[m] % 997)
            fav = popular[np.minimum(rank, len(popular) - 1)]
            zipf = popular[np.minimum(rng.zipf(1.3, k) - 1, len(popular) - 1)]
            dport[m] = np.where(u[m] < 0.5, fav, zipf)
        m = unk & (var == 1)  # telnet bots without the Mirai fingerprint
        dport[m] = np.where(u[m] < 0.6, 23, np.where(u[m] < 0.8, 2323, 22))
        m = unk & (var == 2)  # horizontal scanners over every port
        dport[m] = rng.integers(1, 65536, int(m.sum()))
        m = unk & (var == 3)  # backscatter: SYN-ACK, RST or ICMP unreachable from flood victims
        backscatter = m
        k = int(m.sum())
        if k:
            bk = aux[m] % 4
            cols["sport"][m] = C.BACKSCATTER_SPORTS[aux[m] // 4 % len(C.BACKSCATTER_SPORTS)]
            # the flood's spoofed source ports: Linux (32768-60999) or Windows (49152-65535) ephemeral ranges
            dport[m] = np.where(
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
            cols["seq"][icmp] = rng.integers(0x01000000, 0xDF000000, ki).astype(
                np.uint32
            )  # quoted destination
        m = unk & (var == 4)  # UDP noise
        k = int(m.sum())
        if k:
            j = rng.integers(0, len(C.UDP_PORTS) + 3, k)
            known = j < len(C.UDP_PORTS)
            jj = np.minimum(j, len(C.UDP_PORTS) - 1)
            dport[m] = np.where(known, C.UDP_PORTS[jj], rng.integers(1, 65536, k))
            cols["plen"][m] = np.where(
                known, C.UDP_PAYLOAD[jj], np.array([0, 8, 16, 32, 64])[rng.integers(0, 5, k)]
            )
            cols["proto"][m] = 17
            cols["sport"][m] = rng.integers(1024, 65536, k)
            cols["ip_id"][m] = rng.integers(0, 65536, k)
        m = unk & (var == 5)  # ICMP echo requests
        k = int(m.sum())
        if k:
            cols["proto"][m] = 1
            cols["icmp_type"][m] = 8
            cols["plen"][m] = 56
            cols["sport"][m] = aux[m] & 0xFFFF
            cols["dport"][m] = rng.integers(0, 65536, k)
            cols["ip_id"][m] = rng.integers(0, 65536, k)
            dport[m] = cols["dport"][m]

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
    cols["ts_us"] = day_start_us + np.minimum((hours * US_PER_HOUR).astype(np.int64), US_PER_DAY - 1)
    probe = tcp & (cols["flags"] == 0x02)
    _tool_fields(rng, cols, pop.tool[g], aux, pop.tsbase[g], day_start_us, probe)
    other = ~probe & ~backscatter & (cols["ip_id"] == 0)
    cols["ip_id"][other] = rng.integers(0, 65536, int(other.sum()))
    return cols, hosts, cnt


def _zipf_rank(rng: np.random.Generator, n: int, top: int) -> np.ndarray:
    """`n` Zipf-like ranks (exponent 1.3) below `top`; draws beyond it are uniform below it."""
    rank = rng.zipf(1.3, n) - 1
    return np.where(rank < top, rank, rng.integers(0, top, n))


def _arp_rows(
    rng: np.random.Generator, net: SimNetwork, day_start_us: int, per_hour: int
) -> dict[str, np.ndarray]:
    n = 24 * per_hour
    cols = empty_columns(n)
    hour = np.repeat(np.arange(24), per_hour)
    cols["ts_us"] = day_start_us + hour * US_PER_HOUR + rng.integers(0, US_PER_HOUR, n)
    cols["proto"][:] = PROTO_ARP
    cols["src"][:] = (net.base & 0xFFFFFF00) + 1  # the router asks for darknet addresses
    cols["dst"] = (net.base + rng.integers(0, net.size, n)).astype(np.uint32)
    return cols


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _behaviour(pop: Population, hosts: np.ndarray) -> np.ndarray:
    out = np.empty(len(hosts), dtype=object)
    for ci, s in enumerate(C.CLASSES):
        m = pop.cls[hosts] == ci
        if not m.any():
            continue
        if s.kind == "mirai":
            out[m] = np.where(pop.variant[hosts[m]] == 0, "mirai:classic", "mirai:variant")
        elif s.kind == "unknown":
            out[m] = np.array([f"unknown:{u}" for u in C.UNKNOWN_SUBTYPES], dtype=object)[
                pop.variant[hosts[m]]
            ]
        elif s.kind == "scanner":
            out[m] = f"scanner:{s.pattern}"
        elif s.kind == "bruteforcer":
            out[m] = np.array([f"bruteforcer:{p}" for p in C.BRUTE_SERVICES], dtype=object)[
                pop.variant[hosts[m]]
            ]
        else:
            out[m] = s.kind
    look = pop.lookalike[hosts]
    out[look] = out[look] + LOOKALIKE
    return out


def simulate(
    cfg: Config,
    *,
    out: str | Path | None = None,
    days: int | None = None,
    scale: float | None = None,
    seed: int | None = None,
    start: dt.date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int = 2,
) -> SimulateResult:
    """Generate the world of `cfg.simulate` (arguments override it) for the networks of `cfg.networks`.

    Args:
        cfg: the resolved configuration.
        out: output folder (default `cfg.simulate.out`); existing files of the same names are replaced.
        days, scale, seed, start: override the config's values.
        progress: called as `progress(label, done, total)` after each network-day.
        workers: threads that compress the hourly files (the output does not depend on it).

    Returns:
        Per network: packets written, seconds spent, compressed bytes.
    """
    sim = cfg.simulate.model_copy(
        update={
            k: v
            for k, v in {"days": days, "scale": scale, "seed": seed, "start": start}.items()
            if v is not None
        }
    )
    out = Path(out if out is not None else sim.out)
    nets = sim_networks(cfg.networks)
    darknets = [n for n in nets if n.kind == "darknet"]
    t_all = time.perf_counter()
    exclude = [(n.base, 32 - (n.size - 1).bit_length()) for n in nets]
    pop = build_population(sim, sim.days, sim.scale, len(darknets), _rng(sim.seed, 1), exclude)
    sched = build_schedules(sim, sim.days, _rng(sim.seed, 2))
    covered = _list_coverage(pop, sim)
    # scanner hosts their organisation's list leaves out are the scanners' look-alikes
    is_scanner = np.array([s.kind == "scanner" for s in C.CLASSES])[pop.cls]
    pop.lookalike |= is_scanner & ~covered
    log.info("simulated population: %d hosts over %d days", len(pop), sim.days)
    result = SimulateResult(out=out)
    truth_parts: list[dict[str, np.ndarray]] = []
    net_days: list[dict] = []
    tool_names = np.array(C.TOOL_NAMES, dtype=object)
    class_names = np.array(C.CLASS_NAMES, dtype=object)
    total_steps = sim.days * len(nets)
    step = 0
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    for d in range(sim.days):
        date = sim.start + dt.timedelta(days=d)
        day_start_us = (
            int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp()) * 1_000_000
        )
        day = _Day(pop, d, nets, sim, sim.seed)
        for net in nets:
            t0 = time.perf_counter()
            cols, hosts, cnt = _packets(pop, sched, day, d, net, sim, sim.seed, day_start_us)
            logins = np.zeros(len(hosts), dtype=np.int64)
            downloads = np.zeros(len(hosts), dtype=np.int64)
            parts = [cols]
            if net.kind == "honeypot":
                vis = day.visible[net.name]
                hp_hosts = {
                    "ip": pop.ip[hosts],
                    "cls": pop.cls[hosts],
                    "variant": pop.variant[hosts],
                    "start": day.start[vis],
                    "dur": day.dur[vis],
                }
                lines, scols, logins, downloads = honeypot_day(
                    date,
                    day_start_us,
                    net.name,
                    net.base,
                    net.size,
                    hp_hosts,
                    _rng(sim.seed, 6, d, net.index),
                    _rng(sim.seed, 8, d, net.index),
                )
                if len(scols["ts_us"]):
                    order = np.argsort(pop.ip[hosts])
                    pos = order[np.searchsorted(pop.ip[hosts], scols["src"], sorter=order)]
                    scols["ttl"] = pop.ttl[hosts][pos]
                    cnt = cnt + np.bincount(pos, minlength=len(hosts))
                    parts.append(scols)
                cowrie = out / net.name / "cowrie" / f"cowrie.json.{date.isoformat()}"
                cowrie.parent.mkdir(parents=True, exist_ok=True)
                tmp = cowrie.with_name(cowrie.name + ".tmp")
                tmp.write_text("".join(line + "\n" for line in lines))
                tmp.replace(cowrie)
            rng = _rng(sim.seed, 5, d, net.index)
            if sim.arp_frames:
                parts.append(_arp_rows(rng, net, day_start_us, sim.arp_frames))
            allc = _concat(parts)
            order = np.argsort(allc["ts_us"], kind="stable")
            allc = {k: v[order] for k, v in allc.items()}
            bounds = np.searchsorted(allc["ts_us"], day_start_us + np.arange(25) * US_PER_HOUR)
            if sim.vlan_frames:
                ip_rows = np.flatnonzero(allc["proto"] != PROTO_ARP)
                if len(ip_rows):
                    hb = np.searchsorted(ip_rows, bounds)
                    for h in range(24):
                        a, b = hb[h], hb[h + 1]
                        if b > a:
                            pick = ip_rows[
                                a + rng.choice(b - a, size=min(sim.vlan_frames, b - a), replace=False)
                            ]
                            allc["vlan"][pick] = 100 + net.index
            folder = out / net.name / date.isoformat()
            jobs = []
            for h in range(24):
                a, b = bounds[h], bounds[h + 1]
                rec = build_records({k: v[a:b] for k, v in allc.items()})
                path = folder / f"{net.name}_{date:%Y%m%d}_{h:02d}.pcap.gz"
                # zlib releases the GIL: hour h compresses while hour h + 1 is built
                jobs.append(pool.submit(write_pcap_gz, path, rec, sim.gzip_level))
            nbytes = sum(j.result() for j in jobs)
            secs = time.perf_counter() - t0
            n_ip = int(cnt.sum())
            result.packets[net.name] = result.packets.get(net.name, 0) + n_ip
            result.seconds[net.name] = result.seconds.get(net.name, 0.0) + secs
            result.bytes[net.name] = result.bytes.get(net.name, 0) + nbytes
            seen = (cnt > 0) | (logins > 0)
            truth_parts.append(
                {
                    "src_ip": pop.ip[hosts][seen],
                    "day": np.full(int(seen.sum()), d, np.int32),
                    "network": np.full(int(seen.sum()), net.name, dtype=object),
                    "class": class_names[pop.cls[hosts][seen]],
                    "behaviour": _behaviour(pop, hosts[seen]),
                    "tool": tool_names[pop.tool[hosts][seen]],
                    "packets": cnt[seen].astype(np.uint32),
                    "logins": logins[seen].astype(np.uint32),
                    "downloads": downloads[seen].astype(np.uint32),
                }
            )
            net_days.append(
                {
                    "network": net.name,
                    "day": date.isoformat(),
                    "ip_packets": n_ip,
                    "arp_frames": 24 * sim.arp_frames,
                    "hosts": int(seen.sum()),
                    "hosts_5": int((cnt >= 5).sum()),
                }
            )
            step += 1
            log.info("%s %s: %d packets from %d hosts in %.1f s", net.name, date, n_ip, int(seen.sum()), secs)
            if progress:
                progress(f"{net.name} {date}", step, total_steps)
    pool.shutdown()
    _write_truth(out, truth_parts, sim.start)
    lists = _write_scanner_lists(out, pop, sim, covered)
    summary = {
        "generator": "darkembed.simulate",
        "version": __version__,
        "config": sim.model_dump(mode="json"),
        "networks": [
            {"name": n.name, "kind": n.kind, "prefix": f"{C.ip_str(n.base)}/{32 - (n.size - 1).bit_length()}"}
            for n in nets
        ],
        "targets": {
            s.name: {
                "hosts": round(pop.targets[s.name], 3),
                "ports": s.ports,
                "packets": round(pop.targets[s.name] * s.packets / s.hosts, 1),
            }
            for s in C.CLASSES
        },
        "population": {
            "hosts": len(pop),
            "per_class": {s.name: int((pop.cls == i).sum()) for i, s in enumerate(C.CLASSES)},
        },
        "scanner_lists": lists,
        "network_days": net_days,
    }
    truth_dir = out / "truth"
    (truth_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    result.total_seconds = time.perf_counter() - t_all
    return result


def _write_truth(out: Path, parts: list[dict[str, np.ndarray]], start: dt.date) -> None:
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    epoch = (start - dt.date(1970, 1, 1)).days
    arrays = {
        "src_ip": pa.array(cat["src_ip"], pa.uint32()),
        "day": pa.array((cat["day"] + epoch).astype(np.int32), pa.int32()).cast(pa.date32()),
        "network": pa.array(cat["network"].tolist(), pa.string()),
        "class": pa.array(cat["class"].tolist(), pa.string()),
        "behaviour": pa.array(cat["behaviour"].tolist(), pa.string()),
        "tool": pa.array(cat["tool"].tolist(), pa.string()),
        "packets": pa.array(cat["packets"], pa.uint32()),
        "logins": pa.array(cat["logins"], pa.uint32()),
        "downloads": pa.array(cat["downloads"], pa.uint32()),
    }
    table = pa.Table.from_arrays(list(arrays.values()), schema=TRUTH)
    path = out / "truth" / "truth.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)


def _list_coverage(pop: Population, sim: SimulateConfig) -> np.ndarray:
    """bool (H,): the scanner hosts that their organisation's published list covers, `sim.list_coverage` of
    each organisation's hosts active in the simulated days."""
    rng = _rng(sim.seed, 7)
    covered = np.zeros(len(pop), dtype=bool)
    for ci, spec in enumerate(C.CLASSES):
        if not spec.blocks:
            continue
        mine = (pop.cls == ci) & (pop.birth < sim.days)
        ips = np.sort(pop.ip[mine])
        if not len(ips):
            continue
        n_cov = max(1, round(len(ips) * sim.list_coverage))
        chosen = rng.choice(ips, size=min(n_cov, len(ips)), replace=False)
        covered |= mine & np.isin(pop.ip, chosen)
    return covered


def _write_scanner_lists(
    out: Path, pop: Population, sim: SimulateConfig, covered: np.ndarray
) -> dict[str, dict[str, int]]:
    """Write `<out>/scanners/<org>_v4.txt` listing the `covered` hosts of each organisation (`_list_coverage`).

    A block whose simulated hosts are all covered is listed whole (as real lists do); otherwise the covered
    hosts are listed as /32. Returns per organisation the simulated, covered and listed-line counts.
    """
    folder = out / "scanners"
    folder.mkdir(parents=True, exist_ok=True)
    stats = {}
    for ci, spec in enumerate(C.CLASSES):
        if not spec.blocks:
            continue
        mine = (pop.cls == ci) & (pop.birth < sim.days)
        ips = np.sort(pop.ip[mine])
        cov = np.sort(pop.ip[mine & covered])
        lines = []
        for net, plen in C.load_blocks(spec.blocks):
            size = 1 << (32 - plen)
            inside = ips[(ips >= net) & (ips < net + size)]
            cov_in = cov[(cov >= net) & (cov < net + size)]
            if len(inside) and len(cov_in) == len(inside):
                lines.append(f"{C.ip_str(net)}/{plen}")
            else:
                lines += [f"{C.ip_str(x)}/32" for x in cov_in]
        text = (
            f"# {spec.name}: simulated scanner list (darkembed simulate, seed {sim.seed});\n"
            f"# covers {len(cov)} of the organisation's {len(ips)} simulated addresses\n"
        )
        (folder / f"{spec.name}_v4.txt").write_text(text + "".join(x + "\n" for x in lines))
        stats[spec.name] = {"simulated": len(ips), "covered": len(cov), "lines": len(lines)}
    return stats
