"""The unknown-cluster profiles, their markdown and figures, on a hand-made day of packets."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from darkembed.report import clusters as mod
from darkembed.report import figures
from darkembed.report.clusters import (
    PROFILE_SCHEMA,
    cluster_activity_figures,
    cluster_profiles,
    noise_reassigned_figure,
    reassigned_noise,
    sparkline,
)
from darkembed.schemas import TCP_ACK, TCP_ECE, TCP_SYN
from tests.frames import packets_frame
from tests.report.png import assert_png

DAY = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
DARK = 0x0A000000  # 10.0.0.0/24
SA = TCP_SYN | TCP_ACK


def _pkt(src, hour, port, *, proto=6, flags=TCP_SYN, dst=1, minute=0):
    return {
        "ts": DAY + dt.timedelta(hours=hour, minutes=minute), "src_ip": src, "dst_ip": DARK + dst,
        "proto": proto, "dst_port": None if proto == 1 else port, "tcp_flags": flags if proto == 6 else None,
    }  # fmt: skip


def _world():
    """Hosts (ips, clusters, labels) and their packets.

    cluster 0: 5 unknown hosts, 4 of which send 10 packets (23/tcp: 6 SYNs at 05h; 2323/tcp: 3 SYN-ACKs;
    1 ICMP);
    cluster 1: 6 hosts (3 unknown, mirai 2, censys 1), 12 packets to 80/tcp at 20h;
    cluster 2: 7 hosts, 1 unknown (unknown share 1/7), 7 packets to 443/tcp;
    cluster 3: 2 unknown hosts that send nothing; noise: 2 unknown hosts that send to 22/tcp.
    """
    hosts = (
        [(100 + i, 0, "unknown") for i in range(5)]
        + [(200 + i, 1, lab) for i, lab in enumerate(["unknown"] * 3 + ["mirai", "censys", "mirai"])]
        + [(300 + i, 2, "unknown" if i == 0 else "censys") for i in range(7)]
        + [(400, 3, "unknown"), (401, 3, "unknown"), (500, -1, "unknown"), (501, -1, "unknown")]
    )
    ips, clusters, labels = (np.array(c) for c in zip(*hosts, strict=True))
    rows = [
        # 100: 5 packets, 3 addresses, hours 05 and 14; an ECN-setup SYN counts as SYN-only
        _pkt(100, 5, 23, dst=1), _pkt(100, 5, 23, dst=2, minute=7), _pkt(100, 5, 23, dst=3),
        _pkt(100, 5, 23, dst=1, minute=30, flags=TCP_SYN | TCP_ECE),
        _pkt(100, 14, 2323, flags=SA, dst=1, minute=41),
        # 101: 2 packets, 2 addresses, hours 05 and 14
        _pkt(101, 5, 23, dst=1), _pkt(101, 14, 2323, flags=SA, dst=5),
        # 102: 2 packets, 1 address, hour 05; 103: 1 ICMP packet
        _pkt(102, 5, 23, dst=4, minute=2), _pkt(102, 5, 2323, flags=SA, dst=4),
        _pkt(103, 5, 0, proto=1, dst=9),
    ]  # fmt: skip
    rows += [_pkt(200 + i, 20, 80, dst=j) for i in range(6) for j in (1, 2)]
    rows += [_pkt(300 + i, 3, 443) for i in range(7)]
    rows += [_pkt(500, 1, 22), _pkt(501, 1, 22)]
    return ips.astype(np.uint32), clusters, labels, packets_frame(rows).lazy()


def test_profiles_rank_by_size_and_describe_a_hand_made_cluster():
    ips, clusters, labels, packets = _world()
    got = cluster_profiles(packets, ips, clusters, labels)
    assert got.schema == pl.Schema(PROFILE_SCHEMA)
    # cluster 2 is mostly labelled, 3 sent nothing, noise is no cluster; 1 (6 hosts) ranks before 0 (5 hosts)
    assert got["cluster"].to_list() == [1, 0]
    assert got["rank"].to_list() == [1, 2]
    c0 = got.row(1, named=True)
    assert (c0["hosts"], c0["hosts_seen"], c0["unknown_share"]) == (5, 4, 1.0)
    assert c0["labels"] == ""
    assert c0["packets"] == 10
    assert c0["packets_per_host"] == 2  # 5, 2, 2, 1
    assert c0["ports"] == 3
    assert c0["top_ports"] == "23/tcp 60%, 2323/tcp 30%, icmp 10%"
    assert c0["syn_share"] == pytest.approx(0.6)  # the 23/tcp SYNs; not the SYN-ACKs, not ICMP
    assert c0["dsts_per_host"] == 1.5  # 3, 2, 1, 1
    assert c0["active_hours"] == 1.5  # 2, 2, 1, 1
    assert (c0["first_seen"], c0["last_seen"]) == ("05:00", "14:41")
    spark = c0["hour_profile"]
    assert len(spark) == 24
    assert spark[5] == "█" and spark[14] == "▂"  # 8 and 2 packets
    assert set(spark[:5] + spark[6:14] + spark[15:]) == {" "}
    c1 = got.row(0, named=True)
    assert c1["labels"] == "mirai 2, censys 1"
    assert c1["unknown_share"] == 0.5
    assert c1["top_ports"] == "80/tcp 100%"
    rare = pl.concat([packets, packets_frame([_pkt(200, 20, 81)] + [_pkt(201, 20, 80)] * 200).lazy()])
    c1 = cluster_profiles(rare, ips, clusters, labels).row(0, named=True)
    assert c1["top_ports"] == "80/tcp 100%, 81/tcp <1%"  # 212 of 213 packets, 1 of 213
    assert c1["hour_profile"].index("█") == 20


def test_top_ports_shown_and_top_clusters_are_capped():
    ips, clusters, labels, packets = _world()
    got = cluster_profiles(packets, ips, clusters, labels, top=1, ports_shown=2)
    assert got["cluster"].to_list() == [1]
    got = cluster_profiles(packets, ips, clusters, labels, ports_shown=2)
    assert got.filter(pl.col("cluster") == 0)["top_ports"].item() == "23/tcp 60%, 2323/tcp 30%"


def test_unknown_share_filter():
    ips, clusters, labels, packets = _world()
    got = cluster_profiles(packets, ips, clusters, labels, min_unknown_share=0.1)
    assert got["cluster"].to_list() == [2, 1, 0]
    assert got.row(0, named=True)["labels"] == "censys 6"
    got = cluster_profiles(packets, ips, clusters, labels, min_unknown_share=0.6)
    assert got["cluster"].to_list() == [0]


def test_empty_inputs_give_the_schema():
    ips, clusters, labels, packets = _world()
    none = packets_frame([]).lazy()
    for frame in (
        cluster_profiles(none, ips, clusters, labels),
        cluster_profiles(packets, ips, clusters, np.full(ips.size, "mirai")),
        cluster_profiles(packets, ips[:0], clusters[:0], labels[:0]),
    ):
        assert frame.is_empty() and frame.schema == pl.Schema(PROFILE_SCHEMA)


def test_inputs_are_checked():
    ips, clusters, labels, packets = _world()
    with pytest.raises(ValueError, match="unique"):
        cluster_profiles(packets, np.r_[ips[:-1], ips[0]], clusters, labels)
    with pytest.raises(ValueError, match="must be"):
        cluster_profiles(packets, ips, clusters[:-1], labels)


def test_sparkline_scale():
    assert sparkline([0, 1, 4, 8]) == " ▁▄█"
    assert sparkline([0, 0.1, 100]) == " ▁█"  # a single packet is not drawn as silence
    assert sparkline(np.zeros(24)) == " " * 24


def test_activity_figures_per_cluster_draw_only_its_members(tmp_path, monkeypatch):
    ips, clusters, labels, packets = _world()
    profiles = cluster_profiles(packets, ips, clusters, labels)
    drawn = {}
    real = mod.activity_figure

    def spy(frame, path, title):
        drawn[path.name] = (frame, title)
        return real(frame, path, title)

    monkeypatch.setattr(mod, "activity_figure", spy)
    paths = cluster_activity_figures(
        packets, ips, clusters, labels, profiles, tmp_path / "figs", title_prefix="darknet-b 2023-01-01: "
    )
    assert [p.name for p in paths] == ["cluster-1.png", "cluster-0.png"]
    for p in paths:
        assert_png(p)
        assert p.stat().st_size > 5000
    frame, title = drawn["cluster-1.png"]
    assert title.startswith("darknet-b 2023-01-01: cluster 1 (rank 1): 6 hosts")
    assert set(frame["src_ip"].to_list()) == set(range(200, 206))
    assert dict(frame.group_by("label").agg(pl.col("src_ip").n_unique()).iter_rows()) == {
        "unknown": 3, "mirai": 2, "censys": 1,
    }  # fmt: skip
    frame, _ = drawn["cluster-0.png"]
    assert set(frame["src_ip"].to_list()) == {100, 101, 102, 103}
    assert cluster_activity_figures(packets, ips, clusters, labels, profiles.clear(), tmp_path) == []
    # a profiled cluster without packets in the frame drawn gets no figure
    quiet0 = packets.filter(~pl.col("src_ip").is_between(100, 104))
    paths = cluster_activity_figures(quiet0, ips, clusters, labels, profiles, tmp_path / "quiet")
    assert [p.name for p in paths] == ["cluster-1.png"]


def test_reassigned_noise_mask():
    before = np.array([-1, -1, 0, 0, -1, 3])
    after = np.array([-1, 2, 0, -1, 5, 5])
    np.testing.assert_array_equal(reassigned_noise(before, after), [False, True, False, False, True, False])
    with pytest.raises(ValueError, match="before"):
        reassigned_noise(before, after[:-1])


def test_noise_reassigned_figure(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    before = np.array([-1] * 30 + [0] * 40 + [1] * 30)
    after = np.array([-1] * 10 + [8] * 15 + [7] * 5 + [7] * 40 + [8] * 28 + [-1] * 2)
    coords = rng.normal(size=(100, 2))
    figs = []
    real = figures.save_figure

    def spy(fig, path):
        figs.append(fig)
        return real(fig, path)

    monkeypatch.setattr(figures, "save_figure", spy)
    p = noise_reassigned_figure(coords, before, after, tmp_path / "noise.png", title="reassigned")
    assert p == tmp_path / "noise.png"
    assert_png(p)
    legend = figs[0].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "noise before and after (10)",
        "clustered before (70)",
        "noise → cluster 8 (15)",  # the cluster that receives the most first
        "noise → cluster 7 (5)",
    ]
    assert legend.get_title().get_text() == "reassigned noise: 20 of 100 hosts"
    noise_reassigned_figure(coords, before, after, tmp_path / "one.png", title="t", max_categories=1)
    assert [t.get_text() for t in figs[1].axes[0].get_legend().get_texts()][2:] == [
        "noise → cluster 8 (15)",
        "noise → other clusters (5)",
    ]
    with pytest.raises(ValueError, match="coords"):
        noise_reassigned_figure(coords[:-1], before, after, tmp_path / "x.png", title="t")


def test_first_and_last_seen_carry_the_date_across_midnight():
    ips, clusters, labels, packets = _world()
    late = pl.concat([packets, packets_frame([_pkt(200, 24 + 2, 80, minute=5)]).lazy()])
    got = cluster_profiles(late, ips, clusters, labels).row(0, named=True)
    assert (got["cluster"], got["first_seen"], got["last_seen"]) == (1, "01-01 20:00", "01-02 02:05")
    assert got["hour_profile"][2] == "▁" and got["hour_profile"][20] == "█"
