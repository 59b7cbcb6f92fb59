"""NumPy twins of the dense, loss and training-loop kernels (csrc/dense_impl.h,
csrc/train_impl.h): the obvious version of each, written to be read.

Conventions are the kernels' (and Keras'): a kernel has shape ``(inputs,
units)`` and a layer computes ``activation(x @ kernel + bias)``; a network's
weights are a list in Keras' ``get_weights()`` order, ``[kernel0, bias0,
kernel1, bias1, ...]``, where a layer without bias simply has no bias entry.
The loss is Keras' ``mean_squared_error`` (the mean over every output of every
sample; with per-sample weights ``w``, ``sum_i w_i * loss_i / n``) plus the
kernel regularizers' penalties ``l1 * sum|k| + l2 * sum k**2``.

The arithmetic is done in the dtype of the arrays given (NumPy keeps float32
as float32), except loss values and error sums, which are Python floats
(float64), as the kernels accumulate them.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from . import loss as _loss

__all__ = [
    "ACTIVATION_NAMES",
    "gemm",
    "activate",
    "activation_derivative",
    "dense_forward",
    "dense_backward",
    "mse",
    "split_weights",
    "net_forward",
    "net_loss",
    "net_gradients",
    "batches",
    "fit",
]

# the order of the C activation codes (FO_LINEAR, FO_RELU, FO_SIGMOID, FO_TANH, ...):
# the first four are written out below, the others come from .loss
ACTIVATION_NAMES = _loss.ACTIVATIONS


def _act_name(activation: Union[None, str, int]) -> str:
    """``None``/``"linear"``/``"relu"``/``"sigmoid"``/``"tanh"`` or a C activation code."""
    if activation is None:
        return "linear"
    if isinstance(activation, (int, np.integer)) and not isinstance(activation, bool):
        return ACTIVATION_NAMES[int(activation)]
    name = str(activation).lower()
    if name not in ACTIVATION_NAMES:
        raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATION_NAMES}")
    return name


def gemm(trans_a: bool, trans_b: bool, alpha: float, a, b, beta: float, c) -> np.ndarray:
    """``alpha * op(a) @ op(b) + beta * c`` (op = transpose where asked), as a new
    array; ``c`` is not written.  ``beta == 0`` ignores ``c`` (NaN in it is not read),
    as BLAS does."""
    a, b, c = np.asarray(a), np.asarray(b), np.asarray(c)
    dtype = c.dtype
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    prod = (opa @ opb).astype(dtype, copy=False) * dtype.type(alpha)
    if beta == 0:
        return np.ascontiguousarray(prod, dtype=dtype)
    return np.ascontiguousarray(prod + dtype.type(beta) * c, dtype=dtype)


def activate(z, activation) -> np.ndarray:
    """``activation(z)`` elementwise: linear, relu ``max(z, 0)`` (NaN stays NaN),
    sigmoid ``1 / (1 + exp(-z))``, tanh."""
    z = np.asarray(z)
    name = _act_name(activation)
    if name not in ACTIVATION_NAMES[:4]:
        return _loss.act_forward(z, name)
    if name == "linear":
        return z.copy()
    if name == "relu":
        return np.where(z < 0, z.dtype.type(0), z)
    if name == "sigmoid":
        one = z.dtype.type(1)
        with np.errstate(over="ignore"):
            return one / (one + np.exp(-z))
    return np.tanh(z)


def activation_derivative(a, activation) -> np.ndarray:
    """``activation'(z)`` written from the output ``a = activation(z)``: linear 1,
    relu ``[a > 0]``, sigmoid ``a (1 - a)``, tanh ``1 - a**2``."""
    a = np.asarray(a)
    name = _act_name(activation)
    if name not in ACTIVATION_NAMES[:4]:
        raise ValueError(f"{name}'s derivative is not written from its output here: use "
                         "fastopt.reference.act_backward")
    one = a.dtype.type(1)
    if name == "linear":
        return np.ones_like(a)
    if name == "relu":
        return (a > 0).astype(a.dtype)
    if name == "sigmoid":
        return a * (one - a)
    return one - a * a


def dense_forward(x, kernel, bias: Optional[np.ndarray], activation) -> np.ndarray:
    """``activation(x @ kernel + bias)``; ``bias`` may be None.  x (B, IN),
    kernel (IN, OUT), bias (OUT,) -> (B, OUT)."""
    x, kernel = np.asarray(x), np.asarray(kernel)
    z = x @ kernel
    if bias is not None:
        z = z + np.asarray(bias)
    return activate(z, activation)


def dense_backward(dout, x, kernel, out, activation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backprop through one dense layer from ``dout = dL/d(out)`` and the forward's
    output ``out``: ``dz = dout * activation'(z)``, ``dx = dz @ kernel.T``,
    ``dkernel = x.T @ dz``, ``dbias = sum over rows of dz``.  Returns
    ``(dx, dkernel, dbias)``; nothing given is written."""
    dout, x, kernel = np.asarray(dout), np.asarray(x), np.asarray(kernel)
    name = _act_name(activation)
    if name in ACTIVATION_NAMES[:4]:
        dz = dout * activation_derivative(out, activation)
    elif _loss.act_needs_z(name):
        raise ValueError(f"the backward pass of {name} needs the pre-activation: use "
                         "fastopt.reference.act_backward")
    else:  # softmax's is a row-wise Jacobian product, not elementwise
        dz = _loss.act_backward(dout, None, np.asarray(out), name)
    return dz @ kernel.T, x.T @ dz, dz.sum(axis=0)


