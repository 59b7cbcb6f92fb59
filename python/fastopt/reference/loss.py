"""NumPy twins of the activation, loss, metric and dropout kernels
(csrc/dense_impl.h, csrc/loss_impl.h): the obvious version of each, written
to be read.

Conventions are the kernels' and Keras 3's.  A prediction is ``(B, C)``: B
samples (rows) of C outputs.  ``l_b``, the loss of row b, is the mean over its
C outputs of an elementwise loss (MSE, MAE, Huber, log_cosh, BCE) or the
cross-entropy of the row (CCE, SCCE); the batch loss is ``sum_b w_b l_b``
reduced by Keras' ``reduction``: divided by B (``"sum_over_batch_size"``), by
``sum_b w_b`` (``"mean_with_sample_weight"``, 0 when that is 0), or not
(``"sum"``; ``"none"`` keeps the per-row ``w_b l_b``).

Arithmetic is done in the dtype of the arrays given, except sums (loss
values, metric accumulators), which are float64, as the kernels keep them.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = [
    "ACTIVATIONS", "LOSSES", "REDUCTIONS", "METRICS", "EPSILON",
    "act_forward", "act_backward", "act_needs_z", "default_param",
    "loss", "act_loss", "loss_fuses", "check_targets",
    "metric_acc_size", "metrics_update",
    "xoshiro_next", "dropout", "dropout_backward",
]

# the order of the C codes (csrc/fastopt.h)
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu",
               "gelu_tanh", "silu", "softplus", "softsign", "hard_sigmoid", "exponential")
LOSSES = ("mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "binary_crossentropy",
          "categorical_crossentropy", "sparse_categorical_crossentropy")
REDUCTIONS = ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none")
METRICS = ("mean_squared_error", "mean_absolute_error", "root_mean_squared_error", "accuracy",
           "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "r2_score")
EPSILON = 1e-7  # Keras' backend.epsilon()


def _name(value, table: Sequence[str], what: str) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return table[int(value)]
    if value not in table:
        raise ValueError(f"unknown {what} {value!r}; expected one of {table}")
    return value


def default_param(act) -> float:
    """Keras' default parameter: leaky_relu 0.2, elu 1.0, else 0."""
    return {"leaky_relu": 0.2, "elu": 1.0}.get(_name(act, ACTIVATIONS, "activation"), 0.0)


def act_needs_z(act) -> bool:
    """Whether the backward pass reads z (gelu, gelu_tanh, silu, softsign) rather than a."""
    return _name(act, ACTIVATIONS, "activation") in ("gelu", "gelu_tanh", "silu", "softsign")


def _cdf(z: np.ndarray) -> np.ndarray:
    """The normal CDF 0.5 (1 + erf(z / sqrt 2)), as 0.5 erfc(-z / sqrt 2) (no
    cancellation for z < 0), in z's dtype."""
    from math import erfc
    t = z.dtype.type
    half = np.vectorize(lambda v: erfc(float(-v * t(np.sqrt(0.5)))), otypes=[np.float64])(z)
    return t(0.5) * half.astype(z.dtype)


