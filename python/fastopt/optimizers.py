"""Optimizers with Keras 3's names, defaults and update rules, stepping NumPy
arrays in place with one C kernel call per ``apply_gradients``.

Every optimizer takes, besides its own hyperparameters, Keras 3's
base-optimizer arguments:

* ``learning_rate``: a float, a :mod:`fastopt.schedules` schedule (called with
  the step count, as in Keras), or a callable taking no arguments (Keras 3:
  ``learning_rate=lambda: 0.01``, called at every step);
* ``weight_decay``: decoupled weight decay, ``w <- w - learning_rate * weight_decay * w``
  before the update (as Keras and ``torch.optim.AdamW`` do); variables can be
  left out with :meth:`Optimizer.exclude_from_weight_decay`;
* ``clipnorm`` (each gradient's norm), ``global_clipnorm`` (the norm of all
  gradients of the step) or ``clipvalue`` (each element): at most one of them.
  A norm clip scales ``g <- g * c / max(norm, c)`` (Keras; torch's
  ``clip_grad_norm_`` divides by ``norm + 1e-6`` instead);
* ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``: a moving average
  of the weights, ``average <- m * average + (1 - m) * w`` after every step
  (``m = 0`` at the first), written into the weights every
  ``ema_overwrite_frequency`` steps or by :meth:`Optimizer.finalize_variable_values`;
* ``gradient_accumulation_steps``: the variables change every that many calls,
  with the mean of the gradients of those calls;
* ``loss_scale_factor``: gradients are divided by it first (:meth:`Optimizer.scale_loss`
  multiplies a loss by it).

All of these run inside the C step, so ``Sequential.fit`` gets them too.  The
arrays are updated in place, the gradients are never written::

    opt = fo.optimizers.Adam(learning_rate=0.01)
    opt.apply_gradients(zip(grads, variables))

Optimizer state (momentum, m, v, ...) is keyed by the memory a variable covers,
not by the Python object: ``w``, ``w[:]`` and ``w.reshape(...)`` step with one
state, a view of part of ``w`` with that part of it, and the state goes when
the array that owns the memory goes.  Steps on one optimizer are serialized by
its lock (``opt._lock``), so threads sharing it lose no update; a step is
counted in ``iterations`` in the same C call that applies it, so an interrupt
(Ctrl-C) leaves weights, state and ``iterations`` agreeing: a step, over all
of its variables, is applied and counted entirely or not at all.

Bad input (a gradient of another shape, integer or complex data, a read-only
variable, two variables sharing memory, swapped pairs) raises
``TypeError``/``ValueError`` naming the argument before any array is written.
A strided, unaligned or byte-swapped variable is updated through its view; a
float32 gradient for a float64 variable is cast exactly, a float64 gradient for
a float32 variable is refused.  When the variables become NaN or infinite,
:class:`fastopt.DivergenceWarning` is raised once per optimizer.
"""
from __future__ import annotations

import difflib
import inspect
import itertools
import math
import numbers
import re
import threading
import warnings
import weakref
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _core
from . import schedules  # noqa: F401  (fo.optimizers.schedules, as in Keras)
from . import schedules as _schedules
from ._checks import by_name, check_optional_positive, check_real, check_unit
from ._warnings import DivergenceWarning

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "get", "serialize", "deserialize"]

LearningRate = Union[float, _schedules.LearningRateSchedule, Callable[[], float]]

MAX_SLOTS = _core.MAX_SLOTS
_KIND_SLOTS = 3                          # the rule's own slots come first
_EMA, _ACCUM, _MASK = 3, 4, 5            # then Keras 3's features (csrc/fastopt.h)
_NO_SLOTS = (None,) * MAX_SLOTS
_MAX_STEP = 2 ** 53
# schedules whose call has no side effects (the fast path may call them directly)
_BUILT_IN_SCHEDULES = frozenset(_schedules._SCHEDULES.values())
# built-in schedules whose formula the fast path computes in C (codes of bind_optim.c): those of
# IEEE-exact operations only (+ - * / sqrt floor); the ones with pow/cos/log stay Python calls
_C_SCHEDULES = {_schedules.InverseSqrtDecay: 1, _schedules.InverseTimeDecay: 2}

_HYPERPARAMETERS = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "momentum", "nesterov",
                    "rho", "centered", "beta_1", "beta_2", "epsilon", "amsgrad",
                    "initial_accumulator_value", "use_ema", "ema_momentum", "ema_overwrite_frequency",
                    "loss_scale_factor", "gradient_accumulation_steps")

# keyword arguments people bring from other libraries and older Keras
_RENAMED = {"lr": "learning_rate", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon",
            "clip_norm": "clipnorm", "clip_value": "clipvalue", "global_clip_norm": "global_clipnorm",
            "initial_accumulator": "initial_accumulator_value", "alpha": "rho",
            "betas": "beta_1 and beta_2", "ams_grad": "amsgrad"}
_DECAY_HELP = ("decay is not an argument of Keras 3 optimizers (tf.keras' old per-step decay "
               "lr / (1 + decay * iterations)); pass learning_rate=fo.schedules.InverseTimeDecay("
               "initial_learning_rate, decay_steps=1, decay_rate=decay) instead")
# keys of Keras (and tf.keras) configs that have no effect here when at these values
_NEUTRAL_CONFIG = {"is_legacy_optimizer": (False,), "jit_compile": (False, None),
                   "decay": (None, 0, 0.0), "mesh": (None,)}


def _unknown_arguments(cls, kwargs: dict) -> None:
    """TypeError for keyword arguments the optimizer does not take, with the Keras name."""
    if not kwargs:
        return
    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    hints = []
    for key in kwargs:
        if key == "decay":
            hints.append(_DECAY_HELP)
        elif key in _RENAMED:
            hints.append(f"{key!r}: did you mean {_RENAMED[key]}?")
        else:
            close = difflib.get_close_matches(key, valid, n=1)
            hints.append(f"{key!r}" + (f": did you mean {close[0]}?" if close else ""))
    raise TypeError(f"{cls.__name__} got unexpected keyword argument(s) " + "; ".join(hints)
                    + f" (it takes {', '.join(valid)})")


