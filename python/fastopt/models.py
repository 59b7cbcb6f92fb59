"""``Sequential``: a stack of ``Dense`` layers trained by a loop that runs in C.

All weights and biases of a model live in one contiguous array (each layer's
``kernel`` and ``bias`` are views into it); the gradients and the optimizer's
state are flat arrays of the same length, so one optimizer step is one kernel
call over the whole model.  The C side of a model is one ``_core.Network``: it
parsed the layer spec once, holds the layout of every kernel and bias (the
views come from it), the workspace, the bound buffers and optimizer and the
shuffle generator.  ``fit`` runs many epochs per C call when nothing watches
them (the shuffle, every mini-batch's forward pass, loss, backprop and update
run there); with callbacks, validation or progress output, one call per epoch,
or per batch when a callback has batch hooks.

The per-step calls (``train_on_batch``, ``test_on_batch``, ``predict_on_batch``,
``compute_gradients``, ``predict``) hand arrays that already have the model's
dtype, C layout and shape straight to C, which checks them; anything else
takes the thorough Python path (conversion, explanations, refusals).  Both
give the same bits; ``fastopt.models._FAST_PATH = False`` forces the thorough one.
"""
from __future__ import annotations

import json
import numbers
import os
import tempfile
import warnings
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from . import _core
from . import callbacks as _callbacks
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from ._checks import as_float_array, check_int, check_real
from ._warnings import DivergenceWarning
from .layers import Dense

__all__ = ["Sequential", "load_model"]

# the per-step calls try C first with the arrays as given (tests set it to False
# to force the thorough path; both must give the same bits)
_FAST_PATH = True
# a learning-rate schedule is evaluated for at most this many steps per C call,
# and a fit in bulk keeps the sums of at most this many epochs per call
_STEPS_PER_CALL = 1 << 16
_EPOCHS_PER_CALL = 1 << 12

# the C loss code of each loss name losses.get returns
_LOSS_CODES = {"mean_squared_error": _core.LOSS_MSE}

_DIVERGED = {1: "the loss became NaN or infinite",
             2: "the loss grew more than 1e6 times above its starting value",
             3: "the weights became NaN or infinite"}


def _overrides(cb, name: str) -> bool:
    """Whether a callback defines hook ``name`` beyond the base Callback's."""
    if name in getattr(cb, "__dict__", ()):
        return True
    method = getattr(type(cb), name, None)
    return method is not None and method is not getattr(_callbacks.Callback, name, None)


def _hooks(cbs, name: str) -> list:
    """The bound ``name`` hooks of the callbacks that define one."""
    return [getattr(cb, name) for cb in cbs if _overrides(cb, name)]


def _check_verbose(verbose) -> int:
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if not isinstance(verbose, numbers.Integral) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _check_validation_freq(freq) -> Union[int, frozenset]:
    if isinstance(freq, (list, tuple, set, frozenset)):
        return frozenset(check_int(f, "validation_freq[i]", low=1) for f in freq)
    return check_int(freq, "validation_freq", low=1)


def _should_validate(epoch: int, freq) -> bool:
    """Keras: validate after epoch (1-based) k when k % freq == 0, or k is in the list."""
    return (epoch + 1) in freq if isinstance(freq, frozenset) else (epoch + 1) % freq == 0


