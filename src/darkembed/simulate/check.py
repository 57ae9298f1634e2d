"""Validate a simulated world: read its captures back and compare them with the answer key and the targets.

Reads `<world>/truth/{truth.parquet,summary.json}`, every `<world>/<network>/<day>/*.pcap.gz` and the Cowrie
logs; writes nothing. The captures are decoded by a small compiled reader of the simulator's own format
(little-endian microsecond libpcap, Ethernet, optional 802.1Q tag), independent of the generator's arrays, so
the check sees what a sensor would have recorded.

Per network and class it reports active hosts (at least 5 packets), distinct destination ports and packets per
day against the configured targets; per darknet pair the anchor share; per network the fingerprint counts
(Mirai, ZMap, Masscan) against the tools in the answer key; and whether every packet of the captures matches the
answer key exactly.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyarrow.parquet as pq

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


@numba.njit(cache=False)
def _count_records(buf: np.ndarray) -> int:  # pragma: no cover - compiled
    off = 24
    n = 0
    size = len(buf)
    while off + 16 <= size:
        caplen = buf[off + 8] | (buf[off + 9] << 8) | (buf[off + 10] << 16) | (np.int64(buf[off + 11]) << 24)
        off += 16 + caplen
        n += 1
    return n


@numba.njit(cache=False)
def _parse(buf: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Fill `out` (n, 12) int64: kind (0 IPv4, 1 non-IP, 2 bad), vlan, src, dst, proto, sport, dport, flags, seq,
    ip_id, win, tcp header length."""
    off = 24
    size = len(buf)
    i = 0
    while off + 16 <= size and i < out.shape[0]:
        caplen = buf[off + 8] | (buf[off + 9] << 8) | (buf[off + 10] << 16) | (np.int64(buf[off + 11]) << 24)
        p = off + 16
        end = p + caplen
        off = end
        if end > size or caplen < 14:
            out[i, 0] = 2
            i += 1
            continue
        et = (np.int64(buf[p + 12]) << 8) | buf[p + 13]
        e = p + 14
        if et == 0x8100:
            out[i, 1] = 1
            et = (np.int64(buf[p + 16]) << 8) | buf[p + 17]
            e = p + 18
        if et != 0x0800:
            out[i, 0] = 1
            i += 1
            continue
        if e + 20 > end or (buf[e] >> 4) != 4:
            out[i, 0] = 2
            i += 1
            continue
        ihl = (buf[e] & 15) * 4
        out[i, 2] = (np.int64(buf[e + 12]) << 24) | (buf[e + 13] << 16) | (buf[e + 14] << 8) | buf[e + 15]
        out[i, 3] = (np.int64(buf[e + 16]) << 24) | (buf[e + 17] << 16) | (buf[e + 18] << 8) | buf[e + 19]
        proto = buf[e + 9]
        out[i, 4] = proto
        out[i, 9] = (np.int64(buf[e + 4]) << 8) | buf[e + 5]
        t = e + ihl
        if proto == 6 and t + 20 <= end:
            out[i, 5] = (np.int64(buf[t]) << 8) | buf[t + 1]
            out[i, 6] = (np.int64(buf[t + 2]) << 8) | buf[t + 3]
            out[i, 8] = (np.int64(buf[t + 4]) << 24) | (buf[t + 5] << 16) | (buf[t + 6] << 8) | buf[t + 7]
            out[i, 7] = ((np.int64(buf[t + 12]) & 1) << 8) | buf[t + 13]
            out[i, 10] = (np.int64(buf[t + 14]) << 8) | buf[t + 15]
            out[i, 11] = (buf[t + 12] >> 4) * 4
        elif proto == 17 and t + 8 <= end:
            out[i, 5] = (np.int64(buf[t]) << 8) | buf[t + 1]
            out[i, 6] = (np.int64(buf[t + 2]) << 8) | buf[t + 3]
        elif proto == 6 or proto == 17:
            out[i, 0] = 2
        i += 1


FIELDS = ("kind", "vlan", "src", "dst", "proto", "sport", "dport", "flags", "seq", "ip_id", "win", "tcp_hlen")


