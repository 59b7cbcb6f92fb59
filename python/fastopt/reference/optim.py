"""NumPy twins of the optimizer kernels (csrc/optim_impl.h) and of the
learning-rate schedules: the update rules of python/fastopt/optimizers.py
(Keras 3's), written to be read, not to be fast.

Each ``*_update`` function updates ``var`` and its state arrays in place.
The arithmetic is done in the variable's dtype, as the C kernels do it:
hyperparameters are Python floats, which NumPy casts to the array's dtype
(NEP 50), so a float32 variable is stepped in float32.  Decoupled weight decay
``var <- var * (1 - learning_rate * weight_decay)`` comes first, then the rule.

:class:`ReferenceOptimizer` runs the same trajectory as
``fastopt.optimizers.<Name>``: gradient clipping, schedules evaluated at
``iterations`` (0-based), one state per variable (kept by identity).
"""
from __future__ import annotations

import inspect
import math
import re

import numpy as np

__all__ = [
    "sgd_update",
    "adagrad_update",
    "rmsprop_update",
    "adam_update",
    "clip_gradients",
    "schedule_value",
    "ReferenceOptimizer",
]


def _decay(var, learning_rate, weight_decay):
    """Decoupled weight decay, applied before the update."""
    if weight_decay:
        var[...] = var * (1.0 - learning_rate * weight_decay)


def _as_var_dtype(grad, var):
    return np.asarray(grad).astype(var.dtype.newbyteorder("="))


def sgd_update(var, grad, m, *, learning_rate, momentum=0.0, nesterov=False, weight_decay=0.0):
    """m <- momentum*m - lr*g;  w <- w + m  (nesterov: w <- w + momentum*m - lr*g).
    Without momentum (m is None): w <- w - lr*g."""
    lr = float(learning_rate)
    g = _as_var_dtype(grad, var)
    _decay(var, lr, weight_decay)
    if m is None:
        var[...] = var - lr * g
        return
    m[...] = momentum * m - lr * g
    if nesterov:
        var[...] = var + (momentum * m - lr * g)
    else:
        var[...] = var + m


def adagrad_update(var, grad, accumulator, *, learning_rate, epsilon, weight_decay=0.0):
    """a <- a + g^2;  w <- w - lr * g / sqrt(a + epsilon)."""
    lr = float(learning_rate)
    g = _as_var_dtype(grad, var)
    _decay(var, lr, weight_decay)
    accumulator[...] = accumulator + g * g
    var[...] = var - lr * g / np.sqrt(accumulator + epsilon)


def rmsprop_update(var, grad, velocity, m, average_grad, *, learning_rate, rho, momentum=0.0,
                   epsilon, centered=False, weight_decay=0.0):
    """v <- rho*v + (1-rho)*g^2;  a <- rho*a + (1-rho)*g (centered);
    step <- lr*g / sqrt(v + eps)  (centered: sqrt(v - a^2 + eps));
    m <- momentum*m + step, step <- m (when m is not None);  w <- w - step."""
    lr = float(learning_rate)
    g = _as_var_dtype(grad, var)
    _decay(var, lr, weight_decay)
    velocity[...] = rho * velocity + (1.0 - rho) * (g * g)
    if centered:
        average_grad[...] = rho * average_grad + (1.0 - rho) * g
        denominator = velocity - average_grad * average_grad + epsilon
    else:
        denominator = velocity + epsilon
    step = lr * g / np.sqrt(denominator)
    if m is not None:
        m[...] = momentum * m + step
        step = m
    var[...] = var - step


def adam_update(var, grad, m, v, v_hat, *, learning_rate, beta_1, beta_2, epsilon, amsgrad=False,
                iteration, weight_decay=0.0):
    """At step t = iteration + 1:
    m <- m + (1-beta_1)*(g - m);  v <- v + (1-beta_2)*(g^2 - v);
    v_hat <- max(v_hat, v) and used for v (amsgrad);
    w <- w - lr * sqrt(1-beta_2^t)/(1-beta_1^t) * m / (sqrt(v) + epsilon)."""
    lr = float(learning_rate)
    g = _as_var_dtype(grad, var)
    _decay(var, lr, weight_decay)
    t = iteration + 1.0
    alpha = lr * math.sqrt(1.0 - beta_2 ** t) / (1.0 - beta_1 ** t)
    m[...] = m + (g - m) * (1.0 - beta_1)
    v[...] = v + (g * g - v) * (1.0 - beta_2)
    if amsgrad:
        v_hat[...] = np.maximum(v_hat, v)
        v = v_hat
    var[...] = var - alpha * m / (np.sqrt(v) + epsilon)