def _gelu_gate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s = 0.5 (1 + tanh u) = sigmoid(2u), and 1 - s, u = sqrt(2/pi) (z + 0.044715 z^3)."""
    t = z.dtype.type
    u2 = t(2) * (t(np.sqrt(2 / np.pi)) * (z + t(0.044715) * (z * z * z)))
    e = np.exp(-np.abs(u2))
    r = t(1) / (t(1) + e)
    return np.where(u2 >= 0, r, e * r), np.where(u2 >= 0, e * r, r)


def act_forward(z, act, param: Optional[float] = None) -> np.ndarray:
    """``act(z)``, elementwise; softmax over the last axis."""
    z = np.asarray(z)
    name = _name(act, ACTIVATIONS, "activation")
    t = z.dtype.type
    p = t(default_param(name) if param is None else param)
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "linear":
            return z.copy()
        if name == "relu":
            return np.where(z < 0, t(0), z)
        if name == "sigmoid":
            return t(1) / (t(1) + np.exp(-z))
        if name == "tanh":
            return np.tanh(z)
        if name == "softmax":
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if name == "leaky_relu":
            return np.where(z > 0, z, p * z)
        if name == "elu":
            return np.where(z > 0, z, p * np.expm1(z))
        if name == "gelu":
            return z * _cdf(z)
        if name == "gelu_tanh":
            return z * _gelu_gate(z)[0]
        if name == "silu":
            return z / (t(1) + np.exp(-z))
        if name == "softplus":
            return np.maximum(z, t(0)) + np.log1p(np.exp(-np.abs(z)))
        if name == "softsign":
            return z / (t(1) + np.abs(z))
        if name == "hard_sigmoid":
            return np.clip(z + t(3), t(0), t(6)) / t(6)
        return np.exp(z)  # exponential


def act_backward(da, z, a, act, param: Optional[float] = None) -> np.ndarray:
    """``da * act'(z)``; softmax: per row ``a * (da - sum(a * da))``.  ``a`` is
    ``act(z)``; ``z`` may be None unless :func:`act_needs_z`."""
    da = np.asarray(da)
    name = _name(act, ACTIVATIONS, "activation")
    t = da.dtype.type
    p = t(default_param(name) if param is None else param)
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "linear":
            return da.copy()
        if name == "relu":
            return np.where(a > 0, da, t(0))
        if name == "sigmoid":
            return da * (a * (t(1) - a))
        if name == "tanh":
            return da * (t(1) - a * a)
        if name == "softmax":
            return a * (da - (a * da).sum(axis=-1, keepdims=True))
        if name == "leaky_relu":
            return np.where(a > 0, da, da * p)
        if name == "elu":
            return np.where(a > 0, da, da * (a + p))
        if name == "gelu":
            pdf = np.exp(t(-0.5) * z * z) * t(1 / np.sqrt(2 * np.pi))
            return da * (_cdf(z) + z * pdf)
        if name == "gelu_tanh":  # d/dz z s = s + z 2 s (1 - s) beta (1 + 3 kappa z^2)
            s, sc = _gelu_gate(z)
            beta, kappa = t(np.sqrt(2 / np.pi)), t(0.044715)
            return da * (s + z * (t(2) * s * sc) * (beta * (t(1) + t(3) * kappa * (z * z))))
        if name == "silu":
            s = t(1) / (t(1) + np.exp(-z))
            return da * (s * (t(1) + z * (t(1) - s)))
        if name == "softplus":
            return da * -np.expm1(-a)
        if name == "softsign":
            return da / (t(1) + np.abs(z)) ** 2
        if name == "hard_sigmoid":
            return np.where((a > 0) & (a < 1), da / t(6), t(0))
        return da * a  # exponential


# -- losses ---------------------------------------------------------------------------

def _sigmoid(z: np.ndarray) -> np.ndarray:
    t = z.dtype.type
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, t(1) / (t(1) + e), e / (t(1) + e))


def _elementwise(kind: str, p: np.ndarray, y: np.ndarray, from_logits: bool, ls: float, delta: float):
    """(elementwise losses, d loss / d p), both (B, C) in p's dtype."""
    t = p.dtype.type
    e = p - y
    if kind == "mean_squared_error":
        return e * e, t(2) * e
    if kind == "mean_absolute_error":
        return np.abs(e), np.sign(e)
    if kind == "huber":
        d = t(delta)
        quad = np.abs(e) <= d
        return (np.where(quad, t(0.5) * e * e, d * np.abs(e) - t(0.5) * d * d),
                np.where(quad, e, d * np.sign(e)))
    if kind == "log_cosh":
        ae = np.abs(e)
        return ae + np.log1p(np.exp(t(-2) * ae)) - t(np.log(2)), np.tanh(e)
    # binary_crossentropy
    y = y * t(1 - ls) + t(0.5 * ls)
    if from_logits:
        return (np.maximum(p, t(0)) - p * y + np.log1p(np.exp(-np.abs(p))), _sigmoid(p) - y)
    lo = t(EPSILON)
    hi = t(1) - lo
    pc = np.clip(p, lo, hi)
    inside = (p >= lo) & (p <= hi)
    return (-(y * np.log(pc) + (t(1) - y) * np.log(t(1) - pc)),
            np.where(inside, (t(1) - y) / (t(1) - pc) - y / pc, t(0)))


