"""Same configuration, same numbers: alone, twice, and with other evaluations training at once in threads.

Every model draws its initial weights, dropout masks and batch order from its own generators; before, they came
partly from torch's global random state, so two pairs evaluated concurrently (the nightly flow's adaptation tasks)
changed each other's classifiers and aligners and the same run gave different macro F1.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from darkembed.config import AdaptConfig, EvaluateConfig
from darkembed.evaluate.protocol import NetworkDay, align, independent, make_folds, train_classifiers

from .conftest import blobs

CFG = EvaluateConfig(dnn_hidden=[32, 16], dnn_epochs=25, dnn_batch_size=32, dnn_lr=0.01, dnn_dropout=0.3)
ADAPT = AdaptConfig(epochs=15, min_steps=0, width=32, batch_size=32, lr=3e-3)


def _pair(seed: int):
    X, y = blobs({"mirai": 120, "censys": 60, "shodan": 40, "unknown": 80}, e=8, spread=0.8, seed=seed)
    rng = np.random.default_rng(seed)
    ips = rng.choice(2**31, size=y.size, replace=False).astype(np.uint32)
    Xc = X @ np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)
    return NetworkDay.of(ips[:250], X[:250], y[:250]), NetworkDay.of(ips[50:], Xc[50:], y[50:])


def _evaluate(seed: int) -> list[float]:
    """Per-fold macro F1 of the non-linear aligner, the DNN linear aligner and the independent reference."""
    provider, customer = _pair(seed)
    folds = make_folds(provider, customer, CFG)
    clfs = train_classifiers(provider, folds, CFG)
    out = []
    for kind, adapt in (("nonlinear", ADAPT), ("linear", ADAPT.model_copy(update={"linear_solver": "dnn"}))):
        res = align(provider, customer, folds, kind, CFG, adapt, classifiers=clfs)
        out += [f.scores.macro["f1"] for f in res.folds]
    out += [f.scores.macro["f1"] for f in independent(customer, folds, CFG).folds]
    return out


def test_an_evaluation_gives_the_same_numbers_twice_and_beside_others():
    torch.set_num_threads(1)
    alone = _evaluate(1)
    assert _evaluate(1) == alone
    # the global state must not matter either
    torch.manual_seed(12345)
    assert _evaluate(1) == alone
    with ThreadPoolExecutor(max_workers=3) as pool:  # the same evaluation twice and another one, at once
        futures = [pool.submit(_evaluate, s) for s in (1, 2, 1)]
        first, other, second = (f.result() for f in futures)
    assert first == alone and second == alone
    assert other == _evaluate(2)
