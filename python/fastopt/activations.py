"""Activation functions by their Keras 3 names, each one C call over a NumPy array.

    fo.activations.softmax(np.array([[1.0, 2.0, 3.0]]))      # rows sum to 1
    fo.activations.leaky_relu(x, negative_slope=0.1)
    fo.Dense(10, activation="gelu")                          # the same kernels, by name

Formulas (``z`` the input):

=================  =====================================================================
``linear``         ``z``
``relu``           ``max(z, 0)``
``sigmoid``        ``1 / (1 + exp(-z))``
``tanh``           ``tanh(z)``
``softmax``        ``exp(z - max z) / sum exp(z - max z)`` along ``axis`` (stable)
``leaky_relu``     ``z`` if ``z > 0`` else ``negative_slope * z`` (default 0.2, in [0, 1])
``elu``            ``z`` if ``z > 0`` else ``alpha * (exp(z) - 1)`` (default 1.0, >= 0)
``gelu``           ``0.5 z (1 + erf(z / sqrt 2))``; ``approximate=True``:
                   ``0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))``
``silu``/``swish`` ``z * sigmoid(z)``
``softplus``       ``log(1 + exp z)``, computed as ``max(z, 0) + log1p(exp(-|z|))``
``softsign``       ``z / (1 + |z|)``
``hard_sigmoid``   ``relu6(z + 3) / 6`` (Keras 3's definition)
``exponential``    ``exp z``
=================  =====================================================================

float32 and float64 arrays keep their dtype; other real input becomes float64.
NaN and inf are computed through, as NumPy would.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _core

__all__ = ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "silu",
           "swish", "softplus", "softsign", "hard_sigmoid", "exponential", "get", "serialize",
           "deserialize", "resolve", "CODES", "DEFAULT_PARAMS"]

# activation name -> C code (csrc/fastopt.h); "gelu_tanh" is gelu(approximate=True)
CODES: dict[str, int] = dict(_core.codes()["activations"])


def _as_input(x, name: str = "x") -> np.ndarray:
    """x as a native float32/float64 array (other real numbers become float64)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    native = arr.dtype.newbyteorder("=")  # a byte-swapped float32 is float32
    dtype = native if native in (np.float32, np.float64) else np.float64
    return np.asarray(arr, dtype=np.dtype(dtype).newbyteorder("="), order="C")  # keeps 0-d


def _apply(x, code: int, param: Optional[float] = None) -> np.ndarray:
    z = _as_input(x)
    out = np.empty_like(z)
    _core.activation(out, z, code, param)
    return out


def linear(x) -> np.ndarray:
    """``z`` (a float copy of the input)."""
    return _apply(x, CODES["linear"])


def relu(x) -> np.ndarray:
    """``max(z, 0)``; NaN stays NaN."""
    return _apply(x, CODES["relu"])


def sigmoid(x) -> np.ndarray:
    """``1 / (1 + exp(-z))``."""
    return _apply(x, CODES["sigmoid"])


def tanh(x) -> np.ndarray:
    """``tanh(z)``."""
    return _apply(x, CODES["tanh"])


def softmax(x, axis: int = -1) -> np.ndarray:
    """``exp(z - max z) / sum exp(z - max z)`` along ``axis``: each slice sums to 1,
    with no overflow for large ``z``."""
    z = _as_input(x)
    if z.ndim == 0:
        raise ValueError("softmax needs at least one axis; x is a scalar")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -z.ndim <= axis < z.ndim:
        raise ValueError(f"axis must be an int in [{-z.ndim}, {z.ndim}), got {axis!r}")
    moved = np.ascontiguousarray(np.moveaxis(z, axis, -1))
    out = np.empty_like(moved)
    _core.activation(out, moved, CODES["softmax"])
    return np.ascontiguousarray(np.moveaxis(out, -1, axis))


def leaky_relu(x, negative_slope: float = 0.2) -> np.ndarray:
    """``z`` if ``z > 0`` else ``negative_slope * z``; ``negative_slope`` in [0, 1]."""
    return _apply(x, CODES["leaky_relu"], _param("negative_slope", negative_slope, 0.0, 1.0))


def elu(x, alpha: float = 1.0) -> np.ndarray:
    """``z`` if ``z > 0`` else ``alpha * (exp(z) - 1)``; ``alpha >= 0``."""
    return _apply(x, CODES["elu"], _param("alpha", alpha, 0.0, None))


def gelu(x, approximate: bool = False) -> np.ndarray:
    """``0.5 z (1 + erf(z / sqrt 2))``, or with ``approximate=True`` the tanh form
    ``0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))``."""
    return _apply(x, CODES["gelu_tanh" if _flag("approximate", approximate) else "gelu"])


def silu(x) -> np.ndarray:
    """``z * sigmoid(z)`` (Swish)."""
    return _apply(x, CODES["silu"])


swish = silu


def softplus(x) -> np.ndarray:
    """``log(1 + exp z)``, as ``max(z, 0) + log1p(exp(-|z|))``."""
    return _apply(x, CODES["softplus"])


def softsign(x) -> np.ndarray:
    """``z / (1 + |z|)``."""
    return _apply(x, CODES["softsign"])


