"""Checks on the PNG files that the report figures write."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> np.ndarray:
    """Assert that `path` is a PNG image larger than 100 x 100 pixels, and return its pixels."""
    assert path.read_bytes()[:8] == PNG
    img = mpimg.imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    return img
