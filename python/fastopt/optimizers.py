"""Optimizers with Keras 3's names, defaults and update rules, stepping NumPy
arrays in place with one C kernel call per ``apply_gradients``.

Every optimizer takes, besides its own hyperparameters (Keras' base-optimizer
arguments):

* ``learning_rate``: a float or a :mod:`fastopt.schedules` schedule (or any
  callable ``step -> float``), evaluated at ``iterations``;
* ``weight_decay``: decoupled weight decay, ``w <- w - learning_rate * weight_decay * w``
  before the update (as Keras and ``torch.optim.AdamW`` do);
* ``clipnorm`` (each gradient's norm), ``global_clipnorm`` (the norm of all
  gradients of the step) or ``clipvalue`` (each element): at most one of them.
  A norm clip scales ``g <- g * c / max(norm, c)`` (Keras; torch's
  ``clip_grad_norm_`` divides by ``norm + 1e-6`` instead).

The arrays are updated in place, the gradients are never written::

    opt = fo.optimizers.Adam(learning_rate=0.01)
    opt.apply_gradients(zip(grads, variables))

Bad input (a gradient of another shape, integer or complex data, a read-only
variable, two variables sharing memory) raises ``TypeError``/``ValueError``
naming the argument before any array is written.  A strided variable is
updated through its view; a float32 gradient for a float64 variable is cast
exactly, a float64 gradient for a float32 variable is refused.
"""
from __future__ import annotations

import math
import threading
import weakref
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _core
from . import schedules as _schedules
from ._checks import by_name, check_optional_positive, check_real, check_unit

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "get", "serialize", "deserialize"]

LearningRate = Union[float, _schedules.LearningRateSchedule, Callable[[int], float]]

_NO_SLOTS = (None, None, None)

_HYPERPARAMETERS = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "momentum", "nesterov",
                    "rho", "centered", "beta_1", "beta_2", "epsilon", "amsgrad",
                    "initial_accumulator_value")


