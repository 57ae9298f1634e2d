"""i-DarkVec: determinism, incremental updates, resumable chains and canonical transfer."""

import json
import pickle

import numpy as np
import pytest

from darkembed.config import W2VConfig
from darkembed.embed.w2v import (
    LEGACY_FILE,
    STATE_FILE,
    TENSORS_FILE,
    IDarkVec,
    _copy_anchors,
    extend_provider,
    seed_from_provider,
)

CFG = W2VConfig(size=16, window=3, seed=7)


def _corpus(path, groups, n_sent=40, seed=0):
    """Sentences in which hosts of the same group co-occur."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n_sent):
        g = groups[rng.integers(len(groups))]
        lines.append(" ".join(str(x) for x in rng.choice(g, size=12)))
    path.write_text("\n".join(lines) + "\n")
    return path


G1 = list(range(100, 110))
G2 = list(range(200, 210))
G3 = list(range(300, 310))


def test_same_seed_same_vectors_and_export_restricted_to_known_hosts(tmp_path):
    c = _corpus(tmp_path / "d1.txt", [G1, G2])
    a, b = IDarkVec(CFG), IDarkVec(CFG)
    sa, _ = a.update(c), b.update(c)
    ips, xa = a.embed(np.array([100, 999, 200], np.uint32))
    _, xb = b.embed(np.array([100, 999, 200], np.uint32))
    assert ips.tolist() == [100, 200] and xa.shape == (2, 16) and xa.dtype == np.float32
    np.testing.assert_array_equal(xa, xb)
    assert sa.vocab == 20 and sa.new_words == 20 and sa.epochs == 1


def test_learns_co_occurrence(tmp_path):
    c = _corpus(tmp_path / "d1.txt", [G1, G2], n_sent=400)
    m = IDarkVec(CFG.model_copy(update={"first_epochs": 5}))
    m.update(c)
    _, x = m.embed(np.array(G1 + G2, np.uint32))
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    within = (sim[:10, :10].sum() - 10) / 90
    across = sim[:10, 10:].mean()
    assert within > across + 0.3


def test_incremental_update_adds_new_hosts_and_leaves_absent_input_vectors(tmp_path):
    m = IDarkVec(CFG)
    m.update(_corpus(tmp_path / "d1.txt", [G1, G2]))
    _, g2_before = m.embed(np.array(G2, np.uint32))
    _, g1_before = m.embed(np.array(G1, np.uint32))
    st = m.update(_corpus(tmp_path / "d2.txt", [G1, G3], seed=1))
    assert st.new_words == 10 and st.vocab == 30
    ips, _ = m.embed(np.array(G3, np.uint32))
    assert ips.tolist() == G3
    _, g2_after = m.embed(np.array(G2, np.uint32))
    _, g1_after = m.embed(np.array(G1, np.uint32))
    np.testing.assert_array_equal(g2_before, g2_after)  # absent on day 2: input vectors untouched
    assert not np.allclose(g1_before, g1_after)  # present: trained


def test_resumed_chain_equals_uninterrupted(tmp_path):
    d1 = _corpus(tmp_path / "d1.txt", [G1, G2])
    d2 = _corpus(tmp_path / "d2.txt", [G1, G3], seed=1)
    whole = IDarkVec(CFG)
    whole.update(d1)
    whole.update(d2)
    part = IDarkVec(CFG)
    part.update(d1)
    part.save(tmp_path / "ckpt")
    resumed = IDarkVec.load(tmp_path / "ckpt", CFG)
    resumed.update(d2)
    ips = np.array(G1 + G2 + G3, np.uint32)
    np.testing.assert_array_equal(whole.embed(ips)[1], resumed.embed(ips)[1])


def test_checkpoint_round_trip_then_a_day_equals_the_in_memory_chain(tmp_path):
    """Saved after two days, loaded, trained on a third (with new hosts): identical to never saving."""
    days = [_corpus(tmp_path / f"d{i}.txt", g, seed=i) for i, g in enumerate([[G1, G2], [G1, G3], [G2, G3]])]
    whole = IDarkVec(CFG)
    for d in days:
        whole.update(d)
    part = IDarkVec(CFG)
    part.update(days[0])
    part.update(days[1])
    part.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [STATE_FILE, TENSORS_FILE]
    resumed = IDarkVec.load(tmp_path / "ckpt", CFG)
    st = resumed.update(days[2])
    ips = np.array(G1 + G2 + G3, np.uint32)
    np.testing.assert_array_equal(whole.embed(ips)[1], resumed.embed(ips)[1])
    np.testing.assert_array_equal(whole.output_vectors(ips), resumed.output_vectors(ips))
    assert st.loss == whole.model.get_latest_training_loss()
    assert resumed.model.wv.index_to_key == whole.model.wv.index_to_key


class _Boom:
    """Unpickling this writes a marker file: the test fails if the loader ever unpickles."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_planted_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "executed"
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / LEGACY_FILE).write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(FileNotFoundError, match="never loaded"):
        IDarkVec.load(ck, CFG)
    # beside a valid checkpoint the pickle is ignored, too
    m = IDarkVec(CFG)
    m.update(_corpus(tmp_path / "d1.txt", [G1]))
    m.save(ck)
    IDarkVec.load(ck, CFG).update(_corpus(tmp_path / "d2.txt", [G1, G2]))
    assert not marker.exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s, t: s.write_text("{"), "unreadable JSON"),
        (lambda s, t: s.write_text(json.dumps({**json.loads(s.read_text()), "format": 0})), "format 0"),
        (
            lambda s, t: s.write_text(json.dumps({**json.loads(s.read_text()), "keys": ["1", "1"]})),
            "distinct",
        ),
        (lambda s, t: t.write_bytes(b"\x80\x04junk"), "not a safetensors file"),
        (lambda s, t: s.write_text(json.dumps({**json.loads(s.read_text()), "keys": ["1"]})), "array"),
    ],
)
def test_malformed_checkpoint_is_refused(tmp_path, edit, message):
    m = IDarkVec(CFG)
    m.update(_corpus(tmp_path / "d1.txt", [G1]))
    m.save(tmp_path / "ck")
    edit(tmp_path / "ck" / STATE_FILE, tmp_path / "ck" / TENSORS_FILE)
    with pytest.raises(ValueError, match=message):
        IDarkVec.load(tmp_path / "ck", CFG)


