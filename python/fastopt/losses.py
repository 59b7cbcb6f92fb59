"""Mean squared error, as a function and as Keras' ``MeanSquaredError`` object.

Targets and predictions are aligned sample by sample: ``(n,)`` against
``(n, 1)`` compares element i with element i, never broadcasting to ``(n, n)``.
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import as_float_array

__all__ = ["mean_squared_error", "mean_absolute_error", "MeanSquaredError", "align", "get"]


def align(y_true, y_pred, names=("y_true", "y_pred")) -> tuple[np.ndarray, np.ndarray]:
    """Both as float arrays of one shape: a trailing axis of length 1 on one
    side is dropped; any other shape mismatch raises ValueError."""
    t = as_float_array(y_true, names[0])
    p = as_float_array(y_pred, names[1])
    dtype = np.result_type(t.dtype, p.dtype)
    t, p = t.astype(dtype, copy=False), p.astype(dtype, copy=False)
    if t.shape != p.shape:
        if t.ndim == p.ndim + 1 and t.shape[-1] == 1 and t.shape[:-1] == p.shape:
            t = t.reshape(p.shape)
        elif p.ndim == t.ndim + 1 and p.shape[-1] == 1 and p.shape[:-1] == t.shape:
            p = p.reshape(t.shape)
        else:
            raise ValueError(f"{names[0]} has shape {t.shape} but {names[1]} has shape {p.shape}; "
                             "they must hold the same samples")
    if dtype not in (np.float32, np.float64):
        t, p = t.astype(np.float64), p.astype(np.float64)
    return t, p


def _errors(y_true, y_pred) -> tuple[float, float, int]:
    t, p = align(y_true, y_pred)
    sse, sae = _core.mse(np.ascontiguousarray(p), np.ascontiguousarray(t))
    return sse, sae, t.size


def mean_squared_error(y_true, y_pred) -> float:
    """``mean((y_true - y_pred) ** 2)`` over all elements (one C pass)."""
    sse, _, n = _errors(y_true, y_pred)
    if n == 0:
        raise ValueError("mean_squared_error of empty arrays")
    return sse / n


def mean_absolute_error(y_true, y_pred) -> float:
    """``mean(|y_true - y_pred|)`` over all elements (one C pass)."""
    _, sae, n = _errors(y_true, y_pred)
    if n == 0:
        raise ValueError("mean_absolute_error of empty arrays")
    return sae / n


class MeanSquaredError:
    """``loss_fn = MeanSquaredError(); loss_fn(y_true, y_pred)``, as in Keras."""

    name = "mean_squared_error"

    def __call__(self, y_true, y_pred) -> float:
        return mean_squared_error(y_true, y_pred)

    def get_config(self):
        return {}


_NAMES = {"mse": "mean_squared_error", "mean_squared_error": "mean_squared_error"}


def get(identifier) -> str:
    """The canonical name of a supported loss (``"mse"``, ``"mean_squared_error"``,
    ``MeanSquaredError()``)."""
    if isinstance(identifier, MeanSquaredError) or identifier is mean_squared_error:
        return "mean_squared_error"
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]
    raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_NAMES)}")
