"""NumPy twin of the loss-surface kernel (csrc/surface.c): the loss of a
least-squares problem in two parameters on a grid, each point summed directly
over the data (O(n) per point, where the kernel takes O(1) after one pass)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["lsq2_surface"]


def lsq2_surface(a, y, p0, p1, l1: Sequence[float] = (0.0, 0.0),
                 l2: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """``out[j, i] = mean((a @ (p0[i], p1[j]) - y) ** 2) + sum_k l1[k] |p_k| + l2[k] p_k ** 2``
    for ``a`` of shape ``(n, 2)``, in float64; ``out`` has shape ``(len(p1), len(p0))``
    (matplotlib's ``contour(p0, p1, out)`` layout)."""
    a = np.asarray(a, np.float64)
    y = np.asarray(y, np.float64)
    out = np.empty((len(p1), len(p0)))
    for j, v in enumerate(np.asarray(p1, np.float64)):
        for i, u in enumerate(np.asarray(p0, np.float64)):
            r = a[:, 0] * u + a[:, 1] * v - y
            out[j, i] = (np.mean(r * r) + l1[0] * abs(u) + l2[0] * u * u
                         + l1[1] * abs(v) + l2[1] * v * v)
    return out