def _crossentropy(kind: str, p: np.ndarray, y: np.ndarray, from_logits: bool, ls: float):
    """(row losses (B,) float64, d l_b / d p (B, C)) of categorical cross-entropy."""
    t = p.dtype.type
    B, C = p.shape
    if kind == "sparse_categorical_crossentropy":
        labels = y.reshape(B)
        ok = (labels >= 0) & (labels < C) & (np.floor(labels) == labels)
        target = np.zeros_like(p)
        target[np.arange(B)[ok], labels[ok].astype(np.int64)] = 1
    else:
        target = y * t(1 - ls) + t(ls / C)
        ok = np.ones(B, bool)
    if from_logits:
        m = p.max(axis=1, keepdims=True)
        log_s = np.log(np.exp(p - m).astype(np.float64).sum(axis=1, keepdims=True))
        rows = (target.astype(np.float64) * ((m - p).astype(np.float64) + log_s)).sum(axis=1)
        prob = (np.exp(p - m).astype(np.float64) * np.exp(-log_s)).astype(p.dtype)
        ysum = target.astype(np.float64).sum(axis=1, keepdims=True).astype(p.dtype)
        grad = prob * ysum - target
    else:
        total = p.astype(np.float64).sum(axis=1, keepdims=True).astype(p.dtype)
        q = p / total
        lo = t(EPSILON)
        hi = t(1) - lo
        inside = (q >= lo) & (q <= hi)
        rows = -(target.astype(np.float64) * np.log(np.clip(q, lo, hi)).astype(np.float64)).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dq = np.where(inside, -target / q, t(0))
        dot = -np.where(inside, target, t(0)).sum(axis=1, keepdims=True)
        grad = (dq - dot) / total
    rows = np.where(ok, rows, np.nan)
    grad = np.where(ok[:, None], grad, t(np.nan))
    return rows, grad


def loss(kind, y_true, y_pred, sample_weight=None, reduction="sum_over_batch_size",
         from_logits: bool = False, label_smoothing: float = 0.0, delta: float = 1.0
         ) -> tuple[float, np.ndarray, np.ndarray]:
    """``(reduced loss, d loss / d y_pred, values)`` of a batch ``y_pred`` (B, C);
    ``y_true`` (B, C), or B class indices for sparse_categorical_crossentropy;
    ``values`` (B,) are ``w_b l_b``.  Nothing given is written."""
    kind = _name(kind, LOSSES, "loss")
    reduction = _name(reduction, REDUCTIONS, "reduction")
    p = np.asarray(y_pred)
    B, C = p.shape
    y = np.asarray(y_true, dtype=p.dtype)
    w = np.ones(B) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(B)
    if B == 0 or C == 0:
        return 0.0, np.zeros_like(p), np.zeros(B, p.dtype)
    if kind in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        rows, drow = _crossentropy(kind, p, y.reshape(B, -1), from_logits, label_smoothing)
        per_elem_scale = 1.0
    else:
        elem, drow = _elementwise(kind, p, y.reshape(B, C), from_logits, label_smoothing, delta)
        rows = elem.astype(np.float64).sum(axis=1) / C
        per_elem_scale = 1.0 / C
    total = float(np.sum(w * rows))
    if reduction == "sum_over_batch_size":
        scale = 1.0 / B
    elif reduction == "mean_with_sample_weight":
        wt = float(w.sum()) if sample_weight is not None else float(B)
        scale = 1.0 / wt if wt != 0 else 0.0
    else:
        scale = 1.0
    coef = (scale * w * per_elem_scale).astype(p.dtype)[:, None]
    grad = coef * drow
    return total * scale, grad, (w * rows).astype(p.dtype)


