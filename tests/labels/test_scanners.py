"""Scanner-list loaders (real lists and hand-made ones) and longest-prefix matching."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkembed.config import LabelsConfig, ScannerListConfig
from darkembed.labels.ipv4 import parse_ipv4
from darkembed.labels.scanner_index import ScannerIndex
from darkembed.labels.scanner_list import ScannerListError
from darkembed.labels.scanners import load_scanner_list, load_scanner_lists, normalise_org, org_class
from tests.conftest import shared

OPENFILTERS = ("scanners", "openfilters_internet_scanners", "cidr")
RASTERBURN = ("scanners", "rasterburn1_acknowledged_scanners", "acknowledged_scanners_base")


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def net(text: str) -> tuple[int, int]:
    n = ipaddress.IPv4Network(text, strict=False)
    return int(n.network_address), n.prefixlen


# ------------------------------------------------------------------------------------------------- real lists


def test_openfilters_folder_counts_match_the_files():
    folder = shared(*OPENFILTERS)
    v4_lines: list[tuple[str, str]] = []
    v6_lines = 0
    for f in sorted(folder.glob("*.txt")):
        org = re.sub(r"_v[46]$", "", f.stem)
        for line in f.read_text().splitlines():
            text = line.split("#")[0].strip()
            if not text:
                continue
            if ":" in text:
                v6_lines += 1
            else:
                v4_lines.append((org, text))
    lst = load_scanner_list(folder, "folder")
    assert lst.report.problems == []
    assert lst.report.entries == len(v4_lines) == 18544  # docs/data-formats.md: 18,544 IPv4 prefixes
    assert lst.report.ipv6_skipped == v6_lines
    unique = {(org, str(ipaddress.IPv4Network(t, strict=False))) for org, t in v4_lines}
    assert len(lst) == len(unique)
    assert lst.report.duplicates == len(v4_lines) - len(unique)
    assert len({o for o, _ in v4_lines}) == 66  # docs/data-formats.md: 66 organisations
    assert set(lst.orgs) >= {o for o, _ in v4_lines}
    # every listed line is found back, with its organisation
    got = {
        (o, f"{ipaddress.IPv4Address(int(s))}/{int(p)}")
        for o, s, p in zip([lst.orgs[i] for i in lst.org], lst.start, lst.plen, strict=True)
    }
    assert got >= unique


def test_openfilters_matches_censys_and_maps_strechoid():
    folder = shared(*OPENFILTERS)
    censys = (folder / "censys_v4.txt").read_text().split()[0]
    stretch = (folder / "strechoid_v4.txt").read_text().split()[0]
    index = ScannerIndex([load_scanner_list(folder, "folder")])
    start, plen = net(censys)
    last = start + (1 << (32 - plen)) - 1
    m = index.match(np.array([start, last, ip(stretch.split("/")[0]), ip("192.0.2.1")], dtype=np.uint32))
    assert m.column("cls").tolist() == ["censys", "censys", "stretchoid", None]
    assert m.column("org")[3] is None
    assert m.column("list_name")[0] == "cidr"


def test_rasterburn_ipset_counts_match_the_files():
    base = shared(*RASTERBURN)
    folder = base / "ipset_IPv4"
    adds, creates = [], []
    for f in sorted(folder.glob("*.ipset")):
        for line in f.read_text().splitlines():
            tok = line.split()
            if tok and tok[0] == "add":
                adds.append((tok[1], tok[2]))
            elif tok and tok[0] == "create":
                creates.append(tok[1])
    lst = load_scanner_list(folder, "ipset")
    assert lst.report.problems == []
    assert lst.report.entries == len(adds)
    assert len(lst) == len(set(adds))
    assert sorted(lst.orgs) == sorted(set(creates))
    assert len(creates) == 39  # docs/data-formats.md: 39 organisations
    # The combined restore file holds the same entries as the per-organisation files.
    combined = load_scanner_list(base / "acknowledged_scanners.ipset", "ipset")

    def triples(x):
        return set(zip([x.orgs[i] for i in x.org], x.start.tolist(), x.plen.tolist(), strict=True))

    assert triples(combined) == triples(lst)
    # Set names are domains: mapped to class names through the table.
    index = ScannerIndex([lst])
    c_start = next(parse_ipv4(c.split("/")[0]) for s, c in adds if s == "censys.io")
    i_start = next(parse_ipv4(c.split("/")[0]) for s, c in adds if s == "internet-census.org")
    assert index.match(np.array([c_start, i_start], dtype=np.uint32)).column("cls").tolist() == [
        "censys",
        "internetcensus",
    ]


# ---------------------------------------------------------------------------------------------- hand-made lists


def _index(tmp_path, entries: dict[str, list[str]], **kw) -> ScannerIndex:
    folder = tmp_path / "lists"
    folder.mkdir(exist_ok=True)
    for org, lines in entries.items():
        (folder / f"{org}_v4.txt").write_text("\n".join(lines) + "\n")
    return ScannerIndex([load_scanner_list(folder, "folder")], **kw)


def test_longest_prefix_wins_on_nested_prefixes(tmp_path):
    index = _index(
        tmp_path,
        {
            "aaa": ["10.0.0.0/8"],
            "bbb": ["10.1.0.0/16"],
            "ccc": ["10.1.2.0/24"],
            "ddd": ["10.1.2.3"],
            "eee": ["10.1.2.128/25"],
        },
    )
    probes = {
        "10.1.2.3": "ddd",
        "10.1.2.4": "ccc",
        "10.1.2.127": "ccc",
        "10.1.2.128": "eee",
        "10.1.2.255": "eee",
        "10.1.3.0": "bbb",
        "10.1.255.255": "bbb",
        "10.2.0.0": "aaa",
        "10.0.0.0": "aaa",
        "10.255.255.255": "aaa",
        "11.0.0.0": None,
        "9.255.255.255": None,
        "0.0.0.0": None,
        "255.255.255.255": None,
    }
    m = index.match(np.array([ip(a) for a in probes], dtype=np.uint32))
    assert m.column("cls").tolist() == list(probes.values())
    assert m.column("plen").tolist() == [32, 24, 24, 25, 25, 16, 16, 8, 8, 8, 0, 0, 0, 0]


def test_default_route_and_top_of_space(tmp_path):
    index = _index(tmp_path, {"all": ["0.0.0.0/0"], "top": ["255.255.255.254/31"]})
    m = index.match(np.array([0, ip("128.0.0.1"), 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD], dtype=np.uint32))
    assert m.column("cls").tolist() == ["all", "all", "top", "top", "all"]


prefixes = st.lists(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32), st.sampled_from(["a", "b", "c", "d"])),
    min_size=0,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(prefixes, st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50))
def test_matching_equals_brute_force_longest_prefix(tmp_path_factory, entries, probes):
    folder = tmp_path_factory.mktemp("h")
    by_org: dict[str, list[str]] = {}
    nets = []
    for addr, plen, org in entries:
        n = ipaddress.IPv4Network((addr, plen), strict=False)
        by_org.setdefault(org, []).append(str(n))
        nets.append((n, org))
    # probe inside every prefix too, at its edges
    for n, _ in nets:
        probes += [int(n.network_address), int(n.broadcast_address)]
    for org, lines in by_org.items():
        (folder / f"{org}_v4.txt").write_text("\n".join(lines))
    if not by_org:
        (folder / "empty_v4.txt").write_text("# nothing\n")
    index = ScannerIndex([load_scanner_list(folder, "folder")])
    got = index.match(np.array(probes, dtype=np.uint32)).column("cls").tolist()
    want = []
    for p in probes:
        a = ipaddress.IPv4Address(p)
        cover = [(n.prefixlen, org) for n, org in nets if a in n]
        if not cover:
            want.append(None)
            continue
        best = max(c[0] for c in cover)
        want.append(min(org for plen, org in cover if plen == best))  # equal prefix: alphabetical class
    assert got == want


def test_equal_prefix_resolved_by_list_order_then_class(tmp_path, caplog):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "zeta_v4.txt").write_text("192.0.2.0/24\n198.51.100.0/24\n")
    (tmp_path / "one" / "alpha_v4.txt").write_text("198.51.100.0/24\n")
    (tmp_path / "two" / "beta_v4.txt").write_text("192.0.2.0/24\n203.0.113.0/24\n")
    one = load_scanner_list(tmp_path / "one", "folder")
    two = load_scanner_list(tmp_path / "two", "folder")
    probes = np.array([ip("192.0.2.9"), ip("198.51.100.9"), ip("203.0.113.9")], dtype=np.uint32)
    with caplog.at_level(logging.INFO):
        index = ScannerIndex([one, two])
    assert index.match(probes).column("cls").tolist() == ["zeta", "alpha", "beta"]
    assert index.match(probes).column("list_name").tolist() == ["one", "one", "two"]
    assert index.conflicts == 2
    assert "2 prefixes listed with different classes" in caplog.text
    # the other order makes the other list win the shared prefix
    assert ScannerIndex([two, one]).match(probes).column("cls").tolist() == ["beta", "alpha", "beta"]


def test_validity_period_of_lists(tmp_path):
    folder = tmp_path / "l"
    folder.mkdir()
    (folder / "censys_v4.txt").write_text("192.0.2.0/24\n")
    old = load_scanner_list(folder, "folder", name="old", valid_to=dt.date(2023, 1, 5))
    new = load_scanner_list(folder, "folder", name="new", valid_from=dt.date(2023, 1, 6))
    probe = np.array([ip("192.0.2.1")], dtype=np.uint32)
    for day, name in [(dt.date(2023, 1, 5), "old"), (dt.date(2023, 1, 6), "new")]:
        assert ScannerIndex([old, new], day=day).match(probe).column("list_name").tolist() == [name]
    only_old = ScannerIndex([old], day=dt.date(2023, 1, 6))
    assert len(only_old) == 0
    assert only_old.match(probe).matched.tolist() == [False]
    assert old.in_force(dt.date(2022, 1, 1)) and not old.in_force(dt.date(2023, 1, 6))


def test_load_scanner_lists_skips_lists_out_of_force(tmp_path):
    folder = tmp_path / "l"
    folder.mkdir()
    (folder / "censys_v4.txt").write_text("192.0.2.0/24\n")
    cfg = LabelsConfig(
        scanner_lists=[
            ScannerListConfig(path=str(folder), format="folder", name="a", valid_to=dt.date(2023, 1, 1)),
            ScannerListConfig(
                path=str(tmp_path / "missing"), format="csv", name="b", valid_from=dt.date(2024, 1, 1)
            ),
        ]
    )
    assert [x.name for x in load_scanner_lists(cfg, dt.date(2023, 1, 1))] == ["a"]
    with pytest.raises(ScannerListError, match="missing: scanner list not found"):
        load_scanner_lists(cfg)


def test_csv_with_duplicates_whitespace_and_a_malformed_line(tmp_path, caplog):
    f = tmp_path / "big_gt.csv"
    f.write_text(
        "ip,class\n"
        "192.0.2.1,censys\n"
        "  192.0.2.1 , censys \n"  # duplicate with stray whitespace
        "192.0.2.2,shodan\r\n"
        "192.0.2.300,shodan\n"  # line 5: bad octet
        "\n"
        "198.51.100.0/30,cybercasa\n"
        "2001:db8::1,censys\n"
        "203.0.113.7\n"  # line 9: no class
    )
    with caplog.at_level(logging.WARNING):
        lst = load_scanner_list(f, "csv")
    assert len(lst) == 3
    assert lst.report.duplicates == 1
    assert lst.report.ipv6_skipped == 1
    assert [(p.line, p.file) for p in lst.report.problems] == [(5, str(f)), (9, str(f))]
    assert "not an IPv4 address" in lst.report.problems[0].reason
    assert f"{f}:5" in caplog.text and f"{f}:9" in caplog.text
    m = ScannerIndex([lst]).match(np.array([ip("192.0.2.1"), ip("198.51.100.3"), ip("198.51.100.4")]))
    assert m.column("cls").tolist() == ["censys", "driftnet", None]  # cybercasa -> driftnet via the table


def test_folder_with_comments_and_a_malformed_line(tmp_path):
    folder = tmp_path / "scanners"
    folder.mkdir()
    (folder / "shodan_v4.txt").write_text(
        "# Shodan\n198.51.100.1  # crawler\n\n198.51.100.2 198.51.100.3\n198.51.100.0/33\n198.51.100.4\n"
    )
    lst = load_scanner_list(folder, "folder")
    assert sorted(lst.start.tolist()) == [ip("198.51.100.1"), ip("198.51.100.4")]
    assert [(p.file.endswith("shodan_v4.txt"), p.line) for p in lst.report.problems] == [(True, 4), (True, 5)]


def test_ipset_with_options_inet6_sets_and_a_malformed_line(tmp_path):
    f = tmp_path / "scanners.ipset"
    f.write_text(
        "create censys.io hash:net family inet hashsize 1024 maxelem 65536 counters\n"
        "add censys.io 192.0.2.0/24 packets 0 bytes 0\n"
        "add censys.io 192.0.2.0/24\n"
        "create censys6 hash:net family inet6\n"
        "add censys6 2001:db8::/32\n"
        "ad censys.io 198.51.100.0/24\n"  # line 6
        "add censys.io not-an-ip\n"  # line 7
        "create nethash.team-cymru.com hash:net family inet\n"
        "add nethash.team-cymru.com 203.0.113.0/28\n"
    )
    lst = load_scanner_list(f, "ipset")
    assert len(lst) == 2 and lst.report.duplicates == 1 and lst.report.ipv6_skipped == 1
    assert [p.line for p in lst.report.problems] == [6, 7]
    m = ScannerIndex([lst]).match(np.array([ip("192.0.2.5"), ip("203.0.113.15"), ip("198.51.100.1")]))
    assert m.column("cls").tolist() == ["censys", "cymru", None]


def test_json_list_last_seen_bounds_entries_and_reports_bad_entries(tmp_path):
    f = tmp_path / "nicter.json"
    f.write_text(
        "[\n"
        '  {"ip": "192.0.2.1", "scanner": "censys.io", "last_seen": "2023-01-10"},\n'
        '  {"ip": "192.0.2.2", "scanner": "shodan.io", "last_seen": "2023-01-01T23:59:00Z"},\n'
        '  {"ip": "192.0.2.3", "scanner": "shodan.io"},\n'
        '  {"ip": 12345, "scanner": "x"},\n'
        '  {"ip": "192.0.2.5", "scanner": "x", "last_seen": "yesterday"},\n'
        '  {"ip": "192.0.2.6",\n   "scanner": "onyphe.io", "last_seen": 1672531200}\n'
        "]\n"
    )
    lst = load_scanner_list(f, "json", last_seen_grace_days=3)
    assert [p.line for p in lst.report.problems] == [5, 6]
    assert len(lst) == 4
    probes = np.array([ip(f"192.0.2.{i}") for i in (1, 2, 3, 6)], dtype=np.uint32)
    # 2023-01-04 is within 3 days of every last_seen (01-01 for .2 and .6)
    assert ScannerIndex([lst], day=dt.date(2023, 1, 4)).match(probes).matched.tolist() == [True] * 4
    # 2023-01-05: .2 and .6 (last seen 2023-01-01) have expired, .3 has no last_seen
    m = ScannerIndex([lst], day=dt.date(2023, 1, 5)).match(probes)
    assert m.column("cls").tolist() == ["censys", None, "shodan", None]
    # grace None ignores last_seen
    lst_all = load_scanner_list(f, "json", last_seen_grace_days=None)
    assert ScannerIndex([lst_all], day=dt.date(2030, 1, 1)).match(probes).matched.all()


@pytest.mark.parametrize(
    ("fmt", "name", "content", "message"),
    [
        ("folder", "junk_v4.txt", b"\x7fELF\x00\x01\x02", "binary content"),
        ("csv", "junk.csv", b"\xff\xfe\xfa garbage", "not UTF-8"),
        ("csv", "prose.csv", b"hello world\nthis is not a list\n", "not a scanner list"),
        ("json", "obj.json", json.dumps({"ip": "192.0.2.1"}).encode(), "expected a JSON array"),
        ("json", "broken.json", b'[{"ip": "192.0.2.1",', "invalid JSON"),
        ("ipset", "x.ipset", b"192.0.2.1\n192.0.2.2\n", "not an ipset restore file"),
    ],
)
def test_a_file_that_is_not_a_list_raises_naming_it(tmp_path, fmt, name, content, message):
    if fmt == "folder":
        path = tmp_path / "dir"
        path.mkdir()
        (path / name).write_bytes(content)
        named = path / name
    else:
        path = named = tmp_path / name
        path.write_bytes(content)
    with pytest.raises(ScannerListError, match=message) as e:
        load_scanner_list(path, fmt)
    assert str(named) in str(e.value)


def test_org_names_map_to_classes():
    assert normalise_org("nethash.censys.io.ipset") == "censys"
    assert normalise_org("rnd.group-ib.com") == "group-ib"
    assert normalise_org("ncsc.gov.uk") == "ncsc"
    assert normalise_org("shodan_v4") == "shodan"
    assert org_class("censys.io") == "censys"
    assert org_class("cybercasa") == "driftnet"
    assert org_class("cyber.casa") == "driftnet"
    assert org_class("driftnet.io") == "driftnet"
    assert org_class("netsystemsresearch.com") == "netsystems"
    assert org_class("umich.edu") == "u_mich"
    assert org_class("weird.example", {"weird.example": "custom"}) == "custom"


def test_org_mapped_to_unknown_is_dropped(tmp_path):
    index = _index(
        tmp_path,
        {"criminalip": ["192.0.2.0/24"], "censys": ["192.0.2.0/28"]},
        org_classes={"censys": "unknown"},
    )
    m = index.match(np.array([ip("192.0.2.1"), ip("192.0.2.200")], dtype=np.uint32))
    assert m.column("cls").tolist() == ["criminalip", "criminalip"]


def test_match_accepts_series_and_lists(tmp_path):
    import polars as pl

    index = _index(tmp_path, {"censys": ["192.0.2.0/24"]})
    want = [True, False]
    assert index.match(pl.Series([ip("192.0.2.1"), ip("10.0.0.1")], dtype=pl.UInt32)).matched.tolist() == want
    assert index.match([ip("192.0.2.1"), ip("10.0.0.1")]).matched.tolist() == want