class _Hyperparameter:
    """A hyperparameter attribute: plain to read; assigning it once the
    optimizer is built re-checks it and updates what the C step reads."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(f"{type(obj).__name__} has no hyperparameter {self.name!r}") from None

    def __set__(self, obj, value):
        if "_hyper" in obj.__dict__:
            obj._reconfigure(self.name, value)
        else:  # the constructor, which checks it
            obj.__dict__[self.name] = value


class Optimizer:
    """Base class: state, schedules, clipping and ``apply_gradients``.

    Subclasses set ``_kind`` (the C kernel) and ``_slot_names`` and pass their
    hyperparameters to :meth:`_set_hyper`.
    """

    _kind: int = -1
    _slot_names: tuple = ()
    (weight_decay, clipnorm, clipvalue, global_clipnorm, momentum, nesterov, rho, centered,
     beta_1, beta_2, epsilon, amsgrad, initial_accumulator_value) = (
        _Hyperparameter() for _ in _HYPERPARAMETERS)

    def __init__(self, learning_rate: LearningRate, weight_decay: Optional[float] = None,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 global_clipnorm: Optional[float] = None, name: Optional[str] = None):
        self.name = name or type(self).__name__.lower()
        self._set_learning_rate(learning_rate)
        self.weight_decay = None if weight_decay is None else check_real(weight_decay, "weight_decay", low=0)
        self.clipnorm = check_optional_positive(clipnorm, "clipnorm")
        self.clipvalue = check_optional_positive(clipvalue, "clipvalue")
        self.global_clipnorm = check_optional_positive(global_clipnorm, "global_clipnorm")
        given = [n for n in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"set at most one of clipnorm, clipvalue and global_clipnorm; got {given}")
        # the step count lives in an int64 array that the C training loop
        # increments at each step it applies; ``iterations`` reads it
        self._step = np.zeros(1, np.int64)
        self._lock = threading.Lock()  # held around every C call that steps this optimizer
        # id(variable) -> (weak reference to the variable, slots)
        self._state: dict[int, tuple[weakref.ref, tuple]] = {}

    @property
    def iterations(self) -> int:
        """The number of steps taken (Keras' ``optimizer.iterations``)."""
        return int(self._step[0])

    @iterations.setter
    def iterations(self, value: int) -> None:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"iterations must be an integer, got {type(value).__name__}")
        if not 0 <= value <= 2 ** 53:
            raise ValueError(f"iterations must be in [0, 2**53], got {value}")
        self._step[0] = value

    # -- hyperparameters ------------------------------------------------
    def _reconfigure(self, name: str, value: Any) -> None:
        """Assigning a hyperparameter after construction (``opt.momentum = 0.9``,
        as Keras allows) goes through the constructor's checks and takes effect
        at the next step.  A change that would need other state (momentum from
        0, amsgrad, centered) is refused once the optimizer holds state."""
        config = self.get_config()
        if name not in config:
            raise AttributeError(f"{type(self).__name__} has no hyperparameter {name!r}")
        config[name] = value
        fresh = type(self).from_config(config)  # validates; raises before anything changes
        if fresh._slots_used != self._slots_used and self._state:
            raise ValueError(f"cannot change {name} to {value!r} after the first step: it changes "
                             "which state the optimizer keeps; make a new optimizer")
        for key in _HYPERPARAMETERS + ("_hyper", "_slots_used"):
            if key in fresh.__dict__:
                self.__dict__[key] = fresh.__dict__[key]

    def _set_hyper(self, momentum=0.0, nesterov=False, rho=0.0, centered=False, beta_1=0.0,
                   beta_2=0.0, epsilon=0.0, amsgrad=False):
        """Cache the tuple of constant hyperparameters the C step reads."""
        self._hyper = (self.weight_decay or 0.0, self.clipnorm or 0.0, self.global_clipnorm or 0.0,
                       self.clipvalue or 0.0, momentum, bool(nesterov), rho, bool(centered),
                       beta_1, beta_2, epsilon, bool(amsgrad))
        # which slots the C step reads (as fo_optim_slots_used in csrc/optim.c)
        self._slots_used = {
            _core.SGD: (momentum > 0, False, False),
            _core.ADAGRAD: (True, False, False),
            _core.RMSPROP: (True, momentum > 0, bool(centered)),
            _core.ADAM: (True, True, bool(amsgrad)),
        }[self._kind]

    def _set_learning_rate(self, learning_rate: LearningRate) -> None:
        if isinstance(learning_rate, _schedules.LearningRateSchedule) or callable(learning_rate):
            self._schedule, self._lr = learning_rate, None
        else:
            lr = check_real(learning_rate, "learning_rate", low=0)  # before anything changes
            self._schedule, self._lr = None, lr

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a schedule is evaluated at ``iterations``)."""
        return self._lr if self._schedule is None else self._scheduled(self.iterations)

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        self._set_learning_rate(value)

    def _scheduled(self, step: int) -> float:
        lr = float(self._schedule(step))
        if not (lr >= 0 and math.isfinite(lr)):
            raise ValueError(f"the learning_rate schedule gave {lr} at step {step}; "
                             "it must be finite and >= 0")
        return lr

    def _learning_rates(self, count: int) -> np.ndarray:
        """Learning rates of the next ``count`` steps (one entry when constant)."""
        if self._schedule is None:
            return np.array([self._lr])
        if isinstance(self._schedule, _schedules.LearningRateSchedule):
            lr = self._schedule.values(self.iterations, count)
        else:
            lr = np.array([self._schedule(self.iterations + k) for k in range(count)], dtype=np.float64)
        if not (np.isfinite(lr).all() and (lr >= 0).all()):
            raise ValueError("the learning_rate schedule gave a negative or non-finite value")
        return np.ascontiguousarray(lr, dtype=np.float64)

    # -- state ------------------------------------------------------------
    def _new_slots(self, variable) -> tuple:
        if not isinstance(variable, np.ndarray) or variable.dtype.kind != "f":
            return _NO_SLOTS  # the C step names the bad variable
        dtype = variable.dtype.newbyteorder("=")
        return tuple(self._init_slot(k, variable.shape, dtype) if used else None
                     for k, used in enumerate(self._slots_used))

    def _init_slot(self, k: int, shape, dtype) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def _entry(self, variable: np.ndarray, slots: tuple) -> tuple:
        """A state entry: a weak reference to the variable (the entry goes when
        the array does) and its slots."""
        state, key = self._state, id(variable)

        def forget(ref, state=state, key=key):
            entry = state.get(key)
            if entry is not None and entry[0] is ref:
                del state[key]

        return (weakref.ref(variable, forget), slots)

    def _slots_of(self, variable) -> Optional[tuple]:
        """The slots kept for this very array, or None (a dead array's id may be reused)."""
        entry = self._state.get(id(variable))
        return entry[1] if entry is not None and entry[0]() is variable else None

    def _bind_flat(self, flat: np.ndarray, views: Sequence[np.ndarray]) -> tuple:
        """State for a model whose variables are ``views`` of one flat buffer:
        the flat slots, with each view's slots views of them, so ``fit`` (one
        kernel call over ``flat``) and ``apply_gradients`` on the views share
        one state.  Returns the flat slots."""
        flat_slots = self._slots_of(flat)
        if flat_slots is None:
            flat_slots = self._new_slots(flat)
            self._state[id(flat)] = self._entry(flat, flat_slots)
            base = flat.__array_interface__["data"][0]
            for v in views:
                off = (v.__array_interface__["data"][0] - base) // flat.itemsize
                slots = tuple(None if s is None else s[off:off + v.size].reshape(v.shape)
                              for s in flat_slots)
                old = self._slots_of(v)
                if old is not None:  # stepped before: keep its state
                    for dst, src in zip(slots, old):
                        if dst is not None:
                            dst[...] = src
                self._state[id(v)] = self._entry(v, slots)
        return flat_slots

    # -- the step -----------------------------------------------------------
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, np.ndarray]]) -> int:
        """Update every variable in place from its gradient; returns ``iterations``.

        Pairs whose gradient is ``None`` are skipped, as in Keras.  Nothing is
        written unless every pair is valid.  State (momentum, m, v, ...) is
        kept per array object: pass the same arrays at every step.
        """
        grads, variables, slots = [], [], []
        slots_of = self._slots_of
        new = None
        any_gradient = False
        for g, v in grads_and_vars:
            if g is not None:
                any_gradient = True
            grads.append(g)
            variables.append(v)
            kept = slots_of(v)
            if kept is None:
                kept = _NO_SLOTS if g is None else self._new_slots(v)
                if kept is not _NO_SLOTS:  # else: no gradient, or not a float array (the C step names it)
                    if new is None:
                        new = {}
                    new[id(v)] = self._entry(v, kept)
            slots.append(kept)
        if not any_gradient:
            raise ValueError("apply_gradients got no (gradient, variable) pair with a gradient")
        lr = self._lr if self._schedule is None else self._scheduled(self.iterations)
        _core.optim_update(self._kind, variables, grads, slots, self._hyper, lr, self.iterations)
        if new:
            self._state.update(new)
        self.iterations += 1
        return self.iterations

    def minimize(self, loss_and_grads: Callable[[], tuple[float, Sequence[np.ndarray]]],
                 var_list: Sequence[np.ndarray]) -> float:
        """Call ``loss_and_grads()`` -> ``(loss, grads)`` and apply the gradients; returns the loss."""
        loss, grads = loss_and_grads()
        self.apply_gradients(zip(grads, var_list))
        return loss

    # -- saving -------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        lr = self._lr if self._schedule is None else (
            _schedules.serialize(self._schedule)
            if isinstance(self._schedule, _schedules.LearningRateSchedule) else self._schedule)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Optimizer":
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = _schedules.deserialize(lr)
        return cls(**config)

    def get_state(self, variables: Optional[Sequence[np.ndarray]] = None) -> dict[str, Any]:
        """A copy of the state: ``{"iterations": int, "slots": [[array, ...] per variable]}``.

        ``variables`` fixes the order (default: the order the optimizer first saw them).
        """
        if variables is None:
            variables = [v for v in (entry[0]() for entry in list(self._state.values())) if v is not None]
        slots = []
        for v in variables:
            kept = self._slots_of(v)
            if kept is None:
                raise ValueError("get_state: a variable was never stepped by this optimizer")
            slots.append([None if s is None else s.copy() for s in kept])
        return {"iterations": self.iterations, "slots": slots}

    def set_state(self, state: dict[str, Any], variables: Sequence[np.ndarray]) -> None:
        """Restore a :meth:`get_state` result for ``variables`` (in the same order)."""
        slots = state["slots"]
        if len(slots) != len(variables):
            raise ValueError(f"set_state: state has {len(slots)} variables, got {len(variables)}")
        staged = []
        for i, (v, saved) in enumerate(zip(variables, slots)):
            fresh = self._new_slots(v)
            if fresh is _NO_SLOTS:
                raise TypeError(f"variables[{i}] must be a float32 or float64 numpy.ndarray")
            if len(saved) != len(fresh):
                raise ValueError(f"set_state: slots[{i}] has {len(saved)} entries, expected {len(fresh)}")
            for k, (s, f) in enumerate(zip(saved, fresh)):
                if (s is None) != (f is None):
                    raise ValueError(f"set_state: slots[{i}][{k}] does not match this optimizer's configuration")
                if f is not None and np.shape(s) != f.shape:
                    raise ValueError(f"set_state: slots[{i}][{k}] has shape {np.shape(s)}, expected {f.shape}")
            staged.append((v, fresh, saved))
        for v, fresh, saved in staged:
            kept = self._slots_of(v)
            target = fresh if kept is None else kept
            for f, s in zip(target, saved):
                if f is not None:
                    f[...] = s
            if kept is None:
                self._state[id(v)] = self._entry(v, target)
        self.iterations = int(state["iterations"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.get_config()['learning_rate']!r})"