def hard_sigmoid(x) -> np.ndarray:
    """``relu6(z + 3) / 6``: 0 below -3, 1 above 3, ``z / 6 + 0.5`` between."""
    return _apply(x, CODES["hard_sigmoid"])


def exponential(x) -> np.ndarray:
    """``exp z``."""
    return _apply(x, CODES["exponential"])


def _param(name: str, value, low: float, high: Optional[float]) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not (v >= low and (high is None or v <= high)) or not np.isfinite(v):
        where = f"[{low}, {high}]" if high is not None else f">= {low} and finite"
        raise ValueError(f"{name} must be {where}, got {value!r}")
    return v


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


# the public functions by Keras name; swish is silu
_FUNCTIONS: dict[str, Callable] = {f.__name__: f for f in (
    linear, relu, sigmoid, tanh, softmax, leaky_relu, elu, gelu, silu, softplus, softsign,
    hard_sigmoid, exponential)}
_ALIASES = {"swish": "silu"}
# the keyword each parameterized activation takes, and its default
_PARAMS = {"leaky_relu": ("negative_slope", 0.2), "elu": ("alpha", 1.0)}
# Keras' default parameter per C code (what the kernels use when given none)
DEFAULT_PARAMS: dict[int, float] = {CODES[name]: default for name, (_, default) in _PARAMS.items()}


def _split(identifier) -> tuple[str, dict[str, Any]]:
    """(Keras name, keyword parameters) of an activation identifier; ValueError if
    it is not a function of this module (a name, a function, a partial, a config)."""
    kwargs: dict[str, Any] = {}
    fn = identifier
    if isinstance(identifier, dict):
        kwargs = {k: v for k, v in identifier.items() if k != "name"}
        fn = identifier.get("name")
    elif isinstance(identifier, functools.partial):
        if identifier.args:
            raise ValueError(f"activation {identifier!r}: pass its parameter by keyword")
        fn, kwargs = identifier.func, dict(identifier.keywords)
    if isinstance(fn, str):
        key = _ALIASES.get(fn.lower(), fn.lower())
        if key not in _FUNCTIONS:
            names = sorted(set(_FUNCTIONS) | set(_ALIASES))
            raise ValueError(f"unknown activation {fn!r}; expected one of {names} or None")
        return key, kwargs
    if callable(fn) and any(fn is f for f in _FUNCTIONS.values()):
        return fn.__name__, kwargs
    raise ValueError(f"activation {identifier!r} is not one of fastopt.activations' functions "
                     f"(the C kernels run only those); expected one of {sorted(_FUNCTIONS)}")


def resolve(identifier) -> tuple[int, float]:
    """``(code, act_param)`` of an activation for the C kernels: a name
    (``"relu"``, ``"swish"``...), ``None`` (linear), a function of this module, a
    ``functools.partial`` of one with its keyword (``negative_slope``, ``alpha``,
    ``approximate``; ``axis=-1`` for softmax), or a config from :func:`serialize`.
    Anything else (another callable, another keyword or value) raises ValueError:
    the kernels cannot run it."""
    if identifier is None:
        return CODES["linear"], 0.0
    name, kwargs = _split(identifier)
    code, param = CODES[name], 0.0
    if name == "gelu":
        if _flag("approximate", kwargs.pop("approximate", False)):
            code = CODES["gelu_tanh"]
    elif name == "softmax":
        axis = kwargs.pop("axis", -1)
        if axis != -1:
            raise ValueError(f"softmax in a layer runs over the last axis; axis={axis!r} cannot be used")
    elif name in _PARAMS:
        key, default = _PARAMS[name]
        param = _param(key, kwargs.pop(key, default), 0.0, 1.0 if name == "leaky_relu" else None)
    if kwargs:
        raise ValueError(f"activation {name!r} takes no parameter {sorted(kwargs)}")
    return code, param


def serialize(activation) -> Union[str, dict, None]:
    """The Keras name of an activation, or ``{"name": ..., parameter: value}``
    when it has a non-default parameter (what ``Dense.get_config`` stores)."""
    if activation is None:
        return None
    resolve(activation)  # refuses what the kernels cannot run
    name, kwargs = _split(activation)
    if isinstance(activation, str) and not kwargs:
        return activation
    config: dict[str, Any] = {"name": name}
    if name in _PARAMS:
        key, default = _PARAMS[name]
        if key in kwargs and float(kwargs[key]) != default:
            config[key] = float(kwargs[key])
    elif name == "gelu" and kwargs.get("approximate", False):
        config["approximate"] = True
    return name if len(config) == 1 else config


def deserialize(config) -> Callable:
    """The function of a name or config from :func:`serialize`."""
    return get(config)


def get(identifier) -> Callable:
    """The activation function for a name, config, function or partial (Keras'
    ``activations.get``); ``None`` gives :func:`linear`."""
    if identifier is None:
        return linear
    resolve(identifier)  # refuses what the kernels cannot run
    if callable(identifier):
        return identifier
    name, kwargs = _split(identifier)
    fn = _FUNCTIONS[name]
    return functools.partial(fn, **kwargs) if kwargs else fn