def test_missing_checkpoint_and_size_mismatch_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the previous day first"):
        IDarkVec.load(tmp_path / "none", CFG)
    m = IDarkVec(CFG)
    m.update(_corpus(tmp_path / "d1.txt", [G1]))
    m.save(tmp_path / "ck")
    with pytest.raises(ValueError, match="vector size 16"):
        IDarkVec.load(tmp_path / "ck", CFG.model_copy(update={"size": 32}))


def test_empty_corpus_is_refused(tmp_path):
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(ValueError, match="empty corpus"):
        IDarkVec(CFG).update(tmp_path / "e.txt")


def test_seeding_puts_anchors_at_provider_coordinates(tmp_path):
    prov = IDarkVec(CFG)
    prov.update(_corpus(tmp_path / "p.txt", [G1, G2], n_sent=200))
    cust_corpus = _corpus(tmp_path / "c.txt", [G1, G3], seed=3, n_sent=200)
    anchors = np.array(G1[:5], np.uint32)  # only half of the shared hosts are transferred
    # Before fine-tuning: exactly the provider's input and output vectors, nothing else copied.
    cust = IDarkVec(CFG)
    cust.model = cust._new_model()
    cust.model.build_vocab(corpus_file=str(cust_corpus))
    assert _copy_anchors(prov, cust, np.array([*G1[:5], 999, 200], np.uint32)) == 5
    np.testing.assert_array_equal(cust.embed(anchors)[1], prov.embed(anchors)[1])
    np.testing.assert_array_equal(cust.output_vectors(anchors), prov.output_vectors(anchors))
    assert not np.allclose(
        cust.embed(np.array(G1[5:], np.uint32))[1], prov.embed(np.array(G1[5:], np.uint32))[1]
    )
    assert "200" not in cust.model.wv.key_to_index  # provider-only hosts never enter
    # After one update the anchors stay near their provider coordinates.
    seeded, stats = seed_from_provider(prov, anchors, cust_corpus, CFG)
    _, xa = seeded.embed(anchors)
    _, xp = prov.embed(anchors)
    cos = (xa * xp).sum(1) / np.linalg.norm(xa, axis=1) / np.linalg.norm(xp, axis=1)
    assert cos.min() > 0.8 and stats.vocab == 20


def test_extend_provider_keeps_provider_vocab_and_rerandomises_untransferred(tmp_path):
    prov = IDarkVec(CFG)
    prov.update(_corpus(tmp_path / "p.txt", [G1, G2], n_sent=200))
    cust_corpus = _corpus(tmp_path / "c.txt", [G1, G3], seed=3)
    ext, _ = extend_provider(prov, np.array(G1[:5], np.uint32), cust_corpus, CFG)
    assert len(ext.model.wv) == 30  # provider-only hosts stay
    np.testing.assert_array_equal(
        ext.embed(np.array(G2, np.uint32))[1], prov.embed(np.array(G2, np.uint32))[1]
    )
    assert len(prov.model.wv) == 20  # the provider's model is not modified
