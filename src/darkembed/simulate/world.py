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
day does not depend on the others and the same seed gives byte-identical files. The population comes from
`darkembed.simulate.population`, a network-day's packets from `darkembed.simulate.traffic`, the honeypot's
sessions from `darkembed.simulate.cowrie`; this module runs the days and writes the files.
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
from darkembed.simulate.pcap import PROTO_ARP, build_records, empty_columns, write_pcap_gz
from darkembed.simulate.population import Population, Schedules, build_population, build_schedules
from darkembed.simulate.traffic import (
    US_PER_HOUR,
    ActiveDay,
    SimNetwork,
    day_packets,
    seeded_rng,
)

log = logging.getLogger(__name__)

#: Suffix of the answer key's `behaviour` of a look-alike (a host of a class no labelling source names).
LOOKALIKE = ":lookalike"


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
    t_all = time.perf_counter()
    pop, sched, covered = _population(sim, nets)
    log.info("simulated population: %d hosts over %d days", len(pop), sim.days)
    result = SimulateResult(out=out)
    truth_parts: list[dict[str, np.ndarray]] = []
    net_days: list[dict] = []
    total_steps = sim.days * len(nets)
    step = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for d in range(sim.days):
            date = sim.start + dt.timedelta(days=d)
            day_start_us = (
                int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp()) * 1_000_000
            )
            day = ActiveDay(pop, d, nets, sim, sim.seed)
            for net in nets:
                t0 = time.perf_counter()
                hosts, cnt, logins, downloads, nbytes = _network_day(
                    pop, sched, day, d, date, day_start_us, net, sim, out, pool
                )
                secs = time.perf_counter() - t0
                n_ip = int(cnt.sum())
                result.packets[net.name] = result.packets.get(net.name, 0) + n_ip
                result.seconds[net.name] = result.seconds.get(net.name, 0.0) + secs
                result.bytes[net.name] = result.bytes.get(net.name, 0) + nbytes
                seen = (cnt > 0) | (logins > 0)
                truth_parts.append(
                    _truth_rows(pop, hosts[seen], d, net.name, cnt[seen], logins[seen], downloads[seen])
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
                log.info(
                    "%s %s: %d packets from %d hosts in %.1f s", net.name, date, n_ip, int(seen.sum()), secs
                )
                if progress:
                    progress(f"{net.name} {date}", step, total_steps)
    _write_truth(out, truth_parts, sim.start)
    lists = _write_scanner_lists(out, pop, sim, covered)
    _write_summary(out, sim, nets, pop, lists, net_days)
    result.total_seconds = time.perf_counter() - t_all
    return result


def _population(sim: SimulateConfig, nets: list[SimNetwork]) -> tuple[Population, Schedules, np.ndarray]:
    """The world's population and schedules, and which scanner hosts their organisation's list covers
    (`_list_coverage`); the scanner hosts it leaves out are marked as look-alikes."""
    darknets = [n for n in nets if n.kind == "darknet"]
    exclude = [(n.base, 32 - (n.size - 1).bit_length()) for n in nets]
    pop = build_population(sim, sim.days, sim.scale, len(darknets), seeded_rng(sim.seed, 1), exclude)
    sched = build_schedules(sim, sim.days, seeded_rng(sim.seed, 2))
    covered = _list_coverage(pop, sim)
    # scanner hosts their organisation's list leaves out are the scanners' look-alikes
    is_scanner = np.array([s.kind == "scanner" for s in C.CLASSES])[pop.cls]
    pop.lookalike |= is_scanner & ~covered
    return pop, sched, covered


def _network_day(
    pop: Population,
    sched: Schedules,
    day: ActiveDay,
    d: int,
    date: dt.date,
    day_start_us: int,
    net: SimNetwork,
    sim: SimulateConfig,
    out: Path,
    pool: ThreadPoolExecutor,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Generate and write one network's day: its captures and, for a honeypot, its Cowrie log.

    Returns:
        (global index of each visible host (V,), its packets (V,) including those of honeypot sessions, its
        Cowrie login attempts (V,), its downloads (V,), compressed bytes of the captures).
    """
    cols, hosts, cnt = day_packets(pop, sched, day, d, net, sim, sim.seed, day_start_us)
    logins = np.zeros(len(hosts), dtype=np.int64)
    downloads = np.zeros(len(hosts), dtype=np.int64)
    parts = [cols]
    if net.kind == "honeypot":
        scols, logins, downloads = _cowrie_day(pop, day, d, date, day_start_us, net, hosts, sim.seed, out)
        if len(scols["ts_us"]):
            order = np.argsort(pop.ip[hosts])
            pos = order[np.searchsorted(pop.ip[hosts], scols["src"], sorter=order)]
            scols["ttl"] = pop.ttl[hosts][pos]
            cnt = cnt + np.bincount(pos, minlength=len(hosts))
            parts.append(scols)
    nbytes = _write_captures(out, parts, net, d, date, day_start_us, sim, pool)
    return hosts, cnt, logins, downloads, nbytes


def _cowrie_day(
    pop: Population,
    day: ActiveDay,
    d: int,
    date: dt.date,
    day_start_us: int,
    net: SimNetwork,
    hosts: np.ndarray,
    seed: int,
    out: Path,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Write the honeypot `net`'s Cowrie log of the day (`<out>/<net>/cowrie/cowrie.json.<day>`).

    Returns:
        (packet columns of the sessions, login attempts per visible host (V,), downloads per visible host (V,)).
    """
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
        seeded_rng(seed, 6, d, net.index),
        seeded_rng(seed, 8, d, net.index),
    )
    cowrie = out / net.name / "cowrie" / f"cowrie.json.{date.isoformat()}"
    cowrie.parent.mkdir(parents=True, exist_ok=True)
    tmp = cowrie.with_name(cowrie.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.replace(cowrie)
    return scols, logins, downloads


def _write_captures(
    out: Path,
    parts: list[dict[str, np.ndarray]],
    net: SimNetwork,
    d: int,
    date: dt.date,
    day_start_us: int,
    sim: SimulateConfig,
    pool: ThreadPoolExecutor,
) -> int:
    """Write the 24 hourly captures of one network-day from its packet columns `parts`, with the ARP and
    802.1Q-tagged frames of `sim`; returns their compressed bytes."""
    rng = seeded_rng(sim.seed, 5, d, net.index)
    if sim.arp_frames:
        parts = [*parts, _arp_rows(rng, net, day_start_us, sim.arp_frames)]
    allc = _concat(parts)
    order = np.argsort(allc["ts_us"], kind="stable")
    allc = {k: v[order] for k, v in allc.items()}
    bounds = np.searchsorted(allc["ts_us"], day_start_us + np.arange(25) * US_PER_HOUR)
    if sim.vlan_frames:
        _tag_vlan(rng, allc, bounds, sim.vlan_frames, 100 + net.index)
    folder = out / net.name / date.isoformat()
    jobs = []
    for h in range(24):
        a, b = bounds[h], bounds[h + 1]
        rec = build_records({k: v[a:b] for k, v in allc.items()})
        path = folder / f"{net.name}_{date:%Y%m%d}_{h:02d}.pcap.gz"
        # zlib releases the GIL: hour h compresses while hour h + 1 is built
        jobs.append(pool.submit(write_pcap_gz, path, rec, sim.gzip_level))
    return sum(j.result() for j in jobs)


def _tag_vlan(
    rng: np.random.Generator, allc: dict[str, np.ndarray], bounds: np.ndarray, per_hour: int, vlan: int
) -> None:
    """Tag `per_hour` IP packets of each hour (hour h is rows `bounds[h]:bounds[h + 1]`) with VLAN id `vlan`."""
    ip_rows = np.flatnonzero(allc["proto"] != PROTO_ARP)
    if len(ip_rows):
        hb = np.searchsorted(ip_rows, bounds)
        for h in range(24):
            a, b = hb[h], hb[h + 1]
            if b > a:
                pick = ip_rows[a + rng.choice(b - a, size=min(per_hour, b - a), replace=False)]
                allc["vlan"][pick] = vlan


def _truth_rows(
    pop: Population,
    hosts: np.ndarray,
    d: int,
    network: str,
    cnt: np.ndarray,
    logins: np.ndarray,
    downloads: np.ndarray,
) -> dict[str, np.ndarray]:
    """The answer key's rows of the hosts `hosts` that a network saw on day `d` (columns of `TRUTH`)."""
    return {
        "src_ip": pop.ip[hosts],
        "day": np.full(len(hosts), d, np.int32),
        "network": np.full(len(hosts), network, dtype=object),
        "class": np.array(C.CLASS_NAMES, dtype=object)[pop.cls[hosts]],
        "behaviour": _behaviour(pop, hosts),
        "tool": np.array(C.TOOL_NAMES, dtype=object)[pop.tool[hosts]],
        "packets": cnt.astype(np.uint32),
        "logins": logins.astype(np.uint32),
        "downloads": downloads.astype(np.uint32),
    }


def _write_summary(
    out: Path,
    sim: SimulateConfig,
    nets: list[SimNetwork],
    pop: Population,
    lists: dict[str, dict[str, int]],
    net_days: list[dict],
) -> None:
    """Write `<out>/truth/summary.json`: the config, networks, class targets, population and per network-day
    counts."""
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
    rng = seeded_rng(sim.seed, 7)
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