def read_capture(path: Path) -> dict[str, np.ndarray]:
    """Decode one (gzip) libpcap file written by the simulator into int64 columns (`FIELDS`), one per record."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if raw[:4] != bytes.fromhex("d4c3b2a1"):
        raise ValueError(f"{path}: not a little-endian microsecond libpcap file written by the simulator")
    buf = np.frombuffer(raw, dtype=np.uint8)
    n = _count_records(buf)
    out = np.zeros((n, len(FIELDS)), dtype=np.int64)
    _parse(buf, out)
    return {k: out[:, i] for i, k in enumerate(FIELDS)}


def read_day(world: Path, network: str, day: str) -> dict[str, np.ndarray]:
    """All records of one network-day (24 hourly files), concatenated in file order."""
    files = sorted((world / network / day).glob("*.pcap.gz"))
    if not files:
        raise FileNotFoundError(f"{world / network / day}: no capture files")
    parts = [read_capture(f) for f in files]
    out = {k: np.concatenate([p[k] for p in parts]) for k in FIELDS}
    out["files"] = np.array([len(files)])
    return out


@dataclass
class CheckReport:
    """The result of `check_world`: rows of measured vs target values and the problems found."""

    rows: list[dict] = field(default_factory=list)  # network, class, hosts/ports/packets measured and target
    anchors: list[dict] = field(default_factory=list)  # darknet pair, day, share (>= 5 packets and all hosts)
    fingerprints: list[dict] = field(default_factory=list)  # network, fingerprint, hosts found, expected
    frames: list[dict] = field(default_factory=list)  # network, files, ip packets, non-ip, vlan, bad
    cowrie: list[dict] = field(default_factory=list)  # honeypot, class, hosts, hosts with > 10 logins
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
    for net in nets:
        name = net["name"]
        fr = {"network": name, "files": 0, "ip_packets": 0, "non_ip": 0, "vlan": 0, "bad": 0}
        for day in days:
            cap = read_day(world, name, day)
            fr["files"] += int(cap["files"][0])
            ip = cap["kind"] == 0
            fr["ip_packets"] += int(ip.sum())
            fr["non_ip"] += int((cap["kind"] == 1).sum())
            fr["vlan"] += int(cap["vlan"].sum())
            fr["bad"] += int((cap["kind"] == 2).sum())
            src = cap["src"][ip]
            sel = (t_net == name) & (t_day == day)
            ts, tc, tt, tp = t_src[sel], t_cls[sel], t_tool[sel], t_pk[sel]
            order = np.argsort(ts)
            ts, tc, tt, tp = ts[order], tc[order], tt[order], tp[order]
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
            dports = cap["dport"][ip]
            protos = cap["proto"][ip]
            for c in classes:
                hm = cls_h == c
                pm = pk_cls == c
                ports = np.unique(dports[pm & ((protos == 6) | (protos == 17))])
                d = per.setdefault((name, c), {"hosts": [], "ports": [], "packets": []})
                d["hosts"].append(float((counts[hm] >= 5).sum()))
                d["ports"].append(float(len(ports)))
                d["packets"].append(float(pm.sum()))
            # fingerprints (DATA.md section 5)
            syn = (protos == 6) & (cap["flags"][ip] == 0x02)
            seq = cap["seq"][ip]
            dst = cap["dst"][ip]
            mirai_src = np.unique(src[syn & (seq == dst)])
            zm = syn & (cap["ip_id"][ip] == 54321) & (cap["win"][ip] == 65535)
            ms = syn & (cap["ip_id"][ip] == ((dst ^ dports ^ seq) & 0xFFFF)) & (cap["win"][ip] == 1024)
            zh, zc = np.unique(src[zm], return_counts=True)
            mh, mc = np.unique(src[ms], return_counts=True)
            exp = {
                "mirai": set(ts[(tc == "mirai") & (tp > 0)].tolist()),
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
        expected_arp = cfg["arp_frames"] * 24 * len(days)
        if fr["non_ip"] != expected_arp:
            rep.problems.append(f"{name}: {fr['non_ip']} non-IP frames, expected {expected_arp} (ARP)")
        if fr["bad"]:
            rep.problems.append(f"{name}: {fr['bad']} records could not be decoded")
        if fr["files"] != 24 * len(days):
            rep.problems.append(f"{name}: {fr['files']} capture files, expected {24 * len(days)}")
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