def mse(pred, y) -> tuple[float, float]:
    """``(sum of squared errors, sum of absolute errors)`` of ``pred - y`` over all
    elements (the arrays are compared element by element, flattened), as floats."""
    e = (np.asarray(pred).ravel() - np.asarray(y).ravel()).astype(np.float64)
    return float(np.sum(e * e)), float(np.sum(np.abs(e)))


def split_weights(weights: Sequence[np.ndarray]) -> list[tuple[np.ndarray, Optional[np.ndarray]]]:
    """``[(kernel, bias or None), ...]`` per layer from a ``get_weights()``-ordered
    list: every 2-d array starts a layer, a 1-d array after it is its bias."""
    layers: list[list] = []
    for i, w in enumerate(weights):
        w = np.asarray(w) if not isinstance(w, np.ndarray) else w
        if w.ndim == 2:
            if layers and layers[-1][0].shape[1] != w.shape[0]:
                raise ValueError(f"weights[{i}] has {w.shape[0]} inputs but the layer before has "
                                 f"{layers[-1][0].shape[1]} units")
            layers.append([w, None])
        elif w.ndim == 1:
            if not layers or layers[-1][1] is not None or layers[-1][0].shape[1] != w.shape[0]:
                raise ValueError(f"weights[{i}] (shape {w.shape}) is not the bias of the kernel before it")
            layers[-1][1] = w
        else:
            raise ValueError(f"weights[{i}] must be 1-d or 2-d, got shape {w.shape}")
    return [(k, b) for k, b in layers]


def _per_layer(value, n_layers: int, name: str) -> list[float]:
    if value is None:
        return [0.0] * n_layers
    if np.ndim(value) == 0:
        return [float(value)] * n_layers
    value = [0.0 if v is None else float(v) for v in value]
    if len(value) != n_layers:
        raise ValueError(f"{name} has {len(value)} entries for {n_layers} layers")
    return value


def _forward_all(layers, activations, x) -> list[np.ndarray]:
    """The input and every layer's output: ``[x, a0, a1, ...]``."""
    if len(activations) != len(layers):
        raise ValueError(f"{len(activations)} activations for {len(layers)} layers")
    outs = [np.asarray(x)]
    for (kernel, bias), act in zip(layers, activations):
        outs.append(dense_forward(outs[-1], kernel, bias, act))
    return outs


def net_forward(weights: Sequence[np.ndarray], activations: Sequence, x) -> np.ndarray:
    """The network's output for ``x`` (B, inputs): the layers of ``weights``
    (Keras' ``get_weights()`` order) applied in turn."""
    return _forward_all(split_weights(weights), activations, x)[-1]


def _penalty(layers, l1, l2) -> float:
    total = 0.0
    for (kernel, _), a, b in zip(layers, l1, l2):
        k = kernel.astype(np.float64)
        total += a * float(np.sum(np.abs(k))) + b * float(np.sum(k * k))
    return total


def _weighted_sse(pred, y, sample_weight) -> float:
    """``sum_i w_i * sum_j (pred_ij - y_ij)**2`` (w = 1 without weights), as a float."""
    if sample_weight is None:
        return mse(pred, y)[0]
    e = (np.asarray(pred) - np.asarray(y)).astype(np.float64)
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    return float(np.sum(w * np.sum(e * e, axis=1)))


def net_loss(weights: Sequence[np.ndarray], activations: Sequence, l1, l2, x, y,
             sample_weight=None) -> float:
    """``sum_i w_i * mean_j (net(x)_ij - y_ij)**2 / n + sum over layers of
    l1*sum|kernel| + l2*sum kernel**2`` (Keras' mean squared error with its
    "sum_over_batch_size" reduction: ``w`` is ``sample_weight``, 1 without;
    ``l1``, ``l2``: one number for every layer, or one per layer)."""
    layers = split_weights(weights)
    l1 = _per_layer(l1, len(layers), "l1")
    l2 = _per_layer(l2, len(layers), "l2")
    pred = net_forward(weights, activations, x)
    y = np.asarray(y).reshape(pred.shape)
    return _weighted_sse(pred, y, sample_weight) / pred.size + _penalty(layers, l1, l2)


