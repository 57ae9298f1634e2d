import numpy as np
import pytest
import torch
from scipy.stats import special_ortho_group


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def rotated():
    """Provider vectors and a customer view of the same hosts: a random rotation plus 5 % noise.

    Returns (Yc, Yp, R) with 600 hosts in 16 dimensions; the first 400 rows are anchors, the rest held out.
    """
    rng = np.random.default_rng(0)
    yp = rng.normal(size=(600, 16)).astype(np.float32)
    rot = special_ortho_group.rvs(16, random_state=1)
    yc = (yp @ rot.T + 0.05 * rng.normal(size=yp.shape)).astype(np.float32)
    return yc, yp, rot


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
