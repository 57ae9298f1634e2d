"""Validate a simulated world: read its captures back and compare them with the answer key and the targets.

Reads `<world>/truth/{truth.parquet,summary.json}`, every `<world>/<network>/<day>/*.pcap.gz` and the Cowrie
logs; writes nothing. The captures are read with the product's packet reader (`darkembed.ingest.read_capture`),
independent of the generator's arrays, so the check sees what the ingest stage of a sensor's pipeline would see.

Per network and class it reports active hosts (at least 5 packets), distinct destination ports and packets per
day against the configured targets; per darknet pair the anchor share; per network the fingerprint counts
(Mirai, ZMap, Masscan) against the tools in the answer key; and whether every packet of the captures matches the
answer key exactly, with no capture file missing, unreadable or damaged.

The realism report (`CheckReport.realism`) sets statistics of the darknets' traffic beside the values published
for real darknets (`REALISM`; the sources are in docs/realism.md): packets and distinct ports per host and day,
distinct ports per day, the TCP share, the unlabelled share of hosts and packets, new hosts per day, the anchor
share, and the port-histogram baseline (`darkembed.simulate.baseline`) computed on the captures.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from darkembed.ingest import CaptureError, IngestReport, empty_packets, read_capture
from darkembed.simulate.baseline import port_baseline

log = logging.getLogger(__name__)

#: A class whose measured mean per day is off its target by more than this factor fails the check.
BAD_FACTOR = 2.0
#: ... and by more than this factor gets a warning.
WARN_FACTOR = 1.3
#: Classes with fewer target hosts per day than this are reported but not rated (too few to measure).
MIN_RATED_HOSTS = 10
#: Packets per day are rated only for classes with at least this many target hosts: volumes are heavy-tailed
#: (lognormal, sigma up to 1.6), so the daily sum over a few dozen hosts can honestly be off by a factor 2.
MIN_RATED_PACKET_HOSTS = 100
#: Ports per day are rated only at this scale or above (distinct ports shrink with the number of packets).
MIN_PORT_SCALE = 0.5

#: `packets` columns `read_day` returns, as int64 with null (a field the packet does not carry) as 0.
COLUMNS = ("src_ip", "dst_ip", "proto", "dst_port", "tcp_flags", "tcp_seq", "ip_id", "tcp_win")
#: Skip reasons of the packet reader that are frames outside IPv4 (the simulator's ARP frames), not damage.
NOT_IPV4 = ("non_ip", "ipv6")
#: TCP options the packet reader decodes; every option layout of the simulator carries at least MSS.
TCP_OPTIONS = ("tcp_mss", "tcp_wscale", "tcp_sackp", "tcp_tsval")


#: Port nodes of [GNN]'s daily graph (the rest is one `other` node), for the distinct ports per host.
GNN_TOP_PORTS = 2500
#: Suffix of the answer key's `behaviour` of a look-alike (see `darkembed.simulate.world.LOOKALIKE`).
LOOKALIKE = ":lookalike"


@dataclass(frozen=True)
class Target:
    """A statistic of real darknet traffic and how far a simulated world may stray from it.

    Attributes:
        key: the statistic (see `REALISM`).
        label: what the statistic is, as printed.
        target: the published value (a range: `ok`).
        ok: (low, high) the world matches the data.
        warn: (low, high) outside it the statistic is badly missed and the check fails; between `ok` and `warn`
            it warns. None: it only warns.
        source: where the published value comes from (docs/realism.md has the derivations).
        min_scale: rated only for worlds of at least this scale (statistics that grow with the world's size).
    """

    key: str
    label: str
    target: str
    ok: tuple[float, float]
    warn: tuple[float, float] | None
    source: str
    min_scale: float = 0.0


#: The real statistics a world is set beside, per darknet-day (docs/realism.md).
REALISM: tuple[Target, ...] = (
    Target(
        "packets_mean",
        "packets per active host and day, mean",
        "264",
        (132, 528),
        None,
        "[GNN] Table 2: 2,000,968 packets / 7,566 hosts",
    ),
    Target(
        "packets_median",
        "packets per active host and day, median",
        "<= 20",
        (5, 20),
        None,
        "DarkVec, i-DarkVec: heavy-tailed, most senders just above the activity filter",
    ),
    Target(
        "ports_host",
        "distinct TCP ports per active host and day, mean (top 2,500 ports + other)",
        "6.5-25",
        (6.5, 25.4),
        None,
        "[GNN] graph: 1,525,152 first-seen edges / 60,106 hosts (month); / 7,566 x 31 (day)",
    ),
    Target(
        "ports_day",
        "distinct TCP ports per day",
        "53,638",
        (41_260, 69_730),
        None,
        "[GNN] Table 2 (scale 1.0)",
        0.5,
    ),
    Target("tcp_share", "TCP share of packets", "0.937", (0.89, 0.99), (0.8, 1.0), "[GNN] section 3"),
    Target(
        "unlabelled_hosts",
        "unlabelled share of active hosts",
        "0.32-0.48",
        (0.32, 0.48),
        (0.22, 0.58),
        "[TNSM] Table I (0.32, 0.34); [GNN] Table 2 (0.48)",
    ),
    Target(
        "unlabelled_packets",
        "unlabelled share of active hosts' packets",
        "0.64",
        (0.49, 0.79),
        None,
        "[GNN] section 2 (36 % of packets labelled)",
    ),
    Target(
        "new_hosts",
        "new hosts per day (not active on an earlier day)",
        "0.23",
        (0.15, 0.40),
        None,
        "[GNN] Table 2: (60,106 - 7,566) / 30 / 7,566",
    ),
    Target(
        "anchor_share",
        "anchor share (active hosts both darknets see)",
        "0.73",
        (0.68, 0.78),
        None,  # a world may be made with another share on purpose; the anchor check holds it to its config
        "[TNSM] Table I: 11,052 / 15,037",
    ),
    Target(
        "baseline_f1",
        "port baseline macro F1 (3-NN, top-5 ports, >= 5 TCP packets)",
        "0.50 (<= 0.60)",
        (0.0, 0.60),
        (0.0, 0.70),
        "DarkVec port baseline on real traffic",
    ),
)


def rate(target: Target, value: float, scale: float) -> str:
    """ok, warn, FAIL (badly missed) or info (not rated at this scale / not measured)."""
    if not np.isfinite(value) or scale < target.min_scale:
        return "info"
    lo, hi = target.ok
    if lo <= value <= hi:
        return "ok"
    if target.warn is None:
        return "warn"
    lo, hi = target.warn
    return "warn" if lo <= value <= hi else "FAIL"


@dataclass
class CaptureDay:
    """One network-day of captures as the packet reader sees it.

    Attributes:
        columns: the IPv4 packets in file order: `COLUMNS` as int64 arrays, and `tcp_options` (bool: the packet
            carries a TCP option the reader decodes, `TCP_OPTIONS`).
        files: capture files found.
        non_ip: records that are not IPv4 (`NOT_IPV4`).
        bad: damaged records (every other reason the reader skipped a record).
        errors: files that could not be read whole, each with the reader's reason.
    """

    columns: dict[str, np.ndarray]
    files: int = 0
    non_ip: int = 0
    bad: int = 0
    errors: list[str] = field(default_factory=list)


def _read(path: Path) -> tuple[pa.Table, IngestReport] | CaptureError:
    try:
        return read_capture(path)
    except CaptureError as exc:
        return exc


def read_day(world: str | Path, network: str, day: str) -> CaptureDay:
    """Read one network-day (`<world>/<network>/<day>/*.pcap.gz`, 24 hourly files) with the packet reader.

    Files are read in parallel and concatenated in name order. Missing, unreadable or damaged files do not raise:
    they show in `files`, `bad` and `errors`.
    """
    files = sorted((Path(world) / network / day).glob("*.pcap.gz"))
    with ThreadPoolExecutor(max_workers=max(1, min(len(files), os.cpu_count() or 1))) as pool:
        results = list(pool.map(_read, files))
    out = CaptureDay(columns={}, files=len(files))
    tables = []
    for path, res in zip(files, results, strict=True):
        if isinstance(res, CaptureError):
            out.errors.append(str(res))
            continue
        table, report = res
        tables.append(table)
        out.non_ip += sum(report.skipped.get(k, 0) for k in NOT_IPV4)
        out.bad += sum(v for k, v in report.skipped.items() if k not in NOT_IPV4)
        if report.error:
            out.errors.append(f"{path}: {report.error}")
    table = pa.concat_tables(tables) if tables else empty_packets()
    out.columns = {k: pc.fill_null(table.column(k), 0).to_numpy().astype(np.int64) for k in COLUMNS}
    opts = np.zeros(table.num_rows, dtype=bool)
    for k in TCP_OPTIONS:
        opts |= pc.is_valid(table.column(k)).to_numpy()
    out.columns["tcp_options"] = opts
    return out


@dataclass
class CheckReport:
    """The result of `check_world`: rows of measured vs target values and the problems found."""

    rows: list[dict] = field(default_factory=list)  # network, class, hosts/ports/packets measured and target
    anchors: list[dict] = field(default_factory=list)  # darknet pair, day, share (>= 5 packets and all hosts)
    fingerprints: list[dict] = field(default_factory=list)  # network, fingerprint, hosts found, expected
    frames: list[dict] = field(default_factory=list)  # network, files, ip packets, non-ip, bad
    cowrie: list[dict] = field(default_factory=list)  # honeypot, class, hosts, hosts with > 10 logins
    realism: list[dict] = field(
        default_factory=list
    )  # statistic, measured, target, source, status (`REALISM`)
    baseline: list[dict] = field(default_factory=list)  # darknet, day, hosts, labelled, classes, f1, f1_all
    lookalikes: list[dict] = field(default_factory=list)  # class, active host-days, of them look-alikes
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _rate(measured: float, target: float) -> str:
    if target <= 0:
        return "info"
    r = measured / target
    if r > BAD_FACTOR or r < 1 / BAD_FACTOR:
        return "FAIL"
    if r > WARN_FACTOR or r < 1 / WARN_FACTOR:
        return "warn"
    return "ok"


def _realism_day(
    stats: dict[str, list[float]],
    look: dict[str, list[int]],
    src: np.ndarray,
    proto: np.ndarray,
    dport: np.ndarray,
    hosts: np.ndarray,
    counts: np.ndarray,
    cls_h: np.ndarray,
    look_h: np.ndarray,
    seen_before: np.ndarray,
) -> None:
    """Append one darknet-day's realism statistics (`REALISM` keys) to `stats` and its look-alike counts to
    `look` (class -> [active hosts, look-alikes])."""
    act = counts >= 5
    if not act.any():
        return
    tcp = proto == 6
    add = lambda k, v: stats.setdefault(k, []).append(float(v))  # noqa: E731
    add("packets_mean", counts[act].mean())
    add("packets_median", np.median(counts[act]))
    # as in [GNN]'s graph: the day's 2,500 most-hit ports, every other port one `other` node (port 0 here)
    port_tcp = dport[tcp]
    ports, n = np.unique(port_tcp, return_counts=True)
    top = ports[np.argsort(-n, kind="stable")[:GNN_TOP_PORTS]]
    node = np.where(np.isin(port_tcp, top), port_tcp, 0)
    pairs = np.unique(src[tcp] * 65536 + node)
    per_host = np.bincount(np.searchsorted(hosts, pairs // 65536), minlength=len(hosts))
    add("ports_host", per_host[act].mean())
    add("ports_day", len(np.unique(dport[tcp])))
    add("tcp_share", tcp.mean() if len(tcp) else np.nan)
    unl = (cls_h == "unknown") | look_h
    add("unlabelled_hosts", unl[act].mean())
    add("unlabelled_packets", counts[act & unl].sum() / counts[act].sum())
    if len(seen_before):
        add("new_hosts", (~np.isin(hosts[act], seen_before)).mean())
    for c in np.unique(cls_h[act]):
        m = act & (cls_h == c)
        acc = look.setdefault(str(c), [0, 0])
        acc[0] += int(m.sum())
        acc[1] += int((m & look_h).sum())


def check_world(world: str | Path) -> CheckReport:
    """Validate the world written under `world` (see module docstring)."""
    world = Path(world)
    summary = json.loads((world / "truth" / "summary.json").read_text())
    table = pq.read_table(world / "truth" / "truth.parquet")
    t_src = table.column("src_ip").to_numpy().astype(np.int64)
    t_day = table.column("day").cast("string").to_numpy(zero_copy_only=False)
    t_net = table.column("network").to_numpy(zero_copy_only=False)
    t_cls = table.column("class").to_numpy(zero_copy_only=False)
    t_tool = table.column("tool").to_numpy(zero_copy_only=False)
    t_look = np.char.endswith(table.column("behaviour").to_numpy(zero_copy_only=False).astype(str), LOOKALIKE)
    t_pk = table.column("packets").to_numpy().astype(np.int64)
    t_login = table.column("logins").to_numpy().astype(np.int64)
    cfg = summary["config"]
    targets = summary["targets"]
    classes = list(targets)
    nets = summary["networks"]
    days = sorted({nd["day"] for nd in summary["network_days"]})
    rep = CheckReport()
    per: dict[tuple[str, str], dict[str, list[float]]] = {}
    active: dict[tuple[str, str], np.ndarray] = {}
    active_all: dict[tuple[str, str], np.ndarray] = {}
    fp: dict[tuple[str, str], list[int]] = {}
    stats: dict[str, list[float]] = {}
    look: dict[str, list[int]] = {}
    for net in nets:
        name = net["name"]
        seen_before = np.zeros(0, dtype=np.int64)
        fr = {"network": name, "files": 0, "ip_packets": 0, "non_ip": 0, "bad": 0}
        for day in days:
            day_cap = read_day(world, name, day)
            cap = day_cap.columns
            src = cap["src_ip"]
            fr["files"] += day_cap.files
            fr["ip_packets"] += len(src)
            fr["non_ip"] += day_cap.non_ip
            fr["bad"] += day_cap.bad
            if day_cap.files != 24:
                rep.problems.append(f"{name} {day}: {day_cap.files} capture files, expected 24")
            rep.problems.extend(day_cap.errors)
            sel = (t_net == name) & (t_day == day)
            ts, tc, tt, tp, tl = t_src[sel], t_cls[sel], t_tool[sel], t_pk[sel], t_look[sel]
            order = np.argsort(ts)
            ts, tc, tt, tp, tl = ts[order], tc[order], tt[order], tp[order], tl[order]
            hosts, counts = np.unique(src, return_counts=True)
            known = np.isin(hosts, ts)
            if not known.all():
                rep.problems.append(
                    f"{name} {day}: {int((~known).sum())} sources in the captures are not in the answer key"
                )
            pos = np.searchsorted(ts, hosts)
            pos = np.minimum(pos, max(len(ts) - 1, 0))
            tp_have = tp[tp > 0]
            if len(hosts) != len(tp_have) or not np.array_equal(counts[known], tp[pos[known]]):
                rep.problems.append(
                    f"{name} {day}: packets per source in the captures differ from the answer key"
                )
            cls_h = tc[pos] if len(ts) else np.array([], dtype=object)
            active[(name, day)] = hosts[counts >= 5]
            active_all[(name, day)] = hosts
            # per class: hosts >= 5 packets, distinct ports, packets
            pk_cls = cls_h[np.searchsorted(hosts, src)] if len(hosts) else cls_h
            dports = cap["dst_port"]
            protos = cap["proto"]
            for c in classes:
                hm = cls_h == c
                pm = pk_cls == c
                ports = np.unique(dports[pm & ((protos == 6) | (protos == 17))])
                d = per.setdefault((name, c), {"hosts": [], "ports": [], "packets": []})
                d["hosts"].append(float((counts[hm] >= 5).sum()))
                d["ports"].append(float(len(ports)))
                d["packets"].append(float(pm.sum()))
            # fingerprints (docs/data-formats.md section 5)
            syn = (protos == 6) & (cap["tcp_flags"] == 0x02)
            seq = cap["tcp_seq"]
            dst = cap["dst_ip"]
            mirai_src = np.unique(src[syn & (seq == dst)])
            zm = syn & (cap["ip_id"] == 54321) & (cap["tcp_win"] == 65535)
            ms = syn & (cap["ip_id"] == ((dst ^ dports ^ seq) & 0xFFFF)) & (cap["tcp_win"] == 1024)
            zh, zc = np.unique(src[zm], return_counts=True)
            mh, mc = np.unique(src[ms], return_counts=True)
            exp = {
                "mirai": set(ts[(tt == "mirai") & (tp > 0)].tolist()),
                "zmap": set(ts[(tt == "zmap") & (tp >= 5)].tolist()),
                "masscan": set(ts[(tt == "masscan") & (tp >= 5)].tolist()),
            }
            found = {
                "mirai": set(mirai_src.tolist()),
                "zmap": set(zh[zc >= 3].tolist()),
                "masscan": set(mh[mc >= 3].tolist()),
            }
            for k in exp:
                acc = fp.setdefault((name, k), [0, 0, 0])
                acc[0] += len(found[k])
                acc[1] += len(exp[k])
                acc[2] += len(found[k] & exp[k])
            if net["kind"] == "darknet" and len(ts):
                look_h = tl[pos]
                _realism_day(stats, look, src, protos, dports, hosts, counts, cls_h, look_h, seen_before)
                seen_before = np.union1d(seen_before, hosts[counts >= 5])
                res = port_baseline(src, protos, dports, dict(zip(ts.tolist(), tc.tolist(), strict=True)))
                rep.baseline.append(
                    {
                        "network": name,
                        "day": day,
                        "hosts": res.hosts,
                        "labelled": res.labelled,
                        "classes": len(res.classes),
                        "ports": res.ports,
                        "f1": res.f1,
                        "f1_all": res.f1_all,
                        "per_class": res.per_class,
                    }
                )
        expected_arp = cfg["arp_frames"] * 24 * len(days)
        if fr["non_ip"] != expected_arp:
            rep.problems.append(f"{name}: {fr['non_ip']} non-IP frames, expected {expected_arp} (ARP)")
        if fr["bad"]:
            rep.problems.append(f"{name}: {fr['bad']} records could not be decoded")
        rep.frames.append(fr)
    for (name, k), (f, e, both) in fp.items():
        rep.fingerprints.append(
            {"network": name, "fingerprint": k, "found": f, "expected": e, "matched": both}
        )
        if e and both < (0.99 if k == "mirai" else 0.9) * e:
            rep.problems.append(f"{name}: fingerprint {k} found on {both} of {e} hosts that use the tool")
        if f - both > max(2, 0.02 * e):
            rep.warnings.append(f"{name}: fingerprint {k} matched {f - both} hosts that do not use the tool")
    kind = {n["name"]: n["kind"] for n in nets}
    scale = cfg["scale"]
    for (name, c), d in per.items():
        tgt = targets[c]
        row = {"network": name, "class": c, "days": len(d["hosts"])}
        for metric in ("hosts", "ports", "packets"):
            row[metric] = float(np.mean(d[metric]))
            row[f"{metric}_target"] = float(tgt[metric])
        rated = kind[name] == "darknet" and tgt["hosts"] >= MIN_RATED_HOSTS
        row["status"] = "info"
        if rated:
            statuses = [_rate(row["hosts"], tgt["hosts"])]
            if tgt["hosts"] >= MIN_RATED_PACKET_HOSTS:
                statuses.append(_rate(row["packets"], tgt["packets"]))
            if scale >= MIN_PORT_SCALE:
                statuses.append(_rate(row["ports"], tgt["ports"]))
            row["status"] = "FAIL" if "FAIL" in statuses else ("warn" if "warn" in statuses else "ok")
            if row["status"] == "FAIL":
                rep.problems.append(
                    f"{name} {c}: hosts/ports/packets per day {row['hosts']:.0f}/{row['ports']:.0f}/{row['packets']:.0f}"
                    f" vs target {tgt['hosts']:.0f}/{tgt['ports']}/{tgt['packets']:.0f}"
                )
        rep.rows.append(row)
    darknets = [n["name"] for n in nets if n["kind"] == "darknet"]
    for i, a in enumerate(darknets):
        for b in darknets[i + 1 :]:
            for day in days:
                row = {"pair": f"{a} / {b}", "day": day, "target": cfg["anchor_share"]}
                for key, src in (("share_active", active), ("share_all", active_all)):
                    ha, hb = src[(a, day)], src[(b, day)]
                    inter = len(np.intersect1d(ha, hb))
                    row[key] = inter / max(1e-9, (len(ha) + len(hb)) / 2)
                row["anchors"] = len(np.intersect1d(active[(a, day)], active[(b, day)]))
                rep.anchors.append(row)
            share = float(np.mean([r["share_active"] for r in rep.anchors if r["pair"] == f"{a} / {b}"]))
            if abs(share - cfg["anchor_share"]) > 0.15:
                rep.problems.append(
                    f"{a} / {b}: anchor share {share:.2f} vs target {cfg['anchor_share']:.2f}"
                )
    if rep.anchors:
        stats["anchor_share"] = [r["share_active"] for r in rep.anchors]
    stats["baseline_f1"] = [r["f1"] for r in rep.baseline if np.isfinite(r["f1"])]
    for tgt in REALISM:
        vals = stats.get(tgt.key, [])
        value = float(np.mean(vals)) if vals else float("nan")
        status = rate(tgt, value, scale)
        rep.realism.append(
            {
                "key": tgt.key,
                "statistic": tgt.label,
                "measured": value,
                "target": tgt.target,
                "source": tgt.source,
                "status": status,
            }
        )
        if status == "FAIL":
            rep.problems.append(f"realism: {tgt.label} {value:.3g} vs {tgt.target} ({tgt.source})")
    for c in classes:
        n, k = look.get(c, [0, 0])
        if n:
            rep.lookalikes.append({"class": c, "host_days": n, "lookalikes": k})
    for net in nets:
        if net["kind"] != "honeypot":
            continue
        sel = t_net == net["name"]
        for c in ("bruteforcer", "exploiter", "mirai", "unknown"):
            m = sel & (t_cls == c) & (t_login > 0)
            rep.cowrie.append(
                {
                    "network": net["name"],
                    "class": c,
                    "host_days": int(m.sum()),
                    "over_10_logins": int((m & (t_login > 10)).sum()),
                }
            )
        for day in days:
            path = world / net["name"] / "cowrie" / f"cowrie.json.{day}"
            if not path.is_file():
                rep.problems.append(f"{path}: missing Cowrie log")
                continue
            with path.open() as fh:
                for ln, line in enumerate(fh, 1):
                    try:
                        ev = json.loads(line)
                    except json.JSONDecodeError:
                        rep.problems.append(f"{path}:{ln}: not a JSON line")
                        break
                    if "eventid" not in ev or "timestamp" not in ev or "session" not in ev:
                        rep.problems.append(f"{path}:{ln}: event without eventid/timestamp/session")
                        break
    return rep