def net_gradients(weights: Sequence[np.ndarray], activations: Sequence, use_bias, l1, l2, x, y,
                  sample_weight=None) -> tuple[float, list[np.ndarray]]:
    """``(loss, grads)`` of :func:`net_loss` for the batch ``x, y`` (and per-sample
    weights); ``grads`` are new arrays in the order and shapes of ``weights``:
    ``d loss / d pred_ij = 2 w_i (pred_ij - y_ij) / pred.size``.  The regularizers add
    ``l1 * sign(kernel) + 2 * l2 * kernel`` to each kernel's gradient.

    ``use_bias`` (one bool, or one per layer) is checked against the weights:
    a layer has a bias entry exactly when it uses one."""
    layers = split_weights(weights)
    L = len(layers)
    if np.ndim(use_bias) == 0:
        use_bias = [bool(use_bias)] * L
    if [b is not None for _, b in layers] != [bool(u) for u in use_bias]:
        raise ValueError(f"use_bias {list(use_bias)} does not match the weights given")
    l1 = _per_layer(l1, L, "l1")
    l2 = _per_layer(l2, L, "l2")
    outs = _forward_all(layers, activations, x)
    pred = outs[-1]
    y = np.asarray(y, dtype=pred.dtype).reshape(pred.shape)
    loss = _weighted_sse(pred, y, sample_weight) / pred.size + _penalty(layers, l1, l2)

    dtype = pred.dtype.type
    if sample_weight is None:
        d = (pred - y) * dtype(2.0 / pred.size)  # d loss / d pred
    else:
        w = np.asarray(sample_weight, dtype=np.float64).reshape(-1, 1)
        d = (pred - y) * (2.0 / pred.size * w).astype(pred.dtype)
    per_layer = [None] * L
    for l in range(L - 1, -1, -1):
        kernel, bias = layers[l]
        dx, dkernel, dbias = dense_backward(d, outs[l], kernel, outs[l + 1], activations[l])
        if l1[l] or l2[l]:
            dkernel = dkernel + (dtype(l1[l]) * np.sign(kernel) + dtype(2 * l2[l]) * kernel)
        per_layer[l] = (dkernel, dbias if bias is not None else None)
        d = dx
    grads = []
    for dkernel, dbias in per_layer:
        grads.append(dkernel)
        if dbias is not None:
            grads.append(dbias)
    return loss, grads


def batches(n: int, batch_size: Optional[int]):
    """``(start, stop)`` of each mini-batch of ``n`` samples in order, the last
    one partial; ``batch_size=None`` means 32, as in Keras."""
    b = min(32 if batch_size is None else int(batch_size), n)
    return [(s, min(s + b, n)) for s in range(0, n, b)]


def fit(weights: Sequence[np.ndarray], activations: Sequence, use_bias, l1, l2, optimizer, x, y,
        epochs: int, batch_size: Optional[int] = 32, sample_weight=None) -> dict[str, list[float]]:
    """Mini-batch training without shuffling: for each epoch, the batches of
    :func:`batches` in order, each one ``loss, grads = net_gradients(...)`` (with
    the batch's per-sample weights) and ``optimizer.apply_gradients(zip(grads, weights))``.

    ``weights`` (a list of arrays) is updated in place, so an optimizer keeping
    state per variable (``fastopt.reference.ReferenceOptimizer``, a
    ``fastopt.optimizers`` optimizer) keeps it across calls.  Returns the
    per-epoch history as ``fit`` logs it: ``loss`` (the batch losses weighted by
    batch size, over n), ``mse`` and ``mae`` (the errors of every batch as it
    was trained on, over all outputs)."""
    x = np.asarray(x)
    y = np.asarray(y)
    n = x.shape[0]
    if y.ndim == 1:
        y = y.reshape(n, -1)
    history: dict[str, list[float]] = {"loss": [], "mse": [], "mae": []}
    for _ in range(int(epochs)):
        loss_sum = sse_sum = sae_sum = 0.0
        for start, stop in batches(n, batch_size):
            xb, yb = x[start:stop], y[start:stop]
            wb = None if sample_weight is None else np.asarray(sample_weight).reshape(-1)[start:stop]
            loss, grads = net_gradients(weights, activations, use_bias, l1, l2, xb, yb, wb)
            sse, sae = mse(net_forward(weights, activations, xb), yb)
            loss_sum += loss * (stop - start)
            sse_sum += sse
            sae_sum += sae
            optimizer.apply_gradients(zip(grads, weights))
        history["loss"].append(loss_sum / n)
        history["mse"].append(sse_sum / y.size)
        history["mae"].append(sae_sum / y.size)
    return history
