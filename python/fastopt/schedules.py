"""Learning-rate schedules, with Keras' names and arguments.

A schedule is called with the optimizer's ``iterations`` (the number of steps
already taken, starting at 0) and returns the learning rate of that step::

    lr = fo.schedules.InverseSqrtDecay(initial_learning_rate=0.1, beta=0.9)
    opt = fo.optimizers.SGD(learning_rate=lr)
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ._checks import check_positive, check_real

__all__ = [
    "LearningRateSchedule",
    "InverseSqrtDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "PiecewiseConstantDecay",
    "serialize",
    "deserialize",
]


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate`` for ``step = 0, 1, ...``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def values(self, start: int, count: int) -> np.ndarray:
        """The learning rates of steps ``start .. start + count - 1`` as float64."""
        steps = np.arange(start, start + count, dtype=np.float64)
        return np.asarray(self._vectorized(steps), dtype=np.float64)

    def _vectorized(self, steps: np.ndarray) -> np.ndarray:
        return np.array([self(int(s)) for s in steps], dtype=np.float64)

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LearningRateSchedule":
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class InverseSqrtDecay(LearningRateSchedule):
    """``lr = initial_learning_rate / sqrt(1 + beta * step)``.

    The "回归调整" (regression adjustment) learning rate of article 002, where
    it is written ``alpha_t = 1 / sqrt(1 + beta * t)`` (``initial_learning_rate=1``).
    """

    def __init__(self, initial_learning_rate: float, beta: float):
        self.initial_learning_rate = check_real(initial_learning_rate, "initial_learning_rate", low=0)
        self.beta = check_real(beta, "beta", low=0)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / math.sqrt(1.0 + self.beta * step)

    def _vectorized(self, steps):
        return self.initial_learning_rate / np.sqrt(1.0 + self.beta * steps)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "beta": self.beta}


class _StepDecay(LearningRateSchedule):
    """Shared by the Keras decays of ``p = step / decay_steps`` (floored when ``staircase``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False):
        self.initial_learning_rate = check_real(initial_learning_rate, "initial_learning_rate", low=0)
        self.decay_steps = check_positive(decay_steps, "decay_steps")
        self.decay_rate = check_real(decay_rate, "decay_rate", low=0)
        self.staircase = bool(staircase)

    def _progress(self, steps):
        p = np.asarray(steps, dtype=np.float64) / self.decay_steps
        return np.floor(p) if self.staircase else p

    def __call__(self, step: int) -> float:
        return float(self._vectorized(np.float64(step)))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase}


class ExponentialDecay(_StepDecay):
    """``lr = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``.
    """

    def _vectorized(self, steps):
        return self.initial_learning_rate * np.power(self.decay_rate, self._progress(steps))


class InverseTimeDecay(_StepDecay):
    """``lr = initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    With ``staircase=True`` the ratio is ``floor(step / decay_steps)``.
    """

    def _vectorized(self, steps):
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(steps))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``step <= boundaries[1]``, ..., ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries: Sequence[float], values: Sequence[float]):
        boundaries = [check_real(b, "boundaries") for b in boundaries]
        values = [check_real(v, "values", low=0) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values must have one more entry than boundaries; got {len(boundaries)} "
                f"boundaries and {len(values)} values")
        if any(b1 >= b2 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"boundaries must increase strictly, got {boundaries}")
        self.boundaries = boundaries
        self.values_ = values

    def __call__(self, step: int) -> float:
        for b, v in zip(self.boundaries, self.values_):
            if step <= b:
                return v
        return self.values_[-1]

    def _vectorized(self, steps):
        idx = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), steps, side="left")
        return np.asarray(self.values_, dtype=np.float64)[idx]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values_)}


_SCHEDULES = {c.__name__: c for c in (InverseSqrtDecay, ExponentialDecay, InverseTimeDecay,
                                       PiecewiseConstantDecay)}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}``, as Keras writes it."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    name = config.get("class_name")
    if name not in _SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of {sorted(_SCHEDULES)}")
    return _SCHEDULES[name].from_config(config["config"])
