"""GCN family on tiny daily graphs built from hand-made packets (activity filter -> graph -> PyG)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import torch

from darkembed.activity import active_packets
from darkembed.config import ActivityConfig, GnnConfig, load_config
from darkembed.embed.gnn import GnnTrainer, embed_inductive, make_snapshot, sample_negatives
from darkembed.embed.gnn.loop import val_loss
from darkembed.embed.gnn.sampling import split_edges
from darkembed.graph import build_graph, to_pyg
from tests.frames import packets_frame

torch.set_num_threads(1)

CFG = GnnConfig(
    hidden=[16, 8],
    embedding_dim=6,
    predictor_hidden=8,
    history=2,
    max_epochs=6,
    incremental_epochs_no_features=2,
    vocab_max_idle=None,
)
T0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
# Three behaviours: telnet bots, ssh brute-forcers, web scanners (ports and packet shapes differ).
PATTERNS = [([23, 2323], 40, 50), ([22, 2222], 60, 110), ([80, 443, 8080], 44, 240)]
BASE = 0x0A000000  # 10.0.0.0


def _packets(spec: dict[int, list[tuple[int, int]]], day: int = 0, ttl_shift: int = 0) -> pl.DataFrame:
    """Rows of the packets schema: for each host, `count` TCP SYNs to each `(port, count)`."""
    rows = []
    sec = 0
    for ip, contacts in sorted(spec.items()):
        for port, count in contacts:
            for k in range(count):
                sec += 1
                rows.append(
                    {
                        "ts": T0 + dt.timedelta(days=day, seconds=sec),
                        "src_ip": ip,
                        "dst_ip": 0xC0000200 + (ip + k) % 7,
                        "proto": 6,
                        "dst_port": port,
                        "tcp_flags": 2,
                        "ip_len": 40 + (ip % 3) * 4 + (port % 5),
                        "ttl": (30 + ip % 90 + ttl_shift) % 256,
                        "tcp_mss": 1460 if port % 2 else None,
                        "tcp_win": 1024 + port % 13,
                        "tcp_tsval": None,
                    }
                )
    return packets_frame(rows)


def world(day: int, n_hosts: int = 18, seed: int = 7) -> dict[int, list[tuple[int, int]]]:
    """A day's traffic spec: hosts of three behaviours, some churn per day."""
    rng = np.random.default_rng([seed, day])
    spec = {}
    for i in range(n_hosts):
        if rng.random() < 0.15:  # absent today
            continue
        ports, *_ = PATTERNS[i % 3]
        chosen = [p for p in ports if rng.random() < 0.8] or ports[:1]
        spec[BASE + i] = [(p, int(rng.integers(5, 12))) for p in chosen]
    return spec


def graph(spec: dict[int, list[tuple[int, int]]], features: bool = True, day: int = 0, ttl_shift: int = 0):
    act = active_packets(_packets(spec, day, ttl_shift), ActivityConfig())
    return to_pyg(build_graph(act), features=features)


@pytest.fixture(scope="module")
def days():
    return [graph(world(d), day=d) for d in range(4)]


@pytest.fixture(scope="module")
def days_nf():
    return [graph(world(d), features=False, day=d) for d in range(4)]


def _params(tr: GnnTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tr.model.state_dict().items()}


def test_default_config_has_the_papers_sizes():
    g = load_config().gnn
    assert (g.hidden, g.embedding_dim, g.predictor_hidden, g.history, g.negatives) == (
        [1024, 512],
        128,
        64,
        5,
        1,
    )
    assert (g.lr, g.weight_decay, g.max_epochs, g.patience) == (1e-3, 5e-3, 50, 3)
    with pytest.raises(ValueError):
        GnnConfig(hidden=[16], bogus=1)


def test_adjacency_is_row_normalised_with_self_loops(days):
    d = days[0]
    snap = make_snapshot(d, features=True, device=torch.device("cpu"))
    a = snap.adj.to_dense()
    assert torch.allclose(a.sum(1), torch.ones(d.num_nodes))
    # host 0's row: its packets to each port over (its packets + 1)
    pos = d.pos_edge_index
    w = d.edge_weight[: pos.shape[1]]
    sel = pos[0] == 0
    total = w[sel].sum() + 1
    assert torch.isclose(a[0, 0], 1 / total)
    for p, wp in zip(pos[1][sel].tolist(), w[sel].tolist(), strict=True):
        assert torch.isclose(a[0, p], torch.tensor(wp) / total)
    assert torch.equal(snap.adj_t.to_dense(), a.T)