def loss_fuses(kind, act, from_logits: bool = False) -> bool:
    """Whether ``act`` + ``kind`` is computed from the logits in one stable form:
    sigmoid + binary_crossentropy, softmax + (sparse_)categorical_crossentropy."""
    kind = _name(kind, LOSSES, "loss")
    act = _name(act, ACTIVATIONS, "activation")
    return not from_logits and ((kind == "binary_crossentropy" and act == "sigmoid") or (
        kind in ("categorical_crossentropy", "sparse_categorical_crossentropy") and act == "softmax"))


def act_loss(kind, y_true, z, act, act_param: Optional[float] = None, sample_weight=None,
             reduction="sum_over_batch_size", from_logits: bool = False,
             label_smoothing: float = 0.0, delta: float = 1.0) -> tuple[float, np.ndarray, np.ndarray]:
    """``(loss, d loss / d z, values)`` of ``act(z)``: the logits form where
    :func:`loss_fuses`, else the loss of ``a = act(z)`` and ``act_backward``."""
    z = np.asarray(z)
    kw = dict(sample_weight=sample_weight, reduction=reduction, label_smoothing=label_smoothing,
              delta=delta)
    if loss_fuses(kind, act, from_logits):
        return loss(kind, y_true, z, from_logits=True, **kw)
    a = act_forward(z, act, act_param)
    value, da, values = loss(kind, y_true, a, from_logits=from_logits, **kw)
    return value, act_backward(da, z, a, act, act_param), values


def check_targets(kind, y_true, n_classes: int, strict: bool = True) -> int:
    """The first row that is no target of ``kind`` (B if all are): class indices
    in [0, n_classes) for SCCE; with ``strict``, CCE rows of entries >= 0 summing
    to 1 (within 1e-3) and BCE targets in [0, 1]."""
    kind = _name(kind, LOSSES, "loss")
    y = np.asarray(y_true)
    B = y.shape[0]
    y = _rows(y, B)
    if kind == "sparse_categorical_crossentropy":
        v = y[:, 0]
        bad = ~((v >= 0) & (v < n_classes) & (np.floor(v) == v))
    elif strict and kind == "categorical_crossentropy":
        bad = ~((y >= 0).all(axis=1) & (np.abs(y.astype(np.float64).sum(axis=1) - 1) <= 1e-3))
    elif strict and kind == "binary_crossentropy":
        bad = ~((y >= 0) & (y <= 1)).all(axis=1)
    else:
        return B
    return int(np.argmax(bad)) if bad.any() else B


# -- metrics --------------------------------------------------------------------------

def metric_acc_size(kind, C: int) -> int:
    """Accumulator doubles of a metric: ``[sum w v, sum w]``, or ``4 C + 1`` for r2."""
    return 4 * C + 1 if _name(kind, METRICS, "metric") == "r2_score" else 2


def _rows(y: np.ndarray, B: int) -> np.ndarray:
    """y as (B, columns): (B,) is one column."""
    return y.reshape(B, y.shape[1] if y.ndim == 2 else 1)


def _first_argmax(a: np.ndarray) -> np.ndarray:
    """argmax per row, NaN entries passed over (first of equal maxima)."""
    filled = np.where(np.isnan(a), -np.inf, a)
    return filled.argmax(axis=1)


