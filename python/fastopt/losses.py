"""Losses by their Keras 3 names, as classes and as functions; each call is one C pass
over the batch, computing the loss (and, with ``Loss.gradient``, its gradient).

    loss_fn = fo.losses.BinaryCrossentropy(from_logits=True)
    loss_fn(y_true, logits)                               # a float: the batch mean
    loss_fn(y_true, logits, sample_weight=w)
    fo.losses.get("mse"), fo.losses.get("CategoricalCrossentropy")

A prediction is ``(samples, outputs)``; ``(n,)`` and ``(n, 1)`` arrays align
sample by sample, never broadcasting to ``(n, n)``.  ``l_b``, the loss of sample
b, is as in Keras:

============================  =============================================================
``mean_squared_error``        ``mean_c (p - y)^2``
``mean_absolute_error``       ``mean_c |p - y|``
``huber``                     ``mean_c (0.5 e^2 if |e| <= delta else delta |e| - 0.5 delta^2)``
``log_cosh``                  ``mean_c log(cosh(e))``, as ``|e| + log1p(exp(-2|e|)) - log 2``
``binary_crossentropy``       ``mean_c -(y log p + (1 - y) log(1 - p))``, p clipped to
                              ``[1e-7, 1 - 1e-7]``; from logits z: ``max(z, 0) - z y +
                              log1p(exp(-|z|))``; ``label_smoothing``: ``y (1 - ls) + ls / 2``
``categorical_crossentropy``  ``-sum_c y_c log q_c``, ``q = p / sum p`` clipped as above; from
                              logits: ``sum_c y_c (logsumexp(z) - z_c)``; ``label_smoothing``:
                              ``y (1 - ls) + ls / C``
``sparse_categorical_...``    the same with ``y`` one class index per sample
============================  =============================================================

with ``e = p - y``.  The batch loss is ``sum_b w_b l_b`` (``w_b`` the sample
weights, 1 by default) divided by the number of samples (``reduction=
"sum_over_batch_size"``, Keras' default, also ``"mean"``), by ``sum_b w_b``
(``"mean_with_sample_weight"``), or not divided (``"sum"``); ``"none"``/``None``
returns the per-sample ``w_b l_b``.  A scalar ``sample_weight`` weighs every
sample alike.  Sample weights must be finite and >= 0.

Where fastopt differs from Keras: the functions (``fo.losses.huber(y_true,
y_pred)``...) return the batch mean as a float, as fastopt's
``mean_squared_error`` always has (pass ``reduction=None`` for Keras' per-sample
values); ``(n,)`` inputs are n samples of one output (Keras takes them as one
sample); ``axis`` must be -1 and ``ignore_class`` None; NaN or inf in the inputs
is refused.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._checks import as_float_array, check_real

__all__ = [
    "Loss", "MeanSquaredError", "MeanAbsoluteError", "Huber", "LogCosh", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy",
    "get", "serialize", "deserialize", "as_loss", "align", "CODES", "REDUCTIONS",
]

_TABLES = _core.codes()
CODES: dict[str, int] = dict(_TABLES["losses"])  # loss name -> C code
# reduction -> C code; Keras' "mean" is "sum_over_batch_size", None is "none"
REDUCTIONS: dict[Optional[str], int] = dict(_TABLES["reductions"])
REDUCTIONS["mean"] = REDUCTIONS["sum_over_batch_size"]
REDUCTIONS[None] = REDUCTIONS["none"]

_SPARSE = "sparse_categorical_crossentropy"


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


def _dtype_of(dtype, *arrays) -> np.dtype:
    """The computation dtype: ``dtype`` if given, else that of the floating
    inputs (float16 counts as float32), else float64."""
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        return dt
    floats = [a.dtype for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    if not floats:
        return np.dtype(np.float64)
    dt = np.result_type(*floats).newbyteorder("=")  # a byte-swapped float32 is float32
    if dt not in (np.float32, np.float64):
        dt = np.dtype(np.float32) if dt.itemsize < 4 else np.dtype(np.float64)
    return np.dtype(dt)


def _batch(y_true, y_pred, sample_weight, sparse: bool, dtype=None, allow_empty: bool = False
           ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], tuple]:
    """(y, p (B, C), w (B,) or None, y_pred's shape) ready for the loss and
    metric kernels: y_pred (samples, outputs) or (samples,); y_true the same
    samples, or for ``sparse`` one class index per sample."""
    dt = _dtype_of(dtype, y_true, y_pred)
    p = as_float_array(y_pred, "y_pred", dt)
    y = as_float_array(y_true, "y_true", dt)
    shape = p.shape
    if p.ndim == 1:
        p = p.reshape(-1, 1)
    if p.ndim != 2:
        raise ValueError(f"y_pred must be (samples, outputs) or (samples,), got shape {shape}")
    B, C = p.shape
    if B == 0 and not allow_empty:
        raise ValueError("y_pred has no samples")
    if sparse:
        if not (y.shape in ((B,), (B, 1))):
            raise ValueError(f"y_true must hold {B} class indices, shape ({B},) or ({B}, 1), "
                             f"for y_pred of shape {shape}; got {y.shape}")
        y = y.reshape(B)
    else:
        if C == 1 and y.shape in ((B,), (B, 1)):
            y = y.reshape(B, 1)  # (n,) and (n, 1): the same n samples
        if y.shape != p.shape:
            raise ValueError(f"y_true and y_pred must have the same shape (samples, outputs), (n,) "
                             f"aligning with (n, 1): got {y.shape} and {shape}")
    w = _weights(sample_weight, B, dt)
    return np.ascontiguousarray(y), np.ascontiguousarray(p), w, shape


def _weights(sample_weight, B: int, dtype) -> Optional[np.ndarray]:
    """None, or B sample weights: a scalar for all, (B,) or (B, 1)."""
    if sample_weight is None:
        return None
    if np.ndim(sample_weight) == 0 and not isinstance(sample_weight, np.ndarray):
        s = check_real(sample_weight, "sample_weight", low=0.0)
        return np.full(B, s, dtype)
    w = as_float_array(sample_weight, "sample_weight", dtype)
    if w.shape not in ((B,), (B, 1), ()):
        raise ValueError(f"sample_weight must be a number or have shape ({B},) or ({B}, 1), got {w.shape}")
    return np.ascontiguousarray(np.broadcast_to(w.reshape(-1), (B,)))


def _reduction_code(reduction) -> int:
    if reduction not in REDUCTIONS:
        valid = sorted(k for k in REDUCTIONS if k is not None) + [None]
        raise ValueError(f"Invalid value for argument `reduction`: expected one of {valid}, got {reduction!r}")
    return REDUCTIONS[reduction]


class Loss:
    """Base of the loss classes (Keras' ``keras.losses.Loss``).

    ``loss(y_true, y_pred, sample_weight=None)`` returns the reduced loss (a
    float), or the per-sample values for ``reduction=None``/``"none"``;
    ``loss.gradient(...)`` returns ``(loss, d loss / d y_pred)``.  What the
    training loop needs is ``c_spec``: ``(kind, reduction, from_logits,
    label_smoothing, delta)``, the fields of the C ``fo_loss_spec``."""

    kind = "mean_squared_error"  # the C loss this class computes
    from_logits = False
    label_smoothing = 0.0
    delta = 1.0

    def __init__(self, name: Optional[str] = None, reduction: Optional[str] = "sum_over_batch_size",
                 dtype=None):
        _reduction_code(reduction)
        self.name = name or self.kind
        self.reduction = reduction
        self.dtype = None if dtype is None else _dtype_of(dtype).name

    @property
    def code(self) -> int:
        """The C loss code (``fo_loss_spec.kind``)."""
        return CODES[self.kind]

    @property
    def c_spec(self) -> tuple[int, int, bool, float, float]:
        """``(kind, reduction, from_logits, label_smoothing, delta)`` as the C
        ``fo_loss_spec`` holds them."""
        return (self.code, REDUCTIONS[self.reduction], bool(self.from_logits),
                float(self.label_smoothing), float(self.delta))

    def _run(self, y_true, y_pred, sample_weight, want_grad: bool):
        y, p, w, shape = _batch(y_true, y_pred, sample_weight, self.kind == _SPARSE, self.dtype)
        if p.shape[1] == 1 and self.kind in ("categorical_crossentropy", _SPARSE):
            warnings.warn(f"In loss {self.kind}, expected y_pred.shape to be (batch_size, num_classes) "
                          f"with num_classes > 1. Received: y_pred.shape={shape}. Consider using "
                          "'binary_crossentropy' if you only have 2 classes.", SyntaxWarning, stacklevel=3)
        code, red, from_logits, ls, delta = self.c_spec
        grad = np.empty_like(p) if want_grad else None
        values = np.empty(p.shape[0], p.dtype) if red == REDUCTIONS["none"] else None
        value = _core.loss(code, y, p, w, grad, values, reduction=red, from_logits=from_logits,
                           label_smoothing=ls, delta=delta)
        out = values if values is not None else value
        return out, None if grad is None else grad.reshape(shape)

    def __call__(self, y_true, y_pred, sample_weight=None) -> Union[float, np.ndarray]:
        """The loss of the batch (see the module's docstring for the formulas)."""
        return self._run(y_true, y_pred, sample_weight, False)[0]

    def gradient(self, y_true, y_pred, sample_weight=None) -> tuple[Union[float, np.ndarray], np.ndarray]:
        """``(loss, d loss / d y_pred)``, the gradient shaped like ``y_pred``
        (for ``reduction="none"``: the gradient of the values' sum)."""
        return self._run(y_true, y_pred, sample_weight, True)

    def check_targets(self, y: np.ndarray, outputs: int) -> None:
        """Refuse training targets this loss cannot take, naming ``y_true`` and the
        first bad row: class indices outside ``[0, outputs)`` (sparse categorical),
        rows that are not distributions, entries >= 0 summing to 1 (categorical),
        targets outside [0, 1] (binary).  ``y``: the float32/float64 array fit
        trains on, (samples, outputs), or (samples,)/(samples, 1) class indices.
        The training loop checks once per fit, before the first step."""
        _core.check_targets(self.code, y, outputs, strict=True)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Loss":
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


def _check_axis(axis) -> None:
    if axis != -1:
        raise ValueError(f"axis must be -1 (the outputs of a (samples, outputs) array), got {axis!r}")


def _bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


class MeanSquaredError(Loss):
    """``mean((y_true - y_pred) ** 2)`` per sample (Keras' ``MeanSquaredError``)."""

    kind = "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(name, reduction, dtype)


class MeanAbsoluteError(Loss):
    """``mean(|y_true - y_pred|)`` per sample (Keras' ``MeanAbsoluteError``)."""

    kind = "mean_absolute_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(name, reduction, dtype)


class Huber(Loss):
    """Huber loss: ``0.5 e^2`` for ``|e| <= delta``, ``delta |e| - 0.5 delta^2``
    beyond, ``e = y_pred - y_true``, averaged per sample."""

    kind = "huber"

    def __init__(self, delta: float = 1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        self.delta = check_real(delta, "delta", low=0.0, low_open=True)
        super().__init__(name, reduction, dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


class LogCosh(Loss):
    """``log(cosh(y_pred - y_true))`` averaged per sample."""

    kind = "log_cosh"

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(name, reduction, dtype)


class _SmoothedCrossentropy(Loss):
    """The arguments binary and categorical cross-entropy share."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="sum_over_batch_size", name: Optional[str] = None, dtype=None):
        self.from_logits = _bool(from_logits, "from_logits")
        self.label_smoothing = check_real(label_smoothing, "label_smoothing", low=0.0, high=1.0)
        _check_axis(axis)
        self.axis = axis
        super().__init__(name, reduction, dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class BinaryCrossentropy(_SmoothedCrossentropy):
    """Binary cross-entropy of probabilities (clipped to ``[1e-7, 1 - 1e-7]``) or,
    with ``from_logits=True``, of logits in the stable form ``max(z, 0) - z y +
    log1p(exp(-|z|))``; ``label_smoothing`` moves targets to ``y (1 - ls) + ls / 2``."""

    kind = "binary_crossentropy"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(from_logits, label_smoothing, axis, reduction, name, dtype)


class CategoricalCrossentropy(_SmoothedCrossentropy):
    """Cross-entropy against one-hot (or soft) labels: ``-sum y log(p / sum p)``
    with clipping, or from logits ``sum y (logsumexp(z) - z)`` (stable for any
    logits); ``label_smoothing`` moves targets to ``y (1 - ls) + ls / C``."""

    kind = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(from_logits, label_smoothing, axis, reduction, name, dtype)


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with one integer class index per sample as the
    label (``(n,)`` or ``(n, 1)``, any real dtype holding whole numbers in
    ``[0, classes)``; anything else is refused)."""

    kind = _SPARSE

    def __init__(self, from_logits: bool = False, ignore_class: Optional[int] = None,
                 reduction="sum_over_batch_size", axis: int = -1,
                 name="sparse_categorical_crossentropy", dtype=None):
        self.from_logits = _bool(from_logits, "from_logits")
        if ignore_class is not None:
            raise ValueError("ignore_class is not supported; give those samples sample_weight 0")
        self.ignore_class = None
        _check_axis(axis)
        self.axis = axis
        super().__init__(name, reduction, dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": None,
                "axis": self.axis}


# -- the functions ------------------------------------------------------------------------

def mean_squared_error(y_true, y_pred, sample_weight=None, reduction="sum_over_batch_size"
                       ) -> Union[float, np.ndarray]:
    """``mean((y_true - y_pred) ** 2)`` over all elements (one C pass); with
    ``sample_weight``, the weighted mean over samples as in Keras; ``reduction``
    as :class:`Loss`."""
    return MeanSquaredError(reduction)(y_true, y_pred, sample_weight)


def mean_absolute_error(y_true, y_pred, sample_weight=None, reduction="sum_over_batch_size"
                        ) -> Union[float, np.ndarray]:
    """``mean(|y_true - y_pred|)`` over all elements (one C pass)."""
    return MeanAbsoluteError(reduction)(y_true, y_pred, sample_weight)


def huber(y_true, y_pred, delta: float = 1.0, sample_weight=None, reduction="sum_over_batch_size"
          ) -> Union[float, np.ndarray]:
    """The Huber loss (see :class:`Huber`), the batch mean."""
    return Huber(delta, reduction)(y_true, y_pred, sample_weight)


def log_cosh(y_true, y_pred, sample_weight=None, reduction="sum_over_batch_size"
             ) -> Union[float, np.ndarray]:
    """``log(cosh(y_pred - y_true))`` (see :class:`LogCosh`), the batch mean."""
    return LogCosh(reduction)(y_true, y_pred, sample_weight)


def binary_crossentropy(y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0,
                        axis: int = -1, sample_weight=None, reduction="sum_over_batch_size"
                        ) -> Union[float, np.ndarray]:
    """Binary cross-entropy (see :class:`BinaryCrossentropy`), the batch mean."""
    return BinaryCrossentropy(from_logits, label_smoothing, axis, reduction)(y_true, y_pred, sample_weight)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0,
                             axis: int = -1, sample_weight=None, reduction="sum_over_batch_size"
                             ) -> Union[float, np.ndarray]:
    """Categorical cross-entropy (see :class:`CategoricalCrossentropy`), the batch mean."""
    return CategoricalCrossentropy(from_logits, label_smoothing, axis, reduction)(
        y_true, y_pred, sample_weight)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False, ignore_class=None,
                                    axis: int = -1, sample_weight=None,
                                    reduction="sum_over_batch_size") -> Union[float, np.ndarray]:
    """Sparse categorical cross-entropy (see :class:`SparseCategoricalCrossentropy`)."""
    return SparseCategoricalCrossentropy(from_logits, ignore_class, reduction, axis)(
        y_true, y_pred, sample_weight)


# -- names ------------------------------------------------------------------------------

_CLASSES = {c.__name__: c for c in (MeanSquaredError, MeanAbsoluteError, Huber, LogCosh,
                                    BinaryCrossentropy, CategoricalCrossentropy,
                                    SparseCategoricalCrossentropy)}
_FUNCTIONS = {f.__name__: f for f in (mean_squared_error, mean_absolute_error, huber, log_cosh,
                                      binary_crossentropy, categorical_crossentropy,
                                      sparse_categorical_crossentropy)}
# Keras' aliases (lower case: names are looked up case-insensitively)
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "bce": "binary_crossentropy",
            "logcosh": "log_cosh"}


def get(identifier):
    """A loss from a name, config or object (Keras' ``losses.get``): a function's
    name or alias (``"mse"``, ``"mae"``, ``"bce"``, ``"binary_crossentropy"``...)
    gives the function; a class name (``"BinaryCrossentropy"``) or a config
    ``{"class_name": ..., "config": {...}}`` gives an instance; a ``Loss`` or a
    function is returned as it is; ``None`` gives None."""
    if identifier is None:
        return None
    if isinstance(identifier, Loss) or any(identifier is f for f in _FUNCTIONS.values()):
        return identifier
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown loss config {identifier!r}; class_name must be one of {sorted(_CLASSES)}")
        return cls.from_config(dict(identifier.get("config") or {}))
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        key = _ALIASES.get(identifier.lower(), identifier.lower())
        if key in _FUNCTIONS:
            return _FUNCTIONS[key]
    names = sorted(_FUNCTIONS) + sorted(_ALIASES) + sorted(_CLASSES)
    raise ValueError(f"unknown loss {identifier!r}; expected one of {names}")


def serialize(loss) -> Union[str, dict]:
    """A function's name, or ``{"class_name": ..., "config": ...}`` of a ``Loss``."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    if any(loss is f for f in _FUNCTIONS.values()):
        return loss.__name__
    raise ValueError(f"cannot serialize loss {loss!r}")


def deserialize(config):
    """The loss of :func:`serialize`'s output."""
    return get(config)


def as_loss(identifier) -> Loss:
    """The ``Loss`` object of any identifier :func:`get` takes (a function gives
    its class with the defaults and its Keras name): what ``compile`` reads the
    C loss spec from."""
    obj = get(identifier)
    if isinstance(obj, Loss):
        return obj
    if obj is None or not any(obj is f for f in _FUNCTIONS.values()):
        raise ValueError(f"loss {identifier!r} is not one of fastopt's losses; the C training loop "
                         f"runs only {sorted(_FUNCTIONS)}")
    cls = next(c for c in _CLASSES.values() if c.kind == obj.__name__)
    return cls()


def _training_loss_name(identifier) -> str:
    """The loss ``Sequential.compile`` can train with today: mean squared error
    (by name, alias, function or a ``MeanSquaredError`` with Keras' default
    reduction).  The other losses run through ``fo.losses`` and wait for the
    training loop's loss code."""
    try:
        loss = as_loss(identifier)
    except ValueError as e:
        raise ValueError(f"{e}; Sequential.fit trains with 'mean_squared_error'") from None
    if isinstance(loss, MeanSquaredError) and REDUCTIONS[loss.reduction] == REDUCTIONS["sum_over_batch_size"]:
        return "mean_squared_error"
    raise ValueError(f"loss {identifier!r}: Sequential.fit trains with 'mean_squared_error' only so "
                     f"far; {loss.kind} is available as fo.losses.{type(loss).__name__} for its values "
                     "and gradients")
