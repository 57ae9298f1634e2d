"""Activity filter, corpus and graph on hand-built frames whose expected values are computed here by hand."""

import datetime as dt
import math
import statistics as st

import polars as pl
import pytest

from darkembed.activity import OTHER, active_packets
from darkembed.config import ActivityConfig, CorpusConfig
from darkembed.corpus import build_corpus, write_line_sentences
from darkembed.graph import FEATURES, build_graph, first_seen_edges, to_pyg
from tests.frames import packets_frame

T0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
H1, H2, H3, H4 = 10, 20, 30, 40
A, B, C = 1000, 1001, 1002
TCP23 = 6 << 16 | 23


def _p(sec, src, dst, port, *, proto=6, flags=2, ip_len=40, ttl=64, mss=None, win=1024, tsval=None):
    return {
        "ts": T0 + dt.timedelta(seconds=sec),
        "src_ip": src,
        "dst_ip": dst,
        "proto": proto,
        "dst_port": port,
        "tcp_flags": flags,
        "ip_len": ip_len,
        "ttl": ttl,
        "tcp_mss": mss,
        "tcp_win": win,
        "tcp_tsval": tsval,
    }


def _frame(rows):
    return packets_frame(rows)


# H1: 6 TCP packets (23 x4: dst A x3, B x1; 80 x2: dst A) + 3 UDP (dropped by the protocol filter).
# H2: 5 TCP packets to 23/C. H3: 4 packets (below the threshold). H4: 5 packets to 443, 2 of them SYN-ACK.
ROWS = [
    _p(1, H1, A, 23, ip_len=40, ttl=50, mss=1460, tsval=7),
    _p(2, H2, C, 23, ip_len=44, ttl=100),
    _p(3, H1, A, 23, ip_len=60, ttl=50),
    _p(4, H1, A, 80, ip_len=40, ttl=51, win=0),
    _p(5, H2, C, 23, ip_len=44, ttl=100),
    _p(6, H1, B, 23, ip_len=40, ttl=50),
    _p(7, H1, A, 23, ip_len=40, ttl=50),
    _p(8, H2, C, 23, ip_len=44, ttl=100),
    _p(9, H1, A, 80, ip_len=52, ttl=51),
    _p(10, H2, C, 23, ip_len=44, ttl=100),
    _p(11, H2, C, 23, ip_len=44, ttl=100),
    *[_p(12 + i, H3, A, 23) for i in range(4)],
    *[_p(20 + i, H1, A, 53, proto=17, flags=None) for i in range(3)],
    *[_p(30 + i, H4, B, 443, flags=0x12 if i < 2 else 2) for i in range(5)],
]


def test_activity_filter_threshold_protocol_and_top_ports():
    cfg = ActivityConfig(top_ports=2)
    act = active_packets(_frame(ROWS), cfg).collect()
    assert sorted(act["src_ip"].unique().to_list()) == [H1, H2, H4]  # H3 has 4 < 5, UDP dropped
    assert act.filter(pl.col("src_ip") == H1).height == 6
    # Services by packets: 23 (9), 443 (5), 80 (2) -> 80 goes to `other` with top 2.
    assert act.filter(pl.col("service") == OTHER).height == 2
    assert set(act["service"].unique().to_list()) == {TCP23, 6 << 16 | 443, OTHER}
    gt = active_packets(_frame(ROWS), cfg.model_copy(update={"min_packets_rule": "gt"})).collect()
    assert sorted(gt["src_ip"].unique().to_list()) == [H1]  # more than 5: H2 and H4 (5 each) go
    syn = active_packets(_frame(ROWS), cfg, syn_only=True).collect()
    assert H4 not in syn["src_ip"].to_list()  # only 3 SYNs left after dropping its SYN-ACKs


def test_empty_day_and_day_below_threshold_give_empty_outputs():
    for rows in ([], [_p(i, H3, A, 23) for i in range(4)]):
        act = active_packets(_frame(rows), ActivityConfig())
        assert build_corpus(act, CorpusConfig()).height == 0
        g = build_graph(act)
        assert g["edges"].height == g["hosts"].height == g["ports"].height == 0
        data = to_pyg(g)
        assert data.num_nodes == 0 and data.x.shape == (0, 38)