def metrics_update(acc, metrics, y_true, y_pred, sample_weight=None) -> np.ndarray:
    """``acc`` plus one batch: for each ``(kind, threshold, k)`` of ``metrics``, the
    row values ``v_b`` weighted: ``[acc0 + sum w_b v_b, acc1 + sum w_b]``, or r2's
    per-output sums of w y, w y^2, w e^2, w and the count of rows with w != 0.
    Returns a new array."""
    acc = np.array(acc, dtype=np.float64)
    p = np.asarray(y_pred)
    B, C = p.shape
    y = _rows(np.asarray(y_true, dtype=p.dtype), B)
    w = np.ones(B) if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(B)
    pd, yd = p.astype(np.float64), y.astype(np.float64)
    off = 0
    for kind, threshold, k in metrics:
        name = _name(kind, METRICS, "metric")
        if name == "r2_score":
            e2 = (pd - yd) ** 2
            acc[off:off + C] += (w[:, None] * yd).sum(axis=0)
            acc[off + C:off + 2 * C] += (w[:, None] * yd * yd).sum(axis=0)
            acc[off + 2 * C:off + 3 * C] += (w[:, None] * e2).sum(axis=0)
            acc[off + 3 * C:off + 4 * C] += w.sum()
            acc[off + 4 * C] += np.count_nonzero(w)
            off += 4 * C + 1
            continue
        if name in ("mean_squared_error", "root_mean_squared_error"):
            v = ((pd - yd) ** 2).mean(axis=1)
        elif name == "mean_absolute_error":
            v = np.abs(pd - yd).mean(axis=1)
        elif name == "accuracy":
            v = (y == p).mean(axis=1)
        elif name == "binary_accuracy":
            v = (y == (p > p.dtype.type(threshold)).astype(p.dtype)).mean(axis=1)
        elif name == "categorical_accuracy":
            v = (_first_argmax(y) == _first_argmax(p)).astype(np.float64)
        elif name == "sparse_categorical_accuracy":
            v = (y[:, 0] == _first_argmax(p).astype(p.dtype)).astype(np.float64)
        else:  # top_k_categorical_accuracy: ties at the boundary count in
            pt = p[np.arange(B), _first_argmax(y)]
            above = (p > pt[:, None]).sum(axis=1)
            v = ((above < k) & ~np.isnan(pt)).astype(np.float64)
        acc[off] += float(np.sum(w * v))
        acc[off + 1] += float(np.sum(w))
        off += 2
    return acc


# -- dropout --------------------------------------------------------------------------

_M64 = (1 << 64) - 1


def xoshiro_next(state) -> int:
    """One output of xoshiro256** (Blackman and Vigna), advancing ``state`` (a
    ``uint64`` array of 4, as ``_core.rng_seed`` fills it) in place."""
    s = [int(v) for v in state]

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & _M64

    result = (rotl((s[1] * 5) & _M64, 7) * 9) & _M64
    t = (s[1] << 17) & _M64
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = rotl(s[3], 45)
    state[:] = np.array(s, dtype=np.uint64)
    return result


def dropout(x, mask_shape: tuple, rate: float, state) -> tuple[np.ndarray, np.ndarray]:
    """``(x * mask, mask)``: the mask (``mask_shape``, broadcast over x) holds
    ``1 / (1 - rate)`` where a 53-bit uniform ``u >= rate`` (one xoshiro draw per
    entry, row-major), else 0; ``rate`` 0 draws nothing and keeps all, ``rate``
    1 drops all.  ``state`` advances in place."""
    x = np.asarray(x)
    t = x.dtype.type
    n = int(np.prod(mask_shape))
    if rate <= 0:
        mask = np.ones(mask_shape, x.dtype)
    else:
        scale = t(1.0 / (1.0 - rate)) if rate < 1 else t(0)
        u = np.array([(xoshiro_next(state) >> 11) * 2.0 ** -53 for _ in range(n)])
        mask = np.where(u >= rate, scale, t(0)).astype(x.dtype).reshape(mask_shape)
    return x * mask, mask


def dropout_backward(dout, mask) -> np.ndarray:
    """``dout * mask`` (broadcast)."""
    return np.asarray(dout) * np.asarray(mask)
