"""Argument checks shared by the Python layer: each names the argument it refuses."""
from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from . import _core


def check_real(value, name: str, low: Optional[float] = None, high: Optional[float] = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number in [low, high] (open ends where asked), as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_unit(value, name: str) -> float:
    """A decay factor in [0, 1): beta_1, beta_2, rho, momentum."""
    return check_real(value, name, low=0.0, high=1.0, high_open=True)


def check_int(value, name: str, low: Optional[int] = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return v


def check_positive(value, name: str) -> float:
    """A finite number > 0."""
    return check_real(value, name, low=0.0, low_open=True)


def check_optional_positive(value, name: str) -> Optional[float]:
    return None if value is None else check_positive(value, name)


def by_name(table: dict, name, what: str):
    """``table[name.lower()]``, or a ValueError that lists the valid names."""
    key = name.lower() if isinstance(name, str) else name
    if key not in table:
        raise ValueError(f"unknown {what} {name!r}; expected one of {sorted(table)}")
    return table[key]


def as_real_array(x, name: str) -> np.ndarray:
    """``np.asarray(x)``, refused with a message naming ``name`` unless it holds
    real numbers (floats, integers or bools; NaN and inf included)."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged nested lists and the like
        raise ValueError(f"{name} is not a rectangular array of numbers: {e}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def as_float_array(x, name: str, dtype=None) -> np.ndarray:
    """x as a floating ndarray (converted once): numbers and bools become
    float64 (or ``dtype``); complex, object and string data are refused, and so
    are NaN and inf."""
    if type(x) is np.ndarray and x.dtype == dtype and x.flags.c_contiguous and x.flags.aligned and \
            x.dtype.isnative:
        # nothing to convert (the common case in a training loop): only the check
        if not _core.all_finite(x):
            raise ValueError(f"{name} contains NaN or inf")
        return x
    arr = as_real_array(x, name)
    if dtype is None:
        dtype = arr.dtype if arr.dtype.kind == "f" else np.float64
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not arr.flags.aligned:  # unaligned input is copied, not refused
        arr = arr.copy()
    if arr.dtype.kind == "f":
        native = arr.dtype in (np.float32, np.float64) and arr.dtype.isnative
        if not (_core.all_finite(arr) if native else np.isfinite(arr).all()):
            raise ValueError(f"{name} contains NaN or inf")
    return arr


def keras_keywords(keras_only: tuple = (), aliases: Optional[dict] = None):
    """Decorator: an unknown keyword argument raises a TypeError that names
    the closest accepted one (``Dense(10, activaton="relu")`` -> "did you mean
    'activation'?"), or says that fastopt does not take a Keras argument it
    lacks (``keras_only``); ``aliases`` maps old or other libraries' names to
    the Keras one (``{"lr": "learning_rate"}``)."""
    import difflib
    import functools
    import inspect

    def decorate(fn):
        params = inspect.signature(fn).parameters
        accepted = frozenset(name for name, p in params.items()
                             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self")
        owner = fn.__qualname__.replace(".__init__", "")

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            if kwargs and not accepted.issuperset(kwargs):
                unknown = next(k for k in kwargs if k not in accepted)
                message = f"{owner}() got an unexpected keyword argument {unknown!r}"
                close = (aliases or {}).get(unknown) or next(
                    iter(difflib.get_close_matches(unknown, sorted(accepted), n=1, cutoff=0.7)), None)
                if unknown in keras_only:
                    message += f": a Keras argument that fastopt's {owner} does not support"
                elif close is not None:
                    message += f"; did you mean {close!r}?"
                else:
                    message += f"; it accepts {sorted(accepted)}"
                raise TypeError(message)
            return fn(*args, **kwargs)

        return checked

    return decorate