def _check_step(value, name: str = "iterations") -> int:
    """A step count: an integer in [0, 2**53]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not 0 <= v <= _MAX_STEP:
        raise ValueError(f"{name} must be in [0, 2**53], got {v}")
    return v


def _takes_no_argument(fn) -> bool:
    """Keras 3 calls a callable learning rate with no argument; fastopt's older
    callables take the step.  True if ``fn()`` is a valid call."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # no signature to read (a builtin): Keras 3's convention
    try:
        sig.bind()
        return True
    except TypeError:
        return False


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


# -- the state, keyed by memory ---------------------------------------------------------

class _Region:
    """The state of a dense block of memory ``[lo, hi)`` of one owner and dtype:
    one 1-d buffer per slot, in memory order, so any variable lying in the block
    (whatever its shape, order or strides) finds its elements' state at the same
    byte offsets."""

    __slots__ = ("ref", "dtkey", "lo", "hi", "dtype", "buffers", "anchor")

    def __init__(self, ref, dtkey, lo, hi, dtype, buffers, anchor=None):
        self.ref, self.dtkey, self.lo, self.hi, self.dtype, self.buffers = ref, dtkey, lo, hi, dtype, buffers
        self.anchor = anchor  # a weak reference to the variable that made it, when not the owner

    def holds(self, dtkey, addr, lo, hi, strides) -> bool:
        size = self.dtype.itemsize
        return (dtkey == self.dtkey and self.lo <= lo and hi <= self.hi and (addr - self.lo) % size == 0
                and all(s % size == 0 for s in strides))

    def view(self, addr, shape, strides) -> tuple:
        """The slots of the variable at ``addr`` with this shape and these strides."""
        return tuple(None if b is None else
                     np.ndarray(shape, self.dtype, buffer=b, offset=addr - self.lo, strides=strides)
                     for b in self.buffers)


class _State:
    """An optimizer's state.

    ``bindings`` maps the address of a variable's first element to a tuple of
    bindings ``(owner_ref, dtype_key, nbytes, layout, slots, seq, region, anchor)``:
    the owner is the ndarray that owns the memory (a weak reference: the
    bindings go when it goes), layout is None for a C-contiguous variable (any
    shape of the same bytes) or its ``(shape, strides)``, slots the state arrays
    shaped as that variable, region the :class:`_Region` they are views of (or
    None for a strided variable's own state, whose anchor is then a weak
    reference to that variable, for pickling).  The C fast path (csrc/bind_optim.c) reads it.
    ``owners`` maps ``id(owner)`` to ``(owner_ref, regions)``.
    """

    def __init__(self):
        self.bindings: dict[int, tuple] = {}
        self.owners: dict[int, tuple] = {}
        self.seq = itertools.count()

    def forget_callback(self):
        state = weakref.ref(self)

        def forget(ref):  # the owner died: drop its bindings and regions (no lock: a callback)
            st = state()
            if st is None:
                return
            for addr, bs in list(st.bindings.items()):
                keep = tuple(b for b in bs if b[0] is not ref)
                if len(keep) != len(bs):
                    if keep:
                        st.bindings[addr] = keep
                    else:
                        st.bindings.pop(addr, None)
            for key, rec in list(st.owners.items()):
                if rec[0] is ref:
                    st.owners.pop(key, None)

        return forget

    def live_bindings(self):
        out = [b for bs in list(self.bindings.values()) for b in bs if b[0]() is not None]
        return sorted(out, key=lambda b: b[5])

    def empty(self) -> bool:
        return not self.live_bindings()


class _Txn:
    """Changes to a :class:`_State` made during one step, committed by the C call
    that applies the step (or not at all if it refuses)."""

    def __init__(self, state: _State):
        self.state, self.bindings, self.owners = state, {}, {}

    def bindings_at(self, addr) -> tuple:
        return self.bindings[addr] if addr in self.bindings else self.state.bindings.get(addr, ())

    def all_bindings(self):
        for addr in set(self.state.bindings) | set(self.bindings):
            for b in self.bindings_at(addr):
                yield addr, b

    def owner(self, owner) -> Optional[tuple]:
        key = id(owner)
        rec = self.owners[key] if key in self.owners else self.state.owners.get(key)
        return rec if rec is not None and rec[0]() is owner else None

    def ops(self) -> list:
        st = self.state
        return ([(st.bindings, k, v if v else None) for k, v in self.bindings.items()]
                + [(st.owners, k, v) for k, v in self.owners.items()])


def _extent(addr, shape, strides, itemsize):
    lo = hi = addr
    for n, s in zip(shape, strides):
        if n == 0:
            return addr, addr
        if s < 0:
            lo += s * (n - 1)
        else:
            hi += s * (n - 1)
    return lo, hi + itemsize


def _binding_strides(b) -> tuple:
    """The byte strides of the variable a binding was made for."""
    if b[3] is not None:
        return b[3][1]
    s = next(x for x in b[4] if x is not None)
    return s.strides