def test_per_port_corpus_orders_by_time_dedups_and_chunks():
    act = active_packets(_frame(ROWS), ActivityConfig(top_ports=2))
    c = build_corpus(act, CorpusConfig(max_sentence=3))
    # 23/tcp senders in time order: H1 H2 H1 H2 H1 H1 H2 H2 H2 -> dedup -> H1 H2 H1 H2 H1 H2 -> chunks of 3.
    s23 = c.filter(pl.col("service") == TCP23)
    assert s23["tokens"].to_list() == [[H1, H2, H1], [H2, H1, H2]]
    assert s23["chunk"].to_list() == [0, 1]
    assert c.filter(pl.col("service") == 6 << 16 | 443)["tokens"].to_list() == [[H4]]
    assert c.filter(pl.col("service") == OTHER)["tokens"].to_list() == [[H1]]
    assert c["service"].to_list() == [TCP23, TCP23, 6 << 16 | 443, OTHER]  # popularity order, other last
    nodedup = build_corpus(act, CorpusConfig(max_sentence=100, dedup_consecutive=False))
    assert nodedup.filter(pl.col("service") == TCP23)["tokens"].to_list() == [
        [H1, H2, H1, H2, H1, H1, H2, H2, H2]
    ]


def test_stream_variant_moves_the_most_popular_group_last_and_cuts_across_services():
    act = active_packets(_frame(ROWS), ActivityConfig(top_ports=2))
    c = build_corpus(act, CorpusConfig(variant="stream", max_sentence=4))
    flat = [t for s in c["tokens"].to_list() for t in s]
    # groups: 443 [H4], other [H1], then 23 (most popular, moved last) [H1 H2 H1 H2 H1 H2 after dedup].
    # Global dedup: H4 H1 | H1 merges with other's H1 -> H4 H1 H2 H1 H2 H1 H2.
    assert flat == [H4, H1, H2, H1, H2, H1, H2]
    assert [len(s) for s in c["tokens"].to_list()] == [4, 3]


def test_hourly_variant_one_sentence_per_hour_and_service():
    rows = [
        _p(10, H1, A, 23),
        _p(20, H2, A, 23),
        _p(3700, H1, A, 23),
        *[_p(4000 + i, H1, A, 23) for i in range(3)],
    ]
    rows += [_p(5000 + i, H2, A, 23) for i in range(4)]  # H2: 5 packets in all
    act = active_packets(_frame(rows), ActivityConfig())
    c = build_corpus(act, CorpusConfig(variant="hourly"))
    assert c["tokens"].to_list() == [[H1, H2], [H1, H2]]


def test_line_sentence_file_round_trip(tmp_path):
    act = active_packets(_frame(ROWS), ActivityConfig(top_ports=2))
    c = build_corpus(act, CorpusConfig(max_sentence=3))
    n, tokens = write_line_sentences(c, tmp_path / "corpus.txt")
    assert (n, tokens) == (4, 8)
    assert (tmp_path / "corpus.txt").read_text().splitlines()[0].split() == [str(H1), str(H2), str(H1)]


def _st(values):
    return [
        sum(values),
        min(values),
        max(values),
        st.mean(values),
        st.stdev(values) if len(values) > 1 else 0.0,
    ]


def _pair(values):
    s = _st(values)
    return [s[1], s[2], s[0], s[3], s[4]]  # min, max, sum, mean, std


def test_graph_edges_and_all_37_features_by_hand():
    act = active_packets(_frame(ROWS), ActivityConfig(top_ports=2))
    g = build_graph(act)
    hosts, ports, edges = g["hosts"], g["ports"], g["edges"]
    assert hosts["src_ip"].to_list() == [H1, H2, H4] and hosts["host_id"].to_list() == [0, 1, 2]
    assert ports["service"].to_list() == [OTHER, TCP23, 6 << 16 | 443]
    assert edges.select("host_id", "port_id", "packets").rows() == [
        (0, 0, 2),
        (0, 1, 4),
        (1, 1, 5),
        (2, 2, 5),
    ]

    h1 = dict(zip(FEATURES, hosts.row(0)[2:], strict=True))
    expect = [2.0, *_pair([2, 4])]  # 2 services; packets per (host, port): other 2, 23 4
    expect += [2.0, *_pair([5, 1])]  # 2 darknet IPs: A 5, B 1
    expect += _st([40, 60, 40, 40, 40, 52])  # ip_len in time order
    expect += _st([50, 50, 51, 50, 50, 51])  # ttl
    expect += _st([1460, 0, 0, 0, 0, 0])  # mss, absent -> 0
    expect += _st([1024, 1024, 0, 1024, 1024, 1024])  # window
    expect += _st([7, 0, 0, 0, 0, 0])  # tsval
    assert [h1[f] for f in FEATURES] == pytest.approx(expect)

    h2 = dict(zip(FEATURES, hosts.row(1)[2:], strict=True))
    assert [h2[f] for f in FEATURES[:12]] == pytest.approx(
        [1, 5, 5, 5, 5, 0, 1, 5, 5, 5, 5, 0]
    )  # one value: std 0

    p23 = dict(zip(FEATURES, ports.row(1)[2:], strict=True))
    expect = [2.0, *_pair([4, 5]), 0, 0, 0, 0, 0, 0]
    expect += _st([40, 44, 60, 44, 40, 40, 44, 44, 44])
    expect += _st([50, 100, 50, 100, 50, 50, 100, 100, 100])
    expect += _st([1460, 0, 0, 0, 0, 0, 0, 0, 0])
    expect += _st([1024] * 9)
    expect += _st([7, 0, 0, 0, 0, 0, 0, 0, 0])
    assert [p23[f] for f in FEATURES] == pytest.approx(expect)


