"""Callbacks, with Keras 3's names, hooks and behaviour.

``fit`` runs its epochs in C and calls the callbacks between them::

    stop = fo.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    model.fit(x, y, epochs=1000, validation_split=0.2, callbacks=[stop])

A callback of your own subclasses :class:`Callback` and overrides the hooks it
needs (``on_epoch_end(epoch, logs)`` ...); ``self.model`` is the model being
trained and ``self.params`` fit's parameters (``epochs``, ``steps``,
``verbose``).  :class:`CallbackList` calls a list of them together and tells
(``uses_train_batch_hooks``) whether any of them overrides a batch-level hook,
so that ``fit`` goes batch by batch only when one does.
"""
from __future__ import annotations

import csv
import difflib
import inspect
import math
import numbers
import os
import sys
import time
import warnings
from typing import Any, Callable, Iterable, Optional, TextIO, Union

import numpy as np

from ._checks import check_int, check_real

__all__ = [
    "Callback", "CallbackList", "History", "MonitorCallback", "EarlyStopping", "ReduceLROnPlateau",
    "LearningRateScheduler", "ModelCheckpoint", "CSVLogger", "LambdaCallback", "TerminateOnNaN",
    "ProgbarLogger",
]


def _default(hook):
    """Marks a base-class hook that does nothing, so that ``CallbackList`` can
    tell which hooks a callback really uses (Keras' ``utils.default``)."""
    hook._default_hook = True
    return hook


def _overrides(callback, name: str) -> bool:
    """Whether ``callback.<name>`` is something other than the base class' empty hook."""
    if isinstance(callback, CallbackList):
        return any(_overrides(c, name) for c in callback.callbacks)
    return not getattr(getattr(callback, name, None), "_default_hook", False)


class Callback:
    """Base class of callbacks: every hook of Keras 3, each doing nothing.

    ``fit`` calls ``on_train_begin``, then for each epoch ``on_epoch_begin``,
    (``on_train_batch_begin`` / ``on_train_batch_end`` per batch), and
    ``on_epoch_end(epoch, logs)`` with that epoch's ``loss``, metrics and
    ``val_*`` values; then ``on_train_end``.  ``evaluate`` and ``predict`` call
    the ``on_test_*`` and ``on_predict_*`` hooks.  Set
    ``self.model.stop_training = True`` to end training after the epoch.
    """

    params: Optional[dict] = None
    _model = None

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params: Optional[dict]) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self._model = model

    @property
    def model(self):
        """The model the callback is used with (set by ``fit``)."""
        return self._model

    @model.setter
    def model(self, model) -> None:
        self._model = model

    @_default
    def on_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
        """A backwards compatibility alias for ``on_train_batch_begin``."""

    @_default
    def on_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        """A backwards compatibility alias for ``on_train_batch_end``."""

    @_default
    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        """Called at the start of an epoch (``epoch`` counts from 0)."""

    @_default
    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        """Called at the end of an epoch, ``logs`` holding ``loss``, the metrics
        and, when validating, their ``val_`` values: ``{"loss": 0.2, "val_loss": 0.3}``."""

    @_default
    def on_train_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
        """Called before each training batch of ``fit`` (``batch`` counts from 0 in each epoch)."""
        self.on_batch_begin(batch, logs=logs)

    @_default
    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        """Called after each training batch of ``fit``, with the epoch's metrics so far."""
        self.on_batch_end(batch, logs=logs)

    @_default
    def on_test_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
        """Called before each batch of ``evaluate`` (and of validation in ``fit``)."""

    @_default
    def on_test_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        """Called after each batch of ``evaluate`` (and of validation in ``fit``)."""

    @_default
    def on_predict_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
        """Called before each batch of ``predict``."""

    @_default
    def on_predict_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        """Called after each batch of ``predict``."""

    @_default
    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        """Called at the beginning of training."""

    @_default
    def on_train_end(self, logs: Optional[dict] = None) -> None:
        """Called at the end of training."""

    @_default
    def on_test_begin(self, logs: Optional[dict] = None) -> None:
        """Called at the beginning of evaluation or validation."""

    @_default
    def on_test_end(self, logs: Optional[dict] = None) -> None:
        """Called at the end of evaluation or validation."""

    @_default
    def on_predict_begin(self, logs: Optional[dict] = None) -> None:
        """Called at the beginning of prediction."""

    @_default
    def on_predict_end(self, logs: Optional[dict] = None) -> None:
        """Called at the end of prediction."""


