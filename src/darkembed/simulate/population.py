"""The simulated Internet population and its day-by-day schedules.

One `Population` holds every host that is ever active in the world (all days), with its class, address, lifetime,
volume and tool; `Schedules` holds what changes from day to day for whole groups (the ports of Mirai variant
families, of scanner organisations, the popularity of ports in the background). Both depend only on the
simulator config and seed, never on the networks, so every network observes the same world.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from darkembed.config import SimulateConfig
from darkembed.simulate import catalog as C

log = logging.getLogger(__name__)

MIRAI_FAMILIES = 12
#: Scanner organisations that also probe the first 5 UDP ports of `catalog.UDP_PORTS` (8 % of their packets).
UDP_SCANNERS = ("shadowserver", "censys", "driftnet")
N_PORTS = 65536
#: Sigma of a scanner organisation's own preference added to the shared popularity score (-log(1 + rank)) when it
#: picks its ports: small sets are then drawn from the same few dozen popular services, as real ones are.
SCAN_TASTE = 1.0
#: Packets of a scanner organisation fall on its ports Zipf-like along its preference order (rank^-SCAN_ZIPF).
SCAN_ZIPF = 0.5

# Address space that never sources Internet traffic: 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
# 192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/3.
_RESERVED = [
    (0x00000000, 8),
    (0x0A000000, 8),
    (0x64400000, 10),
    (0x7F000000, 8),
    (0xA9FE0000, 16),
    (0xAC100000, 12),
    (0xC0000000, 24),
    (0xC0000200, 24),
    (0xC0A80000, 16),
    (0xC6120000, 15),
    (0xC6336400, 24),
    (0xCB007100, 24),
    (0xE0000000, 3),
]


def _in_blocks(ip: np.ndarray, blocks: list[tuple[int, int]]) -> np.ndarray:
    out = np.zeros(len(ip), dtype=bool)
    ip64 = ip.astype(np.int64)
    for net, plen in blocks:
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        out |= (ip64 & mask) == net
    return out


@dataclass
class Population:
    """Every host of the world, one row per host (H rows).

    Attributes:
        ip: uint32 (H,) source address, unique.
        cls: int16 (H,) index into `catalog.CLASSES`.
        birth, death: int32 (H,) the host is active on day indices `birth <= d < death`.
        rate: float64 (H,) mean packets per network-day.
        low: bool (H,) background host sending fewer than 5 packets a day.
        tool: int8 (H,) tool fingerprint (`catalog.TOOL_*`).
        ttl: uint8 (H,) TTL as received (initial TTL minus hops).
        variant: int16 (H,) Mirai family (0 = classic), brute-forcer service index, or unknown subtype.
        aux: int32 (H,) a per-host random number for small choices (source port base, backscatter kind...).
        tsbase: uint32 (H,) base of the TCP timestamp clock of the host.
        lookalike: bool (H,) a host of a labelled class that the labelling sources miss: a Mirai-like bot without
            the fingerprint, a brute-forcer, spammer or exploiter the honeypot never sees (set here), a scanner
            host its organisation's published list leaves out (set by the world when it draws the lists).
    """

    ip: np.ndarray
    cls: np.ndarray
    birth: np.ndarray
    death: np.ndarray
    rate: np.ndarray
    low: np.ndarray
    tool: np.ndarray
    ttl: np.ndarray
    variant: np.ndarray
    aux: np.ndarray
    tsbase: np.ndarray
    lookalike: np.ndarray
    targets: dict[str, float] = field(default_factory=dict)  # active hosts per darknet-day, per class
    both: np.ndarray = field(default_factory=lambda: np.ones(len(C.CLASSES)))  # (C,) P(seen by every darknet)

    def __len__(self) -> int:
        return len(self.ip)

    def alive(self, day: int) -> np.ndarray:
        """Indices of the hosts active on day index `day`, int64 (sorted)."""
        return np.flatnonzero((self.birth <= day) & (day < self.death))


@dataclass
class Schedules:
    """Group behaviours per day index.

    Attributes:
        mirai: per day, int64 (MIRAI_FAMILIES + 1, 4) ports of each variant family (row 0 unused).
        org_ports: per day, per scanner class name, int64 (k,) the ports scanned that day.
        org_hours: per day, per scanner class name, int64 (k,) the hour of each port (fixed_hours).
        org_cum: per day, per scanner class name, float64 (k,) cumulative share of packets along `org_ports`.
        brute_pool, spam_pool: per day, int64 ports explored besides the main services.
        popular: per day, int64 (65535,) ports of the background ranked by popularity, most popular first.
    """

    mirai: list[np.ndarray]
    org_ports: list[dict[str, np.ndarray]]
    org_hours: list[dict[str, np.ndarray]]
    org_cum: list[dict[str, np.ndarray]]
    brute_pool: list[np.ndarray]
    spam_pool: list[np.ndarray]
    popular: list[np.ndarray]


def solve_visibility(
    anchor_share: float, n_darknets: int, targets: list[float], fixed: list[float | None]
) -> np.ndarray:
    """Per class, the probability q that an active host is seen by every darknet, so that the expected anchor
    share over all classes is `anchor_share`.

    Classes without a fixed q share one value; scanner organisations keep their own q (whole-Internet scanners
    are seen everywhere) unless the wanted share cannot be reached otherwise, in which case they are moved
    towards 0 (or 1) as well. The expected share is monotone along that path, which is searched by bisection.

    Args:
        anchor_share: wanted share of a darknet's active hosts that another darknet sees on the same day.
        n_darknets: number of darknets k.
        targets: (C,) active hosts per darknet-day of each class.
        fixed: (C,) the class's own q, or None.

    Returns:
        (C,) float64 q per class.
    """
    k = max(n_darknets, 1)
    t = np.asarray(targets, dtype=np.float64)
    is_fixed = np.array([q is not None for q in fixed])
    q0 = np.array([q if q is not None else 0.0 for q in fixed], dtype=np.float64)
    if k == 1 or t.sum() <= 0:
        return np.where(is_fixed, q0, 1.0)

    def qs(x: float) -> np.ndarray:
        # x in [-1, 0]: free classes at 0, fixed ones scaled down; [0, 1]: free = x; [1, 2]: fixed ones raised
        free = min(max(x, 0.0), 1.0)
        fx = q0 * (1 + x) if x < 0 else (q0 + (1 - q0) * (x - 1) if x > 1 else q0)
        return np.where(is_fixed, fx, free)

    def share(x: float) -> float:
        q = qs(x)
        return float((t * q / (q + (1 - q) / k)).sum() / t.sum())

    lo, hi = -1.0, 2.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if share(mid) < anchor_share:
            lo = mid
        else:
            hi = mid
    return qs((lo + hi) / 2)


def _lifetimes(rng: np.random.Generator, n: int, mean: float, days: int) -> np.ndarray:
    if not np.isfinite(mean) or mean <= 0:
        return np.full(n, days + 1, dtype=np.int64)
    return rng.geometric(min(1.0, 1.0 / mean), size=n).astype(np.int64)


def _class_target(spec: C.ClassSpec, sim: SimulateConfig, scale: float) -> float:
    mix = sim.class_mix.get(spec.name, 1.0)
    target = spec.hosts * scale * mix
    return max(target, float(sim.min_hosts)) if mix > 0 else target


def _targets(sim: SimulateConfig, scale: float) -> dict[str, float]:
    """Hosts per darknet-day of each class, look-alikes included: a class with a look-alike share s gets s times
    its (labelled) target on top, and the unknown class gives up as many hosts (in the real data the look-alikes
    are part of the unknown hosts, so the totals and the unlabelled share stay those of the data). A scanner
    organisation's look-alikes are the hosts its list leaves out: 1 / `list_coverage` - 1 of its listed ones."""
    out = {}
    carved = 0.0
    for spec in C.CLASSES:
        t = _class_target(spec, sim, scale)
        share = C.LOOKALIKE_SHARE.get(spec.kind, 0.0)
        if spec.kind == "scanner":  # the hosts its published list leaves out
            share = 1.0 / sim.list_coverage - 1.0
        extra = t * share
        carved += extra
        out[spec.name] = t + extra
    for spec in C.CLASSES:
        if spec.kind == "unknown":
            t = out[spec.name]
            out[spec.name] = max(t - carved, 0.5 * t)
    return out


