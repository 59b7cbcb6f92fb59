"""Article 000's functions, with its names and signatures, the loops in C.

    x = np.random.rand(100, 1)
    y = 3 * x + np.random.rand(100, 1)
    w, b = fo.gradient_descent(x, y, np.zeros(1), 0, 0.01, 1000)

Two faults of the article's snippet are not reproduced:

* its ``gradient`` returns the *negative* gradient (``y - pred`` where
  ``pred - y`` belongs), so its descent climbs and diverges; ``gradient`` here
  returns the true gradient of ``mse_loss``;
* with ``y`` of shape ``(100, 1)`` and ``w`` of shape ``(1,)`` its ``y - pred``
  broadcasts to ``(100, 100)``; here targets and predictions are aligned
  sample by sample (``(n,)`` and ``(n, 1)`` hold the same n samples).
"""
from __future__ import annotations

import numbers
import warnings
from typing import Union

import numpy as np

from . import _core
from ._checks import as_float_array, as_real_array, check_int, check_real
from ._warnings import DivergenceWarning
from .losses import mean_squared_error

__all__ = ["linear_model", "mse_loss", "gradient", "gradient_descent", "use_fast_path"]

Scalar = Union[float, np.ndarray]
_MAX_STEPS = 2 ** 53  # step counts are integers a float64 holds exactly


def use_fast_path(enabled: bool) -> bool:
    """Whether ``linear_model``, ``mse_loss``, ``gradient`` and
    ``gradient_descent`` may take their fast path (arguments that already have
    the right dtype, layout and shape go straight to C, checked there);
    returns the previous setting.  ``use_fast_path(False)`` sends every call
    through the thorough path (convert, check, explain), which gives the same
    bits: for tests."""
    return _core.article_fast_path(bool(enabled))


def _check_samples(x: np.ndarray) -> None:
    if x.ndim >= 1 and x.shape[0] == 0:
        raise ValueError(f"x holds no samples (shape {x.shape}); the model needs at least one")


def linear_model(x, w, b) -> np.ndarray:
    """``np.dot(x, w) + b``: the prediction of the linear model.  A 1-d ``x``
    holds n samples of one feature, as in ``gradient`` and ``gradient_descent``."""
    out = _core.linear_model_fast(x, w, b)
    if out is not NotImplemented:
        return out
    x, w = as_real_array(x, "x"), as_real_array(w, "w")
    _check_samples(x)
    if x.ndim == 1 and w.ndim >= 1 and w.shape[0] == 1 and x.shape[0] != 1:
        x = x[:, None]
    if x.ndim >= 1 and w.ndim >= 1 and x.shape[-1] != w.shape[0]:
        raise ValueError(f"w must have {x.shape[-1]} rows (one weight per feature of x, shape {x.shape}), "
                         f"got shape {w.shape}")
    pred = np.dot(x, w)
    if isinstance(b, np.ndarray) or np.ndim(b) > 0:
        b = as_real_array(b, "b")
        if b.size == 1:
            b = b.reshape(())  # one bias, as gradient and gradient_descent read it
        elif not _broadcasts_to(b.shape, pred.shape):
            raise ValueError(f"b must be one number or broadcast to the prediction's shape {pred.shape}, "
                             f"got shape {b.shape}")
    elif isinstance(b, (bool, np.bool_)) or not isinstance(b, numbers.Number):
        raise TypeError(f"b must be a number or an array, got {type(b).__name__}")
    return pred + b


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def mse_loss(y_true, y_pred) -> float:
    """``mean((y_true - y_pred) ** 2)``, samples aligned (``(n,)`` vs ``(n, 1)``)."""
    loss = _core.mse_loss_fast(y_true, y_pred)
    if loss is not NotImplemented:
        return loss
    return mean_squared_error(y_true, y_pred)


