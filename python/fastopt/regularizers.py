"""Kernel regularizers with Keras' meaning: a penalty added to the loss.

``l1(a)`` adds ``a * sum(|w|)``, ``l2(b)`` adds ``b * sum(w**2)`` (so its
gradient is ``2 * b * w``), ``l1_l2(a, b)`` both.  The penalty and its
gradient are computed in C inside the training loop.

Article 002's update ``theta - lr * (g + lambda * theta)`` is ``l2(lambda / 2)``
(or, decoupled, ``weight_decay=lambda`` on the optimizer).
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from ._checks import by_name, check_real

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get"]


class Regularizer:
    l1: float = 0.0
    l2: float = 0.0

    def __call__(self, w: np.ndarray) -> float:
        """The penalty for weights ``w``."""
        return float(self.l1 * np.abs(w).sum() + self.l2 * np.square(w).sum())

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l1={self.l1}, l2={self.l2})"


class L1L2(Regularizer):
    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = check_real(l1, "l1", low=0)
        self.l2 = check_real(l2, "l2", low=0)


class L1(L1L2):
    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)


class L2(L1L2):
    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)


def l1(l1: float = 0.01) -> L1:  # noqa: D103  (Keras' lowercase aliases)
    return L1(l1)


def l2(l2: float = 0.01) -> L2:  # noqa: D103
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:  # noqa: D103
    return L1L2(l1, l2)


def get(identifier: Union[None, str, Regularizer, dict]) -> Optional[Regularizer]:
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return L1L2(**identifier)
    if isinstance(identifier, str):
        # Keras' defaults: 0.01 each
        return by_name({"l1": l1, "l2": l2, "l1_l2": l1_l2}, identifier, "regularizer")()
    raise TypeError(f"regularizer must be a name or a Regularizer, got {type(identifier).__name__}")
