"""Metrics by their Keras 3 names: objects that accumulate over batches and
functions that score one set of predictions, all from C sums taken in one pass.

    m = fo.metrics.SparseCategoricalAccuracy()
    m.update_state(y_true, y_pred)          # per batch; sample_weight too
    m.result(); m.reset_state()
    fo.metrics.mean_squared_error(y_test, y_pred)     # scikit-learn's call, a float

Each metric but R2 is a weighted mean over samples of a per-sample value ``v_b``
(the mean over the sample's outputs where there are several):

==================================  ===============================================
``mean_squared_error``              ``(p - y)^2``
``mean_absolute_error``             ``|p - y|``
``root_mean_squared_error``         the square root of the mean of ``(p - y)^2``
``accuracy``                        ``y == p``
``binary_accuracy``                 ``y == (p > threshold)`` (threshold 0.5)
``categorical_accuracy``            ``argmax y == argmax p``
``sparse_categorical_accuracy``     ``y == argmax p`` (``y`` a class index)
``top_k_categorical_accuracy``      ``argmax y`` among the ``k`` (5) largest ``p``
                                    (ties at the boundary count in)
``r2_score``                        ``1 - sum w (y - p)^2 / sum w (y - mean_w y)^2``
                                    per output, averaged (Keras' ``R2Score``)
==================================  ===============================================

``result() = sum_b w_b v_b / sum_b w_b`` (0 before any sample), ``w_b`` the
sample weights (1 by default; finite and >= 0).  ``(n,)`` and ``(n, 1)`` align
sample by sample.  NaN or inf in the inputs is refused.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._checks import check_int, check_real
from .losses import _batch, _dtype_of

__all__ = [
    "Metric", "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError", "Accuracy",
    "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
    "R2Score",
    "mean_squared_error", "mean_absolute_error", "root_mean_squared_error", "accuracy",
    "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "r2_score", "get", "CODES",
]

CODES: dict[str, int] = dict(_core.codes()["metrics"])  # metric name -> C code


class Metric:
    """Base of the metric objects (Keras' ``keras.metrics.Metric``):
    ``update_state(y_true, y_pred, sample_weight=None)`` adds a batch,
    ``result()`` reads the value, ``reset_state()`` starts over; calling the
    object does an update and returns the result.  ``c_spec`` is ``(kind,
    threshold, k)``, the C ``fo_metric_spec`` the training loop sums with."""

    kind = "mean_squared_error"
    threshold = 0.5
    k = 5

    def __init__(self, name: Optional[str] = None, dtype=None):
        self.name = name or self.kind
        self.dtype = None if dtype is None else _dtype_of(dtype).name
        self._acc: Optional[np.ndarray] = None

    @property
    def c_spec(self) -> tuple[int, float, int]:
        return (CODES[self.kind], float(self.threshold), int(self.k))

    def _sums(self, y_true, y_pred, sample_weight) -> np.ndarray:
        """This batch's accumulator (new zeros, so a refused batch changes nothing)."""
        y, p, w, _ = _batch(y_true, y_pred, sample_weight, self.kind == "sparse_categorical_accuracy",
                            self.dtype, allow_empty=True)
        C = p.shape[1]
        acc = np.zeros(4 * C + 1 if self.kind == "r2_score" else 2)
        _core.metrics_update(acc, (self.c_spec,), y, p, w)
        return acc

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add one batch (``sample_weight``: a number, or one weight per sample)."""
        acc = self._sums(y_true, y_pred, sample_weight)
        if self._acc is None:
            self._acc = acc
        elif self._acc.shape != acc.shape:
            raise ValueError(f"{self.name}: y_pred has {(acc.size - 1) // 4} outputs but earlier batches "
                             f"had {(self._acc.size - 1) // 4}")
        else:
            self._acc += acc

    def reset_state(self) -> None:
        self._acc = None

    def result(self) -> float:
        """``sum w v / sum w``; 0 before any sample (Keras' divide_no_nan)."""
        if self._acc is None or self._acc[1] == 0:
            return 0.0
        return float(self._acc[0] / self._acc[1])

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Metric":
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class MeanSquaredError(Metric):
    """Mean of ``(y_pred - y_true)^2`` over samples (and outputs)."""
    kind = "mean_squared_error"

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(name, dtype)


class MeanAbsoluteError(Metric):
    """Mean of ``|y_pred - y_true|``."""
    kind = "mean_absolute_error"

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(name, dtype)


class RootMeanSquaredError(Metric):
    """``sqrt(mean((y_pred - y_true)^2))``."""
    kind = "root_mean_squared_error"

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name, dtype)

    def result(self) -> float:
        return math.sqrt(super().result())


class Accuracy(Metric):
    """How often ``y_pred`` equals ``y_true`` exactly (elementwise)."""
    kind = "accuracy"

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name, dtype)