def build_population(
    sim: SimulateConfig,
    days: int,
    scale: float,
    n_darknets: int,
    rng: np.random.Generator,
    exclude: list[tuple[int, int]],
) -> Population:
    """Draw every host of the world for `days` days.

    Args:
        sim: simulator config (class mix, churn, anchor share, minimum hosts).
        days: number of simulated days.
        scale: multiplier on the hosts per class.
        n_darknets: how many darknets observe the world (sets the share of hosts each one sees).
        rng: the population's random generator.
        exclude: blocks (network, prefix length) that must not source traffic (the observed networks).
    """
    unknown_mix = set(sim.class_mix) - set(C.CLASS_NAMES)
    if unknown_mix:
        raise ValueError(
            f"simulate.class_mix names unknown classes {sorted(unknown_mix)}; known: {C.CLASS_NAMES}"
        )
    per_darknet = lambda q: q + (1 - q) / max(n_darknets, 1)  # noqa: E731
    wanted = _targets(sim, scale)
    # first pass: active hosts per darknet-day of each class, to solve the visibility q of each class
    first = []
    for spec in C.CLASSES:
        t = wanted[spec.name]
        if spec.blocks:
            cap = len(C.block_addresses(C.load_blocks(spec.blocks))) * 0.8
            t = min(t, cap * per_darknet(spec.both if spec.both is not None else 1.0) * spec.darknet)
        first.append(t)
    q_class = solve_visibility(sim.anchor_share, n_darknets, first, [s.both for s in C.CLASSES])
    churn = sim.churn
    rows: list[dict[str, np.ndarray]] = []
    targets: dict[str, float] = {}
    scanner_ips: list[np.ndarray] = []
    n_random = 0
    for ci, spec in enumerate(C.CLASSES):
        target = wanted[spec.name]
        q = float(q_class[ci])
        alive_n = target / (per_darknet(q) * spec.darknet)
        capacity = None
        if spec.blocks:
            pool = C.block_addresses(C.load_blocks(spec.blocks))
            capacity = len(pool)
            alive_n = min(alive_n, capacity * 0.8)
            target = min(target, alive_n * per_darknet(q) * spec.darknet)
        n0 = int(alive_n) + int(rng.random() < alive_n - int(alive_n))  # stochastic rounding
        lifetime = spec.lifetime / churn if churn > 0 else np.inf
        births = [np.zeros(n0, dtype=np.int64)]
        if np.isfinite(lifetime):
            for d in range(1, days):
                births.append(np.full(rng.poisson(alive_n / lifetime), d, dtype=np.int64))
        birth = np.concatenate(births)
        if capacity is not None and len(birth) > capacity:
            birth = birth[:capacity]
        n = len(birth)
        death = birth + _lifetimes(rng, n, lifetime, days)
        targets[spec.name] = target
        mean = spec.packets / spec.hosts
        rate = mean * rng.lognormal(-(spec.spread**2) / 2, spec.spread, size=n)
        low = np.zeros(n, dtype=bool)
        variant = np.zeros(n, dtype=np.int16)
        tool = np.full(n, spec.tool if spec.tool is not None else C.TOOL_RAW, dtype=np.int8)
        look_share = C.LOOKALIKE_SHARE.get(spec.kind, 0.0)
        look = rng.random(n) < look_share / (1 + look_share) if look_share > 0 else np.zeros(n, dtype=bool)
        if spec.kind == "mirai":
            tool[:] = C.TOOL_MIRAI
            variant = np.where(rng.random(n) < 0.8, 0, rng.integers(1, MIRAI_FAMILIES + 1, n)).astype(
                np.int16
            )
            # variants that randomise the sequence number: the same ports and volumes, no fingerprint
            tool[look] = np.where(rng.random(int(look.sum())) < 0.7, C.TOOL_RAW, C.TOOL_LINUX)
        elif spec.kind == "bruteforcer":
            variant = rng.choice(len(C.BRUTE_SERVICES), size=n, p=C.BRUTE_WEIGHTS).astype(np.int16)
            tool = np.where(rng.random(n) < 0.6, C.TOOL_LINUX, C.TOOL_WINDOWS).astype(np.int8)
        elif spec.kind == "spammer":
            tool = np.where(rng.random(n) < 0.5, C.TOOL_LINUX, C.TOOL_WINDOWS).astype(np.int8)
        elif spec.kind == "exploiter":
            tool = np.where(rng.random(n) < 0.7, C.TOOL_LINUX, C.TOOL_RAW).astype(np.int8)
        elif spec.kind == "unknown":
            variant = rng.choice(len(C.UNKNOWN_SUBTYPES), size=n, p=C.UNKNOWN_SHARES).astype(np.int16)
            vol = C.UNKNOWN_VOLUME / float((C.UNKNOWN_SHARES * C.UNKNOWN_VOLUME).sum())
            rate *= vol[variant]
            tool = rng.choice(
                [C.TOOL_LINUX, C.TOOL_WINDOWS, C.TOOL_RAW, C.TOOL_MASSCAN, C.TOOL_ZMAP],
                size=n,
                p=[0.3, 0.2, 0.3, 0.1, 0.1],
            ).astype(np.int8)
            tool[variant == 1] = np.where(
                rng.random(int((variant == 1).sum())) < 0.6, C.TOOL_RAW, C.TOOL_LINUX
            )
            hz = variant == 2
            tool[hz] = rng.choice(
                [C.TOOL_MASSCAN, C.TOOL_ZMAP, C.TOOL_RAW], size=int(hz.sum()), p=[0.5, 0.3, 0.2]
            )
            # hosts below the 5-packet activity threshold: single probes, a few backscatter packets
            n_low = int(rng.poisson(alive_n * C.LOW_VOLUME_SHARE))
            lb = np.concatenate(
                [np.zeros(round(n_low * 0.6), np.int64), rng.integers(0, days, n_low - round(n_low * 0.6))]
            )
            lb.sort()
            birth = np.concatenate([birth, lb])
            death = np.concatenate([death, lb + _lifetimes(rng, n_low, 1.5 if churn > 0 else np.inf, days)])
            rate = np.concatenate([rate, rng.uniform(0.5, 3.5, n_low)])
            low = np.concatenate([low, np.ones(n_low, dtype=bool)])
            lv = rng.choice([0, 3, 4], size=n_low, p=[0.5, 0.35, 0.15]).astype(np.int16)
            variant = np.concatenate([variant, lv])
            tool = np.concatenate([tool, np.full(n_low, C.TOOL_RAW, np.int8)])
            tool[variant >= 3] = C.TOOL_NONE
            look = np.concatenate([look, np.zeros(n_low, dtype=bool)])
            n = len(birth)
        if spec.blocks:
            ips = rng.choice(pool, size=n, replace=False)
            scanner_ips.append(ips)
        else:
            ips = np.zeros(n, dtype=np.uint32)
            n_random += n
        initial = np.where(
            tool == C.TOOL_WINDOWS, 128, np.where(np.isin(tool, [C.TOOL_ZMAP, C.TOOL_MASSCAN]), 255, 64)
        )
        ttl = (initial - rng.integers(6, 26, n)).astype(np.uint8)
        rows.append(
            {
                "ip": ips,
                "cls": np.full(n, ci, np.int16),
                "birth": birth,
                "death": death,
                "rate": rate,
                "low": low,
                "tool": tool,
                "ttl": ttl,
                "variant": variant,
                "lookalike": look,
            }
        )
    taken = np.concatenate(scanner_ips) if scanner_ips else np.zeros(0, np.uint32)
    random_ips = _random_addresses(rng, n_random, exclude, taken)
    k = 0
    for r in rows:
        if not r["ip"].any():
            r["ip"] = random_ips[k : k + len(r["ip"])]
            k += len(r["ip"])
    cat = {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}
    h = len(cat["ip"])
    return Population(
        ip=cat["ip"].astype(np.uint32),
        cls=cat["cls"],
        birth=cat["birth"].astype(np.int32),
        death=np.minimum(cat["death"], days + 1).astype(np.int32),
        rate=cat["rate"],
        low=cat["low"],
        tool=cat["tool"],
        ttl=cat["ttl"],
        variant=cat["variant"],
        aux=rng.integers(0, 2**31 - 1, h).astype(np.int32),
        tsbase=rng.integers(0, 2**32, h, dtype=np.uint64).astype(np.uint32),
        lookalike=cat["lookalike"],
        targets=targets,
        both=q_class,
    )