class Optimizer(_core.OptimizerBase):
    """Base class: state, schedules, clipping, Keras 3's base-optimizer
    features and ``apply_gradients``.

    Subclasses set ``_kind`` (the C kernel) and ``_slot_names`` and pass their
    rule's hyperparameters to :meth:`_set_hyper`.

    Attributes other parts of fastopt rely on: ``_kind`` (int), ``_hyper``
    (the tuple the C step parses), ``_learning_rates(count)``,
    ``_bind_flat(flat, views)``, ``_step`` (an int64 array of shape (1,) holding
    the calls made, incremented by C with each step) and ``_lock`` (held around
    every C call that steps this optimizer).
    """

    _kind: int = -1
    _slot_names: tuple = ()
    (weight_decay, clipnorm, clipvalue, global_clipnorm, momentum, nesterov, rho, centered,
     beta_1, beta_2, epsilon, amsgrad, initial_accumulator_value, use_ema, ema_momentum,
     ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps) = (
        _Hyperparameter() for _ in _HYPERPARAMETERS)

    def __init__(self, learning_rate: LearningRate, weight_decay: Optional[float] = None,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 global_clipnorm: Optional[float] = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: Optional[int] = None,
                 loss_scale_factor: Optional[float] = None,
                 gradient_accumulation_steps: Optional[int] = None, name: Optional[str] = None):
        self._lock = threading.Lock()
        self._step = np.zeros(1, dtype=np.int64)
        self._state = _State()
        self._exclusions: tuple = ((), None, ())  # (memory records, name pattern, names)
        self._divergence_warned = False
        self._built = False
        self.name = name or type(self).__name__.lower()
        self._set_learning_rate(learning_rate)
        self.weight_decay = None if weight_decay is None else check_real(weight_decay, "weight_decay", low=0)
        self.clipnorm = check_optional_positive(clipnorm, "clipnorm")
        self.clipvalue = check_optional_positive(clipvalue, "clipvalue")
        self.global_clipnorm = check_optional_positive(global_clipnorm, "global_clipnorm")
        given = [n for n in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set "
                             f"(Keras' rule); got {given}")
        if not isinstance(use_ema, (bool, np.bool_)):
            raise TypeError(f"use_ema must be True or False, got {type(use_ema).__name__}")
        self.use_ema = bool(use_ema)
        self.ema_momentum = check_real(ema_momentum, "ema_momentum", low=0.0, high=1.0)
        if ema_overwrite_frequency is not None:
            ema_overwrite_frequency = _check_step(ema_overwrite_frequency, "ema_overwrite_frequency")
            if ema_overwrite_frequency < 1:
                raise ValueError("ema_overwrite_frequency must be an integer >= 1 or None, got 0")
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = check_optional_positive(loss_scale_factor, "loss_scale_factor")
        if gradient_accumulation_steps is not None:
            gradient_accumulation_steps = _check_step(gradient_accumulation_steps, "gradient_accumulation_steps")
            if gradient_accumulation_steps < 2:
                raise ValueError("gradient_accumulation_steps must be an integer >= 2 or None, "
                                 f"got {gradient_accumulation_steps}")
        self.gradient_accumulation_steps = gradient_accumulation_steps

    # -- hyperparameters ------------------------------------------------
    def _reconfigure(self, name: str, value: Any) -> None:
        """Assigning a hyperparameter after construction (``opt.momentum = 0.9``,
        as Keras allows) goes through the constructor's checks and takes effect
        at the next step.  A change that would need other state (momentum from
        0, amsgrad, centered, use_ema, gradient accumulation) is refused once the
        optimizer holds state."""
        config = self.get_config()
        if name not in config:
            raise AttributeError(f"{type(self).__name__} has no hyperparameter {name!r}")
        config[name] = value
        config["learning_rate"] = self._schedule if self._schedule is not None else self._lr
        fresh = type(self).from_config(config)  # validates; raises before anything changes
        with self._lock:
            if fresh._slots_used != self._slots_used and not self._state.empty():
                raise ValueError(f"cannot change {name} to {value!r} after the first step: it changes "
                                 "which state the optimizer keeps; make a new optimizer")
            for key in _HYPERPARAMETERS + ("_rule",):
                if key in fresh.__dict__:
                    self.__dict__[key] = fresh.__dict__[key]
            self._build_hyper()

    def _set_hyper(self, momentum=0.0, nesterov=False, rho=0.0, centered=False, beta_1=0.0,
                   beta_2=0.0, epsilon=0.0, amsgrad=False):
        """Keep the rule's hyperparameters and build what the C step reads."""
        self._rule = dict(momentum=momentum, nesterov=bool(nesterov), rho=rho, centered=bool(centered),
                          beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=bool(amsgrad))
        self._build_hyper()

    def _build_hyper(self) -> None:
        """The tuple of constant hyperparameters the C step parses (``parse_hyper``
        in csrc/bind_checks.c), the slots it uses, and the fast path's tuple."""
        r = self._rule
        decay_mask = bool(self.weight_decay) and bool(self._exclusions[0] or self._exclusions[1])
        self._hyper = (self.weight_decay or 0.0, self.clipnorm or 0.0, self.global_clipnorm or 0.0,
                       self.clipvalue or 0.0, r["momentum"], r["nesterov"], r["rho"], r["centered"],
                       r["beta_1"], r["beta_2"], r["epsilon"], r["amsgrad"],
                       self.use_ema, self.ema_momentum, self.ema_overwrite_frequency or 0,
                       self.gradient_accumulation_steps or 0, self.loss_scale_factor or 0.0, decay_mask)
        # which slots the C step reads (as fo_optim_slots_used in csrc/optim.c)
        rule = {
            _core.SGD: (r["momentum"] > 0, False, False),
            _core.ADAGRAD: (True, False, False),
            _core.RMSPROP: (True, r["momentum"] > 0, r["centered"]),
            _core.ADAM: (True, True, r["amsgrad"]),
        }[self._kind]
        self._slots_used = rule + (self.use_ema, bool(self.gradient_accumulation_steps), decay_mask)
        self._refresh_fast()

    def _refresh_fast(self) -> None:
        """What the C fast path reads, in one attribute: (kind, packed hyper,
        learning rate, bindings, step, lock).  The learning rate is the constant
        one, (code, schedule) for a built-in schedule C computes itself from its
        parameters, or another built-in schedule (C calls it with the step and
        checks what it gives as ``_scheduled`` does), or None for ``_scheduled``
        to evaluate."""
        if "_hyper" in self.__dict__:
            if self._schedule is None:
                lr = self._lr
            elif type(self._schedule) in _C_SCHEDULES:  # evaluated in C, the same bits
                lr = (_C_SCHEDULES[type(self._schedule)], self._schedule)
            elif type(self._schedule) in _BUILT_IN_SCHEDULES:  # pure: calling it twice is harmless
                lr = self._schedule
            else:
                lr = None
            self._fast = (self._kind, _core.optim_pack_hyper(self._hyper), lr,
                          self._state.bindings, self._step, self._lock)

    def _set_learning_rate(self, learning_rate: LearningRate) -> None:
        if isinstance(learning_rate, _schedules.LearningRateSchedule):
            self._schedule, self._lr, self._schedule_takes_step = learning_rate, None, True
        elif callable(learning_rate):
            takes_step = not _takes_no_argument(learning_rate)
            self._schedule, self._lr, self._schedule_takes_step = learning_rate, None, takes_step
        else:
            lr = check_real(learning_rate, "learning_rate", low=0)  # before anything changes
            self._schedule, self._lr = None, lr
        self._refresh_fast()

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a schedule is evaluated at the step count)."""
        return self._lr if self._schedule is None else self._scheduled(int(self._step[0]))

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        self._set_learning_rate(value)

    @property
    def iterations(self) -> int:
        """The number of updates made (Keras' ``iterations``: with gradient
        accumulation, the calls divided by ``gradient_accumulation_steps``)."""
        calls = int(self._step[0])
        acc = self.gradient_accumulation_steps
        return calls // acc if acc else calls

    @iterations.setter
    def iterations(self, value: int) -> None:
        value = _check_step(value)
        calls = value * (self.gradient_accumulation_steps or 1)
        if calls > _MAX_STEP:
            raise ValueError(f"iterations must be in [0, 2**53], got {value} updates of "
                             f"{self.gradient_accumulation_steps} calls")
        self._step[0] = calls

    @property
    def _accumulated_steps(self) -> int:
        """The calls into the current gradient-accumulation cycle (0 without accumulation)."""
        acc = self.gradient_accumulation_steps
        return int(self._step[0]) % acc if acc else 0

    @property
    def built(self) -> bool:
        """Whether the optimizer has made state for some variable (Keras' ``built``)."""
        return self._built or not self._state.empty()

    def _scheduled(self, step: int) -> float:
        """The learning rate of call ``step``: a schedule (or a callable taking the
        step) gets the step, a Keras 3 callable gets no argument."""
        fn = self._schedule
        lr = float(fn(step) if self._schedule_takes_step else fn())
        if not (lr >= 0 and math.isfinite(lr)):
            raise ValueError(f"the learning_rate schedule gave {lr} at step {step}; "
                             "it must be finite and >= 0")
        return lr

    def _learning_rates(self, count: int) -> np.ndarray:
        """Learning rates of the next ``count`` calls (one entry when constant, or
        for a Keras 3 callable, which is called once for them all)."""
        if self._schedule is None:
            return np.array([self._lr])
        step = int(self._step[0])
        if isinstance(self._schedule, _schedules.LearningRateSchedule):
            lr = self._schedule.values(step, count)
        elif self._schedule_takes_step:
            lr = np.array([self._schedule(step + k) for k in range(count)], dtype=np.float64)
        else:
            lr = np.array([float(self._schedule())], dtype=np.float64)
        lr = np.ascontiguousarray(lr, dtype=np.float64)
        if not (np.isfinite(lr).all() and (lr >= 0).all()):
            raise ValueError("the learning_rate schedule gave a negative or non-finite value")
        return lr

    def scale_loss(self, loss):
        """The loss times ``loss_scale_factor`` (Keras): the gradients of a scaled
        loss are unscaled by the step."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    # -- state ------------------------------------------------------------
    def _new_buffers(self, shape, dtype, mask_zeros=None, force_mask=False) -> tuple:
        """Fresh state arrays of this shape and dtype, one per used slot.
        ``mask_zeros(mask)`` clears the weight-decay mask where decay is
        excluded; the mask is kept only if something is excluded (or forced)."""
        out = []
        for k, used in enumerate(self._slots_used):
            if not used:
                out.append(None)
            elif k == _MASK:
                mask = np.ones(shape, dtype=dtype)
                excluded = mask_zeros(mask) if mask_zeros is not None else False
                out.append(mask if excluded or force_mask else None)
            else:
                out.append(self._init_slot(k, shape, dtype))
        return tuple(out)

    def _init_slot(self, k: int, shape, dtype) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def _excluded_name(self, name) -> bool:
        pattern = self._exclusions[1]
        return pattern is not None and isinstance(name, str) and pattern.search(name) is not None

    def _mask_filler(self, owner, lo, hi, dtkey, dtype, whole_excluded, layout_of):
        """A function clearing a new block's mask where weight decay is excluded:
        everywhere if the variable itself is (by name, or inside an excluded
        array), and at every excluded array lying in the block."""
        records = self._exclusions[0]

        def fill(mask) -> bool:
            if whole_excluded:
                mask[...] = 0
                return True
            hit = False
            for ref, key, addr, shape, strides, xlo, xhi, dense in records:
                if ref() is not owner or key != dtkey:
                    continue
                if xlo <= lo and hi <= xhi and dense:
                    mask[...] = 0
                    return True
                view = layout_of(mask, addr, shape, strides, xlo, xhi)
                if view is not None:
                    view[...] = 0
                    hit = True
            return hit

        return fill

    def _slots_for(self, v, txn: _Txn, name=None, force_mask=False) -> tuple:
        """The state of variable ``v`` (arrays shaped as ``v``), found by the
        memory it covers, or created (in ``txn``) for a first step."""
        if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
            return _NO_SLOTS  # the C step names the bad variable
        owner, addr, lo, hi, dtkey, c_contiguous, dense = _core.memory_key(v)
        layout = None if c_contiguous else (v.shape, v.strides)
        found = self._find(txn, v, owner, addr, lo, hi, dtkey, layout)
        if found is not None:
            return found
        return self._create(txn, v, owner, addr, lo, hi, dtkey, layout, dense, name, force_mask)

    def _find(self, txn, v, owner, addr, lo, hi, dtkey, layout) -> Optional[tuple]:
        for b in txn.bindings_at(addr):
            if b[1] == dtkey and b[2] == v.nbytes and b[3] == layout and b[0]() is owner:
                slots = b[4]
                if layout is None and any(s is not None and s.shape != v.shape for s in slots):
                    slots = tuple(None if s is None else s.reshape(v.shape) for s in slots)
                return slots
        rec = txn.owner(owner)
        for region in (rec[1] if rec else ()):
            if region.holds(dtkey, addr, lo, hi, v.strides):
                slots = region.view(addr, v.shape, v.strides)
                self._bind(txn, rec[0], addr, dtkey, v.nbytes, layout, slots, region)
                return slots
        return None

    def _bind(self, txn, ref, addr, dtkey, nbytes, layout, slots, region, anchor=None) -> None:
        keep = tuple(b for b in txn.bindings_at(addr) if b[0]() is not None)
        txn.bindings[addr] = keep + ((ref, dtkey, nbytes, layout, slots, next(self._state.seq), region,
                                      anchor),)

    def _create(self, txn, v, owner, addr, lo, hi, dtkey, layout, dense, name, force_mask) -> tuple:
        rec = txn.owner(owner)
        if rec is None:
            rec = (weakref.ref(owner, self._state.forget_callback()), ())
        ref = rec[0]
        dtype = v.dtype.newbyteorder("=")
        whole = self._excluded_name(name if name is not None else getattr(v, "name", None))
        if not (dense and v.size):
            # a strided variable (or an empty one): its own compact state
            def compact_layout(mask, xaddr, shape, strides, xlo, xhi):
                return None
            fill = self._mask_filler(owner, lo, hi, dtkey, dtype, whole, compact_layout)
            slots = self._new_buffers(v.shape, dtype, fill, force_mask)
            txn.owners[id(owner)] = rec
            self._bind(txn, ref, addr, dtkey, v.nbytes, layout, slots, None,
                       None if v is owner else weakref.ref(v))
            return slots
        # a dense variable: a region over its memory, taking over the state of
        # every variable stepped before whose memory lies in it
        size = dtype.itemsize
        region = _Region(ref, dtkey, lo, hi, dtype, (), None if v is owner else weakref.ref(v))

        def region_layout(mask, xaddr, shape, strides, xlo, xhi):
            if region.holds(dtkey, xaddr, xlo, xhi, strides):
                return np.ndarray(shape, dtype, buffer=mask, offset=xaddr - lo, strides=strides)
            return None

        fill = self._mask_filler(owner, lo, hi, dtkey, dtype, whole, region_layout)
        region.buffers = self._new_buffers(((hi - lo) // size,), dtype, fill, force_mask)
        for baddr, b in list(txn.all_bindings()):
            if b[0] is not ref or b[1] != dtkey or b[0]() is None:
                continue
            shape = next(s for s in b[4] if s is not None).shape if any(s is not None for s in b[4]) else None
            if shape is None:
                continue
            strides = _binding_strides(b)
            blo, bhi = _extent(baddr, shape, strides, size)
            if not region.holds(dtkey, baddr, blo, bhi, strides):
                continue
            new = region.view(baddr, shape, strides)
            for k, (dst, src) in enumerate(zip(new, b[4])):
                if dst is not None and src is not None and k != _MASK:
                    dst[...] = src
            rest = tuple(x for x in txn.bindings_at(baddr) if x is not b)
            txn.bindings[baddr] = rest + ((b[0], b[1], b[2], b[3], new, b[5], region, None),)
        txn.owners[id(owner)] = (ref, tuple(r for r in rec[1] if not (r.lo >= lo and r.hi <= hi
                                                                        and r.dtkey == dtkey)) + (region,))
        # the region's own binding (its memory as one C-ordered block), then v's
        self._bind(txn, ref, lo, dtkey, hi - lo, None, region.buffers, region)
        slots = region.view(addr, v.shape, v.strides)
        if not (addr == lo and layout is None):
            self._bind(txn, ref, addr, dtkey, v.nbytes, layout, slots, region)
        return slots

    def _lookup(self, v, index: int, what: str) -> tuple:
        """The state of a variable already stepped, or ValueError."""
        if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
            raise TypeError(f"variables[{index}] must be a float32 or float64 numpy.ndarray")
        owner, addr, lo, hi, dtkey, c_contiguous, _ = _core.memory_key(v)
        layout = None if c_contiguous else (v.shape, v.strides)
        txn = _Txn(self._state)
        slots = self._find(txn, v, owner, addr, lo, hi, dtkey, layout)
        if slots is None:
            raise ValueError(f"{what}: a variable was never stepped by this optimizer "
                             f"(variables[{index}])")
        return slots

    def _bind_flat(self, flat: np.ndarray, views: Sequence[np.ndarray],
                   names: Optional[Sequence[str]] = None) -> tuple:
        """State for a model whose variables are ``views`` of one flat buffer:
        the flat slots, with each view's slots views of them, so ``fit`` (one
        kernel call over ``flat``) and ``apply_gradients`` on the views share
        one state (a view stepped before keeps its state).  ``names`` (one per
        view) are matched by :meth:`exclude_from_weight_decay`'s ``var_names``.
        Returns the flat slots: a tuple of ``MAX_SLOTS`` arrays, None where unused."""
        with self._lock:
            txn = _Txn(self._state)
            name_of = dict(zip(map(id, views), names)) if names is not None else {}
            self._slots_for(flat, txn, force_mask=True)
            if self._exclusions[1] is not None and names is not None:
                excluded = [v for v in views if self._excluded_name(name_of.get(id(v)))]
            else:
                excluded = []
            # the views need no binding of their own now: each lies in the flat
            # buffer's region, where their first apply_gradients finds its state
            owner, addr, *_ = _core.memory_key(flat)
            region = next(b[6] for b in txn.bindings_at(addr) if b[6] is not None and b[0]() is owner)
            if self._slots_used[_MASK] and region.buffers[_MASK] is None:
                # a block first stepped with nothing excluded: fit's step reads a mask of ones
                region.buffers = region.buffers[:_MASK] + (np.ones((region.hi - region.lo) // region.dtype.itemsize, region.dtype),)
            if excluded and region.buffers[_MASK] is not None:
                for v in excluded:
                    self._slots_for(v, txn)[_MASK][...] = 0  # a fresh region: not yet visible
            _core.optim_commit([], txn.ops())
            self._built = True
            return region.buffers

    # -- the step -----------------------------------------------------------
    # apply_gradients(grads_and_vars) -> iterations is the C base class's method
    # (_core.OptimizerBase): arrays that need no conversion are stepped there,
    # without a Python frame; anything else comes here.

    def _apply_thorough(self, grads_and_vars) -> int:
        """The thorough path of ``apply_gradients``: every argument converted
        or refused with a message naming it."""
        pairs = _pairs(grads_and_vars)
        if not any(g is not None for g, _ in pairs):
            raise ValueError("No gradients provided for any variable: apply_gradients got no "
                             "(gradient, variable) pair with a gradient")
        _check_not_swapped(pairs)
        grads = [g for g, _ in pairs]
        variables = [v for _, v in pairs]
        with self._lock:
            txn = _Txn(self._state)
            slots = [_NO_SLOTS if g is None else self._slots_for(v, txn) for g, v in pairs]
            step = int(self._step[0])
            lr = self._lr if self._schedule is None else self._scheduled(step)
            missing = [i for i, g in enumerate(grads) if g is None]
            if missing:
                warnings.warn(f"Gradients do not exist for variables {missing} (their pairs are "
                              "skipped) when minimizing the loss", UserWarning, stacklevel=2)
            finite = _core.optim_update(self._kind, variables, grads, slots, self._hyper, lr,
                                        self._step, txn.ops())
            self._built = True
        if not finite:
            self._on_divergence(step + 1, lr, 3)
        return self.iterations

    def _on_divergence(self, step: int, learning_rate: float, stacklevel: int = 3) -> None:
        """Warn, once per optimizer, that the variables became NaN or infinite."""
        if self._divergence_warned:
            return
        self._divergence_warned = True
        warnings.warn(DivergenceWarning(
            f"apply_gradients: the variables became NaN or infinite at step {step} "
            f"(learning_rate={learning_rate:.6g}); try a smaller learning rate, or float64 "
            "variables"), stacklevel=stacklevel)

    def minimize(self, loss_and_grads: Callable[[], tuple[float, Sequence[np.ndarray]]],
                 var_list: Sequence[np.ndarray]) -> float:
        """Call ``loss_and_grads()`` -> ``(loss, grads)`` and apply the gradients; returns the loss."""
        loss, grads = loss_and_grads()
        self.apply_gradients(zip(grads, var_list))
        return loss

    # -- Keras 3's base-optimizer methods -----------------------------------
    def exclude_from_weight_decay(self, var_list: Optional[Sequence[np.ndarray]] = None,
                                  var_names: Optional[Sequence[str]] = None) -> None:
        """Leave variables out of weight decay (Keras 3): the arrays of
        ``var_list`` (by the memory they cover, so their views too), and every
        variable whose name contains one of ``var_names`` (a regular expression
        each; names are those a model gives its variables, or an array's
        ``name`` attribute).  Must be called before the first step."""
        with self._lock:
            if self.built:
                raise ValueError("`exclude_from_weight_decay()` can only be configured before "
                                 "the optimizer is built.")
            records = []
            for i, v in enumerate(var_list or ()):
                if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
                    raise TypeError(f"var_list[{i}] must be a float32 or float64 numpy.ndarray")
                owner, addr, lo, hi, dtkey, _, dense = _core.memory_key(v)
                records.append((weakref.ref(owner), dtkey, addr, v.shape, v.strides, lo, hi, dense))
            names = list(var_names or ())
            for i, n in enumerate(names):
                if not isinstance(n, str):
                    raise TypeError(f"var_names[{i}] must be a string, got {type(n).__name__}")
            pattern = re.compile("|".join(sorted(set(names)))) if names else None
            self._exclusions = (tuple(records), pattern, tuple(names))
            self._build_hyper()

    def finalize_variable_values(self, var_list: Sequence[np.ndarray]) -> None:
        """With ``use_ema``, write each variable's moving average into it (Keras
        3; ``fit`` does it after its last epoch).  Otherwise nothing."""
        if not self.use_ema:
            return
        with self._lock:
            copies = []
            for i, v in enumerate(var_list):
                average = self._lookup(v, i, "finalize_variable_values")[_EMA]
                copies.append((v, average))
            _core.optim_commit(copies, [])

    # -- saving -------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        if self._schedule is None:
            lr = self._lr
        elif isinstance(self._schedule, _schedules.LearningRateSchedule):
            lr = _schedules.serialize(self._schedule)
        else:
            lr = self._schedule
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Optimizer":
        """An optimizer from :meth:`get_config`'s dict, or from a Keras 3 one
        (``keras.optimizers.Adam().get_config()``): keys that cannot apply
        here are dropped with a ``UserWarning`` naming them."""
        return cls._from_config(config, strict=False)

    @classmethod
    def _from_config(cls, config: dict[str, Any], strict: bool) -> "Optimizer":
        """:meth:`from_config`; ``strict``: a key that cannot apply is a
        ``ValueError`` instead of a warning (a config fastopt wrote itself)."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = _schedules.deserialize(_keras_schedule(lr))
        valid = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        dropped = {}
        for key in list(config):
            if key in valid:
                continue
            value = config.pop(key)
            if key in _NEUTRAL_CONFIG and any(value is x or (value == x and type(value) is type(x))
                                              for x in _NEUTRAL_CONFIG[key]):
                continue  # no effect at this value: nothing to warn about
            dropped[key] = value
        if dropped and strict:
            raise ValueError(f"unexpected keys {sorted(dropped)} in a {cls.__name__} config")
        if dropped:
            warnings.warn(f"{cls.__name__}.from_config: ignoring {dropped}: "
                          + ("; ".join(_why_ignored(k) for k in dropped)), UserWarning, stacklevel=2)
        return cls(**config)

    def get_state(self, variables: Optional[Sequence[np.ndarray]] = None) -> dict[str, Any]:
        """A copy of the state: ``{"iterations": int, "slots": [[array, ...] per variable]}``,
        with ``"average"`` (``use_ema``) and ``"accumulators"`` and
        ``"accumulated_steps"`` (``gradient_accumulation_steps``) when used.

        ``variables`` fixes the order (default: every block of memory the
        optimizer holds state for, in the order it first saw them).
        """
        with self._lock:
            if variables is None:
                per_var = [b[4] for b in self._state.live_bindings()]
            else:
                per_var = [self._lookup(v, i, "get_state") for i, v in enumerate(variables)]
            state: dict[str, Any] = {
                "iterations": self.iterations,
                "slots": [[None if s is None else s.copy() for s in kept[:_KIND_SLOTS]] for kept in per_var]}
            if self.use_ema:
                state["average"] = [kept[_EMA].copy() for kept in per_var]
            if self.gradient_accumulation_steps:
                state["accumulators"] = [kept[_ACCUM].copy() for kept in per_var]
                state["accumulated_steps"] = self._accumulated_steps
            return state

    def set_state(self, state: dict[str, Any], variables: Sequence[np.ndarray]) -> None:
        """Restore a :meth:`get_state` result for ``variables`` (in the same order).
        Everything is checked before anything is written."""
        if not isinstance(state, dict):
            raise TypeError(f"set_state: state must be a dict, got {type(state).__name__}")
        extras = (["average"] if self.use_ema else []) + (
            ["accumulators", "accumulated_steps"] if self.gradient_accumulation_steps else [])
        for key in ["iterations", "slots"] + extras:
            if key not in state:
                raise ValueError(f"set_state: state has no {key!r} (expected the keys of get_state())")
        iterations = _check_step(state["iterations"], "set_state: iterations")
        acc = self.gradient_accumulation_steps or 1
        within = _check_step(state["accumulated_steps"], "set_state: accumulated_steps") if acc > 1 else 0
        if within >= acc:
            raise ValueError(f"set_state: accumulated_steps must be < {acc}, got {within}")
        calls = iterations * acc + within
        if calls > _MAX_STEP:
            raise ValueError("set_state: iterations must be in [0, 2**53]")
        variables = list(variables)
        slots = state["slots"]
        if not isinstance(slots, (list, tuple)):
            raise ValueError("set_state: slots must be a list of per-variable lists")
        if len(slots) != len(variables):
            raise ValueError(f"set_state: state has {len(slots)} variables, got {len(variables)}")
        for key in extras[:2]:
            if not isinstance(state[key], (list, tuple)) or len(state[key]) != len(variables):
                raise ValueError(f"set_state: {key} must have one array per variable")
        for i, v in enumerate(variables):
            if not isinstance(v, np.ndarray) or v.dtype.kind != "f" or v.dtype.itemsize not in (4, 8):
                raise TypeError(f"variables[{i}] must be a float32 or float64 numpy.ndarray")
        with self._lock:
            txn = _Txn(self._state)
            copies = []
            for i, (v, saved) in enumerate(zip(variables, slots)):
                target = self._slots_for(v, txn)
                if not isinstance(saved, (list, tuple)):
                    raise ValueError(f"set_state: slots[{i}] must be a list")
                if len(saved) != _KIND_SLOTS:
                    raise ValueError(f"set_state: slots[{i}] has {len(saved)} entries, expected {_KIND_SLOTS}")
                sources = list(saved) + [state["average"][i] if self.use_ema else None,
                                         state["accumulators"][i] if acc > 1 else None]
                for k, (s, f) in enumerate(zip(sources, target)):
                    if k < _KIND_SLOTS and (s is None) != (f is None):
                        raise ValueError(f"set_state: slots[{i}][{k}] does not match this "
                                         "optimizer's configuration")
                    if f is None or s is None:
                        continue
                    where = f"slots[{i}][{k}]" if k < _KIND_SLOTS else f"{extras[k - _KIND_SLOTS]}[{i}]"
                    arr = np.asarray(s)
                    if arr.dtype.kind not in "fiu":
                        raise TypeError(f"set_state: {where} must hold real numbers, got dtype {arr.dtype}")
                    if arr.shape != f.shape:
                        raise ValueError(f"set_state: {where} has shape {arr.shape}, expected {f.shape}")
                    if not np.isfinite(arr).all():  # as load_model: a saved state is finite
                        raise ValueError(f"set_state: {where} holds NaN or infinity")
                    copies.append((f, np.array(arr, dtype=f.dtype)))
            _core.optim_commit(copies, txn.ops(), self._step, calls)

    def __getstate__(self) -> dict[str, Any]:
        """For pickle: the configuration, the call count and the state, carried
        twice over: per array that owns memory the optimizer keeps state for,
        that array and its state blocks (a model's flat buffer), and per
        variable that made a block of state without owning its memory (a view),
        that variable and its slots.  Pickled with those arrays, the state comes
        back attached to the unpickled arrays (pickle keeps identity; NumPy
        unpickles a view as an array of its own)."""
        with self._lock:
            config = self.get_config()
            config["learning_rate"] = self._schedule if self._schedule is not None else self._lr
            owners, anchors = [], []
            for ref, regions in list(self._state.owners.values()):
                owner = ref()
                if owner is None:
                    continue
                base = _core.memory_key(owner)[1]
                blocks = [("region", r.lo - base, r.dtkey, r.hi - r.lo, r.dtype.str, r.buffers)
                          for r in regions]
                blocks += [("compact", addr - base, b[1], b[2], b[3], b[4])
                           for addr, bs in list(self._state.bindings.items()) for b in bs
                           if b[0] is ref and b[6] is None]
                owners.append([owner, blocks])
                for r in regions:
                    var = r.anchor() if r.anchor is not None else None
                    if var is not None:
                        anchors.append((var, r.view(_core.memory_key(var)[1], var.shape, var.strides)))
            for bs in list(self._state.bindings.values()):
                for b in bs:
                    var = b[7]() if b[6] is None and b[7] is not None else None
                    if var is not None and b[0]() is not None:
                        anchors.append((var, b[4]))
            exclusions = [(r[0](),) + r[1:] for r in self._exclusions[0] if r[0]() is not None]
            return {"config": config, "calls": int(self._step[0]), "owners": owners, "variables": anchors,
                    "exclusions": (exclusions, list(self._exclusions[2])),
                    "divergence_warned": self._divergence_warned, "built": self.built}

    def __setstate__(self, d: dict[str, Any]) -> None:
        """From pickle: a fresh lock and step counter, the state re-attached."""
        config = dict(d["config"])
        type(self).__init__(self, **config)
        records = []
        for owner, key, addr, shape, strides, lo, hi, dense in d["exclusions"][0]:
            records.append((weakref.ref(owner), key, addr, shape, strides, lo, hi, dense))
        names = tuple(d["exclusions"][1])
        self._exclusions = (tuple(records), re.compile("|".join(sorted(set(names)))) if names else None, names)
        self._build_hyper()
        self._divergence_warned = bool(d["divergence_warned"])
        self._built = bool(d.get("built", False))
        self._step[0] = _check_step(d["calls"], "iterations")
        st = self._state
        for owner, blocks in d["owners"]:
            base = _core.memory_key(owner)[1]
            ref = weakref.ref(owner, st.forget_callback())
            regions = []
            for kind, off, dtkey, *rest in blocks:
                if kind == "region":
                    nbytes, dtype, buffers = rest
                    region = _Region(ref, dtkey, base + off, base + off + nbytes, np.dtype(dtype), tuple(buffers))
                    regions.append(region)
                    entry = (ref, dtkey, nbytes, None, region.buffers, next(st.seq), region, None)
                else:
                    nbytes, layout, slots = rest
                    entry = (ref, dtkey, nbytes, layout, tuple(slots), next(st.seq), None, None)
                st.bindings[base + off] = st.bindings.get(base + off, ()) + (entry,)
            st.owners[id(owner)] = (ref, tuple(regions))
        txn, copies = _Txn(st), []
        for var, slots in d["variables"]:
            for dst, src in zip(self._slots_for(var, txn), slots):
                if dst is not None and src is not None:
                    copies.append((dst, src))
        _core.optim_commit(copies, txn.ops())

    def __copy__(self) -> "Optimizer":
        """A copy with its own state (copied), for the same variables."""
        d = self.__getstate__()
        for entry in d["owners"]:
            entry[1] = [block[:-1] + (tuple(None if b is None else b.copy() for b in block[-1]),)
                        for block in entry[1]]
        d["variables"] = [(v, tuple(None if s is None else s.copy() for s in slots))
                          for v, slots in d["variables"]]
        new = type(self).__new__(type(self))
        new.__setstate__(d)
        return new

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.get_config()['learning_rate']!r})"