class BinaryAccuracy(Metric):
    """How often ``(y_pred > threshold)`` equals the 0/1 label."""
    kind = "binary_accuracy"

    def __init__(self, name="binary_accuracy", dtype=None, threshold: float = 0.5):
        self.threshold = check_real(threshold, "threshold")
        super().__init__(name, dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    """How often the largest prediction is at the one-hot label's class."""
    kind = "categorical_accuracy"

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(name, dtype)


class SparseCategoricalAccuracy(Metric):
    """How often the largest prediction is at the class index ``y_true``."""
    kind = "sparse_categorical_accuracy"

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(name, dtype)


class TopKCategoricalAccuracy(Metric):
    """How often the one-hot label's class is among the ``k`` largest predictions."""
    kind = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name="top_k_categorical_accuracy", dtype=None):
        self.k = check_int(k, "k", low=1)
        super().__init__(name, dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class R2Score(Metric):
    """The coefficient of determination, per output from the weighted sums of
    ``y``, ``y^2`` and ``(y - p)^2`` (Keras' ``R2Score``): ``class_aggregation``
    ``"uniform_average"`` (default), ``"variance_weighted_average"`` or ``None``
    (one score per output); ``num_regressors > 0`` gives the adjusted R2."""
    kind = "r2_score"

    def __init__(self, class_aggregation: Optional[str] = "uniform_average", num_regressors: int = 0,
                 name="r2_score", dtype=None):
        valid = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in valid:
            raise ValueError(f"Invalid value for argument `class_aggregation`. Expected one of {valid}. "
                             f"Received: class_aggregation={class_aggregation}")
        self.class_aggregation = class_aggregation
        self.num_regressors = check_int(num_regressors, "num_regressors", low=0)
        super().__init__(name, dtype)

    def result(self) -> Union[float, np.ndarray]:
        if self._acc is None:
            return 0.0
        C = (self._acc.size - 1) // 4
        s, s2, res, count = (self._acc[i * C:(i + 1) * C] for i in range(4))
        n = self._acc[4 * C]
        with np.errstate(divide="ignore", invalid="ignore"):
            total = s2 - s * (s / count)
            raw = 1 - res / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            r2 = float(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            r2 = float(np.sum(total * raw) / np.sum(total))
        else:
            r2 = raw
        p = self.num_regressors
        if p:
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 score. "
                              "Falling back to standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                              stacklevel=2)
            else:
                r2 = 1 - (1 - r2) * (n - 1) / (n - p - 1)
        return r2

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


# -- the functions (scikit-learn's call: one set of predictions, a float) -----------------

def mean_squared_error(y_true, y_pred, sample_weight=None) -> float:
    """``mean((y_true - y_pred) ** 2)`` over all elements (one C pass); weighted by
    sample with ``sample_weight``."""
    return _score(MeanSquaredError, y_true, y_pred, sample_weight)


def mean_absolute_error(y_true, y_pred, sample_weight=None) -> float:
    """``mean(|y_true - y_pred|)`` over all elements (one C pass)."""
    return _score(MeanAbsoluteError, y_true, y_pred, sample_weight)


def root_mean_squared_error(y_true, y_pred, sample_weight=None) -> float:
    """``sqrt(mean((y_true - y_pred) ** 2))``."""
    return _score(RootMeanSquaredError, y_true, y_pred, sample_weight)


def accuracy(y_true, y_pred, sample_weight=None) -> float:
    """The fraction of elements where ``y_pred == y_true``."""
    return _score(Accuracy, y_true, y_pred, sample_weight)


def binary_accuracy(y_true, y_pred, threshold: float = 0.5, sample_weight=None) -> float:
    """The fraction of ``(y_pred > threshold) == y_true``."""
    return _score(BinaryAccuracy, y_true, y_pred, sample_weight, threshold=threshold)


def categorical_accuracy(y_true, y_pred, sample_weight=None) -> float:
    """The fraction of samples with ``argmax y_pred == argmax y_true`` (one-hot labels)."""
    return _score(CategoricalAccuracy, y_true, y_pred, sample_weight)


def sparse_categorical_accuracy(y_true, y_pred, sample_weight=None) -> float:
    """The fraction of samples with ``argmax y_pred == y_true`` (class indices)."""
    return _score(SparseCategoricalAccuracy, y_true, y_pred, sample_weight)


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5, sample_weight=None) -> float:
    """The fraction of samples whose one-hot class is among the k largest predictions."""
    return _score(TopKCategoricalAccuracy, y_true, y_pred, sample_weight, k=k)


def r2_score(y_true, y_pred, sample_weight=None) -> float:
    """R2 averaged over the outputs (Keras' ``R2Score``; scikit-learn's
    ``r2_score`` except that constant targets give 0 or NaN rather than 1)."""
    return _score(R2Score, y_true, y_pred, sample_weight)


def _score(cls, y_true, y_pred, sample_weight, **kwargs) -> float:
    m = cls(**kwargs)
    m.update_state(y_true, y_pred, sample_weight)
    if m._acc is None or (cls is not R2Score and m._acc[1] == 0):
        raise ValueError(f"{m.name} of empty arrays")
    return m.result()


# -- names ----------------------------------------------------------------------------

_CLASSES = {c.__name__: c for c in (MeanSquaredError, MeanAbsoluteError, RootMeanSquaredError,
                                    Accuracy, BinaryAccuracy, CategoricalAccuracy,
                                    SparseCategoricalAccuracy, TopKCategoricalAccuracy, R2Score)}
_BY_NAME = {c.kind: c for c in _CLASSES.values()}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "rmse": "root_mean_squared_error",
            "acc": "accuracy"}