def _random_addresses(
    rng: np.random.Generator, n: int, exclude: list[tuple[int, int]], taken: np.ndarray
) -> np.ndarray:
    """`n` distinct routable IPv4 addresses outside reserved space, `exclude` and `taken`, in random order."""
    out = np.zeros(0, dtype=np.uint32)
    blocks = _RESERVED + list(exclude)
    while len(out) < n:
        cand = rng.integers(0, 2**32, size=int((n - len(out)) * 1.3) + 16, dtype=np.uint64).astype(np.uint32)
        cand = cand[~_in_blocks(cand, blocks)]
        cand = cand[~np.isin(cand, taken)]
        merged = np.concatenate([out, cand])
        _, first = np.unique(merged, return_index=True)
        out = merged[np.sort(first)]
    return out[:n]


def build_schedules(sim: SimulateConfig, days: int, rng: np.random.Generator) -> Schedules:
    """Draw the day-by-day group behaviours; `sim.drift` sets how much they change from one day to the next.

    Scanner organisations draw their ports from the same popularity ranking as the background (the services
    everybody probes), each with its own preference (`SCAN_TASTE`), so their sets overlap heavily; what sets
    them apart is when, from where and with which tool they scan. Each day an organisation replaces the share
    `ClassSpec.renewal` of its set (from its daily and monthly port counts) with ports drawn along the ranking.
    """
    drift = sim.drift
    all_ports = np.arange(1, N_PORTS, dtype=np.int64)
    # background popularity: popular ports first, then the rest in random order; scores random-walk over days
    rest = rng.permutation(np.setdiff1d(all_ports, C.POPULAR_PORTS))
    base = np.concatenate([C.POPULAR_PORTS, rest])
    score = -np.log1p(np.arange(len(base), dtype=np.float64))
    where = np.zeros(N_PORTS, dtype=np.int64)  # position of each port in `base`
    where[base] = np.arange(len(base))
    fam = rng.choice(C.IOT_PORTS, size=(MIRAI_FAMILIES + 1, 4))
    scanners = [spec for spec in C.CLASSES if spec.kind == "scanner"]
    taste = {spec.name: rng.normal(0.0, SCAN_TASTE, len(base)) for spec in scanners}  # by position in `base`
    order_key = {spec.name: rng.random(N_PORTS) for spec in scanners}  # rotation order of the ports
    org_state: dict[str, np.ndarray] = {}
    org_hour: dict[str, dict[int, int]] = {}
    for spec in scanners:
        k = spec.ports - (5 if spec.name in UDP_SCANNERS else 0)
        pref = score + taste[spec.name]
        top = np.argpartition(-pref, k - 1)[:k]
        org_state[spec.name] = base[top]
        org_hour[spec.name] = {}
    brute = rng.choice(all_ports, 1000, replace=False)
    spam = rng.choice(all_ports, 7000, replace=False)
    sched = Schedules([], [], [], [], [], [], [])
    for d in range(days):
        if d > 0:
            change = rng.random(fam.shape) < 0.1 * drift
            fam = np.where(change, rng.choice(C.IOT_PORTS, size=fam.shape), fam)
            score = score + rng.normal(0, 0.05 * drift, len(score))
            brute = _replace(rng, brute, 0.2 * drift, all_ports)
            spam = _replace(rng, spam, 0.2 * drift, all_ports)
            for spec in scanners:
                org_state[spec.name] = _replace_ranked(rng, org_state[spec.name], spec.renewal * drift, base)
        popular = base[np.argsort(-score, kind="stable")]
        sched.mirai.append(fam.copy())
        sched.popular.append(popular)
        sched.brute_pool.append(brute.copy())
        sched.spam_pool.append(spam.copy())
        ports_d: dict[str, np.ndarray] = {}
        hours_d: dict[str, np.ndarray] = {}
        cum_d: dict[str, np.ndarray] = {}
        for spec in scanners:
            name = spec.name
            ports = org_state[name]
            if spec.pattern == "rotation":
                # one sweep a day through the set in the organisation's own order, a slice an hour
                ports = ports[np.argsort(order_key[name][ports], kind="stable")]
                w = np.ones(len(ports))
            else:
                # the organisation's preferred ports first, packets Zipf-like along that order
                pref = score[where[ports]] + taste[name][where[ports]]
                ports = ports[np.argsort(-pref, kind="stable")]
                w = (1.0 + np.arange(len(ports))) ** -SCAN_ZIPF
            ports_d[name] = ports.copy()
            cum_d[name] = np.cumsum(w) / w.sum()
            if spec.pattern == "fixed_hours":
                table = org_hour[name]
                for p in ports:
                    if int(p) not in table:
                        table[int(p)] = int(rng.integers(0, 24))
                hours_d[name] = np.array([table[int(p)] for p in ports], dtype=np.int64)
        sched.org_ports.append(ports_d)
        sched.org_hours.append(hours_d)
        sched.org_cum.append(cum_d)
    return sched


