"""i-DarkVec: incremental skip-gram Word2Vec over the daily corpus (REFERENCE.md 3.4-3.6, 7.6).

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

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkembed.config import W2VConfig

log = logging.getLogger(__name__)

MODEL_FILE = "w2v.model"


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
        """Save the checkpoint (gensim's own format, kept inside the data root; never exchanged)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.model.save(str(d / MODEL_FILE))
        return d / MODEL_FILE

    @classmethod
    def load(cls, directory: str | Path, cfg: W2VConfig) -> IDarkVec:
        """Continue from a checkpoint written by `save`."""
        from gensim.models import Word2Vec

        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no i-DarkVec checkpoint; run the previous day first")
        model = Word2Vec.load(str(path))
        if model.vector_size != cfg.size:
            raise ValueError(
                f"{path}: checkpoint has vector size {model.vector_size}, config asks {cfg.size}"
            )
        model.workers = cfg.workers
        return cls(cfg, model)


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
