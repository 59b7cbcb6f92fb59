"""Weight initializers with Keras' names and defaults (zeros, random, Xavier/Glorot, He)."""
from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

from ._checks import by_name

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "get"]


def _fans(shape: tuple) -> tuple[float, float]:
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = float(np.prod(shape[:-2])) if len(shape) > 2 else 1.0
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng: np.random.Generator, shape, stddev: float, dtype) -> np.ndarray:
    """Normal(0, stddev) redrawn outside two standard deviations, as Keras' truncated normal."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return (out * stddev).astype(dtype)


class Initializer:
    """``initializer(shape, dtype, rng) -> array``."""

    def __call__(self, shape, dtype, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}


class Zeros(Initializer):
    def __call__(self, shape, dtype, rng):
        return np.zeros(shape, dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype, rng):
        return np.ones(shape, dtype)


class Constant(Initializer):
    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape, dtype, rng):
        return np.full(shape, self.value, dtype)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype, rng):
        return rng.normal(self.mean, self.stddev, shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05):
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype, rng):
        return rng.uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class GlorotUniform(Initializer):
    """Xavier uniform: U(-l, l) with ``l = sqrt(6 / (fan_in + fan_out))``."""

    def __call__(self, shape, dtype, rng):
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(dtype)


class GlorotNormal(Initializer):
    """Xavier normal: truncated normal with ``stddev = sqrt(2 / (fan_in + fan_out))``."""

    def __call__(self, shape, dtype, rng):
        fan_in, fan_out = _fans(shape)
        # 0.8796... is the stddev of a unit normal truncated at two stddevs
        return _truncated_normal(rng, shape, math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978, dtype)


class HeNormal(Initializer):
    """He normal: truncated normal with ``stddev = sqrt(2 / fan_in)``."""

    def __call__(self, shape, dtype, rng):
        fan_in, _ = _fans(shape)
        return _truncated_normal(rng, shape, math.sqrt(2.0 / fan_in) / 0.87962566103423978, dtype)


class HeUniform(Initializer):
    """He uniform: U(-l, l) with ``l = sqrt(6 / fan_in)``."""

    def __call__(self, shape, dtype, rng):
        fan_in, _ = _fans(shape)
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, shape).astype(dtype)


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "xavier_uniform": GlorotUniform, "xavier_normal": GlorotNormal,
    "he_normal": HeNormal, "he_uniform": HeUniform,
}


def get(identifier: Union[str, Initializer, dict]) -> Initializer:
    """An initializer from its name (``"glorot_uniform"``), a :func:`serialize`
    dict, or an initializer object."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        return get(identifier["class_name"]).__class__(**identifier.get("config", {}))
    if isinstance(identifier, str):
        return by_name(_BY_NAME, identifier, "initializer")()
    raise TypeError(f"initializer must be a name or an Initializer, got {type(identifier).__name__}")


def serialize(init: Initializer) -> dict[str, Any]:
    name = next((n for n, cls in _BY_NAME.items() if type(init) is cls), None)
    if name is None:
        raise ValueError(f"cannot serialize the custom initializer {init!r}")
    return {"class_name": name, "config": init.get_config()}