def _replace_ranked(
    rng: np.random.Generator, ports: np.ndarray, frac: float, ranked: np.ndarray
) -> np.ndarray:
    """`ports` with a share `frac` of its members replaced by ports drawn along the popularity ranking `ranked`
    (Zipf-like over the rank, members skipped), keeping the order of the members that stay."""
    if frac <= 0 or len(ports) == 0:
        return ports
    k = int(rng.binomial(len(ports), min(frac, 1.0)))
    if k == 0:
        return ports
    keep = ports[np.sort(rng.permutation(len(ports))[k:])]
    fresh = np.zeros(0, dtype=np.int64)
    while len(fresh) < k:
        rank = np.minimum(rng.zipf(1.3, 4 * k + 16) - 1, len(ranked) - 1)
        cand = ranked[rank]
        cand = np.concatenate([fresh, cand[~np.isin(cand, keep)]])
        _, first = np.unique(cand, return_index=True)
        fresh = cand[np.sort(first)]
    return np.concatenate([keep, fresh[:k]])


def _replace(rng: np.random.Generator, ports: np.ndarray, frac: float, universe: np.ndarray) -> np.ndarray:
    """`ports` with a share `frac` of its members replaced by other ports of `universe` (no duplicates)."""
    if frac <= 0 or len(ports) == 0:
        return ports
    k = int(rng.binomial(len(ports), min(frac, 1.0)))
    if k == 0:
        return ports
    keep = rng.permutation(len(ports))[k:]
    fresh = rng.choice(universe, size=2 * k + 8)
    fresh = fresh[~np.isin(fresh, ports)]
    _, first = np.unique(fresh, return_index=True)
    fresh = fresh[np.sort(first)][:k]
    return np.concatenate([ports[np.sort(keep)], fresh])
