"""Regression metrics: ``mean_squared_error`` and ``mean_absolute_error``
(scikit-learn's call signature, so article 003 needs no scikit-learn)."""
from __future__ import annotations

from .losses import mean_absolute_error, mean_squared_error

__all__ = ["mean_squared_error", "mean_absolute_error", "get"]

# metric name -> which error sum it reads ("se" squared, "ae" absolute)
_METRICS = {"mse": "se", "mean_squared_error": "se", "mae": "ae", "mean_absolute_error": "ae"}


def get(name) -> str:
    """``"se"`` or ``"ae"`` for a supported metric name; ValueError otherwise."""
    if name is mean_squared_error:
        return "se"
    if name is mean_absolute_error:
        return "ae"
    if isinstance(name, str) and name.lower() in _METRICS:
        return _METRICS[name.lower()]
    raise ValueError(f"unknown metric {name!r}; expected one of {sorted(_METRICS)}")