# -- apply_gradients' argument checks ---------------------------------------------------------

def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"a numpy.ndarray of shape {x.shape}"
    return f"a {type(x).__name__}"


def _pairs(grads_and_vars) -> list:
    """The (gradient, variable) pairs as a list, or TypeError saying what to pass."""
    how = "apply_gradients takes (gradient, variable) pairs, as apply_gradients(zip(grads, variables))"
    if isinstance(grads_and_vars, np.ndarray):
        raise TypeError(f"{how}; got {_describe(grads_and_vars)}: pass the variables with the gradients")
    try:
        pairs = list(grads_and_vars)
    except TypeError:
        raise TypeError(f"{how}; got {_describe(grads_and_vars)}") from None
    for i, p in enumerate(pairs):
        if not isinstance(p, (tuple, list)) or len(p) != 2:
            hint = (": did you pass the gradients alone? pass zip(grads, variables)"
                    if isinstance(p, np.ndarray) else "")
            raise TypeError(f"{how}; item {i} is {_describe(p)}{hint}")
    return [tuple(p) for p in pairs]


def _check_not_swapped(pairs) -> None:
    """``Sequential.compute_gradients`` returns read-only gradients: pairs whose
    every "variable" is read-only and every "gradient" writable were swapped."""
    arrays = [(g, v) for g, v in pairs if g is not None]
    if arrays and all(isinstance(g, np.ndarray) and isinstance(v, np.ndarray) and g.flags.writeable
                      and not v.flags.writeable for g, v in arrays):
        first = next(i for i, (g, _) in enumerate(pairs) if g is not None)
        raise ValueError(f"variables[{first}] is read-only and so is every other variable, while every "
                         "gradient is writable: the pairs look swapped. apply_gradients takes "
                         "zip(grads, variables), gradient first, as in Keras")