def test_pyg_data_is_normalised_per_node_type_and_symmetric():
    act = active_packets(_frame(ROWS), ActivityConfig(top_ports=2))
    g = build_graph(act)
    d = to_pyg(g)
    assert d.num_nodes == 6 and d.num_hosts == 3 and d.x.shape == (6, 38)
    assert d.edge_index.shape == (2, 8)
    assert float(d.x[:3, :37].max()) == 1.0 and float(d.x[3:, :37].max()) == 1.0
    assert d.x[:3, 37].tolist() == [0, 0, 0] and d.x[3:, 37].tolist() == [1, 1, 1]
    assert math.isclose(float(d.x[0, 0]), 1.0) and math.isclose(float(d.x[1, 0]), 0.5)  # 2 vs 1 ports / max 2
    assert d.pos_edge_index[1].min().item() >= 3  # port node ids are offset by H
    assert to_pyg(g, features=False).x is None


def test_first_seen_edges_drop_the_pairs_of_earlier_days_and_keep_nodes(tmp_path):
    act = active_packets(_frame(ROWS), ActivityConfig(top_ports=2))
    g = build_graph(act)
    # day 1 of the month saw H1 on port 23 and H4 on 443 (another host's 23 does not count)
    earlier = pl.DataFrame({"src_ip": [H1, H4, 99], "service": [TCP23, 6 << 16 | 443, OTHER]})
    kept = first_seen_edges(g["edges"], earlier)
    assert kept.select("src_ip", "service").rows() == [(H1, OTHER), (H2, TCP23)]
    assert kept.schema == g["edges"].schema
    assert first_seen_edges(g["edges"], earlier.clear()).equals(g["edges"])
    # the nodes and their features are untouched: H4 keeps its features without an edge
    d = to_pyg({**g, "edges": kept})
    assert d.num_hosts == 3 and d.edge_index.shape == (2, 4)


def test_first_seen_edges_need_every_earlier_day_of_the_month(tmp_path):
    from darkembed.config import load_config
    from darkembed.embed.chain import ChainGapError
    from darkembed.layout import Layout
    from darkembed.stages.graph import _month_edges

    cfg = load_config(overrides={"data_root": str(tmp_path), "graph": {"edges": "first_seen"}})
    lay = Layout(cfg.data_path)
    assert _month_edges(cfg, lay, "darknet-a", dt.date(2023, 1, 1)).height == 0  # the month's first day
    with pytest.raises(ChainGapError, match=r"graph of darknet-a on 2023-01-01 is missing .* run 2023-01-01 \.\. "
                                            r"2023-01-02 first"):  # fmt: skip
        _month_edges(cfg, lay, "darknet-a", dt.date(2023, 1, 3))
    # with day 1 written under the same settings, day 2 sees its pairs
    from darkembed.graph import EDGES
    from darkembed.store import write_partition

    g = build_graph(active_packets(_frame(ROWS), ActivityConfig(top_ports=2)))
    with write_partition(lay.graph("darknet-a", dt.date(2023, 1, 1)), dataset="graph",
                         config_hash=cfg.stage_hash("graph", "darknet-a")) as w:  # fmt: skip
        w.write_table("edges.parquet", g["edges"].to_arrow(), EDGES)
    seen = _month_edges(cfg, lay, "darknet-a", dt.date(2023, 1, 2))
    assert seen.rows() == g["edges"].select("src_ip", "service").rows()
    daily = load_config(overrides={"data_root": str(tmp_path)})  # made with other settings: refused
    with pytest.raises(ChainGapError, match="made with other settings"):
        _month_edges(daily, lay, "darknet-a", dt.date(2023, 1, 2))