@pytest.mark.parametrize("method", ["gcn", "igcn", "igcngru"])
@pytest.mark.parametrize("features", [True, False])
def test_shapes_host_order_and_determinism(days, days_nf, method, features):
    ds = days if features else days_nf
    a = GnnTrainer(method, features, CFG, seed=3)
    b = GnnTrainer(method, features, CFG, seed=3)
    ra = a.update(ds[:2])
    b.update(ds[:2])
    ips, x = a.embed(ds[:2])
    assert ips.dtype == np.uint32 and x.dtype == np.float32
    assert np.array_equal(ips, ds[1].host_ip.numpy().astype(np.uint32)) and np.all(np.diff(ips) > 0)
    assert x.shape == (ds[1].num_hosts, CFG.embedding_dim) and np.isfinite(x).all()
    assert ra["epochs"] >= 1 and len(ra["losses"]) == ra["epochs"]
    assert np.array_equal(x, b.embed(ds[:2])[1])  # same seed, same bits
    c = GnnTrainer(method, features, CFG, seed=4)
    c.update(ds[:2])
    assert not np.allclose(x, c.embed(ds[:2])[1])  # the seed matters


def test_embed_is_eval_mode_idempotent_and_side_effect_free(days):
    tr = GnnTrainer("igcn", True, CFG)
    tr.update(days[:1])
    before = _params(tr)
    x1 = tr.embed(days[1:2])[1]
    x2 = tr.embed(days[1:2])[1]
    assert np.array_equal(x1, x2)
    after = _params(tr)
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BatchNorm running stats
    # BatchNorm normalised with the running statistics, not with the batch's (the authors' training-mode bug).
    snap = make_snapshot(days[1], features=True, device=torch.device("cpu"))
    pre = torch.relu(tr.model.head(tr.model.encoder(snap))).detach()
    bn = tr.model.norm
    expect = (pre - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    assert np.allclose(x1, expect[: days[1].num_hosts].detach().numpy(), atol=1e-5)
    batch = (pre - pre.mean(0)) / torch.sqrt(pre.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias
    assert not np.allclose(x1, batch[: days[1].num_hosts].detach().numpy(), atol=1e-3)


def test_optimiser_steps_the_live_parameters(days):
    tr = GnnTrainer("igcn", True, CFG)
    tr.update(days[:1])
    live = {id(p) for p in tr.model.parameters()}
    assert {id(p) for g in tr.optimizer.param_groups for p in g["params"]} == live
    before = _params(tr)
    tr.update(days[1:2])
    after = _params(tr)
    changed = [k for k in before if "weight" in k and not torch.equal(before[k], after[k])]
    assert "encoder.layers.0.weight" in changed and "predictor.2.weight" in changed
    assert {id(p) for g in tr.optimizer.param_groups for p in g["params"]} == {
        id(p) for p in tr.model.parameters()
    }


def test_gcn_early_stopping_restores_the_best_held_out_weights(days):
    cfg = CFG.model_copy(update={"max_epochs": 40, "patience": 2, "lr": 0.05})
    tr = GnnTrainer("gcn", True, cfg)
    res = tr.update(days[:1])
    vals = res["val_losses"]
    assert len(vals) == res["epochs"] < 40  # stopped early: the last `patience` epochs did not improve
    assert res["epochs"] - 1 - int(np.argmin(vals)) == cfg.patience
    # The kept weights are those of the best epoch: the held-out loss re-evaluated equals the minimum.
    task_rng = np.random.default_rng(tr._seeds(step=0)["split"])
    task = tr._task([days[0]], holdout=True, rng=task_rng)
    assert val_loss(tr.model, task) == pytest.approx(min(vals), rel=1e-4)


def test_gcn_day_is_independent_of_earlier_days_but_igcn_is_not(days):
    other = graph(world(9, seed=99))
    for method, independent in (("gcn", True), ("igcn", False)):
        a, b = GnnTrainer(method, True, CFG), GnnTrainer(method, True, CFG)
        a.update([days[0]])
        b.update([other])
        a.update([days[1]])
        b.update([days[1]])
        same = np.array_equal(a.embed([days[1]])[1], b.embed([days[1]])[1])
        assert same == independent, method


def test_negatives_exact_count_never_an_edge_active_host_port_pairs(days):
    d = days[0]
    pos = d.pos_edge_index.numpy()
    h = d.num_hosts
    rng = np.random.default_rng(0)
    neg = sample_negatives(pos, pos.shape[1], rng)
    assert neg.shape == (2, pos.shape[1])
    assert np.all(neg[0] < h) and np.all(neg[1] >= h)
    assert set(neg[0]) <= set(pos[0]) and set(neg[1]) <= set(pos[1])
    edges = set(zip(pos[0], pos[1], strict=True))
    pairs = list(zip(neg[0], neg[1], strict=True))
    assert not edges & set(pairs) and len(set(pairs)) == len(pairs)
    # An inactive port node (no edge) is never drawn even though it exists in the id space.
    pos2 = pos[:, pos[1] != pos[1].max()]
    neg2 = sample_negatives(pos2, 2 * pos2.shape[1], rng)
    assert pos[1].max() not in set(neg2[1])
    # Dense day: fewer non-edges than wanted -> all of them, exactly once.
    dense = np.array([[0, 0, 1], [2, 3, 2]])  # hosts {0,1} x ports {2,3}: one non-edge (1,3)
    assert sample_negatives(dense, 3, rng).tolist() == [[1], [3]]
    # Uniform over non-edges: every non-edge of a small day is drawn about equally often.
    small = np.array([[0, 1, 2], [3, 4, 5]])  # 6 non-edges
    counts = np.zeros((3, 6), int)
    for _ in range(600):
        n = sample_negatives(small, 1, rng)
        counts[n[0, 0], n[1, 0]] += 1
    drawn = counts[counts > 0]
    assert drawn.size == 6 and drawn.min() > 60


def test_held_out_edges_are_removed_from_message_passing(days):
    d = days[0]
    pos = d.pos_edge_index.numpy()
    tr_idx, val_idx = split_edges(pos.shape[1], 0.1, np.random.default_rng(0))
    assert val_idx.size == round(0.1 * pos.shape[1]) and np.intersect1d(tr_idx, val_idx).size == 0
    snap = make_snapshot(d, features=True, device=torch.device("cpu"), drop=pos[:, val_idx])
    a = snap.adj.to_dense()
    for i in val_idx:
        u, v = pos[:, i]
        assert a[u, v] == 0 and a[v, u] == 0
    assert torch.allclose(a.sum(1), torch.ones(d.num_nodes))


def test_gru_window_ends_at_the_embedded_day(days):
    tr = GnnTrainer("igcngru", True, CFG)  # history 2: window of 3 days
    tr.update(days[:3])
    base = tr.embed(days[:3])[1]
    # A longer list is cut to [t-H, t]: prepending an older day changes nothing.
    assert np.array_equal(tr.embed([days[3], *days[:3]])[1], base)
    # Changing day t (same hosts, other packet shapes) changes day t's embedding.
    changed_t = graph(world(2), day=2, ttl_shift=40)
    assert not np.allclose(tr.embed([days[0], days[1], changed_t])[1], base)
    # So does changing the oldest day t-H of the window.
    changed_old = graph(world(0), day=0, ttl_shift=40)
    assert not np.allclose(tr.embed([changed_old, days[1], days[2]])[1], base)


def _reorder(data, seed: int):
    """The same day with its hosts (among hosts) and ports (among ports) numbered in another order."""
    from torch_geometric.data import Data

    rng = np.random.default_rng(seed)
    h, n = int(data.num_hosts), int(data.num_nodes)
    old_of_new = np.concatenate([rng.permutation(h), h + rng.permutation(n - h)])
    new_of_old = torch.from_numpy(np.argsort(old_of_new))
    out = Data(
        x=data.x[torch.from_numpy(old_of_new)],
        edge_index=new_of_old[data.edge_index],
        edge_weight=data.edge_weight,
        num_nodes=n,
    )
    out.pos_edge_index = new_of_old[data.pos_edge_index]
    out.num_hosts = h
    out.host_ip = data.host_ip[torch.from_numpy(old_of_new[:h])]
    out.service = data.service[torch.from_numpy(old_of_new[h:] - h)]
    return out


def test_gru_follows_each_host_across_the_window_whatever_the_node_order(days):
    """Nodes are matched across the window's days by address and service, never by position: numbering an
    earlier day's nodes otherwise leaves every host's embedding as it was, and giving two hosts each other's
    history changes those two hosts and no other."""
    tr = GnnTrainer("igcngru", True, CFG)  # history 2: window of 3 days
    tr.update(days[:3])
    ips, base = tr.embed(days[:3])
    shuffled = [_reorder(days[0], 1), _reorder(days[1], 2), days[2]]
    assert not np.array_equal(shuffled[0].host_ip.numpy(), days[0].host_ip.numpy())
    ips2, x2 = tr.embed(shuffled)
    assert np.array_equal(ips2, ips)
    np.testing.assert_allclose(x2, base, rtol=1e-4, atol=1e-5)
    # the target day renumbered too: the same embedding per host, in the target's own order
    ips3, x3 = tr.embed([shuffled[0], shuffled[1], _reorder(days[2], 3)])
    order = np.argsort(ips3)
    assert np.array_equal(ips3[order], ips)
    np.testing.assert_allclose(x3[order], base, rtol=1e-4, atol=1e-5)
    # two hosts active on every day of the window swap their earlier days: only they change
    both = np.intersect1d(np.intersect1d(days[0].host_ip.numpy(), days[1].host_ip.numpy()), ips)
    a, b = both[0], both[-1]
    swapped = []
    for d in days[:2]:
        d = _reorder(d, 0)
        hip = d.host_ip.clone()
        hip[d.host_ip == a], hip[d.host_ip == b] = b, a
        d.host_ip = hip
        swapped.append(d)
    _, x4 = tr.embed([*swapped, days[2]])
    moved = ~np.isclose(x4, base, rtol=1e-4, atol=1e-5).all(axis=1)
    assert set(ips[moved].tolist()) == {int(a), int(b)}


def test_gcngru_fit_then_frozen(days):
    tr = GnnTrainer("gcngru", True, CFG)
    with pytest.raises(RuntimeError, match="fit"):
        tr.update(days[:3])
    res = tr.fit(days)  # 4 days, H = 2: windows ending at days 3 and 4
    assert res["epochs"] >= 1 and len(res["val_losses"]) == res["epochs"]
    before = _params(tr)
    opt_before = tr.optimizer.state_dict()["state"][0]["exp_avg"].clone()
    assert tr.update(days[1:])["epochs"] == 0
    after = _params(tr)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(tr.optimizer.state_dict()["state"][0]["exp_avg"], opt_before)
    _, x = tr.embed(days[1:])
    assert x.shape == (days[3].num_hosts, CFG.embedding_dim)


@pytest.mark.parametrize(("method", "features"), [("igcn", True), ("igcngru", False), ("gcn", False)])
def test_resumed_chain_equals_uninterrupted(days, days_nf, tmp_path, method, features):
    ds = days if features else days_nf
    h = CFG.history + 1

    def window(t):
        return ds[max(0, t - h + 1) : t + 1]

    full = GnnTrainer(method, features, CFG, seed=5)
    for t in range(3):
        full.update(window(t))
    a = GnnTrainer(method, features, CFG, seed=5)
    for t in range(2):
        a.update(window(t))
    a.save(tmp_path / "day2")
    b = GnnTrainer.load(tmp_path / "day2")
    b.update(window(2))
    pf, pb = _params(full), _params(b)
    assert pf.keys() == pb.keys() and all(torch.equal(pf[k], pb[k]) for k in pf)
    assert np.array_equal(full.embed(window(2))[1], b.embed(window(2))[1])
    of, ob = full.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert all(torch.equal(of[i]["exp_avg"], ob[i]["exp_avg"]) for i in of)


def test_without_features_a_new_host_gets_its_own_learned_row(days_nf):
    d1 = graph(world(0), features=False)
    spec2 = dict(world(0))
    new_ip = BASE + 500
    spec2[new_ip] = [(23, 9)]
    d2 = graph(spec2, features=False, day=1)
    tr = GnnTrainer("igcn", False, CFG)
    tr.update([d1])
    v1 = len(tr.vocab)
    # Before training on day 2 the new host has no learned row: it embeds from a zero first-layer input.
    snap = make_snapshot(d2, features=False, device=torch.device("cpu"))
    rows = tr._rows(snap)
    j = int(np.flatnonzero(snap.node_key == new_ip)[0])
    assert rows[j] == -1 and torch.all(tr.model.encoder.inputs(snap, rows)[j] == 0)
    assert np.isfinite(tr.embed([d2])[1]).all()
    rows_before = tr.model.encoder.table.weight.detach().clone()
    tr.update([d2])
    assert len(tr.vocab) == v1 + 1 and tr.vocab.keys[-1] == new_ip
    assert tr.model.encoder.table.weight.shape[0] == v1 + 1
    assert tr.model.encoder.table.weight is next(iter(tr.optimizer.param_groups[0]["params"]))
    # Old rows keep their index: row 0's key is unchanged and the new row is not a copy of an old one.
    assert tr.vocab.keys[0] == BASE and not torch.equal(rows_before[0], torch.zeros_like(rows_before[0]))
    ips, x = tr.embed([d2])
    i = int(np.flatnonzero(ips == new_ip)[0])
    assert np.isfinite(x[i]).all()
    others = np.delete(x, i, axis=0)
    assert np.min(np.abs(others - x[i]).sum(1)) > 0


def test_idle_rows_are_dropped_and_moments_follow():
    cfg = CFG.model_copy(update={"vocab_max_idle": 1})
    tr = GnnTrainer("igcn", False, cfg)
    d0 = graph({BASE + 1: [(23, 6)], BASE + 2: [(22, 6)]}, features=False)
    d1 = graph({BASE + 1: [(23, 6)], BASE + 3: [(22, 6)]}, features=False)
    tr.update([d0])
    tr.update([d1])  # BASE+2 idle for 1 update: kept
    assert BASE + 2 in tr.vocab.keys
    tr.update([d1])
    tr.update([d1])  # now idle for 3 > 1 updates: dropped
    assert BASE + 2 not in tr.vocab.keys and BASE + 3 in tr.vocab.keys
    table = tr.model.encoder.table.weight
    st = tr.optimizer.state[table]
    assert st["exp_avg"].shape == table.shape == (len(tr.vocab), CFG.hidden[0])


def test_inductive_embedding_of_an_identical_customer_graph(days, days_nf):
    provider = GnnTrainer("igcn", True, CFG)
    provider.update(days[:1])
    provider.update(days[1:2])
    before = _params(provider)
    ips, x = provider.embed([days[1]])
    # The customer sees the same traffic from other addresses (same order; the shift keeps the test world's
    # address-derived packet fields): same vectors, the customer's addresses.
    shift = 630 << 12
    cust = graph({ip + shift: c for ip, c in world(1).items()}, day=1)
    cips, cx = embed_inductive(provider, [cust])
    assert np.array_equal(cips, ips + shift)
    assert np.allclose(cx, x, atol=1e-6)
    after = _params(provider)
    assert all(torch.equal(before[k], after[k]) for k in before)
    nf = GnnTrainer("igcn", False, CFG)
    nf.update(days_nf[:1])
    with pytest.raises(ValueError, match="node features"):
        embed_inductive(nf, [days_nf[1]])


def test_feature_count_mismatch_and_empty_day_are_reported(days):
    tr = GnnTrainer("igcn", True, CFG)
    tr.update(days[:1])
    g37 = to_pyg(build_graph(active_packets(_packets(world(1)), ActivityConfig())), node_type_indicator=False)
    with pytest.raises(ValueError, match="38"):
        tr.embed([g37])
    empty = graph({})
    assert tr.update([empty])["epochs"] == 0
    ips, x = tr.embed([empty])
    assert ips.shape == (0,) and x.shape == (0, CFG.embedding_dim)


def test_load_refuses_other_layer_sizes_and_accepts_other_schedules(days, tmp_path):
    tr = GnnTrainer("igcn", True, CFG)
    tr.update(days[:1])
    tr.save(tmp_path)
    more = GnnTrainer.load(tmp_path, cfg=CFG.model_copy(update={"incremental_epochs_features": 3}))
    assert more.update(days[1:2])["epochs"] == 3
    with pytest.raises(ValueError, match="hidden"):
        GnnTrainer.load(tmp_path, cfg=CFG.model_copy(update={"hidden": [16, 4]}))
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        GnnTrainer.load(tmp_path / "nowhere")


def test_held_out_task_trains_on_the_rest_and_negatives_avoid_held_out_edges(days):
    d = days[0]
    tr = GnnTrainer("gcn", True, CFG)
    tr.update([d])
    task = tr._task([d], holdout=True, rng=np.random.default_rng(0))
    e = d.pos_edge_index.shape[1]
    n_val = round(CFG.val_fraction * e)
    assert task.val_pairs.shape[1] == 2 * n_val and int(task.val_labels.sum()) == n_val
    train = set(map(tuple, task.train_pos.T.tolist()))
    held = set(map(tuple, task.val_pairs[:, :n_val].T.tolist()))
    assert len(train) == e - n_val and not train & held
    assert np.array_equal(task.all_edges, d.pos_edge_index.numpy())  # negatives are drawn against every edge
    a = task.snaps[-1].adj.to_dense()
    assert all(a[u, v] == 0 for u, v in held) and all(a[u, v] > 0 for u, v in train)


def test_gcngru_checkpoint_stays_frozen(days, tmp_path):
    tr = GnnTrainer("gcngru", True, CFG)
    tr.fit(days[:3])
    tr.save(tmp_path)
    back = GnnTrainer.load(tmp_path)
    assert back.frozen and back.update(days[1:])["epochs"] == 0
    assert np.array_equal(back.embed(days[1:])[1], tr.embed(days[1:])[1])


def test_batchnorm_running_stats_are_the_updated_days_statistics(days):
    tr = GnnTrainer("igcn", True, CFG)
    tr.update(days[:1])
    tr.update(days[1:2])
    snap = make_snapshot(days[1], features=True, device=torch.device("cpu"))
    with torch.no_grad():
        pre = torch.relu(tr.model.head(tr.model.encoder(snap)))
    bn = tr.model.norm
    assert torch.allclose(bn.running_mean, pre.mean(0), atol=1e-6)
    assert torch.allclose(bn.running_var, pre.var(0), atol=1e-6)
    off = GnnTrainer("igcn", True, CFG.model_copy(update={"bn_recalibrate": False}))
    off.update(days[:1])
    off.update(days[1:2])
    assert not torch.allclose(off.model.norm.running_mean, bn.running_mean, atol=1e-3)


def test_checkpoint_holds_no_pickle_and_a_planted_one_is_never_loaded(days_nf, tmp_path):
    import pickle

    from darkembed.embed.gnn.checkpoint import CHECKPOINT, CHECKPOINT_TENSORS, LEGACY_CHECKPOINT

    marker = tmp_path / "executed"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "old").mkdir()
    torch.save({"x": Boom()}, tmp_path / "old" / LEGACY_CHECKPOINT)
    with pytest.raises(FileNotFoundError, match="never loaded"):
        GnnTrainer.load(tmp_path / "old")
    tr = GnnTrainer("igcn", False, CFG)
    tr.update(days_nf[:1])
    tr.save(tmp_path / "new")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [CHECKPOINT, CHECKPOINT_TENSORS]
    (tmp_path / "new" / LEGACY_CHECKPOINT).write_bytes(pickle.dumps(Boom()))
    back = GnnTrainer.load(tmp_path / "new")
    assert np.array_equal(back.embed(days_nf[:1])[1], tr.embed(days_nf[:1])[1])
    assert not marker.exists()


def test_gru_skip_keeps_the_state_of_a_host_through_the_days_it_was_absent(days):
    """`gnn.absent_days: skip`: a host absent on a day of the window is embedded as if that day were not in its
    window (its state passes through unchanged); with `zero` (the authors') the absence itself moves it."""
    d0, d1, d2 = days[:3]
    on = [set(d.host_ip.numpy().tolist()) for d in (d0, d1, d2)]
    gap = sorted((on[0] & on[2]) - on[1])  # active on the first and last day, not in between
    assert gap, "the fixture needs a host with a gap"
    for mode in ("skip", "zero"):
        tr = GnnTrainer("igcngru", True, CFG.model_copy(update={"absent_days": mode}))
        tr.update([d0, d1, d2])
        ips, full = tr.embed([d0, d1, d2])
        ips2, without = tr.embed([d0, d2])
        assert np.array_equal(ips, ips2)
        rows = np.isin(ips, gap)
        same = np.isclose(full[rows], without[rows], rtol=1e-4, atol=1e-5).all(axis=1)
        assert same.all() if mode == "skip" else not same.any(), mode