class SGD(Optimizer):
    """Gradient descent, with momentum and Nesterov momentum (Keras 3 rule).

    Without momentum: ``w <- w - lr * g``.  With momentum ``mu``::

        m <- mu * m - lr * g
        w <- w + m                      (nesterov=False)
        w <- w + mu * m - lr * g        (nesterov=True)

    torch.optim.SGD keeps ``b <- mu * b + g`` and steps ``w <- w - lr * b``
    (Nesterov: ``w <- w - lr * (g + mu * b)``): the same trajectory while the
    learning rate is constant; under a schedule Keras' velocity carries the
    past learning rates and torch's does not.
    """

    _kind = _core.SGD
    _slot_names = ("momentum",)

    def __init__(self, learning_rate: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.momentum = check_unit(momentum, "momentum")
        self.nesterov = bool(nesterov)
        self._set_hyper(momentum=self.momentum, nesterov=self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Adagrad (Keras 3 rule)::

        a <- a + g^2                    (a starts at initial_accumulator_value)
        w <- w - lr * g / sqrt(a + epsilon)

    torch.optim.Adagrad adds epsilon outside the root, ``g / (sqrt(a) + eps)``,
    and starts ``a`` at 0 by default (pass ``initial_accumulator_value=0.1``
    for Keras' start).  Article 001 writes ``lr / sqrt(1 + ||g||^2)``, which is
    not Adagrad; fastopt implements the standard algorithm.
    """

    _kind = _core.ADAGRAD
    _slot_names = ("accumulator",)

    def __init__(self, learning_rate: LearningRate = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.initial_accumulator_value = check_real(initial_accumulator_value,
                                                    "initial_accumulator_value", low=0)
        self.epsilon = check_real(epsilon, "epsilon", low=0, low_open=True)
        self._set_hyper(epsilon=self.epsilon)

    def _init_slot(self, k, shape, dtype):
        return np.full(shape, self.initial_accumulator_value, dtype=dtype)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum (Keras 3 rule)::

        v <- rho * v + (1 - rho) * g^2
        a <- rho * a + (1 - rho) * g               (centered only)
        d <- v + epsilon   or   v - a^2 + epsilon  (centered)
        step <- lr * g / sqrt(d)
        m <- momentum * m + step                   (momentum > 0 only; step <- m)
        w <- w - step

    torch.optim.RMSprop (``alpha`` = rho) adds epsilon outside the root,
    ``g / (sqrt(d) + eps)``, and keeps ``lr`` out of its momentum buffer (the
    same trajectory while the learning rate is constant).
    """

    _kind = _core.RMSPROP
    _slot_names = ("velocity", "momentum", "average_gradient")

    def __init__(self, learning_rate: LearningRate = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.rho = check_unit(rho, "rho")
        self.momentum = check_unit(momentum, "momentum")
        self.epsilon = check_real(epsilon, "epsilon", low=0, low_open=True)
        self.centered = bool(centered)
        self._set_hyper(momentum=self.momentum, rho=self.rho, centered=self.centered, epsilon=self.epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """Adam, optionally AMSGrad (Keras 3 rule).  At step ``t = iterations + 1``::

        m <- m + (1 - beta_1) * (g - m)
        v <- v + (1 - beta_2) * (g^2 - v)
        v_hat <- max(v_hat, v)                        (amsgrad only; used for v)
        alpha <- lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        w <- w - alpha * m / (sqrt(v) + epsilon)

    torch.optim.Adam divides by ``sqrt(v) / sqrt(1 - beta_2^t) + eps``: its
    epsilon is Keras' ``epsilon / sqrt(1 - beta_2^t)``; with the same tiny
    epsilon the two agree to round-off.  Article 004's snippet writes the
    epsilon inside the square root; fastopt implements the standard rule.
    """

    _kind = _core.ADAM
    _slot_names = ("m", "v", "v_hat")

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.beta_1 = check_unit(beta_1, "beta_1")
        self.beta_2 = check_unit(beta_2, "beta_2")
        self.epsilon = check_real(epsilon, "epsilon", low=0, low_open=True)
        self.amsgrad = bool(amsgrad)
        self._set_hyper(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004, as Keras)::

        w <- w - lr * weight_decay * w,  then the Adam step

    torch.optim.AdamW does the same (``w <- w * (1 - lr * weight_decay)``),
    with its own default ``weight_decay=0.01``.
    """

    def __init__(self, learning_rate: LearningRate = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (use Adam for none)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clipnorm,
                         clipvalue, global_clipnorm, name)


_BY_NAME = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get(identifier: Union[str, Optimizer, dict]) -> Optimizer:
    """An optimizer from a name (``"adam"``), a config dict, or an optimizer (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return by_name(_BY_NAME, identifier, "optimizer")()
    raise TypeError(f"optimizer must be a name or an Optimizer, got {type(identifier).__name__}")


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any]) -> Optimizer:
    return by_name(_BY_NAME, str(config.get("class_name", "")), "optimizer").from_config(config["config"])
