"""Learning-rate schedules, with Keras 3's names, arguments and formulas.

A schedule is called with the optimizer's ``iterations`` (the number of steps
already taken, starting at 0) and returns the learning rate of that step::

    lr = fo.schedules.CosineDecay(0.0, decay_steps=900, warmup_target=0.1, warmup_steps=100)
    opt = fo.optimizers.SGD(learning_rate=lr)      # fo.optimizers.schedules is this module

``fit`` asks for a whole run of steps at once with ``values(start, count)``
(one NumPy evaluation, handed to the C training loop); ``schedule(step)`` gives
the same bits for one step.  Subclass :class:`LearningRateSchedule` and define
``__call__(step)`` (and ``get_config`` to save it) for a schedule of your own.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from ._checks import check_positive, check_real

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "InverseSqrtDecay",
    "serialize",
    "deserialize",
]


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate`` for ``step = 0, 1, ...``.

    A schedule of your own defines ``__call__`` (and ``get_config`` if it is
    to be saved)::

        class MyLRSchedule(fo.schedules.LearningRateSchedule):
            def __init__(self, initial_learning_rate):
                self.initial_learning_rate = initial_learning_rate

            def __call__(self, step):
                return self.initial_learning_rate / (step + 1)

            def get_config(self):
                return {"initial_learning_rate": self.initial_learning_rate}

        opt = fo.optimizers.SGD(learning_rate=MyLRSchedule(0.1))
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`.")

    def values(self, start: int, count: int) -> np.ndarray:
        """The learning rates of steps ``start .. start + count - 1`` as float64
        (bit for bit what ``schedule(step)`` gives for each)."""
        return np.array([self(k) for k in range(start, start + count)], dtype=np.float64)

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `get_config()` "
            "in order to be serializable.")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LearningRateSchedule":
        """The schedule of ``config`` (a ``get_config()`` result)."""
        return cls(**config)

    def __repr__(self) -> str:
        try:
            config = self.get_config()
        except NotImplementedError:
            return object.__repr__(self)
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"


class _Formula(LearningRateSchedule):
    """A built-in schedule: one NumPy formula (``_formula``) over an array of
    steps, used for one step and for a run of steps alike, so both give the
    same bits.  Calling it with an array of steps gives an array."""

    def __call__(self, step):
        lr = self._formula(np.asarray(step, dtype=np.float64))
        return float(lr) if lr.ndim == 0 else lr

    __call__.same_bits_as_formula = True

    def values(self, start: int, count: int) -> np.ndarray:
        if not getattr(type(self).__call__, "same_bits_as_formula", False):
            return super().values(start, count)  # a subclass with a __call__ of its own
        steps = np.arange(start, start + count, dtype=np.float64)
        return np.ascontiguousarray(self._formula(steps), dtype=np.float64)

    def _formula(self, steps: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _name(name: Optional[str]) -> Optional[str]:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    return name


def _initial(value) -> float:
    return check_real(value, "initial_learning_rate", low=0)


class _StepDecay(_Formula):
    """Shared by the Keras decays of ``p = step / decay_steps`` (floored when ``staircase``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool, name: Optional[str]):
        self.initial_learning_rate = _initial(initial_learning_rate)
        self.decay_steps = check_positive(decay_steps, "decay_steps")
        self.decay_rate = check_real(decay_rate, "decay_rate", low=0)
        self.staircase = bool(staircase)
        self.name = _name(name)

    def _progress(self, steps):
        p = steps / self.decay_steps
        return np.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """``lr = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def _formula(self, steps):
        return self.initial_learning_rate * np.power(self.decay_rate, self._progress(steps))


class InverseTimeDecay(_StepDecay):
    """``lr = initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    With ``staircase=True`` the ratio is ``floor(step / decay_steps)``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def _formula(self, steps):
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(steps))


