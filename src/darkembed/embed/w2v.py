"""i-DarkVec: incremental skip-gram Word2Vec over the daily corpus (docs/method.md 3.4-3.6, 7.6).

Reads: the day's `corpus.txt` (a gensim LineSentence file whose tokens are senders as decimal uint32). Writes:
the model checkpoint that day d+1 continues from, and the embeddings of the hosts active that day.

* Day 1 builds the vocabulary and trains `first_epochs` passes; day t > 1 extends the vocabulary with unseen hosts
  (new input vectors random, new output rows zero) and trains `epochs` passes over day t only. The vocabulary is
  never pruned; exports restrict to the day's active hosts.
* Canonical transfer ([TNSM] IV-C): `seed_from_provider` (reading (b), the default) builds a customer model whose
  vocabulary is the customer's day and copies the provider's input and output vectors of the transferred anchors;
  `extend_provider` (reading (a), parity) continues the provider's model on the customer's day, re-randomising
  the anchors that are not transferred.

Reproducibility: gensim 4 seeds vector initialisation from the model seed and, with `workers=1`, trains
deterministically; the default configuration uses one worker.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkembed.config import W2VConfig

log = logging.getLogger(__name__)

#: The checkpoint: vocabulary, counters and hyper-parameters (JSON) and the arrays (safetensors). No pickle.
STATE_FILE = "w2v.json"
TENSORS_FILE = "w2v.safetensors"
CHECKPOINT_FORMAT = 1
#: gensim's pickled checkpoint of earlier releases: recognised to say why it is not loaded, never opened.
LEGACY_FILE = "w2v.model"


@dataclass
class UpdateStats:
    """What one daily update did."""

    seconds: float
    vocab: int
    new_words: int
    words: int
    sentences: int
    epochs: int
    loss: float


def _count(corpus_file: Path) -> tuple[int, int, set[str]]:
    words, sentences = 0, 0
    vocab: set[str] = set()
    with open(corpus_file) as f:
        for line in f:
            toks = line.split()
            if toks:
                words += len(toks)
                sentences += 1
                vocab.update(toks)
    return words, sentences, vocab


class IDarkVec:
    """An incremental Word2Vec model of one network's hosts."""

    def __init__(self, cfg: W2VConfig, model=None) -> None:
        self.cfg = cfg
        self.model = model

    def _new_model(self):
        from gensim.models import Word2Vec

        c = self.cfg
        return Word2Vec(
            vector_size=c.size,
            window=c.window,
            negative=c.negative,
            sample=c.sample,
            min_count=c.min_count,
            sg=1,
            hs=0,
            seed=c.seed,
            workers=c.workers,
            alpha=c.alpha,
            min_alpha=c.min_alpha,
            compute_loss=True,
        )

    def update(self, corpus_file: str | Path) -> UpdateStats:
        """Train on one day's corpus (building or extending the vocabulary).

        Raises:
            ValueError: the corpus has no sentence (a day without active hosts: nothing to learn).
        """
        corpus_file = Path(corpus_file)
        t0 = time.perf_counter()
        words, sentences, _ = _count(corpus_file)
        if not words:
            raise ValueError(f"{corpus_file}: empty corpus, no active host that day; nothing to train on")
        first = self.model is None
        if first:
            self.model = self._new_model()
            self.model.build_vocab(corpus_file=str(corpus_file))
            new_words = len(self.model.wv)
            epochs = self.cfg.first_epochs
        else:
            before = len(self.model.wv)
            self.model.build_vocab(corpus_file=str(corpus_file), update=True)
            new_words = len(self.model.wv) - before
            epochs = self.cfg.epochs
        self.model.train(
            corpus_file=str(corpus_file),
            total_words=words,
            total_examples=sentences,
            epochs=epochs,
            compute_loss=True,
        )
        return UpdateStats(
            seconds=time.perf_counter() - t0,
            vocab=len(self.model.wv),
            new_words=new_words,
            words=words,
            sentences=sentences,
            epochs=epochs,
            loss=float(self.model.get_latest_training_loss()),
        )

    def embed(self, ips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input vectors of the given hosts that the model knows.

        Args:
            ips: (n,) uint32 addresses.

        Returns:
            `(ips_known, X)`: (m,) uint32 and (m, size) float32, in the order of `ips`.
        """
        if self.model is None:
            raise RuntimeError("the model has not been trained on any day yet")
        kv = self.model.wv
        keys = [str(int(i)) for i in ips]
        idx = np.array([kv.key_to_index.get(k, -1) for k in keys], dtype=np.int64)
        ok = idx >= 0
        return np.asarray(ips, dtype=np.uint32)[ok], kv.vectors[idx[ok]].astype(np.float32, copy=True)

    def output_vectors(self, ips: np.ndarray) -> np.ndarray:
        """Output (negative-sampling) vectors of known hosts, (n, size) float32 (rows of `ips` must be known)."""
        kv = self.model.wv
        idx = np.array([kv.key_to_index[str(int(i))] for i in ips], dtype=np.int64)
        return self.model.syn1neg[idx].astype(np.float32, copy=True)

    def save(self, directory: str | Path) -> Path:
        """Save the checkpoint: `w2v.safetensors` (arrays) and `w2v.json` (vocabulary, counters, hyper-parameters).

        Nothing is pickled, so a checkpoint planted in a shared data root cannot run code when the next day loads
        it (see docs/security.md). Returns the JSON file's path.
        """
        if self.model is None:
            raise RuntimeError("the model has not been trained on any day yet; nothing to save")
        from safetensors.numpy import save_file

        m, kv = self.model, self.model.wv
        if m.hs:
            raise ValueError(
                "hierarchical-softmax models are not checkpointed (i-DarkVec uses negative sampling)"
            )
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        rng = m.random.get_state()
        arrays = {
            "vectors": np.ascontiguousarray(kv.vectors, dtype=np.float32),
            "syn1neg": np.ascontiguousarray(m.syn1neg, dtype=np.float32),
            "cum_table": np.ascontiguousarray(m.cum_table, dtype=np.uint32),
            "count": np.ascontiguousarray(kv.expandos["count"], dtype=np.int64),
            "sample_int": np.ascontiguousarray(kv.expandos["sample_int"], dtype=np.uint32),
            "vectors_lockf": np.ascontiguousarray(kv.vectors_lockf, dtype=np.float32),
            "random_keys": np.ascontiguousarray(rng[1], dtype=np.uint32),
        }
        meta = {
            "format": CHECKPOINT_FORMAT,
            "params": {k: getattr(m, k) for k in _SCALARS},
            "random": {"pos": int(rng[2]), "has_gauss": int(rng[3]), "cached_gaussian": float(rng[4])},
            "keys": list(kv.index_to_key),
        }
        # Arrays first, JSON last (its presence marks a complete checkpoint; the stage writes into a fresh
        # temporary partition in any case).
        save_file(arrays, str(d / TENSORS_FILE))
        tmp = d / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(meta))
        tmp.replace(d / STATE_FILE)
        return d / STATE_FILE

    @classmethod
    def load(cls, directory: str | Path, cfg: W2VConfig) -> IDarkVec:
        """Continue from a checkpoint written by `save` (reads only `w2v.json` and `w2v.safetensors`).

        Raises:
            FileNotFoundError: no checkpoint in `directory` (a legacy pickled `w2v.model` is never loaded).
            ValueError: the checkpoint is malformed, or its vector size is not `cfg.size`.
        """
        d = Path(directory)
        state, tensors = d / STATE_FILE, d / TENSORS_FILE
        if not state.is_file() or not tensors.is_file():
            legacy = d / LEGACY_FILE
            hint = (
                f" ({legacy.name} there is an old pickled checkpoint, which is never loaded since it could run "
                "code: restart the chain from its first day)"
                if legacy.exists()
                else ""
            )
            raise FileNotFoundError(f"{state}: no i-DarkVec checkpoint; run the previous day first{hint}")
        model = _rebuild(state, tensors, cfg)
        return cls(cfg, model)


#: Word2Vec attributes (numbers, flags) a checkpoint restores; the arrays and the vocabulary are stored apart.
_SCALARS = (
    "vector_size", "layer1_size", "window", "negative", "ns_exponent", "sample", "min_count", "max_vocab_size",
    "max_final_vocab", "effective_min_count", "sg", "hs", "cbow_mean", "null_word", "sorted_vocab", "seed",
    "alpha", "min_alpha", "min_alpha_yet_reached", "epochs", "batch_words", "shrink_windows", "compute_loss",
    "corpus_count", "corpus_total_words", "running_training_loss", "train_count", "total_train_time",
)  # fmt: skip


def _rebuild(state: Path, tensors: Path, cfg: W2VConfig):
    """A gensim Word2Vec rebuilt from the JSON state and the safetensors arrays, checked before use."""
    from gensim.models import KeyedVectors, Word2Vec
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    def bad(why: str) -> ValueError:
        return ValueError(f"{state}: not a valid i-DarkVec checkpoint: {why}; rerun the day that wrote it")

    try:
        meta = json.loads(state.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise bad(f"unreadable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise bad(
            f"format {meta.get('format') if isinstance(meta, dict) else None!r}, expected {CHECKPOINT_FORMAT}"
        )
    params, rnd, keys = meta.get("params"), meta.get("random"), meta.get("keys")
    if not isinstance(params, dict) or set(params) != set(_SCALARS):
        raise bad("the hyper-parameters are incomplete")
    if any(not isinstance(v, int | float | bool | type(None)) for v in params.values()):
        raise bad("a hyper-parameter is not a number")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise bad("the vocabulary is not a list of distinct strings")
    if not isinstance(rnd, dict) or set(rnd) != {"pos", "has_gauss", "cached_gaussian"}:
        raise bad("the random state is incomplete")
    if params["vector_size"] != cfg.size:
        raise ValueError(
            f"{state}: checkpoint has vector size {params['vector_size']}, config asks {cfg.size}"
        )
    try:
        arr = load_file(str(tensors))
    except (SafetensorError, ValueError, OSError) as exc:
        raise bad(f"{tensors.name} is not a safetensors file ({exc})") from None
    n, e = len(keys), int(params["vector_size"])
    want = {
        "vectors": ("float32", (n, e)),
        "syn1neg": ("float32", (n, e)),
        "cum_table": ("uint32", (n,)),
        "count": ("int64", (n,)),
        "sample_int": ("uint32", (n,)),
        "vectors_lockf": ("float32", None),
        "random_keys": ("uint32", (624,)),
    }
    if set(arr) != set(want):
        raise bad(f"arrays {sorted(arr)}, expected {sorted(want)}")
    for name, (dtype, shape) in want.items():
        a = arr[name]
        if (dtype is not None and a.dtype.name != dtype) or (shape is not None and a.shape != shape):
            raise bad(f"array {name} is {a.dtype.name}{list(a.shape)}")

    model = Word2Vec(
        vector_size=e, sg=int(params["sg"]), hs=int(params["hs"]), negative=int(params["negative"]),
        seed=int(params["seed"]), workers=cfg.workers,
    )  # fmt: skip
    for k, v in params.items():
        setattr(model, k, v)
    model.workers = cfg.workers
    kv = KeyedVectors(e, count=0)
    kv.index_to_key = keys
    kv.key_to_index = {k: i for i, k in enumerate(keys)}
    kv.vectors = arr["vectors"]
    kv.vectors_lockf = arr["vectors_lockf"]
    kv.expandos = {"count": arr["count"], "sample_int": arr["sample_int"]}
    model.wv = kv
    model.syn1neg = arr["syn1neg"]
    model.cum_table = arr["cum_table"]
    random = np.random.RandomState()
    random.set_state(("MT19937", arr["random_keys"], int(rnd["pos"]), int(rnd["has_gauss"]),
                      float(rnd["cached_gaussian"])))  # fmt: skip
    model.random = random
    return model


def seed_from_provider(
    provider: IDarkVec, anchors: np.ndarray, corpus_file: str | Path, cfg: W2VConfig
) -> tuple[IDarkVec, UpdateStats]:
    """Canonical transfer, reading (b): a customer model seeded with the provider's anchor vectors.

    The customer's vocabulary is its day's hosts; the input and output vectors of `anchors` (the transferred
    subset of the hosts both networks see) are the provider's; every other host is randomly initialised; then
    one update (`cfg.epochs`) on the customer's day. Nothing about provider-only hosts enters the model.

    Args:
        provider: the provider's trained model.
        anchors: (k,) uint32 addresses to transfer (hosts unknown to either side are ignored).
        corpus_file: the customer's day corpus.
        cfg: hyper-parameters (must match the provider's vector size).
    """
    if provider.model is None:
        raise RuntimeError("the provider model is untrained")
    if provider.model.vector_size != cfg.size:
        raise ValueError(f"provider vectors have size {provider.model.vector_size}, config asks {cfg.size}")
    customer = IDarkVec(cfg)
    customer.model = customer._new_model()
    customer.model.build_vocab(corpus_file=str(corpus_file))
    _copy_anchors(provider, customer, anchors)
    words, sentences, _ = _count(Path(corpus_file))
    t0 = time.perf_counter()
    customer.model.train(
        corpus_file=str(corpus_file),
        total_words=words,
        total_examples=sentences,
        epochs=cfg.epochs,
        compute_loss=True,
    )
    stats = UpdateStats(
        seconds=time.perf_counter() - t0,
        vocab=len(customer.model.wv),
        new_words=len(customer.model.wv),
        words=words,
        sentences=sentences,
        epochs=cfg.epochs,
        loss=float(customer.model.get_latest_training_loss()),
    )
    return customer, stats


def _copy_anchors(src: IDarkVec, dst: IDarkVec, anchors: np.ndarray) -> int:
    skv, dkv = src.model.wv, dst.model.wv
    pairs = [
        (skv.key_to_index[k], dkv.key_to_index[k])
        for k in (str(int(a)) for a in anchors)
        if k in skv.key_to_index and k in dkv.key_to_index
    ]
    if pairs:
        si, di = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
        dkv.vectors[di] = skv.vectors[si]
        dst.model.syn1neg[di] = src.model.syn1neg[si]
    return len(pairs)


def extend_provider(
    provider: IDarkVec, anchors: np.ndarray, corpus_file: str | Path, cfg: W2VConfig
) -> tuple[IDarkVec, UpdateStats]:
    """Canonical transfer, reading (a) (parity): continue a copy of the provider's model on the customer's day.

    Customer hosts the provider knows but that are not in `anchors` get fresh random input and zero output
    vectors first, so only the transferred anchors carry provider knowledge about the customer's hosts.
    Provider-only hosts stay in the vocabulary (and in the negative-sampling table).
    """
    import copy

    _, _, vocab = _count(Path(corpus_file))
    model = copy.deepcopy(provider.model)
    keep = {str(int(a)) for a in anchors}
    kv = model.wv
    reset = np.array(
        [kv.key_to_index[k] for k in vocab if k in kv.key_to_index and k not in keep], dtype=np.int64
    )
    if reset.size:
        rng = np.random.default_rng(cfg.seed)
        kv.vectors[reset] = (
            rng.random((reset.size, kv.vector_size), dtype=np.float32) * 2 - 1
        ) / kv.vector_size
        model.syn1neg[reset] = 0.0
    customer = IDarkVec(cfg, model)
    model.workers = cfg.workers
    stats = customer.update(corpus_file)
    return customer, stats
