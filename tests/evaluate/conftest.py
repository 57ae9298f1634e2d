import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def blobs(n_per_class: dict[str, int], e: int = 16, spread: float = 0.3, seed: int = 0):
    """Gaussian blobs, one per class, at random unit directions scaled by 3; returns (X float32, labels object)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for cls, n in n_per_class.items():
        centre = rng.normal(size=e)
        centre *= 3 / np.linalg.norm(centre)
        xs.append(centre + spread * rng.normal(size=(n, e)))
        ys += [cls] * n
    return np.concatenate(xs).astype(np.float32), np.array(ys, dtype=object)