class PiecewiseConstantDecay(_Formula):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``step <= boundaries[1]``, ..., ``values[-1]`` after the last boundary.

    (The list is kept as ``values_``: ``values(start, count)`` is the method
    every schedule has; ``get_config()["values"]`` is the list, as in Keras.)
    """

    def __init__(self, boundaries: Sequence[float], values: Sequence[float],
                 name: str = "PiecewiseConstant"):
        boundaries = [check_real(b, "boundaries") for b in boundaries]
        values = [check_real(v, "values", low=0) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values must have one more entry than boundaries; got {len(boundaries)} "
                f"boundaries and {len(values)} values")
        if any(b1 >= b2 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"boundaries must increase strictly, got {boundaries}")
        self.name = _name(name)
        self.boundaries = boundaries
        self.values_ = values

    def _formula(self, steps):
        idx = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), steps, side="left")
        return np.asarray(self.values_, dtype=np.float64)[idx]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values_), "name": self.name}


class PolynomialDecay(_Formula):
    """From ``initial_learning_rate`` to ``end_learning_rate`` in ``decay_steps``::

        step = min(step, decay_steps)
        lr = (initial_learning_rate - end_learning_rate) * (1 - step / decay_steps) ** power
             + end_learning_rate

    With ``cycle=True`` the decay restarts: ``decay_steps`` becomes the first
    multiple of itself that is ``>= step`` (``decay_steps`` itself at step 0).
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float,
                 end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
                 name: str = "PolynomialDecay"):
        self.initial_learning_rate = _initial(initial_learning_rate)
        self.name = _name(name)
        self.decay_steps = check_positive(decay_steps, "decay_steps")
        self.end_learning_rate = check_real(end_learning_rate, "end_learning_rate", low=0)
        self.power = check_real(power, "power", low=0)
        self.cycle = bool(cycle)

    def _formula(self, steps):
        if self.cycle:
            multiplier = np.where(steps == 0, 1.0, np.ceil(steps / self.decay_steps))
            decay_steps = self.decay_steps * multiplier
        else:
            decay_steps = self.decay_steps
            steps = np.minimum(steps, decay_steps)
        p = steps / decay_steps
        return ((self.initial_learning_rate - self.end_learning_rate) * np.power(1.0 - p, self.power)
                + self.end_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power,
                "cycle": self.cycle, "name": self.name}


def _cosine(fraction, alpha):
    """``(1 - alpha) * 0.5 * (1 + cos(pi * fraction)) + alpha``: from 1 down to alpha."""
    return (1.0 - alpha) * (0.5 * (1.0 + np.cos(math.pi * fraction))) + alpha


