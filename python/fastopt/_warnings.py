"""Warnings fastopt emits."""
from __future__ import annotations

__all__ = ["DivergenceWarning"]


class DivergenceWarning(RuntimeWarning):
    """The training diverged: the loss or the weights became NaN or infinite,
    or the loss grew more than 1e6 times above its starting value.  Emitted
    once per call (``fit``, ``train_on_batch``, ...), naming the step and the
    learning rate; a smaller learning rate, or ``dtype="float64"``, usually helps."""
