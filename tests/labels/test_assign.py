"""One label per host and day: precedence, recorded sources, the LABELS schema."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from darkembed.config import LabelsConfig, ScannerListConfig, load_config
from darkembed.labels import label_day, labels_table, load_scanner_list, load_scanner_lists, read_cowrie
from darkembed.schemas import LABELS
from tests.conftest import shared
from tests.labels.helpers import DAY, SYNACK, ip, packets, pkt

DST = "198.51.100.7"


@pytest.fixture
def lists(tmp_path):
    folder = tmp_path / "scanners"
    folder.mkdir()
    (folder / "censys_v4.txt").write_text("# censys\n192.0.2.0/24\n")
    (folder / "cybercasa_v4.txt").write_text("192.0.2.128/25\n")
    return [load_scanner_list(folder, "folder", name="world")]


@pytest.fixture
def cowrie(tmp_path):
    def ev(eventid, session, src=None, **kw):
        d = {"eventid": eventid, "timestamp": "2023-01-01T08:00:00Z", "session": session, **kw}
        if src:
            d["src_ip"] = src
        return json.dumps(d)

    lines = []
    # 10.0.0.3: logs in, downloads, and tries 12 passwords: exploiter and brute-forcer
    lines += [ev("cowrie.session.connect", "s3", "10.0.0.3")]
    lines += [ev("cowrie.login.failed", "s3") for _ in range(11)]  # no src_ip: from the connect
    lines += [ev("cowrie.login.success", "s3"), ev("cowrie.session.file_download", "s3", url="http://x/y")]
    # 10.0.0.4: brute-forcer only
    lines += [ev("cowrie.login.failed", "s4", "10.0.0.4") for _ in range(20)]
    # 10.0.0.1 (a scanner) also brute-forces: the list wins, the honeypot source is still recorded
    lines += [ev("cowrie.login.failed", "s1", "192.0.2.1") for _ in range(20)]
    # 10.0.0.5: spams through an SSH tunnel
    lines += [ev("cowrie.session.connect", "s5", "10.0.0.5"),
              ev("cowrie.direct-tcpip.request", "s5", "127.0.0.1", dst_port=25)]  # fmt: skip
    # a Cowrie source that sent no captured packet: not labelled
    lines += [ev("cowrie.login.failed", "s9", "10.9.9.9") for _ in range(20)]
    f = tmp_path / "cowrie.json.2023-01-01"
    f.write_text("\n".join(lines) + "\n")
    return read_cowrie([f])[0]


def day_packets() -> pl.DataFrame:
    rows = [
        pkt("192.0.2.1"),  # censys
        pkt("192.0.2.200", tcp_seq=ip(DST)),  # cybercasa (/25 inside censys' /24) and Mirai-like
        pkt("10.0.0.2", tcp_seq=ip(DST)),  # Mirai
        pkt("10.0.0.3"),  # exploiter + brute-forcer
        pkt("10.0.0.4"),  # brute-forcer
        pkt("10.0.0.5"),  # spammer
        pkt("10.0.0.6", tcp_flags=SYNACK),  # backscatter only
        *[pkt("10.0.0.7", ip_id=54321, tcp_win=65535, dst_port=p) for p in (1, 2, 3)],  # ZMap
        pkt("10.0.0.8"),  # nothing
    ]
    return packets(rows)


def by_host(out: pl.DataFrame) -> dict[str, dict]:
    return {
        f"{r['src_ip'] >> 24}.{(r['src_ip'] >> 16) & 255}.{(r['src_ip'] >> 8) & 255}.{r['src_ip'] & 255}": r
        for r in out.iter_rows(named=True)
    }


def test_default_precedence_and_recorded_sources(lists, cowrie):
    out = label_day(day_packets().lazy(), DAY, lists, cowrie, LabelsConfig())
    assert out.columns == LABELS.names
    assert labels_table(out).schema.equals(LABELS)  # types cast safely, no null where none is allowed
    assert out["src_ip"].to_list() == sorted(out["src_ip"].to_list())
    got = {k: (v["label"], v["source"], v["sources"]) for k, v in by_host(out).items()}
    assert got == {
        "10.0.0.2": ("mirai", "fingerprint:mirai", ["fingerprint:mirai"]),
        "10.0.0.3": ("exploiter", "honeypot:exploiter", ["honeypot:exploiter", "honeypot:brute-forcer"]),
        "10.0.0.4": ("brute-forcer", "honeypot:brute-forcer", ["honeypot:brute-forcer"]),
        "10.0.0.5": ("spammer", "honeypot:spammer", ["honeypot:spammer"]),
        "10.0.0.6": ("unknown", "none", ["fingerprint:backscatter"]),
        "10.0.0.7": ("unknown", "none", ["fingerprint:zmap"]),
        "10.0.0.8": ("unknown", "none", []),
        "192.0.2.1": ("censys", "scanner:world", ["scanner:world", "honeypot:brute-forcer"]),
        "192.0.2.200": ("driftnet", "scanner:world", ["scanner:world", "fingerprint:mirai"]),
    }
    rows = by_host(out)
    assert (rows["192.0.2.200"]["org"], rows["192.0.2.200"]["prefix"], rows["192.0.2.200"]["prefix_len"]) == (
        "cybercasa",
        ip("192.0.2.128"),
        25,
    )
    assert rows["192.0.2.200"]["scanner_class"] == "driftnet"
    assert (rows["10.0.0.2"]["org"], rows["10.0.0.2"]["prefix"], rows["10.0.0.2"]["scanner_list"]) == (
        None,
    ) * 3
    assert rows["10.0.0.3"]["login_attempts"] == 12 and rows["10.0.0.3"]["logins"] == 1
    assert rows["10.0.0.3"]["downloads"] == 1 and rows["10.0.0.5"]["smtp_requests"] == 1
    assert rows["10.0.0.7"]["zmap_packets"] == 3 and rows["10.0.0.7"]["packets"] == 3
    assert rows["10.0.0.6"]["backscatter_packets"] == 1
    assert ip("10.9.9.9") not in out["src_ip"].to_list()


def test_precedence_is_configurable(lists, cowrie):
    cfg = LabelsConfig(precedence=["mirai", "brute-forcer", "scanner", "backscatter", "zmap"])
    got = {
        k: (v["label"], v["source"])
        for k, v in by_host(label_day(day_packets(), DAY, lists, cowrie, cfg)).items()
    }
    assert got["192.0.2.200"] == ("mirai", "fingerprint:mirai")
    assert got["192.0.2.1"] == ("brute-forcer", "honeypot:brute-forcer")
    assert got["10.0.0.3"] == ("brute-forcer", "honeypot:brute-forcer")
    assert got["10.0.0.5"] == ("unknown", "none")  # spammer left out of the precedence
    assert got["10.0.0.6"] == ("backscatter", "fingerprint:backscatter")
    assert got["10.0.0.7"] == ("zmap", "fingerprint:zmap")


def test_without_honeypot_and_with_a_list_out_of_force(tmp_path, lists):
    folder = tmp_path / "scanners"
    old = load_scanner_list(folder, "folder", name="old", valid_to=DAY - dt.timedelta(days=1))
    out = label_day(day_packets(), DAY, [old], None)
    assert set(out["label"].to_list()) == {"mirai", "unknown"}
    assert out["login_attempts"].sum() == 0 and out["downloads"].sum() == 0
    # on its last day in force the same list labels the scanners
    earlier = label_day(day_packets(), DAY - dt.timedelta(days=1), [old], None)
    assert by_host(earlier)["192.0.2.1"]["label"] == "censys"


def test_org_class_table_from_config(lists):
    cfg = LabelsConfig(org_classes={"cybercasa": "cyber.casa", "censys": "unknown"})
    rows = by_host(label_day(day_packets(), DAY, lists, None, cfg))
    assert rows["192.0.2.200"]["label"] == "cyber.casa"
    assert rows["192.0.2.1"]["label"] == "unknown" and rows["192.0.2.1"]["sources"] == []


def test_empty_day():
    out = label_day(packets([]), DAY, [], None)
    assert out.height == 0 and out.columns == LABELS.names
    assert labels_table(out).schema.equals(LABELS)


def test_default_config_points_at_the_simulated_world_and_reads_it(tmp_path, monkeypatch):
    cfg = load_config().labels
    assert [(x.path, x.format) for x in cfg.scanner_lists] == [("var/world/scanners", "folder")]
    assert cfg.precedence == ["scanner", "mirai", "exploiter", "brute-forcer", "spammer"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var/world/scanners").mkdir(parents=True)
    (tmp_path / "var/world/scanners/shodan_v4.txt").write_text("10.0.0.8\n")
    out = label_day(day_packets(), DAY, load_scanner_lists(cfg, DAY), None, cfg)
    assert by_host(out)["10.0.0.8"]["label"] == "shodan"


def test_real_lists_label_real_scanner_addresses():
    folder = shared("scanners", "openfilters_internet_scanners", "cidr")
    ipset = shared(
        "scanners", "rasterburn1_acknowledged_scanners", "acknowledged_scanners_base", "ipset_IPv4"
    )
    cfg = LabelsConfig(
        scanner_lists=[
            ScannerListConfig(path=str(folder), format="folder", name="openfilters"),
            ScannerListConfig(path=str(ipset), format="ipset", name="rasterburn"),
        ]
    )
    shodan = (folder / "shodan_v4.txt").read_text().split()[0].split("/")[0]
    umich = (ipset / "nethash.umich.edu.ipset").read_text().splitlines()[1].split()[2].split("/")[0]
    rng = np.random.default_rng(1)
    rows = [pkt(shodan), pkt(umich)] + [pkt(f"10.{a}.{b}.{c}") for a, b, c in rng.integers(0, 256, (50, 3))]
    rows = [r for r in rows if r["src_ip"] not in (ip(shodan), ip(umich))] + rows[:2]
    out = label_day(packets(rows), DAY, load_scanner_lists(cfg, DAY), None, cfg)
    rows_ = by_host(out)
    assert rows_[shodan]["label"] == "shodan" and rows_[shodan]["source"] == "scanner:openfilters"
    assert rows_[umich]["label"] == "u_mich"
    assert (out["label"] == "unknown").sum() == out.height - 2


def test_external_labels_join_the_precedence(lists, cowrie):
    ext = pl.DataFrame(
        {
            "src_ip": [ip("10.0.0.8"), ip("10.0.0.5"), ip("192.0.2.1"), ip("10.9.9.9")],
            "label": ["spammer", "spammer", "spammer", "spammer"],
        }
    )
    rows = by_host(label_day(day_packets(), DAY, lists, cowrie, LabelsConfig(), external=ext))
    assert (rows["10.0.0.8"]["label"], rows["10.0.0.8"]["source"]) == ("spammer", "external:spammer")
    # the honeypot's own evidence is preferred as source; both are recorded
    assert rows["10.0.0.5"]["source"] == "honeypot:spammer"
    assert rows["10.0.0.5"]["sources"] == ["honeypot:spammer", "external:spammer"]
    assert rows["192.0.2.1"]["label"] == "censys"  # the list still wins
    assert "external:spammer" in rows["192.0.2.1"]["sources"]
    with pytest.raises(ValueError, match=r"\['censys'\] are not among"):
        label_day(
            day_packets(), DAY, lists, None, external=pl.DataFrame({"src_ip": [1], "label": ["censys"]})
        )