class CosineDecay(_Formula):
    """Cosine decay (SGDR without restarts), after an optional linear warmup.

    Without ``warmup_target``::

        step = min(step, decay_steps)
        lr = initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * step / decay_steps)) + alpha)

    With ``warmup_target``, the rate first climbs linearly from
    ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``::

        lr = initial_learning_rate + (warmup_target - initial_learning_rate) * step / warmup_steps

    and then decays from ``warmup_target`` as above, at ``step - warmup_steps``
    (capped at ``decay_steps``).
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: Optional[float] = None,
                 warmup_steps: float = 0):
        self.initial_learning_rate = _initial(initial_learning_rate)
        self.name = _name(name)
        self.decay_steps = check_positive(decay_steps, "decay_steps")
        self.alpha = check_real(alpha, "alpha", low=0)
        self.warmup_target = (None if warmup_target is None
                              else check_real(warmup_target, "warmup_target", low=0))
        self.warmup_steps = check_real(warmup_steps, "warmup_steps", low=0)

    def _formula(self, steps):
        if self.warmup_target is None:
            steps = np.minimum(steps, self.decay_steps)
            return self.initial_learning_rate * _cosine(steps / self.decay_steps, self.alpha)
        steps = np.minimum(steps, self.decay_steps + self.warmup_steps)
        decayed = self.warmup_target * _cosine((steps - self.warmup_steps) / self.decay_steps, self.alpha)
        if self.warmup_steps == 0:
            return decayed
        warmup = ((self.warmup_target - self.initial_learning_rate) * (steps / self.warmup_steps)
                  + self.initial_learning_rate)
        return np.where(steps < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(_Formula):
    """Cosine decay with warm restarts (SGDR, Loshchilov & Hutter 2016).

    The multiplier decays from 1 to ``alpha`` over ``first_decay_steps``; then
    it restarts, each period ``t_mul`` times longer than the one before and
    starting ``m_mul`` times lower.  In Keras' formula, with
    ``f = step / first_decay_steps``::

        i = floor(f)                                        (t_mul == 1)
        i = floor(log(1 - f * (1 - t_mul)) / log(t_mul))    (otherwise)
        f = f - i  or  (f - (1 - t_mul ** i) / (1 - t_mul)) / t_mul ** i
        lr = initial_learning_rate * ((1 - alpha) * m_mul ** i * 0.5 * (1 + cos(pi * f)) + alpha)
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: float, t_mul: float = 2.0,
                 m_mul: float = 1.0, alpha: float = 0.0, name: str = "SGDRDecay"):
        self.initial_learning_rate = _initial(initial_learning_rate)
        self.name = _name(name)
        self.first_decay_steps = check_positive(first_decay_steps, "first_decay_steps")
        # t_mul < 1 makes the periods sum to a finite step, after which the formula is NaN
        self.t_mul = check_real(t_mul, "t_mul", low=1.0)
        self.m_mul = check_real(m_mul, "m_mul", low=0)
        self.alpha = check_real(alpha, "alpha", low=0)

    def _formula(self, steps):
        fraction = steps / self.first_decay_steps
        t_mul = self.t_mul
        if t_mul == 1.0:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            restart = np.floor(np.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            done = (1.0 - np.power(t_mul, restart)) / (1.0 - t_mul)
            fraction = (fraction - done) / np.power(t_mul, restart)
        cosine = 0.5 * np.power(self.m_mul, restart) * (1.0 + np.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


class InverseSqrtDecay(_Formula):
    """``lr = initial_learning_rate / sqrt(1 + beta * step)``.

    The "回归调整" (regression adjustment) learning rate of article 002, where
    it is written ``alpha_t = 1 / sqrt(1 + beta * t)`` (``initial_learning_rate=1``).
    Not a Keras schedule.
    """

    def __init__(self, initial_learning_rate: float, beta: float, name: str = "InverseSqrtDecay"):
        self.initial_learning_rate = _initial(initial_learning_rate)
        self.name = _name(name)
        self.beta = check_real(beta, "beta", low=0)

    def __call__(self, step):
        if isinstance(step, int):  # apply_gradients' step: plain floats (sqrt is exact, same bits)
            return self.initial_learning_rate / math.sqrt(1.0 + self.beta * step)
        return super().__call__(step)

    __call__.same_bits_as_formula = True

    def _formula(self, steps):
        return self.initial_learning_rate / np.sqrt(1.0 + self.beta * steps)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "beta": self.beta, "name": self.name}


_SCHEDULES = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                       InverseTimeDecay, CosineDecay, CosineDecayRestarts,
                                       InverseSqrtDecay)}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}``, as Keras writes it."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"schedule must be a LearningRateSchedule, got {type(schedule).__name__}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict[str, Any], custom_objects: Optional[dict[str, type]] = None
                ) -> LearningRateSchedule:
    """The schedule of a :func:`serialize` result (or of a Keras 3 one, whose
    ``module`` and ``registered_name`` keys are ignored).  ``custom_objects``
    maps class names of your own schedules to their classes."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError("a serialized schedule is a dict {'class_name': ..., 'config': {...}}, "
                         f"got {config!r}")
    name = config.get("class_name")
    table = {**_SCHEDULES, **(custom_objects or {})}
    if name not in table:
        raise ValueError(f"unknown schedule {name!r}; expected one of {sorted(table)} "
                         "(pass custom_objects={name: class} for a schedule of your own)")
    return table[name].from_config(config["config"])
