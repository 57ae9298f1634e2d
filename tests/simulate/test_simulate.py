"""The traffic simulator: determinism, formats, fingerprints, anchors, Cowrie logs, scanner lists, the check."""

from __future__ import annotations

import collections
import gzip
import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from darkembed.config import ConfigError, load_config
from darkembed.simulate import simulate
from darkembed.simulate.check import check_world, read_day

dpkt = pytest.importorskip("dpkt")

SMALL = {"days": 2, "scale": 0.02, "min_hosts": 12, "seed": 7, "start": "2023-01-01"}


def _cfg(**sim):
    return load_config(overrides={"simulate": {**SMALL, **sim}})


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    simulate(_cfg(), out=out)
    return out


@pytest.fixture(scope="module")
def truth(world):
    return pq.read_table(world / "truth" / "truth.parquet").to_pylist()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout(world):
    day = world / "darknet-a" / "2023-01-01"
    names = sorted(p.name for p in day.iterdir())
    assert names == [f"darknet-a_20230101_{h:02d}.pcap.gz" for h in range(24)]
    for net in ("darknet-a", "darknet-b", "honeypot"):
        assert len(list((world / net).glob("2023-01-0?/*.pcap.gz"))) == 48
    assert (world / "honeypot" / "cowrie" / "cowrie.json.2023-01-02").is_file()
    assert (world / "truth" / "summary.json").is_file()
    # the config's capture globs find the files
    cfg = load_config()
    assert cfg.network("darknet-a").captures[0].startswith("var/world/darknet-a/")
    raw = (day / "darknet-a_20230101_00.pcap.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[3] == 0 and raw[4:8] == b"\0\0\0\0"  # no file name, mtime 0


def test_same_seed_same_bytes_other_seed_differs(world, tmp_path):
    again = tmp_path / "again"
    simulate(_cfg(), out=again)
    assert _files(world) == _files(again)
    other = tmp_path / "other"
    simulate(_cfg(seed=8), out=other)
    a = (world / "darknet-a/2023-01-01/darknet-a_20230101_00.pcap.gz").read_bytes()
    b = (other / "darknet-a/2023-01-01/darknet-a_20230101_00.pcap.gz").read_bytes()
    assert a != b


def test_check_passes(world):
    rep = check_world(world)
    assert rep.ok, rep.problems
    assert all(f["bad"] == 0 for f in rep.frames)
    assert all(f["non_ip"] == 24 * 2 * 3 for f in rep.frames)  # 3 ARP frames per hourly file
    rated = [r for r in rep.rows if r["status"] != "info"]
    assert rated and all(r["status"] != "FAIL" for r in rated)


def _decode(path: Path):
    """Every record of a capture with dpkt: (frame kind, vlan tagged, eth.data)."""
    out = []
    with gzip.open(path) as fh:
        reader = dpkt.pcap.Reader(fh)
        assert reader.datalink() == dpkt.pcap.DLT_EN10MB
        last = 0.0
        for ts, buf in reader:
            assert ts >= last
            last = ts
            eth = dpkt.ethernet.Ethernet(buf)
            out.append((ts, bool(getattr(eth, "vlan_tags", None)), eth.data))
    return out


def _csum_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def test_dpkt_decodes_counts_and_checksums(world, truth):
    day = world / "darknet-a" / "2023-01-01"
    per_src: collections.Counter = collections.Counter()
    arp = vlan = 0
    for h, f in enumerate(sorted(day.glob("*.pcap.gz"))):
        recs = _decode(f)
        for ts, tagged, ip in recs:
            assert int(ts // 3600) % 24 == h
            vlan += tagged
            if isinstance(ip, dpkt.arp.ARP):
                arp += 1
                continue
            assert isinstance(ip, dpkt.ip.IP), type(ip)
            hdr = bytes(ip)[: ip.hl * 4]
            assert _csum_ok(hdr)
            seg = bytes(ip)[ip.hl * 4 : ip.len]
            if ip.p in (6, 17):
                pseudo = ip.src + ip.dst + bytes([0, ip.p]) + len(seg).to_bytes(2, "big")
                assert _csum_ok(pseudo + seg)
            elif ip.p == 1:
                assert _csum_ok(seg)
            per_src[int.from_bytes(ip.src, "big")] += 1
    assert arp == 24 * 3 and vlan == 24 * 2
    rows = [r for r in truth if r["network"] == "darknet-a" and str(r["day"]) == "2023-01-01"]
    assert {r["src_ip"]: r["packets"] for r in rows if r["packets"]} == dict(per_src)
    by_class = collections.Counter()
    for r in rows:
        by_class[r["class"]] += r["packets"]
    assert by_class["mirai"] > 0 and by_class["unknown"] > by_class["mirai"]


def test_mirai_fingerprint(world, truth):
    rows = [r for r in truth if r["network"] == "darknet-b" and str(r["day"]) == "2023-01-02"]
    cls = {r["src_ip"]: r["class"] for r in rows}
    tool = {r["src_ip"]: r["tool"] for r in rows}
    cap = read_day(world, "darknet-b", "2023-01-02").columns
    src, dst, seq = cap["src_ip"], cap["dst_ip"], cap["tcp_seq"]
    syn = (cap["proto"] == 6) & (cap["tcp_flags"] == 0x02)
    is_mirai = np.array([tool[int(s)] == "mirai" for s in src])
    assert is_mirai.any()
    # every packet of a Mirai bot is a SYN with seq == destination address and no TCP options
    assert (syn & (seq == dst))[is_mirai].all()
    assert not cap["tcp_options"][is_mirai].any()
    # and no other host carries the fingerprint, the Mirai-like look-alikes included
    assert not (syn & (seq == dst))[~is_mirai].any()
    ports = collections.Counter(cap["dst_port"][is_mirai].tolist())
    assert ports.most_common(1)[0][0] == 23 and 2323 in ports
    # brute-forcers and background hosts share port 23 with Mirai
    others = {cls[int(s)] for s, p in zip(src, cap["dst_port"], strict=True) if p == 23}
    assert len(others - {"mirai"}) >= 1


def test_anchor_share_follows_parameter(tmp_path):
    shares = {}
    for share in (0.73, 0.4):
        out = tmp_path / f"a{share}"
        simulate(_cfg(anchor_share=share, days=1, scale=0.1, min_hosts=0), out=out)
        rep = check_world(out)
        shares[share] = rep.anchors[0]["share_active"]
    assert abs(shares[0.73] - 0.73) < 0.08
    assert abs(shares[0.4] - 0.4) < 0.1


def test_cowrie_logs(world, truth):
    logins: collections.Counter = collections.Counter()
    downloads = set()
    tunnels = set()
    sessions: dict[str, str] = {}
    for day in ("2023-01-01", "2023-01-02"):
        lines = (world / "honeypot" / "cowrie" / f"cowrie.json.{day}").read_text().splitlines()
        assert lines
        last = ""
        for line in lines:
            ev = json.loads(line)
            for key in ("eventid", "timestamp", "session", "sensor", "message"):
                assert key in ev
            assert ev["timestamp"].endswith("Z") and ev["timestamp"][:10] == day
            assert ev["timestamp"] >= last
            last = ev["timestamp"]
            if ev["eventid"] == "cowrie.session.connect":
                assert ev["session"] not in sessions
                sessions[ev["session"]] = ev["src_ip"]
                assert ev["protocol"] in ("ssh", "telnet")
            elif ev["eventid"] == "cowrie.direct-tcpip.request":  # as Cowrie logs it: the claimed originator
                assert ev["src_ip"] == "127.0.0.1" and ev["dst_port"] in (25, 465, 587)
                tunnels.add((day, sessions[ev["session"]]))
            else:
                assert sessions[ev["session"]] == ev["src_ip"]  # connect comes first
            if ev["eventid"] in ("cowrie.login.failed", "cowrie.login.success"):
                logins[(day, ev["src_ip"])] += 1
            if ev["eventid"] == "cowrie.session.file_download":
                assert ev["url"].startswith("http://")
                downloads.add((day, ev["src_ip"]))
    hp = [r for r in truth if r["network"] == "honeypot"]
    key = {r["src_ip"]: r for r in hp}
    assert key
    brute = [r for r in hp if r["class"] == "bruteforcer" and r["logins"]]
    assert brute
    assert sum(r["logins"] > 10 for r in brute) > 0.6 * len(brute)
    for r in hp:
        k = (str(r["day"]), str(ipaddress.ip_address(r["src_ip"])))
        assert logins.get(k, 0) == r["logins"]
        assert (k in downloads) == (r["downloads"] > 0)
    assert {r["class"] for r in hp if r["downloads"]} == {"exploiter"}
    # spammers relay mail through SSH tunnels, and only they do
    spam = {(str(r["day"]), str(ipaddress.ip_address(r["src_ip"]))) for r in hp if r["class"] == "spammer"}
    assert tunnels and tunnels <= spam


def test_honeypot_rules_find_the_simulated_spammers(world, truth):
    import datetime as dt

    from darkembed.config import HoneypotConfig
    from darkembed.labels.cowrie import honeypot_labels, read_cowrie

    events, _ = read_cowrie([world / "honeypot" / "cowrie" / "cowrie.json.2023-01-01"])
    got = honeypot_labels(events, HoneypotConfig(), day=dt.date(2023, 1, 1))
    spammers = set(got.filter("spammer")["src_ip"].to_list())
    cls = {
        r["src_ip"]: r["class"] for r in truth if r["network"] == "honeypot" and str(r["day"]) == "2023-01-01"
    }
    assert spammers and {cls[ip] for ip in spammers} == {"spammer"}
    assert 0x7F000001 not in set(got["src_ip"].to_list())  # 127.0.0.1, the tunnels' claimed originator


def test_scanner_lists_partial(world, truth):
    simulated = collections.defaultdict(set)
    for r in truth:
        simulated[r["class"]].add(r["src_ip"])
    files = sorted((world / "scanners").glob("*_v4.txt"))
    assert {f.name for f in files} >= {"censys_v4.txt", "shadowserver_v4.txt", "driftnet_v4.txt"}
    for f in files:
        org = f.name[: -len("_v4.txt")]
        lines = f.read_text().splitlines()
        assert lines[0].startswith("#")
        nets = [ipaddress.ip_network(x) for x in lines if x and not x.startswith("#")]
        hosts = simulated[org]
        if len(hosts) < 5:
            continue
        covered = sum(any(ipaddress.ip_address(h) in n for n in nets) for h in hosts)
        assert 0.4 * len(hosts) <= covered < len(hosts), (org, covered, len(hosts))


def _ports_by_class(world, truth, network, day):
    cls = {r["src_ip"]: r["class"] for r in truth if r["network"] == network and str(r["day"]) == day}
    cap = read_day(world, network, day).columns
    tcp = cap["proto"] == 6
    out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for s, p in zip(cap["src_ip"][tcp], cap["dst_port"][tcp], strict=True):
        out[cls[int(s)]][int(p)] += 1
    return out


def test_scanners_share_ports_and_drift(world, truth):
    """Scanner organisations probe the same popular services (their top ports overlap) and renew their sets."""
    day1 = _ports_by_class(world, truth, "darknet-a", "2023-01-01")
    day2 = _ports_by_class(world, truth, "darknet-a", "2023-01-02")
    orgs = ["shadowserver", "rapid7", "internetcensus", "onyphe", "censys"]
    top = {o: {p for p, _ in day1[o].most_common(10)} for o in orgs}
    for i, a in enumerate(orgs):
        for b in orgs[i + 1 :]:
            assert top[a] & top[b], (a, b)  # every pair shares at least one of its ten most-hit ports
    # censys renews a share of its ports every day ([GNN] Table 2: 12,455 a day, 65,069 a month)
    a, b = set(day1["censys"]), set(day2["censys"])
    assert len(b - a) > 0.05 * len(b)


def test_lookalikes_behave_like_their_class_but_no_source_labels_them(world, truth):
    """The answer key's look-alikes: Mirai-like bots without the fingerprint, brute-forcers, spammers and
    exploiters the honeypot never sees, scanner hosts their organisation's list leaves out."""
    look = [r for r in truth if r["behaviour"].endswith(":lookalike")]
    kinds = {r["class"] for r in look}
    assert {"mirai", "bruteforcer", "spammer"} <= kinds
    assert kinds & {"censys", "shadowserver", "driftnet", "rapid7", "internetcensus"}
    assert "unknown" not in kinds
    # no fingerprint, but Mirai's ports
    mirai_look = {r["src_ip"] for r in look if r["class"] == "mirai" and r["network"] == "darknet-a"}
    assert mirai_look and all(r["tool"] != "mirai" for r in look if r["class"] == "mirai")
    cap = read_day(world, "darknet-a", "2023-01-01").columns
    m = np.isin(cap["src_ip"], list(mirai_look))
    assert m.any() and not (cap["tcp_seq"] == cap["dst_ip"])[m].any()
    assert collections.Counter(cap["dst_port"][m].tolist()).most_common(1)[0][0] == 23
    # the honeypot never sees the look-alikes of the classes it labels
    hp_look = [
        r
        for r in look
        if r["network"] == "honeypot" and r["class"] in ("bruteforcer", "spammer", "exploiter")
    ]
    assert hp_look == []
    assert any(r["class"] == "bruteforcer" and r["network"].startswith("darknet") for r in look)
    # the lists leave the scanner look-alikes out, and cover every other host of the organisation
    for org in ("censys", "shadowserver"):
        lines = (world / "scanners" / f"{org}_v4.txt").read_text().splitlines()
        nets = [ipaddress.ip_network(x) for x in lines if x and not x.startswith("#")]
        for r in truth:
            if r["class"] == org:
                listed = any(ipaddress.ip_address(r["src_ip"]) in n for n in nets)
                assert listed != r["behaviour"].endswith(":lookalike"), r


def test_check_reports_realism_and_lookalikes(world):
    rep = check_world(world)
    keys = {r["key"] for r in rep.realism}
    assert {"packets_median", "unlabelled_hosts", "anchor_share", "baseline_f1"} <= keys
    by = {r["key"]: r for r in rep.realism}
    assert 0.5 < by["anchor_share"]["measured"] < 0.9
    # look-alikes are counted as unlabelled: the unlabelled share is above the unknown class's share
    assert {r["class"] for r in rep.lookalikes if r["lookalikes"]} >= {"mirai"}
    assert len(rep.baseline) == 4  # two darknets, two days


def test_config_rejects_unknown_keys_and_classes(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(overrides={"simulate": {"nonsense": 1}})
    with pytest.raises(ValueError, match="unknown classes"):
        simulate(_cfg(class_mix={"martians": 2.0}), out=tmp_path)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_without_errors(world, tmp_path):
    pcap = tmp_path / "h.pcap"
    pcap.write_bytes(
        gzip.decompress((world / "honeypot/2023-01-01/honeypot_20230101_12.pcap.gz").read_bytes())
    )
    flt = "_ws.malformed || _ws.expert.severity >= error"
    opts = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
    bad = subprocess.run(
        ["tshark", "-r", str(pcap), *opts, "-Y", flt], capture_output=True, text=True, check=True
    )
    assert bad.stdout.strip() == ""
    n = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.number"], capture_output=True,
                       text=True, check=True)  # fmt: skip
    assert len(n.stdout.split()) > 100


def test_cli_simulate_and_check(tmp_path):
    from typer.testing import CliRunner

    from darkembed.cli import app

    runner = CliRunner()
    out = tmp_path / "w"
    res = runner.invoke(app, ["simulate", "--out", str(out), "--days", "1", "--scale", "0.01", "--seed", "3"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["simulate", "--check", str(out)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert (
        "realism" in res.output and "port baseline macro F1" in res.output and "[TNSM] Table I" in res.output
    )
    res = runner.invoke(app, ["simulate", "--check", str(tmp_path / "nothing")])
    assert res.exit_code != 0


@pytest.mark.slow
def test_reference_scale_meets_targets(tmp_path):
    """Scale 1.0, one day: about 2 M packets and 7,500 active hosts per darknet, every rated class on target."""
    simulate(_cfg(days=1, scale=1.0, min_hosts=0), out=tmp_path)
    rep = check_world(tmp_path)
    assert rep.ok, rep.problems
    for fr in rep.frames:
        if fr["network"].startswith("darknet"):
            assert 1_500_000 < fr["ip_packets"] < 2_600_000
    hosts = sum(r["hosts"] for r in rep.rows if r["network"] == "darknet-a")
    assert 7_000 < hosts < 8_500
    assert abs(rep.anchors[0]["share_active"] - 0.73) < 0.03


def test_ingest_reads_everything_but_arp(world, truth):
    """The ingest stage reads the captures with nothing skipped but the deliberate ARP frames."""
    from darkembed import ingest

    rows = 0
    for f in sorted((world / "honeypot" / "2023-01-02").glob("*.pcap.gz")):
        table, report = ingest.read_capture(f)
        assert dict(report.skipped) == {"non_ip": 3}, (f, report.skipped)
        rows += table.num_rows
    expected = sum(
        r["packets"] for r in truth if r["network"] == "honeypot" and str(r["day"]) == "2023-01-02"
    )
    assert rows == expected


def test_check_fails_on_missing_or_damaged_captures(world, tmp_path):
    """A missing hourly file, a cut gzip stream, a cut last record and a file that is no capture all fail it."""
    broken = tmp_path / "broken"
    shutil.copytree(world, broken)
    day = broken / "darknet-a" / "2023-01-01"
    (day / "darknet-a_20230101_05.pcap.gz").unlink()
    cut_gz = day / "darknet-a_20230101_06.pcap.gz"
    cut_gz.write_bytes(cut_gz.read_bytes()[: cut_gz.stat().st_size // 2])
    cut_rec = broken / "darknet-b" / "2023-01-02" / "darknet-b_20230102_07.pcap.gz"
    cut_rec.write_bytes(gzip.compress(gzip.decompress(cut_rec.read_bytes())[:-5], mtime=0))
    junk = broken / "honeypot" / "2023-01-01" / "honeypot_20230101_08.pcap.gz"
    junk.write_bytes(b"not a capture at all")
    rep = check_world(broken)
    assert not rep.ok
    text = "\n".join(rep.problems)
    assert "darknet-a 2023-01-01: 23 capture files, expected 24" in text
    for f in (cut_gz, cut_rec, junk):
        assert str(f) in text, f
    assert "darknet-a 2023-01-01: packets per source in the captures differ from the answer key" in text
    bad = {f["network"]: f["bad"] for f in rep.frames}
    assert bad["darknet-b"] == 1 and bad["darknet-a"] >= 1 and bad["honeypot"] == 0
    assert "darknet-b: 1 records could not be decoded" in text
    # the untouched check of the original world still passes
    assert check_world(world).ok