_TRAIN_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
_TEST_BATCH_HOOKS = ("on_test_batch_begin", "on_test_batch_end")
_PREDICT_BATCH_HOOKS = ("on_predict_batch_begin", "on_predict_batch_end")
_HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))


class CallbackList(Callback):
    """Calls every callback of a list at each hook, in order (Keras' ``CallbackList``)::

        callbacks = fo.callbacks.CallbackList([...], add_history=True, model=model,
                                              epochs=10, steps=4, verbose=0)
        callbacks.on_train_begin()
        ...

    ``add_history`` / ``add_progbar`` append a :class:`History` /
    :class:`ProgbarLogger` unless the list has one; ``**params`` go to every
    callback's ``set_params``.  ``uses_train_batch_hooks`` (and the ``test``
    and ``predict`` ones) tells whether any callback overrides a batch hook.
    """

    def __init__(self, callbacks: Optional[Union[Callback, Iterable[Callback]]] = None,
                 add_history: bool = False, add_progbar: bool = False, model=None, **params):
        super().__init__()
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif isinstance(callbacks, (str, bytes, dict)) or not isinstance(callbacks, Iterable):
            raise TypeError(f"callbacks must be a list of Callback objects, got {type(callbacks).__name__}")
        self.callbacks: list[Callback] = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{i}] must be a fastopt.callbacks.Callback, got {type(cb).__name__}")
        self._history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self._progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    def append(self, callback: Callback) -> None:
        if not isinstance(callback, Callback):
            raise TypeError(f"callback must be a fastopt.callbacks.Callback, got {type(callback).__name__}")
        self.callbacks.append(callback)
        if self.params:
            callback.set_params(self.params)
        if self.model is not None:
            callback.set_model(self.model)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def set_params(self, params: Optional[dict]) -> None:
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model) -> None:
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    # -- which hooks are in use ----------------------------------------------------------
    @property
    def uses_train_batch_hooks(self) -> bool:
        """Whether any callback overrides ``on_train_batch_begin/end`` (or ``on_batch_begin/end``):
        only then must ``fit`` stop after every batch."""
        return any(_overrides(cb, h) for cb in self.callbacks for h in _TRAIN_BATCH_HOOKS)

    @property
    def uses_test_batch_hooks(self) -> bool:
        return any(_overrides(cb, h) for cb in self.callbacks for h in _TEST_BATCH_HOOKS)

    @property
    def uses_predict_batch_hooks(self) -> bool:
        return any(_overrides(cb, h) for cb in self.callbacks for h in _PREDICT_BATCH_HOOKS)

    @property
    def uses_batch_hooks(self) -> bool:
        """Any batch-level hook at all (train, test or predict)."""
        return self.uses_train_batch_hooks or self.uses_test_batch_hooks or self.uses_predict_batch_hooks

    # -- the hooks, fanned out ---------------------------------------------------------------
    def _call(self, name: str, *args, logs: Optional[dict]) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            getattr(cb, name)(*args, logs)

    def _call_batch(self, name: str, batch: int, logs: Optional[dict]) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            getattr(cb, name)(batch, logs)

    def on_batch_begin(self, batch, logs=None):
        self._call_batch("on_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs=None):
        self._call_batch("on_batch_end", batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_batch("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call_batch("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call_batch("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call_batch("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_batch("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call_batch("on_predict_batch_end", batch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)


class History(Callback):
    """``history.history["loss"]`` etc.: one value per epoch; ``history.epoch``
    the epochs run.  ``fit`` returns it (and sets ``model.history``)."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


# -- watching a quantity ---------------------------------------------------------------------

# metric names whose direction "auto" mode can tell (after a "val_" prefix is removed)
_MIN_NAMES = {"loss", "mse", "mae", "mape", "msle", "rmse", "hinge", "squared_hinge", "logcosh",
              "kld", "kl_divergence", "poisson", "huber"}
_MIN_ENDINGS = ("_loss", "_error", "crossentropy", "_hinge")
_MAX_NAMES = {"acc", "accuracy", "auc", "precision", "recall", "f1_score", "fbeta_score", "r2_score",
              "iou", "mean_iou"}
_MAX_ENDINGS = ("_acc", "_accuracy", "_auc", "_precision", "_recall", "_iou")


def _direction(monitor: str) -> Optional[str]:
    """"min" or "max" for a metric name fastopt or Keras knows, else None."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name in _MIN_NAMES or name.endswith(_MIN_ENDINGS):
        return "min"
    if name in _MAX_NAMES or name.endswith(_MAX_ENDINGS):
        return "max"
    return None


def _check_mode(mode: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


class MonitorCallback(Callback):
    """Base of the callbacks that watch ``monitor`` for improvement (Keras' ``MonitorCallback``).

    An improvement is ``value < best - min_delta`` in ``"min"`` mode and
    ``value > best + min_delta`` in ``"max"`` mode; ``"auto"`` takes the
    direction from the name (losses and errors down, accuracies up) and
    refuses a name it cannot place.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", baseline: Optional[float] = None,
                 min_delta: float = 0):
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name, got {type(monitor).__name__}")
        self.monitor = monitor
        self.mode = _check_mode(mode, type(self).__name__)
        self.best = baseline
        self.min_delta = abs(check_real(min_delta, "min_delta"))
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        mode = self.mode if self.mode != "auto" else _direction(self.monitor)
        if mode is None:
            raise ValueError(
                f"{type(self).__name__} callback received monitor={self.monitor}, but fastopt isn't able "
                "to automatically determine whether that metric should be maximized or minimized. "
                "Pass `mode='max'` in order to monitor based on the highest metric value, or pass "
                "`mode='min'` in order to use the lowest value.")
        self.monitor_op = np.less if mode == "min" else np.greater

    def _is_improvement(self, monitor_value, reference_value) -> bool:
        if reference_value is None:
            return True
        delta = -self.min_delta if self.monitor_op is np.less else self.min_delta
        return bool(self.monitor_op(monitor_value - delta, reference_value))


class EarlyStopping(MonitorCallback):
    """Stops training when ``monitor`` has not improved by ``min_delta`` for
    ``patience`` epochs (Keras' arguments and meaning).

    ``baseline``: training stops after ``patience`` epochs unless the value
    beats it; ``restore_best_weights``: the weights of the best epoch are put
    back at the end of training; ``start_from_epoch``: epochs before this one
    are not watched.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = check_int(patience, "patience", low=0)
        self.verbose = verbose
        self.baseline = baseline
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = bool(restore_best_weights)
        self.best_weights = None
        self.best_epoch = 0
        self.start_from_epoch = check_int(start_from_epoch, "start_from_epoch", low=0)

    def on_train_begin(self, logs=None):
        # the same instance may serve several fit calls
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0
        if self.monitor_op is None:
            self._set_monitor_op()

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # the first epoch watched: its weights are the best so far
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # the wait restarts only when both the baseline and the best so far are beaten
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        # Keras 3: the best weights come back whenever they were recorded, stopped early or not
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs or {})}", stacklevel=2)
        return value


# -- the learning rate ---------------------------------------------------------------------

def _settable_learning_rate(optimizer, who: str) -> None:
    """Refuses (before training starts) an optimizer whose learning rate is a
    schedule or a callable: a callback cannot set it."""
    if optimizer is None or not hasattr(type(optimizer), "learning_rate"):  # (not evaluated: may call a schedule)
        raise ValueError(f"{who}: the model must be compiled with an optimizer that has a learning_rate")
    lr = optimizer.get_config().get("learning_rate")
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return
    what = "`LearningRateSchedule`" if isinstance(lr, dict) else "callable `learning_rate`"
    raise TypeError(f"This optimizer was created with a {what} object as its `learning_rate` constructor "
                    f"argument, hence its learning rate is not settable by {who}. If you need the learning "
                    "rate to be settable, you should instantiate the optimizer with a float `learning_rate` "
                    "argument.")


def _new_learning_rate(value, who: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: the schedule must return a float learning rate, got {value!r}")
    lr = float(value)
    if not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"{who}: the schedule returned {lr}; a learning rate is finite and >= 0")
    return lr


def _takes_two_arguments(fn: Callable) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins: assume Keras' (epoch, lr)
        return True
    try:
        signature.bind(0, 0.1)
    except TypeError:
        return False
    return True


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of every epoch to
    ``schedule(epoch, lr)`` (``epoch`` from 0, ``lr`` the current rate; a
    one-argument ``schedule(epoch)`` works too), and records it in the logs as
    ``learning_rate``::

        def scheduler(epoch, lr):
            return lr if epoch < 10 else lr * math.exp(-0.1)

        model.fit(x, y, epochs=15, callbacks=[fo.callbacks.LearningRateScheduler(scheduler)])

    The optimizer must have a float learning rate (not a schedule).
    """

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose
        self._two = _takes_two_arguments(schedule)

    def on_train_begin(self, logs=None):
        _settable_learning_rate(self.model.optimizer, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = float(optimizer.learning_rate)
        lr = self.schedule(epoch, lr) if self._two else self.schedule(epoch)
        lr = _new_learning_rate(lr, "LearningRateScheduler")
        optimizer.learning_rate = lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not
    improved by ``min_delta`` for ``patience`` epochs (Keras' arguments and
    meaning): ``new_lr = max(lr * factor, min_lr)``; after a reduction,
    ``cooldown`` epochs pass before the watch resumes.  Records
    ``learning_rate`` in the logs.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        factor = check_real(factor, "factor", low=0)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        self.factor = factor
        self.min_lr = check_real(min_lr, "min_lr", low=0)
        self.patience = check_int(patience, "patience", low=0)
        self.verbose = verbose
        self.cooldown = check_int(cooldown, "cooldown", low=0)
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self) -> None:
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.model is not None:
            _settable_learning_rate(self.model.optimizer, "ReduceLROnPlateau")

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _reduce(self, optimizer, epoch: int) -> bool:
        old_lr = float(optimizer.learning_rate)
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
            return True
        return False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = {} if logs is None else logs
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is "
                          f"not available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0


# -- saving and logging ------------------------------------------------------------------------

_KERAS_SUFFIXES = (".keras", ".h5")


class ModelCheckpoint(MonitorCallback):
    """Saves the model (``model.save(path)``) or its weights
    (``model.save_weights(path)``) at the end of every epoch, or every
    ``save_freq`` batches.

    ``filepath`` may hold ``{epoch:02d}`` (from 1), ``{batch}`` and any log key
    (``{val_loss:.2f}``), as in Keras.  With ``save_best_only`` it saves only
    when ``monitor`` improves on the best so far (starting from
    ``initial_value_threshold``).  fastopt writes ``.npz`` files: give a path
    ending in ``.npz`` (Keras' ``.keras`` and ``.h5`` are refused).
    """

    def __init__(self, filepath: Union[str, os.PathLike], monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto",
                 save_freq: Union[str, int] = "epoch", initial_value_threshold: Optional[float] = None):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"filepath must be a path, got {type(filepath).__name__}")
        self.filepath = os.fspath(filepath)
        if self.filepath.endswith(_KERAS_SUFFIXES):
            raise ValueError(f"filepath={self.filepath!r}: fastopt saves .npz files, not Keras' "
                             f"{' or '.join(_KERAS_SUFFIXES)} formats; use a path ending in .npz")
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)):
            raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are 'epoch' or "
                             "integer values")
        if save_freq != "epoch" and save_freq < 1:
            raise ValueError(f"save_freq must be 'epoch' or a number of batches >= 1, got {save_freq}")
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if save_freq != "epoch":  # only then does fit need to stop after every batch
            self.on_train_batch_end = self._on_train_batch_end

    def on_train_begin(self, logs=None):
        if self.save_best_only and self.monitor_op is None:
            self._set_monitor_op()
        saver = "save_weights" if self.save_weights_only else "save"
        if self.model is not None and not hasattr(self.model, saver):
            raise TypeError(f"ModelCheckpoint: the model has no {saver}() method")

    def _on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch: int) -> bool:
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1  # a new epoch: batches count from 0
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch: int, logs: dict, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
            return True
        if np.ndim(current) > 0:
            warnings.warn(f"Can save best model only when `monitor` is a scalar value. Received: {current}. "
                          "Falling back to `save_best_only=False`.", stacklevel=2)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                      f"saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _get_file_path(self, epoch: int, batch: Optional[int], logs: dict) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except (KeyError, IndexError) as e:
            raise ValueError(f'Failed to format this callback filepath: "{self.filepath}". Reason: no '
                             f"value for {e} (epoch, batch and the logs {sorted(logs)} can be used)") from None

    def _save_model(self, epoch: int, batch: Optional[int], logs: Optional[dict]) -> None:
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise IsADirectoryError(f"Please specify a non-directory filepath for ModelCheckpoint. "
                                    f"Filepath used is an existing directory: {filepath}")
        if not self._should_save_model(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")


class CSVLogger(Callback):
    """Writes one row per epoch (``epoch`` from 0, then every log key in sorted
    order) to a CSV file, as Keras does: ``append=True`` continues an existing
    file (its header is written once); values missing in an epoch are ``NA``."""

    def __init__(self, filename: Union[str, os.PathLike], separator: str = ",", append: bool = False):
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"filename must be a path, got {type(filename).__name__}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be a single character, got {separator!r}")
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = bool(append)
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}

        def handle_value(v):
            if isinstance(v, str):
                return v
            if isinstance(v, Iterable) and not (isinstance(v, np.ndarray) and v.ndim == 0):
                return f'"[{", ".join(map(str, v))}]"'
            return v

        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if self.writer is None:
            sep = self.sep

            class Dialect(csv.excel):
                delimiter = sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, handle_value(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


class LambdaCallback(Callback):
    """A callback made of functions, as Keras' ``LambdaCallback``::

        fo.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))

    ``on_epoch_begin/end(epoch, logs)``, ``on_train_begin/end(logs)``,
    ``on_train_batch_begin/end(batch, logs)``, and any other hook by its name.
    A keyword that looks like a hook but is none (``on_epoch_ned``) is refused.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        for key in kwargs:
            if key.startswith("on_") and key not in _HOOKS:
                close = difflib.get_close_matches(key, _HOOKS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; the hooks are {list(_HOOKS)}"
                raise TypeError(f"LambdaCallback got an unknown hook {key!r}{hint}")
        self.__dict__.update(kwargs)
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name, fn in given.items():
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
                setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stops training when an epoch's loss (or a weight) becomes NaN or
    infinite, and puts back the weights of the last epoch that ended finite
    (the starting weights if none did).  ``raise_error=True`` raises a
    ``RuntimeError`` instead of stopping gracefully (after restoring them)."""

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = bool(raise_error)
        self.finite_weights = None
        self.finite_epoch = None

    def _finite_copy(self) -> Optional[list]:
        weights = self.model.get_weights()
        return weights if all(np.isfinite(w).all() for w in weights) else None

    def on_train_begin(self, logs=None):
        self.finite_weights = self._finite_copy() if getattr(self.model, "built", True) else None
        self.finite_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            weights = self._finite_copy()
            if weights is not None:
                self.finite_weights, self.finite_epoch = weights, epoch
                return
        restored = ""
        if self.finite_weights is not None:
            self.model.set_weights(self.finite_weights)
            restored = (f"; restored the weights of the end of epoch {self.finite_epoch + 1}"
                        if self.finite_epoch is not None else "; restored the starting weights")
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at epoch {epoch}. Loss value: {loss}. "
                               f"Terminating training immediately{restored}.")
        print(f"Epoch {epoch + 1}: Invalid loss, terminating training{restored}")
        self.model.stop_training = True


# -- progress -----------------------------------------------------------------------------------

def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (notebook, lab, VS Code, Colab)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an odd IPython: not a notebook we know
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _format_value(v) -> str:
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return f"{v:.4f}" if abs(v) > 1e-3 or v == 0 or not math.isfinite(v) else f"{v:.4e}"
    return str(v)


def _format_metrics(logs: Optional[dict]) -> str:
    return "".join(f" - {k}: {_format_value(v)}" for k, v in (logs or {}).items())


def _format_seconds(seconds: float) -> str:
    if seconds >= 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds >= 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def _format_time(per_unit: float, unit: str) -> str:
    """Keras' ``12ms/step``."""
    if per_unit >= 1 or per_unit == 0:
        return f"{per_unit:.0f}s/{unit}"
    if per_unit >= 1e-3:
        return f"{per_unit * 1e3:.0f}ms/{unit}"
    return f"{per_unit * 1e6:.0f}us/{unit}"


_DISPLAYS = ("auto", "tqdm", "bar", "lines")


class ProgbarLogger(Callback):
    """The progress ``fit`` prints for ``verbose`` (Keras' ``ProgbarLogger``).

    * ``verbose=1`` (and ``"auto"``): one bar for the whole run, updated in
      place: ``Epoch 37/1000 [=====>......] - ETA: 0:12 - loss: 0.1234 - mae: ...``.
      In Jupyter it is a ``tqdm.auto`` bar when tqdm is installed
      (``pip install fastopt[progress]``); in a terminal a carriage-return bar
      redrawn at most every ``interval`` seconds (0.1); when the output is
      not a terminal (a file, a pipe, a captured stream), one line at most
      every ``interval`` seconds (5), plus a last line at the end.
    * ``verbose=2``: one line per epoch, as Keras:
      ``Epoch 3/100 - 4/4 - 0s - 2ms/step - loss: 0.1234``.
    * ``verbose=0``: nothing.

    ``stream`` (default: ``sys.stdout`` when training starts), ``clock``
    (default ``time.monotonic``), ``interval`` and ``display`` (``"auto"``,
    ``"tqdm"``, ``"bar"``, ``"lines"``) can be set; ``count_mode`` and
    ``stateful_metrics`` are accepted for compatibility with older Keras.
    """

    def __init__(self, count_mode: str = "steps", stateful_metrics: Optional[Iterable[str]] = None, *,
                 stream: Optional[TextIO] = None, clock: Optional[Callable[[], float]] = None,
                 interval: Optional[float] = None, display: str = "auto"):
        super().__init__()
        if count_mode not in ("steps", "samples"):
            raise ValueError(f"Unknown `count_mode`: {count_mode!r}; expected 'steps' or 'samples'")
        if display not in _DISPLAYS:
            raise ValueError(f"display must be one of {list(_DISPLAYS)}, got {display!r}")
        if interval is not None:
            interval = check_real(interval, "interval", low=0)
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a function returning seconds, got {type(clock).__name__}")
        self.count_mode = count_mode
        self.stateful_metrics = set(stateful_metrics or ())
        self.stream = stream
        self.clock = clock or time.monotonic
        self.interval = interval
        self.display = display
        self.verbose = 1
        self.epochs = 1
        self.target = None
        self._in_fit = False
        self._tqdm = None

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        if verbose == "auto":
            verbose = 1
        if isinstance(verbose, str) or verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
        self.verbose = int(verbose)
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    # -- output ----------------------------------------------------------------------------------
    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stdout

    def _write(self, text: str) -> None:
        out = self._out()
        out.write(text)
        out.flush()

    def _choose_display(self) -> str:
        if self.display != "auto":
            return self.display
        if self.stream is None and _in_notebook():
            try:
                import tqdm.auto  # noqa: F401  (the optional extra fastopt[progress])
            except ImportError:
                return "bar"
            return "tqdm"
        return "bar" if _isatty(self._out()) else "lines"

    # -- training --------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._in_fit = True
        self._mode = self._choose_display() if self.verbose == 1 else None
        self._interval = self.interval if self.interval is not None else (5.0 if self._mode == "lines" else 0.1)
        self._start = self.clock()
        self._last_write = self._start
        self._first_epoch = None
        self._last = None           # (epoch, logs) of the latest epoch
        self._shown = True          # whether the latest epoch is on screen
        self._width = 0             # the width of the bar on screen (to blank a longer old one)

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch
        self._epoch_start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        if not self.verbose:
            return
        now = self.clock()
        if self._first_epoch is None:  # on_epoch_begin was not called
            self._first_epoch, self._epoch_start = epoch, now
        if self.verbose == 2:
            self._write(self._epoch_line(epoch, logs, now) + "\n")
            return
        if self._mode == "tqdm":
            self._tqdm_update(epoch, logs)
            return
        self._last, self._shown = (epoch, dict(logs or {})), False
        if now - self._last_write >= self._interval:
            self._show(now, final=False)

    def on_train_end(self, logs=None):
        self._in_fit = False
        if self.verbose != 1:
            return
        if self._mode == "tqdm":
            if self._tqdm is not None:
                self._tqdm.close()
                self._tqdm = None
            return
        if self._last is None:
            return
        # the last epoch with the run's time in place of the ETA, unless a line already showed it
        if not (self._shown and self._mode == "lines" and self._last[0] + 1 >= self.epochs):
            self._show(self.clock(), final=True)
        if self._mode == "bar":
            self._write("\n")

    def _show(self, now: float, final: bool) -> None:
        epoch, logs = self._last
        line = self._bar(epoch, logs, now, final=final or epoch + 1 >= self.epochs)
        if self._mode == "lines":
            self._write(line + "\n")
        else:  # redraw in place, blanking what is left of a longer previous bar
            self._write("\r" + line + " " * max(self._width - len(line), 0))
            self._width = len(line)
        self._shown, self._last_write = True, now

    def _epoch_line(self, epoch: int, logs, now: float) -> str:
        seconds = now - self._epoch_start
        steps = self.target or 0
        counted = f" - {steps}/{steps} - {seconds:.0f}s - {_format_time(seconds / steps, 'step')}" if steps else ""
        return f"Epoch {epoch + 1}/{self.epochs}{counted}{_format_metrics(logs)}"

    def _bar(self, epoch: int, logs, now: float, final: bool, width: int = 30) -> str:
        done = epoch + 1
        head = f"Epoch {done}/{self.epochs}"
        filled = int(width * min(done / self.epochs, 1.0)) if self.epochs else width
        bar = "=" * filled if filled >= width else "=" * max(filled - 1, 0) + ">" + "." * (width - filled)
        elapsed = now - self._start
        per_epoch = elapsed / max(done - self._first_epoch, 1)
        if final:
            timing = f"{_format_seconds(elapsed)} {_format_time(per_epoch, 'epoch')}"
        else:
            timing = f"ETA: {_format_seconds(per_epoch * (self.epochs - done))}"
        return f"{head} [{bar[:width]}] - {timing}{_format_metrics(logs)}"

    def _tqdm_update(self, epoch: int, logs) -> None:
        if self._tqdm is None:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=self.epochs, initial=epoch, unit="epoch", desc="Epoch",
                              file=self._out(), dynamic_ncols=True, leave=True)
        self._tqdm.set_postfix_str(_format_metrics(logs)[3:], refresh=False)
        self._tqdm.update(1)

    # -- evaluate and predict on their own -----------------------------------------------------------
    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._test_start = self.clock()

    def on_test_end(self, logs=None):
        if not self._in_fit and self.verbose:
            seconds = self.clock() - getattr(self, "_test_start", self.clock())
            self._write(f"{seconds:.0f}s{_format_metrics(logs)}\n")
