"""NumPy twins of article 000's kernels (csrc/linear_impl.h, csrc/linear.c):
the linear model ``pred = x @ w + b`` with the loss ``mean((pred - y)**2)``.

* ``linear_gradient`` and ``linear_gd_naive``: one gradient, and the per-sample
  descent loop the article writes, in the dtype of the arrays given;
* ``linear_stats`` and ``linear_gd_stats``: the descent through the data's
  means and covariances (float64), each step O(d*d) whatever n is.
"""
from __future__ import annotations

import numpy as np

__all__ = ["linear_gradient", "linear_gd_naive", "linear_stats", "linear_gd_stats"]


def linear_gradient(x, y, w, b) -> tuple[np.ndarray, float, float]:
    """``(dw, db, loss)`` for x (n, d), y (n,), w (d,): ``e = x @ w + b - y``,
    ``dw = 2/n x.T @ e``, ``db = 2/n sum(e)``, ``loss = mean(e**2)``."""
    x, y, w = np.asarray(x), np.asarray(y), np.asarray(w)
    e = x @ w + x.dtype.type(b) - y
    n = len(x)
    return 2 / n * (x.T @ e), float(2 / n * e.sum()), float(np.mean(e.astype(np.float64) ** 2))


def linear_gd_naive(x, y, w, b, learning_rate: float, num_iterations: int):
    """``num_iterations`` steps of ``w -= lr * dw; b -= lr * db``, each with a
    pass over the data; returns ``(w, b, loss at the final w, b)``."""
    w, b = np.array(w, dtype=x.dtype), x.dtype.type(b)
    lr = x.dtype.type(learning_rate)
    for _ in range(num_iterations):
        dw, db, _ = linear_gradient(x, y, w, b)
        w = w - lr * dw
        b = b - lr * x.dtype.type(db)
    return w, float(b), linear_gradient(x, y, w, b)[2]


def linear_stats(x, y) -> np.ndarray:
    """``[cov(x) (d*d, row-major), cov(x, y) (d), mean(x) (d), mean(y)]`` in
    float64, the covariances over n (``ddof=0``)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mx, my = x.mean(axis=0), y.mean()
    u, v = x - mx, y - my
    n = len(x)
    return np.concatenate([(u.T @ u / n).ravel(), u.T @ v / n, mx, [my]])


def linear_gd_stats(stats, w, b, learning_rate: float, num_iterations: int) -> tuple[np.ndarray, float]:
    """The same descent from the statistics, in float64::

        r  = mean(x) @ w + b - mean(y)
        dw = 2 (cov(x) @ w - cov(x, y) + mean(x) r),   db = 2 r
    """
    w = np.array(w, dtype=np.float64)
    d = w.size
    cxx = stats[:d * d].reshape(d, d)
    cxy, mx, my = stats[d * d:d * d + d], stats[d * d + d:d * d + 2 * d], stats[-1]
    b = float(b)
    for _ in range(num_iterations):
        r = mx @ w + b - my
        dw = 2 * (cxx @ w - cxy + mx * r)
        w = w - learning_rate * dw
        b = b - learning_rate * 2 * r
    return w, b