class Sequential:
    """A linear stack of layers, with Keras' API::

        model = fo.Sequential([fo.Dense(10, activation="relu", input_shape=(13,)), fo.Dense(1)])
        model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mae"])
        history = model.fit(x, y, epochs=100, batch_size=32, verbose=0)
        y_pred = model.predict(x)

    ``dtype`` is ``"float32"`` (default) or ``"float64"``; ``seed`` makes the
    initial weights and the shuffling reproducible bit for bit.
    """

    def __init__(self, layers: Optional[Sequence[Dense]] = None, dtype: str = "float32",
                 seed: Optional[int] = None, name: Optional[str] = None):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.seed = None if seed is None else check_int(seed, "seed", low=0)
        self.name = name or "sequential"
        self.layers: list[Dense] = []
        self._optimizer: Optional[_optimizers.Optimizer] = None
        self._bound_opt: Optional[_optimizers.Optimizer] = None  # the one the network steps with
        self._net = None  # the _core.Network, once built
        self.loss: Optional[str] = None
        self.metrics_names: list[str] = []
        self.stop_training = False
        self.history: Optional[_callbacks.History] = None
        self._diverged = False  # train_on_batch warned and has not seen a sound step since
        self._params: Optional[np.ndarray] = None
        self._variables: list[np.ndarray] = []
        self._slots: tuple = (None,) * _core.MAX_SLOTS
        seed_seq = np.random.SeedSequence(self.seed)
        self._init_rng = np.random.default_rng(seed_seq.spawn(1)[0])
        self._rng = np.zeros(4, np.uint64)
        _core.rng_seed(self._rng, int(seed_seq.generate_state(1, np.uint64)[0]))
        for layer in layers or ():
            self._append(layer)
        if self.layers and self.layers[0].input_shape is not None:
            self.build((None, self.layers[0].input_shape[0]))

    @property
    def _rng_state(self) -> np.ndarray:
        """The shuffle generator's uint64[4] state; the network reads this very array,
        so assigning copies into it."""
        return self._rng

    @_rng_state.setter
    def _rng_state(self, value) -> None:
        self._rng[...] = value

    @property
    def optimizer(self) -> Optional[_optimizers.Optimizer]:
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: Optional[_optimizers.Optimizer]) -> None:
        """Assigning an optimizer (``compile`` does) binds its state to the flat buffer."""
        self._optimizer = optimizer
        if self.built:
            self._bind()

    # -- structure --------------------------------------------------------------
    def add(self, layer: Dense) -> None:
        """Append a layer; the model builds once the input width is known (the
        first layer's ``input_shape``, or the first ``fit``)."""
        self._append(layer)
        if self.built:  # rebuild with one more layer, keeping the weights so far
            old = self.get_weights()
            self._params = None
            self.build((None, self._input_dim))
            for v, w in zip(self._variables, old):
                v[...] = w
        elif self.layers[0].input_shape is not None:
            self.build((None, self.layers[0].input_shape[0]))

    def _append(self, layer: Dense) -> None:
        if not isinstance(layer, Dense):
            raise TypeError(f"Sequential takes Dense layers, got {type(layer).__name__}")
        if any(layer is l for l in self.layers):
            raise ValueError("this layer is already in the model")
        if layer.built:
            raise ValueError(f"layer {layer.name!r} already belongs to a built model; its weights live "
                             "in that model's buffer, so make a new Dense layer")
        if layer.name is None:
            layer.name = "dense" if not self.layers else f"dense_{len(self.layers)}"
        self.layers.append(layer)

    @property
    def built(self) -> bool:
        return self._params is not None

    def _spec(self) -> tuple:
        """The network as the C kernels read it: (units, activations, use_bias, l1, l2)."""
        units = (self._input_dim,) + tuple(l.units for l in self.layers)
        regs = [l.kernel_regularizer for l in self.layers]
        return (units, tuple(l._act for l in self.layers), tuple(l.use_bias for l in self.layers),
                tuple(float(r.l1) if r else 0.0 for r in regs),
                tuple(float(r.l2) if r else 0.0 for r in regs))

    def build(self, input_shape: tuple) -> None:
        """Make the network, allocate the flat parameter buffer and initialize
        every layer's weights (views into it, as the network lays them out)."""
        if self.built:
            return
        if not self.layers:
            raise ValueError("the model has no layers")
        self._input_dim = check_int(input_shape[-1], "input_shape[-1]", low=1)
        self.spec = self._spec()
        net = _core.Network(self.spec, self.dtype, self._rng)
        params = np.zeros(net.n_params, self.dtype)
        variables = net.views(params)
        views = iter(variables)
        fan_in = self._input_dim
        for layer in self.layers:
            layer.kernel = next(views)
            layer.kernel[...] = layer.kernel_initializer((fan_in, layer.units), self.dtype, self._init_rng)
            if layer.use_bias:
                layer.bias = next(views)
                layer.bias[...] = layer.bias_initializer((layer.units,), self.dtype, self._init_rng)
            fan_in = layer.units
        if self.loss is not None:
            net.loss = _LOSS_CODES[self.loss]
        self._net = net
        self._params = params
        self._variables = variables
        self._grads = np.zeros_like(params)
        self._bind()

    def _bind(self) -> None:
        """Give the network the flat buffers and the optimizer's flat state."""
        opt = self._optimizer
        if opt is None:
            self._net.bind(self._params, self._grads, None, (None,) * _core.MAX_SLOTS)
        else:
            slots = opt._bind_flat(self._params, self._variables)
            self._net.bind(self._params, self._grads, opt, slots)
            self._slots = slots
        self._bound_opt = opt
        self._diverged = False

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"{what}: the model is not built; give the first layer an input_shape "
                             "or call fit / build first")

    @property
    def trainable_variables(self) -> list[np.ndarray]:
        """The live kernel and bias arrays (views into the flat buffer), Keras order."""
        return list(self._variables)

    @property
    def weights(self) -> list[np.ndarray]:
        return self.trainable_variables

    def count_params(self) -> int:
        self._require_built("count_params")
        return int(self._params.size)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of ``[kernel0 (in, out), bias0, kernel1, ...]``."""
        return [v.copy() for v in self._variables]

    def set_weights(self, weights: Sequence) -> None:
        """Copy ``weights`` (``get_weights()`` order and shapes) into the model;
        every array is checked before any is written."""
        self._require_built("set_weights")
        if isinstance(weights, np.ndarray) or not hasattr(weights, "__len__"):
            raise TypeError("set_weights takes a list of arrays, as get_weights() returns")
        if len(weights) != len(self._variables):
            raise ValueError(f"set_weights: expected {len(self._variables)} arrays, got {len(weights)}")
        staged = []
        for i, (w, v) in enumerate(zip(weights, self._variables)):
            a = as_float_array(w, f"weights[{i}]")
            if a.shape != v.shape:
                raise ValueError(f"weights[{i}] has shape {a.shape}, expected {v.shape}")
            staged.append(a)
        for a, v in zip(staged, self._variables):
            v[...] = a

    # -- training configuration ---------------------------------------------------
    def compile(self, optimizer: Union[str, _optimizers.Optimizer] = "rmsprop",
                loss: Any = "mean_squared_error", metrics: Optional[Sequence] = None) -> None:
        """Choose the optimizer (a name such as ``"adam"`` or an optimizer object),
        the loss (mean squared error) and the metrics (``"mse"``, ``"mae"`` and
        their long names)."""
        opt = _optimizers.get(optimizer)
        loss_name = _losses.get(loss)
        names = list(metrics or [])
        kinds = [_metrics.get(m) for m in names]
        code = _LOSS_CODES[loss_name]
        self.loss = loss_name
        self.metrics_names = [m if isinstance(m, str) else m.__name__ for m in names]
        self._metric_kinds = kinds
        if self.built:
            self._net.loss = code
        self.optimizer = opt

    def _require_compiled(self, what: str) -> None:
        if self._optimizer is None:
            raise ValueError(f"{what}: call compile(optimizer=..., loss=...) first")

    # -- data: the thorough path ----------------------------------------------------
    def _x(self, x, name: str = "x", width: Optional[int] = None) -> np.ndarray:
        x = as_float_array(x, name, self.dtype)
        width = self._input_dim if self.built else width
        if x.ndim == 1 and width == 1:
            x = x.reshape(-1, 1)
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-d (samples, features), got shape {x.shape}")
        if width is not None and x.shape[1] != width:
            raise ValueError(f"{name} has {x.shape[1]} features but the model takes {width}")
        if x.shape[0] == 0:
            raise ValueError(f"{name} has no samples")
        return x

    def _y(self, y, n: int, name: str = "y") -> np.ndarray:
        if not self.layers:
            raise ValueError("the model has no layers")
        y = as_float_array(y, name, self.dtype)
        out = self.layers[-1].units
        if y.ndim == 1 and out == 1:
            y = y.reshape(-1, 1)  # (n,) and (n, 1) are the same n samples
        if y.ndim != 2 or y.shape[1] != out:
            raise ValueError(f"{name} must have shape ({n}, {out})" + (f" or ({n},)" if out == 1 else "")
                             + f", got {y.shape}")
        if y.shape[0] != n:
            raise ValueError(f"x has {n} samples but {name} has {y.shape[0]}")
        return y

    def _sample_weight(self, sample_weight, n: int, name: str = "sample_weight") -> Optional[np.ndarray]:
        """Per-sample loss weights as a C array of the model's dtype, shape (n,)."""
        if sample_weight is None:
            return None
        w = as_float_array(sample_weight, name, self.dtype)
        if w.ndim == 2 and w.shape[1] == 1:
            w = w.reshape(-1)
        if w.ndim != 1:
            raise ValueError(f"{name} must have shape ({n},) or ({n}, 1), got {w.shape}")
        if w.shape[0] != n:
            raise ValueError(f"x has {n} samples but {name} has {w.shape[0]}")
        if (w < 0).any():
            raise ValueError(f"{name} must be >= 0")
        return w

    def _class_weight(self, class_weight, y: np.ndarray) -> np.ndarray:
        """Keras' class_weight: each sample weighs class_weight[its class], 1 for a
        class not listed; the class of a row of y is its argmax (several outputs)
        or its value rounded (one output)."""
        if not isinstance(class_weight, Mapping):
            raise TypeError(f"class_weight must be a dict of class -> weight, got {type(class_weight).__name__}")
        table = {}
        for k, v in class_weight.items():
            table[check_int(k, "class_weight key")] = check_real(v, f"class_weight[{k!r}]", low=0)
        classes = np.argmax(y, axis=1) if y.shape[1] > 1 else np.round(y[:, 0]).astype(np.int64)
        w = np.ones(y.shape[0], self.dtype)
        for c, weight in table.items():
            w[classes == c] = weight
        return w

    def _batch_data(self, x, y, sample_weight=None, class_weight=None
                    ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """x, y and the per-sample weights converted and checked once; an
        unbuilt model is built for x's width (after every check)."""
        x = self._x(x)
        y = self._y(y, x.shape[0])
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError("You cannot use `class_weight` and `sample_weight` at the same time")
            sw = self._class_weight(class_weight, y)
        else:
            sw = self._sample_weight(sample_weight, x.shape[0])
        if not self.built:
            self.build(x.shape)
            x = self._x(x)  # now the feature count is checked too (1-d x becomes a column)
        return x, y, sw

    # -- per-batch calls ------------------------------------------------------------
    def _logs(self, loss: float, sse: float, sae: float, count: int) -> dict[str, float]:
        logs = {"loss": loss}
        for name, kind in zip(self.metrics_names, self._metric_kinds):
            logs[name] = (sse if kind == "se" else sae) / count
        return logs

    def _result(self, loss: float, sse: float, sae: float, count: int, return_dict: bool):
        """Keras' return value: the loss alone, [loss, *metrics], or a dict."""
        if not return_dict and not self.metrics_names:
            return loss
        logs = self._logs(loss, sse, sae, count)
        return logs if return_dict else list(logs.values())

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False):
        """One optimizer step on the batch ``x, y``: forward, backward and update
        in one C call.  Returns the batch's loss (before the update), or
        ``[loss, *metrics]`` with metrics, or a dict with ``return_dict=True``.

        The loss is ``sum_i w_i * loss_i / n`` plus the regularization penalties
        (``w``: ``sample_weight``, or ``class_weight[class of y_i]``).  Keras 3
        averages the values over the calls since its last ``reset_metrics()``;
        fastopt returns this batch's (Keras 2's ``reset_metrics=True``).
        """
        net = self._net
        if _FAST_PATH and net is not None and sample_weight is None and class_weight is None:
            opt = self._bound_opt
            if opt is not None:
                lr = opt.learning_rate
                r = net.train_on_batch(x, y, None, lr, True)
                if r is not NotImplemented:
                    loss, sse, sae, bad = r
                    if bad or self._diverged:
                        self._note_batch_divergence(bad, opt, lr)
                    if not return_dict and not self.metrics_names:
                        return loss
                    return self._result(loss, sse, sae, y.size, return_dict)
        self._require_compiled("train_on_batch")
        x, y, sw = self._batch_data(x, y, sample_weight, class_weight)
        if self._optimizer is not self._bound_opt:
            self._bind()
        opt = self._bound_opt
        lr = opt.learning_rate
        loss, sse, sae, bad = self._net.train_on_batch(x, y, sw, lr)
        if bad or self._diverged:
            self._note_batch_divergence(bad, opt, lr)
        return self._result(loss, sse, sae, y.size, return_dict)

    def _note_batch_divergence(self, bad: int, opt, lr) -> None:
        """train_on_batch warns when a step diverges, then not again until a sound step."""
        if bad and not self._diverged:
            warnings.warn(DivergenceWarning(
                f"train_on_batch: {_DIVERGED[bad]} at step {opt.iterations} (learning_rate="
                f"{float(lr):.6g}); try a smaller learning rate, or dtype='float64'"), stacklevel=3)
        self._diverged = bool(bad)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """The loss (and metrics) of one batch, as ``train_on_batch`` reports them, without training."""
        net = self._net
        if _FAST_PATH and net is not None and sample_weight is None and self._optimizer is not None:
            r = net.evaluate(x, y, None, True)
            if r is not NotImplemented:
                return self._result(r[0], r[1], r[2], y.size, return_dict)
        self._require_built("test_on_batch")
        self._require_compiled("test_on_batch")
        x, y, sw = self._batch_data(x, y, sample_weight)
        loss, sse, sae = self._net.evaluate(x, y, sw)
        return self._result(loss, sse, sae, y.size, return_dict)

    def predict_on_batch(self, x) -> np.ndarray:
        """The model's outputs for one batch, ``(n, units of the last layer)``, in one C call."""
        net = self._net
        if _FAST_PATH and net is not None:
            out = net.forward(x, True)
            if out is not NotImplemented:
                return out
        self._require_built("predict_on_batch")
        return self._net.forward(self._x(x))

    def compute_gradients(self, x, y, sample_weight=None) -> tuple[float, list[np.ndarray]]:
        """``loss, grads`` of the whole batch ``x, y`` (the loss of ``train_on_batch``),
        the grads shaped like ``trainable_variables`` and read-only: the articles'
        GradientTape step is ``opt.apply_gradients(zip(grads, model.trainable_variables))``."""
        net = self._net
        if _FAST_PATH and net is not None and sample_weight is None:
            r = net.gradients(x, y, None, True)
            if r is not NotImplemented:
                return r
        x, y, sw = self._batch_data(x, y, sample_weight)
        return self._net.gradients(x, y, sw)

    # -- training -----------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: Union[int, str] = "auto", callbacks: Optional[Sequence[_callbacks.Callback]] = None,
            validation_split: float = 0.0, validation_data: Optional[tuple] = None, shuffle: bool = True,
            class_weight: Optional[Mapping[int, float]] = None, sample_weight=None, initial_epoch: int = 0,
            steps_per_epoch: Optional[int] = None, validation_batch_size: Optional[int] = None,
            validation_freq: Union[int, Sequence[int]] = 1) -> _callbacks.History:
        """Train for ``epochs`` epochs of mini-batches, Keras 3's arguments in Keras'
        order: ``batch_size=None`` means 32 (the whole set per step is
        ``batch_size=len(x)``); ``sample_weight`` (per sample) or ``class_weight``
        ({class: weight}) weigh each sample's loss, ``sum_i w_i * loss_i / batch``;
        ``validation_data`` is ``(x, y)`` or ``(x, y, sample_weight)``, evaluated
        after every ``validation_freq``-th epoch (or the epochs listed);
        ``steps_per_epoch`` takes only the first batches of each shuffled epoch.

        Returns ``History`` with per-epoch ``loss``, metrics and ``val_*`` values.
        Without callbacks, validation or progress output (``verbose=0``), the
        epochs run in C a few thousand per call and the history is filled from
        the per-epoch sums C keeps; otherwise one C call per epoch, or per batch
        when a callback defines ``on_train_batch_begin``/``on_train_batch_end``.
        A ``DivergenceWarning`` (once per call) names the first epoch whose loss
        or weights became non-finite, or whose loss grew 1e6x.  Ctrl-C stops at a
        step boundary: the weights, the optimizer's state and ``iterations``
        agree, and History holds the epochs completed.
        """
        self._require_compiled("fit")
        batch_size = 32 if batch_size is None else check_int(batch_size, "batch_size", low=1)
        epochs = check_int(epochs, "epochs", low=0)
        verbose = _check_verbose(verbose)
        validation_split = check_real(validation_split, "validation_split", low=0, high=1, high_open=True)
        initial_epoch = check_int(initial_epoch, "initial_epoch", low=0)
        if steps_per_epoch is not None:
            steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch", low=1)
        if validation_batch_size is not None:
            check_int(validation_batch_size, "validation_batch_size", low=1)
        validation_freq = _check_validation_freq(validation_freq)
        cbs = list(callbacks or [])
        x = self._x(x)
        y = self._y(y, x.shape[0])
        if class_weight is not None and sample_weight is not None:
            raise ValueError("You cannot use `class_weight` and `sample_weight` at the same time")
        sw = self._sample_weight(sample_weight, x.shape[0])
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight_val)")
            vx = self._x(validation_data[0], "validation_data[0]", width=x.shape[1])
            vy = self._y(validation_data[1], vx.shape[0], "validation_data[1]")
            vsw = None if len(validation_data) < 3 else \
                self._sample_weight(validation_data[2], vx.shape[0], "validation_data[2]")
            val = (vx, vy, vsw)
        elif validation_split > 0:
            n = x.shape[0]
            split = int(n * (1 - validation_split))  # Keras: the last samples, unshuffled
            if split == 0 or split == n:
                raise ValueError(f"validation_split={validation_split} leaves no training or validation samples")
            val = (x[split:], y[split:], None if sw is None else sw[split:])
            x, y = np.ascontiguousarray(x[:split]), np.ascontiguousarray(y[:split])
            sw = None if sw is None else np.ascontiguousarray(sw[:split])
        if class_weight is not None:  # Keras: the training samples only
            sw = self._class_weight(class_weight, y)
        if not self.built:
            self.build(x.shape)
            x = self._x(x)
        if self._optimizer is not self._bound_opt:
            self._bind()
        batches = self._net.batches(x, y, sw, batch_size, bool(shuffle), steps_per_epoch or 0)

        history = _callbacks.History()
        history.params = {"epochs": epochs, "steps": batches.steps, "verbose": verbose}
        self.history = history
        if verbose:
            cbs.append(_callbacks.ProgressLogger(epochs))
        watched = bool(cbs) or val is not None
        cbs.append(history)
        for cb in cbs:
            cb.set_model(self)
        self.stop_training = False
        run = _FitRun(self, batches, initial_epoch)
        for cb in cbs:
            cb.on_train_begin()
        if watched:
            run.epochs_watched(epochs, cbs, val, validation_freq)
        else:
            run.epochs_in_bulk(epochs, history)
        for cb in cbs:
            cb.on_train_end()
        return history

    # -- inference ------------------------------------------------------------------
    def predict(self, x, batch_size: Optional[int] = None, verbose: Union[int, str] = "auto",
                steps: Optional[int] = None, callbacks: Optional[Sequence[_callbacks.Callback]] = None
                ) -> np.ndarray:
        """The model's outputs, shape ``(n, units of the last layer)``, in one C call
        (``batch_size`` only groups the rows for callbacks' batch hooks and ``steps``;
        ``verbose="auto"`` prints nothing here: one C call has no progress to show)."""
        net = self._net
        if _FAST_PATH and net is not None and batch_size is None and steps is None and not callbacks \
                and (verbose == "auto" or verbose == 0):
            out = net.forward(x, True)
            if out is not NotImplemented:
                return out
        self._require_built("predict")
        batch_size, verbose, cbs = self._inference_arguments(batch_size, verbose, callbacks)
        x = self._x(x)
        if steps is not None:
            x = x[:check_int(steps, "steps", low=1) * batch_size]
        for hook in _hooks(cbs, "on_predict_begin"):
            hook()
        begin, end = _hooks(cbs, "on_predict_batch_begin"), _hooks(cbs, "on_predict_batch_end")
        if begin or end:
            parts = []
            for step, start in enumerate(range(0, x.shape[0], batch_size)):
                for hook in begin:
                    hook(step)
                parts.append(self._net.forward(np.ascontiguousarray(x[start:start + batch_size])))
                for hook in end:
                    hook(step, {"outputs": parts[-1]})
            out = np.concatenate(parts)
        else:
            out = self._net.forward(x)
        for hook in _hooks(cbs, "on_predict_end"):
            hook()
        if verbose:
            n_steps = -(-x.shape[0] // batch_size)
            print(f"{n_steps}/{n_steps}")
        return out

    def __call__(self, x) -> np.ndarray:
        return self.predict(x)

    def _inference_arguments(self, batch_size, verbose, callbacks) -> tuple[int, int, list]:
        """predict's and evaluate's batch_size (None: 32), verbose ("auto": silent)
        and callbacks (given this model)."""
        batch_size = 32 if batch_size is None else check_int(batch_size, "batch_size", low=1)
        verbose = 0 if isinstance(verbose, str) and verbose == "auto" else _check_verbose(verbose)
        cbs = list(callbacks or [])
        for cb in cbs:
            cb.set_model(self)
        return batch_size, verbose, cbs

    def evaluate(self, x=None, y=None, batch_size: Optional[int] = None, verbose: Union[int, str] = "auto",
                 sample_weight=None, steps: Optional[int] = None,
                 callbacks: Optional[Sequence[_callbacks.Callback]] = None, return_dict: bool = False
                 ) -> Union[float, list, dict]:
        """The loss (and metrics) on ``x, y``: a float without metrics, else
        ``[loss, metric, ...]`` (or a dict with ``return_dict=True``).  One C call
        (``batch_size`` only groups the rows for ``steps`` and callbacks' batch
        hooks: Keras' loss is the same for any batching); ``verbose="auto"``
        prints nothing, 1 or 2 one line."""
        self._require_built("evaluate")
        self._require_compiled("evaluate")
        batch_size, verbose, cbs = self._inference_arguments(batch_size, verbose, callbacks)
        x = self._x(x)
        y = self._y(y, x.shape[0])
        sw = self._sample_weight(sample_weight, x.shape[0])
        if steps is not None:
            rows = check_int(steps, "steps", low=1) * batch_size
            x, y = x[:rows], y[:rows]
            sw = None if sw is None else sw[:rows]
        for hook in _hooks(cbs, "on_test_begin"):
            hook()
        begin, end = _hooks(cbs, "on_test_batch_begin"), _hooks(cbs, "on_test_batch_end")
        if begin or end:
            total, sse, sae = 0.0, 0.0, 0.0
            for step, start in enumerate(range(0, x.shape[0], batch_size)):
                for hook in begin:
                    hook(step)
                part = slice(start, start + batch_size)
                xb, yb = np.ascontiguousarray(x[part]), np.ascontiguousarray(y[part])
                loss_b, sse_b, sae_b = self._net.evaluate(
                    xb, yb, None if sw is None else np.ascontiguousarray(sw[part]))
                total, sse, sae = total + loss_b * xb.shape[0], sse + sse_b, sae + sae_b
                rows = min(start + batch_size, x.shape[0])
                for hook in end:
                    hook(step, self._logs(total / rows, sse, sae, rows * y.shape[1]))
            loss = total / x.shape[0]
        else:
            loss, sse, sae = self._net.evaluate(x, y, sw)
        logs = self._logs(loss, sse, sae, y.size)
        for hook in _hooks(cbs, "on_test_end"):
            hook(logs)
        if verbose:
            n_steps = -(-x.shape[0] // batch_size)
            print(f"{n_steps}/{n_steps} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return logs["loss"] if not self.metrics_names else list(logs.values())

    # -- display and saving -------------------------------------------------------
    def summary(self, print_fn=print) -> None:
        rows = [("Layer (type)", "Output Shape", "Param #")]
        fan_in = self._input_dim if self.built else None
        for layer in self.layers:
            count = layer.count_params(fan_in) if fan_in else "?"
            rows.append((f"{layer.name} (Dense)", f"(None, {layer.units})", str(count)))
            fan_in = layer.units
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "-" * sum(widths)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        for i, r in enumerate(rows):
            print_fn("".join(c.ljust(w) for c, w in zip(r, widths)))
            print_fn("=" * len(line) if i == 0 else line)
        print_fn(f"Total params: {self.count_params() if self.built else '?'} ({self.dtype.name})")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype.name, "seed": self.seed,
                "input_dim": self._input_dim if self.built else None,
                "layers": [l.get_config() for l in self.layers]}

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Weights, architecture and optimizer state in one ``.npz``, written
        atomically (a temporary file renamed over ``path``)."""
        self._require_built("save")
        path = os.fspath(path)
        meta = {"model": self.get_config(), "loss": self.loss, "metrics": self.metrics_names,
                "optimizer": None if self.optimizer is None else _optimizers.serialize(self.optimizer),
                "iterations": None if self.optimizer is None else self.optimizer.iterations}
        arrays = {"params": self._params, "rng_state": self._rng_state,
                  "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        for k, s in enumerate(self._slots):
            if s is not None:
                arrays[f"slot_{k}"] = s
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".fastopt-", suffix=".npz", dir=directory)
        try:
            # mkstemp makes the file private (0600): give it the mode open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


class _FitRun:
    """The epochs of one ``fit`` call over one ``_core.Batches``: the C calls,
    the per-epoch logs and the divergence warning (once per call)."""

    def __init__(self, model: Sequential, batches, initial_epoch: int):
        self.model, self.batches, self.epoch = model, batches, initial_epoch
        self.net, self.opt = model._net, model._bound_opt
        self.steps = batches.steps
        self.rows = min(batches.steps * batches.batch_size, batches.n)  # samples of one epoch
        self.outputs = model.layers[-1].units
        self.warned = False

    def _train(self, n_steps: int, stats: np.ndarray, epoch: int) -> None:
        """n_steps steps in C from where the batches stand, at the start of or in
        ``epoch`` (a schedule's rates at most _STEPS_PER_CALL at a time); stats[e]
        adds the sums of the e-th epoch from there."""
        done, pos = 0, self.batches.pos
        while done < n_steps:
            lr = self.opt._learning_rates(min(n_steps - done, _STEPS_PER_CALL))
            count = n_steps - done if lr.size == 1 else lr.size
            row = (pos + done) // self.steps  # the epoch (from the first) the call starts in
            took, bad_step, bad, _ = self.net.train(self.batches, count, lr, stats[row:])
            if bad and not self.warned:
                step = pos + done + bad_step  # counted from the start of `epoch`
                self._warn(bad, epoch + step // self.steps, step % self.steps,
                           lr[bad_step if lr.size > 1 else 0])
            done += took

    def _warn(self, bad: int, epoch: int, step: int, lr: float) -> None:
        self.warned = True
        warnings.warn(DivergenceWarning(
            f"fit: {_DIVERGED[bad]} in epoch {epoch + 1}, at step {step + 1} of the epoch "
            f"(learning_rate={float(lr):.6g}); try a smaller learning rate, or dtype='float64'"),
            stacklevel=5)

    def _epoch_logs(self, row, rows: int) -> dict[str, float]:
        return self.model._logs(row[0] / rows, row[1], row[2], rows * self.outputs)

    def epochs_in_bulk(self, epochs: int, history) -> None:
        """Every epoch in as few C calls as the schedule allows (up to
        _EPOCHS_PER_CALL epochs each); History gets the per-epoch values from the
        sums C filled (also the completed epochs of an interrupted run)."""
        epoch = self.epoch
        while epoch < epochs:
            count = min(epochs - epoch, _EPOCHS_PER_CALL)
            stats = np.zeros((count, 4))
            start = self.opt.iterations
            try:
                self._train(count * self.steps, stats, epoch)
            finally:
                self._record(history, epoch, stats[:(self.opt.iterations - start) // self.steps])
            epoch += count

    def _record(self, history, first: int, sums: np.ndarray) -> None:
        """History of the epochs from `first` on, from their sums: the logs
        _epoch_logs makes, a column at a time."""
        if not len(sums):
            return
        history.epoch.extend(range(first, first + len(sums)))
        rows = self.rows
        columns = {"loss": sums[:, 0] / rows}
        for name, kind in zip(self.model.metrics_names, self.model._metric_kinds):
            columns[name] = sums[:, 1 if kind == "se" else 2] / (rows * self.outputs)
        for key, values in columns.items():
            history.history.setdefault(key, []).extend(values.tolist())

    def epochs_watched(self, epochs: int, cbs: list, val, validation_freq) -> None:
        """One epoch per C call (one batch per call if a callback has batch hooks),
        the callbacks between them."""
        model = self.model
        begin, end = _hooks(cbs, "on_train_batch_begin"), _hooks(cbs, "on_train_batch_end")
        batch_size, n = self.batches.batch_size, self.batches.n
        for epoch in range(self.epoch, epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            stats = np.zeros((1, 4))
            rows = self.rows
            if begin or end:
                for step in range(self.steps):
                    for hook in begin:
                        hook(step)
                    self._train(1, stats, epoch)
                    rows = min((step + 1) * batch_size, n)
                    logs = self._epoch_logs(stats[0].tolist(), rows)
                    for hook in end:
                        hook(step, logs)
                    if model.stop_training:
                        break
            else:
                self._train(self.steps, stats, epoch)
            logs = self._epoch_logs(stats[0].tolist(), rows)
            if val is not None and _should_validate(epoch, validation_freq):
                loss, sse, sae = self.net.evaluate(*val)
                logs.update({"val_" + k: v for k, v in model._logs(loss, sse, sae, val[1].size).items()})
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if model.stop_training:
                break


def load_model(path: Union[str, os.PathLike]) -> Sequential:
    """A model saved by ``Sequential.save``, with its optimizer state: training resumes exactly."""
    with np.load(os.fspath(path), allow_pickle=False) as f:
        meta = json.loads(f["meta"].tobytes().decode())
        params = f["params"]
        rng_state = f["rng_state"]
        slots = [f[f"slot_{k}"] if f"slot_{k}" in f else None for k in range(3)]
    cfg = meta["model"]
    model = Sequential([Dense.from_config(c) for c in cfg["layers"]], dtype=cfg["dtype"],
                       seed=cfg["seed"], name=cfg["name"])
    if not model.built:
        model.build((None, cfg["input_dim"]))
    if meta["optimizer"] is not None:
        model.compile(_optimizers.deserialize(meta["optimizer"]), meta["loss"], meta["metrics"])
        model.optimizer.iterations = meta["iterations"]
        for dst, src in zip(model._slots, slots):
            if dst is not None:
                dst[...] = src
    model._params[...] = params
    model._rng_state[...] = rng_state
    return model