def clip_gradients(grads, *, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """Keras' precedence: clipnorm (each gradient's norm), else global_clipnorm
    (the norm of all of them), else clipvalue (each element).  A norm clip is
    ``g * c / max(norm, c)``.  Returns new arrays; the inputs are not written."""
    grads = [np.asarray(g) for g in grads]

    def norm(g):
        return math.sqrt(float(np.sum(np.square(g.astype(np.float64)))))

    if clipnorm:
        return [g * (clipnorm / max(norm(g), clipnorm)) for g in grads]
    if global_clipnorm:
        total = math.sqrt(sum(norm(g) ** 2 for g in grads))
        return [g * (global_clipnorm / max(total, global_clipnorm)) for g in grads]
    if clipvalue:
        return [np.clip(g, -clipvalue, clipvalue) for g in grads]
    return grads


# -- schedules -------------------------------------------------------------

def _exponential(step, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
    p = step / decay_steps
    return initial_learning_rate * decay_rate ** (math.floor(p) if staircase else p)


def _inverse_time(step, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
    p = step / decay_steps
    return initial_learning_rate / (1.0 + decay_rate * (math.floor(p) if staircase else p))


def _piecewise(step, boundaries, values, name=None):
    for boundary, value in zip(boundaries, values):
        if step <= boundary:
            return value
    return values[-1]


def _inverse_sqrt(step, initial_learning_rate, beta, name=None):
    return initial_learning_rate / math.sqrt(1.0 + beta * step)


def _polynomial(step, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                cycle=False, name=None):
    if cycle:
        decay_steps = decay_steps * (math.ceil(step / decay_steps) if step > 0 else 1)
    else:
        step = min(step, decay_steps)
    return (initial_learning_rate - end_learning_rate) * (1 - step / decay_steps) ** power + end_learning_rate


def _cosine_factor(fraction, alpha):
    return (1 - alpha) * 0.5 * (1 + math.cos(math.pi * fraction)) + alpha


def _cosine(step, initial_learning_rate, decay_steps, alpha=0.0, name=None, warmup_target=None,
            warmup_steps=0):
    if warmup_target is None:
        return initial_learning_rate * _cosine_factor(min(step, decay_steps) / decay_steps, alpha)
    if step < warmup_steps:
        return initial_learning_rate + (warmup_target - initial_learning_rate) * step / warmup_steps
    step = min(step - warmup_steps, decay_steps)
    return warmup_target * _cosine_factor(step / decay_steps, alpha)


def _cosine_restarts(step, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                     name=None):
    # walk the periods one by one (Keras' closed form finds the period with a logarithm)
    period, scale = first_decay_steps, 1.0
    while step >= period:
        step -= period
        period *= t_mul
        scale *= m_mul
    return initial_learning_rate * ((1 - alpha) * scale * 0.5 * (1 + math.cos(math.pi * step / period)) + alpha)


_SCHEDULES = {"ExponentialDecay": _exponential, "InverseTimeDecay": _inverse_time,
              "PiecewiseConstantDecay": _piecewise, "InverseSqrtDecay": _inverse_sqrt,
              "PolynomialDecay": _polynomial, "CosineDecay": _cosine,
              "CosineDecayRestarts": _cosine_restarts}


def schedule_value(learning_rate, step):
    """The learning rate of step ``step`` (0-based): a number as is, a
    fastopt schedule by its formula (from its config), another callable called."""
    formula = _SCHEDULES.get(type(learning_rate).__name__)
    if formula is not None and hasattr(learning_rate, "get_config"):
        return float(formula(step, **learning_rate.get_config()))
    if callable(learning_rate):
        return float(learning_rate(step))
    return float(learning_rate)


# -- the optimizer -----------------------------------------------------------

_DEFAULTS = {
    "sgd": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    "adagrad": dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7),
    "rmsprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    "adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    "adamw": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                  weight_decay=0.004),
}
_COMMON = dict(weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
               ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
               gradient_accumulation_steps=None, name=None)


class ReferenceOptimizer:
    """``ReferenceOptimizer("adam", learning_rate=0.01, amsgrad=True)``: the
    keyword arguments of ``fastopt.optimizers.Adam``.  ``slots(var)`` gives the
    state in fastopt's order (``get_state``): SGD (momentum,), Adagrad
    (accumulator,), RMSprop (velocity, momentum, average_gradient), Adam
    (m, v, v_hat), with None where a slot is unused; ``average(var)`` and
    ``accumulator(var)`` the moving average (``use_ema``) and the summed
    gradients (``gradient_accumulation_steps``).

    One call of ``apply_gradients``, in Keras 3's order (``BaseOptimizer.apply``):
    gradients divided by ``loss_scale_factor``; with gradient accumulation,
    added to the accumulators until every ``gradient_accumulation_steps``-th
    call, which steps with ``(g + accumulated) / steps`` and clears them; the
    step: clipping, weight decay (but for excluded variables), the rule at
    update ``iterations + 1``; then the moving average of every variable
    (``m = 0`` at update 0) and its overwrite every ``ema_overwrite_frequency``
    updates.  Schedules get the call count (``_iterations``); a callable that
    takes no argument is called with none."""

    def __init__(self, name, **config):
        self.kind = name.lower()
        unknown = set(config) - set(_DEFAULTS[self.kind]) - set(_COMMON)
        if unknown:
            raise TypeError(f"unknown arguments {sorted(unknown)}")
        self.config = {**_COMMON, **_DEFAULTS[self.kind], **config}
        self.calls = 0
        self._state = {}  # id(var) -> (var, slots, average, accumulator)
        self._excluded_ids, self._excluded_names = set(), ()

    @property
    def iterations(self):
        acc = self.config["gradient_accumulation_steps"]
        return self.calls // acc if acc else self.calls

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        self._excluded_ids = {id(v) for v in var_list or ()}
        self._excluded_names = tuple(var_names or ())

    def _decays(self, var):
        if id(var) in self._excluded_ids:
            return False
        name = getattr(var, "name", None)
        return not (isinstance(name, str) and any(re.search(p, name) for p in self._excluded_names))

    def _new_slots(self, var):
        c, shape, dtype = self.config, var.shape, var.dtype.newbyteorder("=")

        def zeros(used=True):
            return np.zeros(shape, dtype) if used else None

        if self.kind == "sgd":
            return (zeros(c["momentum"] > 0), None, None)
        if self.kind == "adagrad":
            return (np.full(shape, c["initial_accumulator_value"], dtype), None, None)
        if self.kind == "rmsprop":
            return (zeros(), zeros(c["momentum"] > 0), zeros(c["centered"]))
        return (zeros(), zeros(), zeros(c["amsgrad"]))

    def _entry(self, var):
        if id(var) not in self._state:
            dtype = var.dtype.newbyteorder("=")
            self._state[id(var)] = (var, self._new_slots(var), np.zeros(var.shape, dtype),
                                    np.zeros(var.shape, dtype))
        return self._state[id(var)]

    def slots(self, var):
        return self._state[id(var)][1]

    def average(self, var):
        return self._state[id(var)][2]

    def accumulator(self, var):
        return self._state[id(var)][3]

    def _learning_rate(self):
        lr = self.config["learning_rate"]
        if callable(lr) and not hasattr(lr, "get_config"):
            try:
                inspect.signature(lr).bind()
                return float(lr())
            except (TypeError, ValueError):
                pass
        return schedule_value(lr, self.calls)

    def apply_gradients(self, grads_and_vars):
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise ValueError("no gradients")
        c = self.config
        lr = self._learning_rate()
        wd = c["weight_decay"] or 0.0
        acc = c["gradient_accumulation_steps"]
        updates = self.iterations
        # cast first, as the C step does: everything after sees the gradient in the variable's dtype
        grads = [_as_var_dtype(g, v) for g, v in pairs]
        if c["loss_scale_factor"]:
            grads = [g / c["loss_scale_factor"] for g in grads]
        entries = [self._entry(v) for _, v in pairs]
        if acc and (self.calls + 1) % acc != 0:
            for g, (_, _, _, a) in zip(grads, entries):
                a[...] = g + a
        else:
            if acc:
                grads = [(g + e[3]) / acc for g, e in zip(grads, entries)]
            grads = clip_gradients(grads, clipnorm=c["clipnorm"], clipvalue=c["clipvalue"],
                                   global_clipnorm=c["global_clipnorm"])
            for g, (_, var), (_, s, _, a) in zip(grads, pairs, entries):
                decay = wd if self._decays(var) else 0.0
                if self.kind == "sgd":
                    sgd_update(var, g, s[0], learning_rate=lr, momentum=c["momentum"],
                               nesterov=c["nesterov"], weight_decay=decay)
                elif self.kind == "adagrad":
                    adagrad_update(var, g, s[0], learning_rate=lr, epsilon=c["epsilon"], weight_decay=decay)
                elif self.kind == "rmsprop":
                    rmsprop_update(var, g, *s, learning_rate=lr, rho=c["rho"], momentum=c["momentum"],
                                   epsilon=c["epsilon"], centered=c["centered"], weight_decay=decay)
                else:
                    adam_update(var, g, *s, learning_rate=lr, beta_1=c["beta_1"], beta_2=c["beta_2"],
                                epsilon=c["epsilon"], amsgrad=c["amsgrad"], iteration=updates,
                                weight_decay=decay)
                if acc:
                    a[...] = 0
        if c["use_ema"]:
            m = c["ema_momentum"] if updates != 0 else 0.0
            freq = c["ema_overwrite_frequency"]
            for (_, var), (_, _, avg, _) in zip(pairs, entries):
                mt = var.dtype.type(m)
                avg[...] = mt * avg + (var.dtype.type(1) - mt) * var
                if freq and (updates + 1) % freq == 0:
                    var[...] = avg
        self.calls += 1
        return self.iterations
