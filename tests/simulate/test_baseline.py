"""The port-histogram baseline: its protocol on hand-made packets, and one implementation for check and benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from darkembed.config import load_config
from darkembed.simulate import simulate
from darkembed.simulate.baseline import baseline_day, knn_loo, port_baseline, port_features
from darkembed.simulate.check import REALISM, check_world, rate

ROOT = Path(__file__).resolve().parents[2]


def _packets(hosts: dict[int, list[tuple[int, int]]]):
    """src, proto, dport arrays from {host: [(port, packets), ...]} (TCP), plus a UDP packet per host."""
    src, proto, dport = [], [], []
    for h, ports in hosts.items():
        for p, n in ports:
            src += [h] * n
            proto += [6] * n
            dport += [p] * n
        src.append(h)
        proto.append(17)
        dport.append(53)
    return np.array(src), np.array(proto), np.array(dport)


def test_separable_classes_score_one_and_shared_ports_do_not():
    hosts, cls = {}, {}
    for i in range(12):
        hosts[100 + i] = [(23, 8)]
        cls[100 + i] = "mirai"
        hosts[200 + i] = [(443, 6), (8443, 2)]
        cls[200 + i] = "censys"
    res = port_baseline(*_packets(hosts), cls)
    assert res.classes == ["censys", "mirai"] and res.f1 == pytest.approx(1.0)
    # two organisations on the same ports with the same mix: the baseline cannot tell them apart
    hosts2, cls2 = {}, {}
    for i in range(24):
        hosts2[300 + i] = [(80, 5), (443, 5)]
        cls2[300 + i] = "rapid7" if i % 2 else "shadowserver"
    res2 = port_baseline(*_packets(hosts2), cls2)
    assert res2.f1 < 0.7


def test_protocol_filters_tcp_hosts_and_small_classes():
    hosts = {1: [(22, 4)], 2: [(22, 5)]}  # 4 TCP packets (+1 UDP): out; 5: in
    cls = {1: "bruteforcer", 2: "bruteforcer"}
    h, y, x, ports = port_features(*_packets(hosts), cls)
    assert (
        y.tolist() == ["bruteforcer"]
        and h.tolist() == [2]
        and ports.tolist() == [22]
        and x.tolist() == [[1.0]]
    )
    res = port_baseline(*_packets(hosts), cls)
    assert res.classes == [] and np.isnan(res.f1)  # a class of 1 host (<= 10) is not scored


def test_knn_ties_go_to_the_nearest():
    x = np.array([[1.0, 0.0], [1.0, 0.05], [0.0, 1.0], [0.2, 1.0]])
    y = np.array(["a", "b", "c", "c"], dtype=object)
    assert knn_loo(x, y, 3)[0] == "c"  # neighbours b, c, c: the majority
    pred = knn_loo(x, y, 2)
    assert pred[0] == "b" and pred[1] == "a"  # one vote each: the nearer neighbour's class
    assert list(pred[2:]) == ["c", "c"]


def test_rating():
    base = {t.key: t for t in REALISM}["baseline_f1"]
    assert (
        rate(base, 0.55, 1.0) == "ok" and rate(base, 0.65, 1.0) == "warn" and rate(base, 0.8, 1.0) == "FAIL"
    )
    ports = {t.key: t for t in REALISM}["ports_day"]
    assert rate(ports, 100.0, 0.1) == "info"  # grows with the world: not rated on small ones


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    simulate(
        load_config(overrides={"simulate": {"days": 1, "scale": 0.02, "min_hosts": 12, "seed": 5}}), out=out
    )
    return out


def test_check_baseline_equals_benchmark(tiny):
    rep = check_world(tiny)
    rows = {(r["network"], r["day"]): r for r in rep.baseline}
    assert set(rows) == {("darknet-a", "2023-01-01"), ("darknet-b", "2023-01-01")}
    for (net, day), r in rows.items():
        b = baseline_day(tiny, net, day)
        assert (b.f1, b.f1_all, b.labelled, b.ports) == (r["f1"], r["f1_all"], r["labelled"], r["ports"])
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "port_baseline.py"), str(tiny), "--network", "darknet-b"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    f1 = float(re.search(r"macro F1 ([0-9.]+) \(labelled pool\)", out).group(1))
    assert f1 == pytest.approx(rows[("darknet-b", "2023-01-01")]["f1"], abs=5e-4)
    realism = {r["key"]: r for r in rep.realism}
    assert realism["baseline_f1"]["measured"] == pytest.approx(np.mean([r["f1"] for r in rows.values()]))