_FUNCTIONS = (mean_squared_error, mean_absolute_error, root_mean_squared_error, accuracy,
              binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
              top_k_categorical_accuracy, r2_score)


def get(identifier) -> Metric:
    """A new metric object from a name (``"mse"``, ``"accuracy"``,
    ``"SparseCategoricalAccuracy"``...), a config ``{"class_name": ..., "config":
    ...}`` or a function of this module; a ``Metric`` is returned as it is.
    (``compile``'s ``"accuracy"`` picks the binary, categorical or sparse form
    from the loss and shapes, as Keras does: see :func:`accuracy_for`.)"""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown metric config {identifier!r}")
        return cls.from_config(dict(identifier.get("config") or {}))
    if callable(identifier) and any(identifier is f for f in _FUNCTIONS):
        return _BY_NAME[identifier.__name__]()
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        key = _ALIASES.get(identifier.lower(), identifier.lower())
        if key in _BY_NAME:
            return _BY_NAME[key](name=identifier)
    names = sorted(_BY_NAME) + sorted(_ALIASES) + sorted(_CLASSES)
    raise ValueError(f"unknown metric {identifier!r}; expected one of {names}")


def accuracy_for(name: str, y_cols: int, outputs: int, sparse_labels: bool = False) -> Metric:
    """Keras' ``compile(metrics=["accuracy"])``: binary accuracy for one output,
    sparse categorical accuracy for class-index labels (one label column for
    several outputs), else categorical accuracy; the metric keeps ``name``."""
    if outputs == 1:
        return BinaryAccuracy(name=name)
    if sparse_labels or (y_cols == 1 and outputs > 1):
        return SparseCategoricalAccuracy(name=name)
    return CategoricalAccuracy(name=name)


# metric name -> which error sum Sequential's training loop reads today ("se", "ae")
_TRAINING_KINDS = {"mse": "se", "mean_squared_error": "se", "mae": "ae", "mean_absolute_error": "ae"}


def _training_metric_kind(name) -> str:
    """``"se"`` or ``"ae"``: the metrics ``Sequential.fit`` reports today (by name
    or function); the others wait for the training loop's metric sums."""
    if name is mean_squared_error:
        return "se"
    if name is mean_absolute_error:
        return "ae"
    if isinstance(name, str) and name.lower() in _TRAINING_KINDS:
        return _TRAINING_KINDS[name.lower()]
    raise ValueError(f"metric {name!r}: Sequential.fit reports {sorted(_TRAINING_KINDS)} so far; the "
                     "other metrics run through fo.metrics objects")