def _prepare(x, y, w, b):
    """x (n, d), y (n,), w (d,), b (1,) as contiguous arrays of one float dtype
    (float32 only if all of x, y, w are float32), plus what is needed to give
    results back in the caller's shapes."""
    x, y, w = as_float_array(x, "x"), as_float_array(y, "y"), as_float_array(w, "w")
    b_arr = as_float_array(b, "b")
    if b_arr.size != 1:
        raise ValueError(f"b must be a scalar, got shape {b_arr.shape}")
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2:
        raise ValueError(f"x must be 1-d or 2-d (samples, features), got shape {x.shape}")
    _check_samples(x)
    n, d = x.shape
    if w.size != d or (w.ndim == 2 and w.shape != (d, 1)) or w.ndim > 2:
        raise ValueError(f"w must have {d} weights (shape ({d},) or ({d}, 1)) for x of shape {x.shape}, "
                         f"got shape {w.shape}")
    if y.size != n or not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        raise ValueError(f"y must have shape ({n},) or ({n}, 1) to match x, got {y.shape}")
    dtype = np.float32 if all(a.dtype == np.float32 for a in (x, y, w)) else np.float64
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype).reshape(-1)  # noqa: E731
    x = np.ascontiguousarray(x, dtype=dtype)
    return x, cast(y), cast(w).copy(), cast(b_arr).copy(), w.shape, np.ndim(b)


def gradient(x, y, w, b) -> tuple[np.ndarray, Scalar]:
    """``(dw, db)``, the gradient of ``mse_loss(y, linear_model(x, w, b))``::

        dw = 2/n * x.T @ (x @ w + b - y),    db = 2/n * sum(x @ w + b - y)

    (the article's version returns the negative of this).  ``dw`` has ``w``'s
    shape; ``db`` is a float when ``b`` is a scalar, else an array of shape (1,).
    """
    out = _core.gradient_fast(x, y, w, b)
    if out is not NotImplemented:
        return out
    x, y, w, b, w_shape, b_ndim = _prepare(x, y, w, b)
    dw, db = np.empty_like(w), np.empty_like(b)
    _core.linear_gradient(dw, db, x, y, w, float(b[0]))
    return dw.reshape(w_shape), (float(db[0]) if b_ndim == 0 else db)


def gradient_descent(x, y, w, b, learning_rate: float, num_iterations: int) -> tuple[np.ndarray, Scalar]:
    """``num_iterations`` steps of ``w -= learning_rate * dw; b -= learning_rate * db``
    (``dw, db = gradient(x, y, w, b)``), the whole loop in C.  Returns the new
    ``(w, b)`` in the data's dtype; the inputs are not modified.  A learning
    rate that makes the descent diverge returns the diverged values with a
    :class:`fastopt.DivergenceWarning` (a ``RuntimeWarning``).

    How: the gradient is linear in ``(w, b)`` once the data's means and
    covariances are known::

        r  = mean(x) @ w + b - mean(y)                    (the mean residual)
        dw = 2 * (cov(x) @ w - cov(x, y) + mean(x) * r),  db = 2 * r

    so those are computed once, in float64 (float32 data too), and each step
    costs O(d*d) whatever the number of samples: the same iterates as the
    per-sample loop, to rounding.  When there are many more features than
    samples, the per-sample loop (in the data's dtype) is cheaper and runs
    instead.
    """
    out = _core.gradient_descent_fast(x, y, w, b, learning_rate, num_iterations)
    if out is not NotImplemented:
        return out
    learning_rate = check_real(learning_rate, "learning_rate", low=0)
    num_iterations = check_int(num_iterations, "num_iterations", low=0)
    if num_iterations > _MAX_STEPS:
        raise ValueError(f"num_iterations must be <= 2**53, got {num_iterations}")
    x, y, w, b, w_shape, b_ndim = _prepare(x, y, w, b)
    n, d = x.shape
    with np.errstate(all="ignore"):
        if _core.linear_by_stats(n, d, num_iterations):
            w64, b64 = w.astype(np.float64), b.astype(np.float64)
            _core.linear_gd(w64, b64, x, y, learning_rate, num_iterations)
            w, b = w64.astype(w.dtype), b64.astype(b.dtype)
        else:
            # calls of about 2**27 multiply-adds each, so an interrupt is heard; the
            # loop's state is w and b alone, so the split changes no bit
            per_call = max(1, (1 << 27) // x.size)
            for start in range(0, num_iterations, per_call):
                _core.linear_gd_naive(w, b, x, y, learning_rate, min(per_call, num_iterations - start))
    if not (np.isfinite(w).all() and np.isfinite(b).all()):
        warnings.warn(DivergenceWarning(
            f"gradient_descent diverged: the weights became NaN or infinite within {num_iterations} steps "
            f"(learning_rate={learning_rate} is too large for this data); returning the non-finite "
            "weights; try a smaller learning rate, or float64 data"), stacklevel=2)
    return w.reshape(w_shape), (float(b[0]) if b_ndim == 0 else b)