def _keras_schedule(config: dict) -> dict:
    """A schedule config as Keras 3 writes it (with module and registered_name) in fastopt's form."""
    return {"class_name": config.get("class_name"), "config": config.get("config", {})}


def _why_ignored(key: str) -> str:
    if key == "decay":
        return _DECAY_HELP
    if key == "jit_compile":
        return "jit_compile has no meaning here: the step is compiled C"
    if key == "is_legacy_optimizer":
        return "fastopt has no legacy optimizers"
    return f"{key} is not a fastopt optimizer argument"


# -- the optimizers ------------------------------------------------------------------------------

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
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        _unknown_arguments(type(self), kwargs)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
                         ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
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
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        _unknown_arguments(type(self), kwargs)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
                         ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self.initial_accumulator_value = check_real(initial_accumulator_value,
                                                    "initial_accumulator_value", low=0)
        self.epsilon = check_real(epsilon, "epsilon", low=0, low_open=True)
        self._set_hyper(epsilon=self.epsilon)

    def _init_slot(self, k, shape, dtype):
        if k != 0:
            return super()._init_slot(k, shape, dtype)
        value = self.initial_accumulator_value
        if value > float(np.finfo(dtype).max):
            raise ValueError(f"initial_accumulator_value = {value!r} overflows {np.dtype(dtype).name}; "
                             "use float64 variables or a smaller value")
        return np.full(shape, value, dtype=dtype)

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
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name=None, **kwargs):
        _unknown_arguments(type(self), kwargs)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
                         ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
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
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name=None, **kwargs):
        _unknown_arguments(type(self), kwargs)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
                         ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
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
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name=None, **kwargs):
        _unknown_arguments(type(self), kwargs)
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (use Adam for none): Argument `weight_decay` "
                             "must be a float. Received: weight_decay=None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, clipnorm,
                         clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
                         loss_scale_factor, gradient_accumulation_steps, name)


_BY_NAME = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get(identifier: Union[str, Optimizer, dict, None]) -> Optional[Optimizer]:
    """An optimizer from a name (``"adam"``), a config dict, or an optimizer
    (returned as is); ``None`` gives ``None`` (Keras 3)."""
    if identifier is None:
        return None
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return by_name(_BY_NAME, identifier, "optimizer")()
    raise TypeError(f"optimizer must be a name or an Optimizer, got {type(identifier).__name__}")


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any], *, strict: bool = False) -> Optimizer:
    """An optimizer from :func:`serialize`'s dict, or Keras 3's (which adds
    ``module`` and ``registered_name``).  ``strict``: config keys that cannot
    apply here raise ``ValueError`` instead of being dropped with a warning."""
    if not isinstance(config, dict) or "config" not in config:
        raise ValueError("an optimizer config is a dict {'class_name': ..., 'config': {...}}")
    cls = by_name(_BY_NAME, str(config.get("class_name", "")), "optimizer")
    return cls._from_config(config["config"], strict=strict)
