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

import difflib
import numbers
import os
import warnings
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from . import _core
from . import callbacks as _callbacks
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from . import saving as _saving
from ._checks import as_float_array, check_int, check_real, keras_keywords
from ._warnings import DivergenceWarning
from .layers import Activation, Dense, Dropout, InputLayer
from .saving import load_model  # noqa: F401  (fastopt.models.load_model, as before)

__all__ = ["Sequential", "load_model", "clone_model"]

# the per-step calls try C first with the arrays as given (use_fast_path(False)
# forces the thorough path; both must give the same bits)
_FAST_PATH = True


def use_fast_path(enabled: bool) -> bool:
    """Whether the model's per-step calls (``compute_gradients``, ``train_on_batch``,
    ``test_on_batch``, ``predict``, ``predict_on_batch``, a lean ``fit``) try their
    C fast path first; returns the previous setting.  ``False`` sends every call
    through the thorough path, which gives the same bits (for tests)."""
    global _FAST_PATH
    before = _FAST_PATH
    _FAST_PATH = bool(enabled)
    _core.model_fast_path(_FAST_PATH)
    return before

# a learning-rate schedule is evaluated for at most this many steps per C call,
# and a fit in bulk keeps the sums of at most this many epochs per call
_STEPS_PER_CALL = 1 << 16
_EPOCHS_PER_CALL = 1 << 12

_SPARSE = "sparse_categorical_crossentropy"

_DIVERGED = {1: "the loss became NaN or infinite",
             2: "the loss grew more than 1e6 times above its starting value",
             3: "the weights became NaN or infinite"}


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


class Sequential(_core.ModelBase):
    """A linear stack of layers, with Keras' API::

        model = fo.Sequential([fo.Dense(10, activation="relu", input_shape=(13,)), fo.Dense(1)])
        model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mae"])
        history = model.fit(x, y, epochs=100, batch_size=32, verbose=0)
        y_pred = model.predict(x)

    ``dtype`` is ``"float32"`` (default) or ``"float64"``; ``seed`` makes the
    initial weights and the shuffling reproducible bit for bit.
    """

    @keras_keywords(keras_only=("trainable",))
    def __init__(self, layers: Optional[Sequence[Dense]] = None, dtype: str = "float32",
                 seed: Optional[int] = None, name: Optional[str] = None):
        if isinstance(layers, _layers.Layer):  # Keras 3 too refuses one layer ("not iterable")
            raise TypeError(f"Sequential takes a list of layers, got a single {type(layers).__name__}: "
                            f"write Sequential([{type(layers).__name__}(...)])")
        if layers is not None and (isinstance(layers, (str, bytes, dict)) or not hasattr(layers, "__iter__")):
            raise TypeError(f"Sequential takes a list of layers, got {type(layers).__name__}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.seed = None if seed is None else check_int(seed, "seed", low=0)
        self.name = name or "sequential"
        self.layers: list[Dense] = []
        self._input_layer: Optional[InputLayer] = None  # fo.Input((features,)), not among self.layers
        self._optimizer: Optional[_optimizers.Optimizer] = None
        self._bound_opt: Optional[_optimizers.Optimizer] = None  # the one the network steps with
        self._net = None  # the _core.Network, once built
        self.loss: Optional[str] = None
        self.metrics_names: list[str] = []
        self._metric_list: list = []  # (name, "se"/"ae"/"c", metric object or None), compile's order
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
        width = self._declared_input_dim()
        if self.layers and width is not None:
            self.build((None, width))

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
        """Append a layer; the model builds once the input width is known (an
        ``fo.Input((features,))`` added first, the first layer's ``input_shape``,
        or the first ``fit``)."""
        self._append(layer)
        if isinstance(layer, InputLayer):
            return
        if self.built:  # rebuild with one more layer, keeping the weights so far
            old = self.get_weights()
            self._params = None
            self.build((None, self._input_dim))
            for v, w in zip(self._variables, old):
                v[...] = w
        elif self._declared_input_dim() is not None:
            self.build((None, self._declared_input_dim()))

    def _append(self, layer: Dense) -> None:
        if isinstance(layer, InputLayer):
            self._set_input_layer(layer)
            return
        if not isinstance(layer, (Dense, Dropout, Activation)):
            raise TypeError(f"Sequential takes Dense, Dropout and Activation layers, got {type(layer).__name__}")
        if any(layer is l for l in self.layers):
            raise ValueError("this layer is already in the model")
        if not isinstance(layer, Dense):
            if self.built:
                raise ValueError(f"{type(layer).__name__} cannot be added to a built model: its network is laid "
                                 "out; make the model with the layer in its list")
            _fold(self.layers + [layer])  # refuses a Dropout or Activation with no place in the C network
        elif layer.built:
            raise ValueError(f"layer {layer.name!r} already belongs to a built model; its weights live "
                             "in that model's buffer, so make a new Dense layer")
        if (not self.layers and self._input_layer is not None and layer._input_shape_arg is not None
                and layer._input_shape_arg != self._input_layer.batch_shape[1:]):
            raise ValueError(f"the model's Input has shape {self._input_layer.batch_shape[1:]} but the first "
                             f"layer says input_shape={layer._input_shape_arg}")
        names = {l.name for l in self.layers}
        if layer.name in names:
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name "
                             f"{layer.name!r} is already the name of a layer in this model. Update the "
                             "`name` argument to pass a unique name.")
        if layer.name is None:
            base = layer._default_name()
            layer.name = next(n for n in (base if k == 0 else f"{base}_{k}" for k in range(len(names) + 1))
                              if n not in names)
        self.layers.append(layer)

    def _set_input_layer(self, layer: InputLayer) -> None:
        """``fo.Input`` first in the model: its width (and dtype, which must be the model's)."""
        if self._input_layer is not None:
            raise ValueError(f"Sequential model {self.name!r} has already been configured to use input "
                             f"shape {self._input_layer.batch_shape}. You cannot add a different Input layer to it.")
        if self.layers:
            raise ValueError("an Input must come first in a Sequential model, before its layers")
        if layer.dtype is not None and np.dtype(layer.dtype) != self.dtype:
            raise ValueError(f"Input has dtype {layer.dtype} but the model computes in {self.dtype.name}; "
                             f"pass dtype={layer.dtype!r} to Sequential")
        if layer.name is None:
            layer.name = layer._default_name()
        self._input_layer = layer

    def _declared_input_dim(self) -> Optional[int]:
        """The input width the model was given: by ``fo.Input`` or the first layer's ``input_shape``."""
        if self._input_layer is not None:
            return self._input_layer.batch_shape[-1]
        dense = self._dense
        if dense and dense[0]._input_shape_arg is not None:
            return dense[0]._input_shape_arg[0]
        return None

    @property
    def _dense(self) -> list[Dense]:
        """The Dense layers (the C network's layers; Dropout and Activation fold into them)."""
        return [l for l in self.layers if isinstance(l, Dense)]

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Dense:
        """A layer by ``name`` or by ``index`` in ``model.layers``, as Keras' ``get_layer``."""
        if index is not None and name is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: index={index}, name={name}.")
        if index is not None:
            index = check_int(index, "index")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only has "
                                 f"{len(self.layers)} layers.")
            return self.layers[index]
        if name is not None:
            if not isinstance(name, str):
                raise TypeError(f"name must be a string, got {type(name).__name__}")
            for layer in self.layers:
                if layer.name == name:
                    return layer
            names = [l.name for l in self.layers]
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"No such layer: {name}. Existing layers are: {names}.{hint}")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    @property
    def built(self) -> bool:
        return self._params is not None

    def _spec(self) -> tuple:
        """The network as the C kernels read it: (units, activations, use_bias, l1, l2)."""
        dense = self._dense
        folded = _fold(self.layers, last=True)
        units = (self._input_dim,) + tuple(l.units for l in dense)
        regs = [l.kernel_regularizer for l in dense]
        return (units, tuple(f[0] for f in folded), tuple(l.use_bias for l in dense),
                tuple(float(r.l1) if r else 0.0 for r in regs),
                tuple(float(r.l2) if r else 0.0 for r in regs),
                tuple(f[1] for f in folded), tuple(f[2] for f in folded), tuple(f[3] for f in folded))

    def build(self, input_shape: tuple) -> None:
        """Make the network, allocate the flat parameter buffer and initialize
        every layer's weights (views into it, as the network lays them out)."""
        if self.built:
            return
        if not self._dense:
            raise ValueError("the model has no Dense layers")
        self._input_dim = check_int(input_shape[-1], "input_shape[-1]", low=1)
        self.spec = self._spec()
        net = _core.Network(self.spec, self.dtype, self._rng)
        params = np.zeros(net.n_params, self.dtype)
        variables = net.views(params)
        views = iter(variables)
        fan_in = self._input_dim
        for layer in self._dense:
            layer.kernel = next(views)
            layer.kernel[...] = layer.kernel_initializer((fan_in, layer.units), self.dtype, self._init_rng)
            if layer.use_bias:
                layer.bias = next(views)
                layer.bias[...] = layer.bias_initializer((layer.units,), self.dtype, self._init_rng)
            fan_in = layer.units
        if self.loss is not None:
            self._configure_net(net)
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

    # trainable_variables (the live kernel and bias arrays, views into the flat
    # buffer, Keras order; a fresh list each call) is _core.ModelBase's property.

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
        """Copy ``weights`` (``get_weights()`` order and shapes) into the model."""
        self._require_built("set_weights")
        _layers.assign_weights(self._variables, weights, "set_weights")

    # -- training configuration ---------------------------------------------------
    @keras_keywords(keras_only=("loss_weights", "weighted_metrics", "run_eagerly", "steps_per_execution",
                                "jit_compile", "auto_scale_loss"))
    def compile(self, optimizer: Union[str, _optimizers.Optimizer] = "rmsprop",
                loss: Any = "mean_squared_error", metrics: Optional[Sequence] = None) -> None:
        """Choose the optimizer (a name such as ``"adam"`` or an optimizer object),
        the loss (any Keras 3 name or ``fo.losses`` object: ``"mse"``, ``"mae"``,
        ``"huber"``, ``"log_cosh"``, ``"binary_crossentropy"``,
        ``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"``...)
        and the metrics (names, functions or ``fo.metrics`` objects; ``"accuracy"``
        becomes the binary, categorical or sparse form the loss and outputs call
        for, as in Keras).  A sigmoid or softmax last layer with cross-entropy
        is trained through the stable logits form (log-sum-exp)."""
        opt = _optimizers.get(optimizer)
        loss_obj = _losses.as_loss(loss)
        if loss_obj.reduction is None or loss_obj.reduction == "none":
            raise ValueError(f"loss {loss!r}: reduction=None gives one value per sample; training needs "
                             "one batch loss (use 'sum_over_batch_size', 'sum' or 'mean_with_sample_weight')")
        metric_list = self._compile_metrics(metrics, loss_obj)
        default = type(loss_obj)()
        plain = loss_obj.get_config() == dict(default.get_config(), name=loss_obj.name) \
            and loss_obj.name in (default.name, loss_obj.kind)
        self.loss = loss_obj.kind if plain else _losses.serialize(loss_obj)
        self._loss_obj = loss_obj
        self.metrics_names = [name for name, _, _ in metric_list]
        self._metric_list = metric_list
        if self.built:
            self._configure_net(self._net)
        self.optimizer = opt

    def _compile_metrics(self, metrics, loss_obj) -> list:
        """(name, "se"/"ae"/"c", metric object or None) of each of compile's metrics:
        mse and mae come from the error sums, the others from C's metric sums."""
        if metrics is not None and (isinstance(metrics, (str, dict)) or not hasattr(metrics, "__iter__")):
            raise TypeError(f"metrics must be a list, got {type(metrics).__name__}")
        out = []
        for m in metrics or []:
            if isinstance(m, dict):  # a config, as a saved model holds it
                m = _metrics.get(m)
            if isinstance(m, _metrics.Metric):
                name = m.name
            elif isinstance(m, str):
                name = m
            elif callable(m) and hasattr(m, "__name__"):
                name = m.__name__
            else:
                raise ValueError(f"unknown metric {m!r}")
            try:
                kind = _metrics._training_metric_kind(m)
            except ValueError:
                kind = "c"
            if kind != "c":
                out.append((name, kind, None))
                continue
            if isinstance(m, str) and m.lower() in ("accuracy", "acc"):
                if not self._dense:
                    raise ValueError("compile: metrics=['accuracy'] needs the model's layers first")
                obj = _metrics.accuracy_for(m, 1 if loss_obj.kind == _SPARSE else self._dense[-1].units,
                                            self._dense[-1].units, loss_obj.kind == _SPARSE)
            else:
                obj = _metrics.get(m)
                if not isinstance(m, _metrics.Metric):
                    obj.name = name
            out.append((name, "c", obj))
        return out

    def _configure_net(self, net) -> None:
        """The loss and the metric specs, set on the C network."""
        net.loss = self._loss_obj.c_spec
        net.metrics = tuple(obj.c_spec for _, kind, obj in self._metric_list if kind == "c")

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
        out = self._dense[-1].units if self._dense else 0
        loss = getattr(self, "_loss_obj", None)
        if loss is not None and loss.kind == _SPARSE:
            out = 1  # one class index per sample
        if y.ndim == 1 and out == 1:
            y = y.reshape(-1, 1)  # (n,) and (n, 1) are the same n samples
        if y.ndim != 2 or y.shape[1] != out:
            raise ValueError(f"{name} must have shape ({n}, {out})" + (f" or ({n},)" if out == 1 else "")
                             + f", got {y.shape}")
        if y.shape[0] != n:
            raise ValueError(f"x has {n} samples but {name} has {y.shape[0]}")
        if loss is not None and loss.kind in _CHECKED:
            try:
                loss.check_targets(y, self._dense[-1].units)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
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
        outputs = self._dense[-1].units
        kind = getattr(self, "_loss_obj", None) and self._loss_obj.kind
        # the classes a classifier has (a one-output regression's rounded targets are any integers)
        n_classes = 2 if outputs == 1 and kind == "binary_crossentropy" else None if outputs == 1 else outputs
        table = {}
        for k, v in class_weight.items():
            key = check_int(k, "class_weight key")
            if n_classes is not None and not 0 <= key < n_classes:
                raise ValueError(f"class_weight: class {k!r} is not one of the model's classes 0..{n_classes - 1}")
            table[key] = check_real(v, f"class_weight[{k!r}]", low=0)
        sparse = getattr(self, "_loss_obj", None) is not None and self._loss_obj.kind == _SPARSE
        if sparse:
            classes = y[:, 0].astype(np.int64)
        else:
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
    def _logs(self, loss: float, sse: float, sae: float, count: int, acc=()) -> dict[str, float]:
        """The loss and each metric: mse/mae from the error sums over ``count``
        outputs, the others from their C sums ``acc`` (in compile's order)."""
        logs = {"loss": loss}
        off = 0
        for name, kind, obj in self._metric_list:
            if kind == "c":
                size = _acc_size(obj, self._dense[-1].units)
                obj._acc = np.array(acc[off:off + size], np.float64)
                off += size
                value = obj.result()
                logs[name] = float(value) if np.ndim(value) == 0 else value
            else:
                logs[name] = (sse if kind == "se" else sae) / count
        return logs

    def _result(self, loss: float, sse: float, sae: float, count: int, return_dict: bool, acc=()):
        """Keras' return value: the loss alone, [loss, *metrics], or a dict."""
        if not return_dict and not self.metrics_names:
            return loss
        logs = self._logs(loss, sse, sae, count, acc)
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
                    loss, sse, sae, bad, acc = r
                    if bad or self._diverged:
                        self._note_batch_divergence(bad, opt, lr)
                    if not return_dict and not self.metrics_names:
                        return loss
                    return self._result(loss, sse, sae, y.size, return_dict, acc)
        self._require_compiled("train_on_batch")
        x, y, sw = self._batch_data(x, y, sample_weight, class_weight)
        if self._optimizer is not self._bound_opt:
            self._bind()
        opt = self._bound_opt
        lr = opt.learning_rate
        loss, sse, sae, bad, acc = self._net.train_on_batch(x, y, sw, lr)
        if bad or self._diverged:
            self._note_batch_divergence(bad, opt, lr)
        return self._result(loss, sse, sae, y.size, return_dict, acc)

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
                return self._result(r[0], r[1], r[2], y.size, return_dict, r[3])
        self._require_built("test_on_batch")
        self._require_compiled("test_on_batch")
        x, y, sw = self._batch_data(x, y, sample_weight)
        loss, sse, sae, acc = self._net.evaluate(x, y, sw)
        return self._result(loss, sse, sae, y.size, return_dict, acc)

    def predict_on_batch(self, x) -> np.ndarray:
        """The model's outputs for one batch, ``(n, units of the last layer)``, in one C call."""
        net = self._net
        if _FAST_PATH and net is not None:
            out = net.forward(x, True)
            if out is not NotImplemented:
                return out
        self._require_built("predict_on_batch")
        return self._net.forward(self._x(x))

    # compute_gradients(x, y, sample_weight=None) -> (loss, grads) is the C base
    # class's method (_core.ModelBase): arrays that need no conversion go to
    # Network.gradients there, without a Python frame; anything else comes here.

    def _compute_gradients(self, x, y, sample_weight=None) -> tuple[float, list[np.ndarray]]:
        """The thorough path of ``compute_gradients``: ``x``, ``y`` and
        ``sample_weight`` converted or refused with a message naming them."""
        x, y, sw = self._batch_data(x, y, sample_weight)
        return self._net.gradients(x, y, sw)

    # -- training -----------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: Union[int, str] = "auto", callbacks: Optional[Sequence[_callbacks.Callback]] = None,
            validation_split: float = 0.0, validation_data: Optional[tuple] = None, shuffle: bool = True,
            class_weight: Optional[Mapping[int, float]] = None, sample_weight=None, initial_epoch: int = 0,
            steps_per_epoch: Optional[int] = None, validation_steps: Optional[int] = None,
            validation_batch_size: Optional[int] = None,
            validation_freq: Union[int, Sequence[int]] = 1) -> _callbacks.History:
        """Train for ``epochs`` epochs of mini-batches, Keras 3's arguments in Keras'
        order: ``batch_size=None`` means 32 (the whole set per step is
        ``batch_size=len(x)``); ``sample_weight`` (per sample) or ``class_weight``
        ({class: weight}) weigh each sample's loss, ``sum_i w_i * loss_i / batch``;
        ``validation_data`` is ``(x, y)`` or ``(x, y, sample_weight)``, evaluated
        after every ``validation_freq``-th epoch (or the epochs listed);
        ``steps_per_epoch`` takes only the first batches of each shuffled epoch,
        ``validation_steps`` the first ``validation_batch_size`` (or ``batch_size``)
        batches of the validation data.

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
        if (_FAST_PATH and callbacks is None and type(verbose) is int and verbose == 0
                and validation_data is None and class_weight is None and sample_weight is None
                and steps_per_epoch is None and validation_steps is None and validation_batch_size is None
                and type(validation_split) in (float, int) and validation_split == 0
                and type(validation_freq) is int and validation_freq == 1
                and type(initial_epoch) is int and initial_epoch == 0
                and (batch_size is None or (type(batch_size) is int and batch_size >= 1))
                and type(epochs) is int and epochs >= 0 and type(shuffle) is bool
                and self._optimizer is not None and self._optimizer is self._bound_opt):
            return self._fit_lean(x, y, 32 if batch_size is None else batch_size, epochs, shuffle)
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
        if validation_steps is not None:
            validation_steps = check_int(validation_steps, "validation_steps", low=1)
        validation_freq = _check_validation_freq(validation_freq)
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
        if val is not None and validation_steps is not None:
            rows = validation_steps * (validation_batch_size or batch_size)
            val = tuple(None if a is None else np.ascontiguousarray(a[:rows]) for a in val)
        if class_weight is not None:  # Keras: the training samples only
            sw = self._class_weight(class_weight, y)
        n = x.shape[0]
        steps = -(-n // min(batch_size, n))
        if steps_per_epoch is not None:
            if steps_per_epoch > steps:
                raise ValueError(f"steps_per_epoch={steps_per_epoch} is more than the {steps} batches of "
                                 f"one epoch ({n} samples, batch_size={batch_size})")
            steps = steps_per_epoch
        cbs = _callbacks.CallbackList(callbacks, add_history=True, add_progbar=bool(verbose), model=self,
                                      epochs=epochs, steps=steps, verbose=verbose)
        if not self.built:
            self.build(x.shape)
            x = self._x(x)
        if self._optimizer is not self._bound_opt:
            self._bind()
        batches = self._net.batches(x, y, sw, batch_size, bool(shuffle), steps)
        # nothing to run between epochs: they go to C in bulk
        watched = bool(callbacks) or val is not None or bool(verbose)
        self.stop_training = False
        run = _FitRun(self, batches, initial_epoch)
        cbs.on_train_begin()
        if watched:
            run.epochs_watched(epochs, cbs, val, validation_freq)
        else:
            run.epochs_in_bulk(epochs, self.history)
        if epochs > 0:  # Keras 3's trainer: with use_ema, the model ends with the moving averages
            self._bound_opt.finalize_variable_values(self.trainable_variables)
        cbs.on_train_end()
        return self.history

    def _fit_lean(self, x, y, batch_size: int, epochs: int, shuffle: bool) -> _callbacks.History:
        """``fit`` in the common case, with its fixed cost cut to the minimum: a built
        model bound to its compiled optimizer, no callbacks, validation or weights,
        ``verbose=0``, and every other argument already of its checked type (``fit``
        tested that).  The same checks, C calls and History as the thorough path,
        without the CallbackList: x and y are checked by the same helpers, so a bad
        array gets the same message."""
        x = self._x(x)
        y = self._y(y, x.shape[0])
        n = x.shape[0]
        steps = -(-n // min(batch_size, n))
        history = _callbacks.History()
        history.set_model(self)
        history.set_params({"epochs": epochs, "steps": steps, "verbose": 0})
        self.history = history
        batches = self._net.batches(x, y, None, batch_size, shuffle, steps)
        self.stop_training = False
        _FitRun(self, batches, 0).epochs_in_bulk(epochs, history)
        if epochs > 0:  # as the thorough path: with use_ema, the model ends with the moving averages
            self._bound_opt.finalize_variable_values(self.trainable_variables)
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
        batch_size, verbose = self._inference_arguments(batch_size, verbose)
        x = self._x(x)
        if steps is not None:
            x = x[:check_int(steps, "steps", low=1) * batch_size]
        n_steps = -(-x.shape[0] // batch_size)
        cbs = _callbacks.CallbackList(callbacks, model=self, verbose=verbose, epochs=1, steps=n_steps)
        cbs.on_predict_begin()
        if cbs.uses_predict_batch_hooks:
            parts = []
            for step, start in enumerate(range(0, x.shape[0], batch_size)):
                cbs.on_predict_batch_begin(step)
                parts.append(self._net.forward(np.ascontiguousarray(x[start:start + batch_size])))
                cbs.on_predict_batch_end(step, {"outputs": parts[-1]})
            out = np.concatenate(parts)
        else:
            out = self._net.forward(x)
        cbs.on_predict_end()
        return out

    def __call__(self, x) -> np.ndarray:
        return self.predict(x)

    def _inference_arguments(self, batch_size, verbose) -> tuple[int, int]:
        """predict's and evaluate's batch_size (None: 32) and verbose ("auto": silent)."""
        batch_size = 32 if batch_size is None else check_int(batch_size, "batch_size", low=1)
        verbose = 0 if isinstance(verbose, str) and verbose == "auto" else _check_verbose(verbose)
        return batch_size, verbose

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
        batch_size, verbose = self._inference_arguments(batch_size, verbose)
        x = self._x(x)
        y = self._y(y, x.shape[0])
        sw = self._sample_weight(sample_weight, x.shape[0])
        if steps is not None:
            rows = check_int(steps, "steps", low=1) * batch_size
            x, y = x[:rows], y[:rows]
            sw = None if sw is None else sw[:rows]
        n_steps = -(-x.shape[0] // batch_size)
        cbs = _callbacks.CallbackList(callbacks, add_progbar=bool(verbose), model=self, verbose=verbose,
                                      epochs=1, steps=n_steps)
        cbs.on_test_begin()
        if cbs.uses_test_batch_hooks:
            total, sse, sae, acc = 0.0, 0.0, 0.0, np.zeros(self._net.n_acc)
            for step, start in enumerate(range(0, x.shape[0], batch_size)):
                cbs.on_test_batch_begin(step)
                part = slice(start, start + batch_size)
                xb, yb = np.ascontiguousarray(x[part]), np.ascontiguousarray(y[part])
                loss_b, sse_b, sae_b, acc_b = self._net.evaluate(
                    xb, yb, None if sw is None else np.ascontiguousarray(sw[part]))
                total, sse, sae = total + loss_b * xb.shape[0], sse + sse_b, sae + sae_b
                acc += acc_b
                rows = min(start + batch_size, x.shape[0])
                cbs.on_test_batch_end(step, self._logs(total / rows, sse, sae, rows * y.shape[1], acc))
            loss = total / x.shape[0]
        else:
            loss, sse, sae, acc = self._net.evaluate(x, y, sw)
        logs = self._logs(loss, sse, sae, y.size, acc)
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        return logs["loss"] if not self.metrics_names else list(logs.values())

    # -- display and saving -------------------------------------------------------
    def summary(self, print_fn=print) -> None:
        rows = [("Layer (type)", "Output Shape", "Param #")]
        fan_in = self._input_dim if self.built else None
        width = None
        for layer in self.layers:
            if not isinstance(layer, Dense):  # Dropout, Activation: no weights, the same shape
                rows.append((f"{layer.name} ({type(layer).__name__})", f"(None, {width or '?'})", "0"))
                continue
            count = layer.count_params(fan_in) if fan_in else "?"
            rows.append((f"{layer.name} (Dense)", f"(None, {layer.units})", str(count)))
            fan_in = width = layer.units
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
                "input_dim": self._input_dim if self.built else self._declared_input_dim(),
                "layers": [l.get_config() if isinstance(l, Dense) else _layers.serialize(l) for l in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Sequential":
        """The model a :meth:`get_config` result describes: the same layers and
        input width, with weights fresh from the initializers (and the seed).
        A layer entry may also be ``{"class_name": ..., "config": ...}``."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), (list, tuple)):
            raise ValueError("config must be a dict with a 'layers' list (a Sequential.get_config() result)")
        unknown = set(config) - {"name", "dtype", "seed", "input_dim", "layers"}
        if unknown:
            raise ValueError(f"unknown Sequential config keys {sorted(unknown)}")
        layers = [_layers.deserialize(c) if "class_name" in c else Dense.from_config(c) for c in config["layers"]]
        model = cls(layers, dtype=config.get("dtype", "float32"), seed=config.get("seed"), name=config.get("name"))
        input_dim = config.get("input_dim")
        if input_dim is not None and not model.built:
            if model.layers:
                model.build((None, input_dim))
            else:
                model._set_input_layer(InputLayer(shape=(input_dim,)))
        return model

    def save(self, path: Union[str, os.PathLike], overwrite: bool = True) -> None:
        """Architecture, weights, optimizer state and step count in one ``.npz``
        (``path`` ending in ``.npz`` or without a suffix; ``.keras`` and ``.h5``
        are refused), written atomically: see :mod:`fastopt.saving`."""
        _saving.save_model(self, path, overwrite=overwrite)

    def save_weights(self, path: Union[str, os.PathLike], overwrite: bool = True) -> None:
        """The weights alone (``get_weights()`` order) in one ``.npz``, written atomically."""
        _saving.save_weights(self, path, overwrite=overwrite)

    def load_weights(self, path: Union[str, os.PathLike]) -> None:
        """Weights written by :meth:`save_weights`; checked whole (count, shapes,
        dtype, finiteness) before any weight changes."""
        _saving.load_weights(self, path)

    def __reduce__(self):
        # pickle and copy.deepcopy go through the file format, in memory: the
        # weights, optimizer state, iterations and generators come back exactly
        data = _saving.model_to_bytes(self)
        if type(self) is Sequential:
            return _saving.model_from_bytes, (data,)
        return _saving.model_from_bytes, (data, type(self))


class _FitRun:
    """The epochs of one ``fit`` call over one ``_core.Batches``: the C calls,
    the per-epoch logs and the divergence warning (once per call)."""

    def __init__(self, model: Sequential, batches, initial_epoch: int):
        self.model, self.batches, self.epoch = model, batches, initial_epoch
        self.net, self.opt = model._net, model._bound_opt
        self.steps = batches.steps
        self.rows = min(batches.steps * batches.batch_size, batches.n)  # samples of one epoch
        self.outputs = model._dense[-1].units
        self.width = 4 + model._net.n_acc  # columns of the per-epoch sums
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
        return self.model._logs(row[0] / rows, row[1], row[2], rows * self.outputs, row[4:])

    def epochs_in_bulk(self, epochs: int, history) -> None:
        """Every epoch in as few C calls as the schedule allows (up to
        _EPOCHS_PER_CALL epochs each); History gets the per-epoch values from the
        sums C filled (also the completed epochs of an interrupted run)."""
        epoch = self.epoch
        while epoch < epochs:
            count = min(epochs - epoch, _EPOCHS_PER_CALL)
            stats = np.zeros((count, self.width))
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
        if any(kind == "c" for _, kind, _ in self.model._metric_list):  # metric objects: a row at a time
            logs = [self._epoch_logs(row, rows) for row in sums]
            for key in logs[0]:
                history.history.setdefault(key, []).extend(l[key] for l in logs)
            return
        columns = {"loss": sums[:, 0] / rows}
        for name, kind, _ in self.model._metric_list:
            columns[name] = sums[:, 1 if kind == "se" else 2] / (rows * self.outputs)
        for key, values in columns.items():
            history.history.setdefault(key, []).extend(values.tolist())

    def epochs_watched(self, epochs: int, cbs, val, validation_freq) -> None:
        """One epoch per C call (one batch per call if a callback has batch hooks),
        the callbacks (a CallbackList) between them."""
        model = self.model
        batch_hooks = cbs.uses_train_batch_hooks
        batch_size, n = self.batches.batch_size, self.batches.n
        for epoch in range(self.epoch, epochs):
            cbs.on_epoch_begin(epoch)
            stats = np.zeros((1, self.width))
            rows = self.rows
            if batch_hooks:
                for step in range(self.steps):
                    cbs.on_train_batch_begin(step)
                    self._train(1, stats, epoch)
                    rows = min((step + 1) * batch_size, n)
                    cbs.on_train_batch_end(step, self._epoch_logs(stats[0].tolist(), rows))
                    if model.stop_training:
                        break
            else:
                self._train(self.steps, stats, epoch)
            logs = self._epoch_logs(stats[0].tolist(), rows)
            if val is not None and _should_validate(epoch, validation_freq):
                loss, sse, sae, acc = self.net.evaluate(*val)
                logs.update({"val_" + k: v for k, v in model._logs(loss, sse, sae, val[1].size, acc).items()})
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break

def clone_model(model: Sequential, clone_function=None) -> Sequential:
    """A new model with the same architecture, as Keras' ``clone_model``: new
    layers from each layer's config, weights drawn afresh from their
    initializers (with the model's ``seed``, so a seeded model clones to the
    weights it started from), not compiled.  ``clone_function(layer)`` may
    make each new layer instead."""
    if not isinstance(model, Sequential):
        raise TypeError(f"clone_model takes a Sequential model, got {type(model).__name__}")
    if clone_function is not None and not callable(clone_function):
        raise TypeError(f"clone_function must be callable, got {type(clone_function).__name__}")
    make = clone_function or (lambda layer: type(layer).from_config(layer.get_config()))
    inputs = [] if model._input_layer is None else [InputLayer.from_config(model._input_layer.get_config())]
    clone = Sequential(inputs + [make(layer) for layer in model.layers], dtype=model.dtype.name,
                       seed=model.seed, name=model.name)
    if model.built and not clone.built:
        clone.build((None, model._input_dim))
    return clone


# the losses whose targets are checked before any step (fo.losses' check_targets)
_CHECKED = ("binary_crossentropy", "categorical_crossentropy", _SPARSE)


def _acc_size(metric, outputs: int) -> int:
    """Doubles of C sums a metric keeps for ``outputs`` outputs (fo_metric_acc_size)."""
    return 4 * outputs + 1 if metric.c_spec[0] == _metrics.CODES["r2_score"] else 2


def _fold(layers: Sequence, last: bool = False) -> list[tuple[int, float, float, int]]:
    """(activation, its parameter, dropout rate, noise code) of each Dense layer
    of a Sequential list, with each Activation folded into the linear Dense
    before it and each Dropout into the Dense before it; refuses an order the C
    network cannot run.  ``last``: the list is complete (no Dropout at its end)."""
    out: list[list] = []
    state = None  # what follows the current Dense so far: "dense", "act", "drop"
    for layer in layers:
        if isinstance(layer, Dense):
            out.append([layer._act, layer._act_param, 0.0, 0])
            state = "dense"
        elif isinstance(layer, Activation):
            if state != "dense" or out[-1][0] != _core.LINEAR:
                raise ValueError(f"Activation({layer.activation!r}) must follow a Dense layer with no activation "
                                 "of its own (activation=None), as the C network applies one activation per "
                                 "Dense layer; give the Dense layer the activation instead")
            out[-1][0], out[-1][1] = layer._act, layer._act_param
            state = "act"
        elif isinstance(layer, Dropout):
            if state not in ("dense", "act"):
                raise ValueError("Dropout must follow a Dense (or Activation) layer: the C network drops a "
                                 "Dense layer's outputs, not the model's inputs, and one Dropout per layer")
            out[-1][2], out[-1][3] = layer.rate, _noise_code(layer)
            state = "drop"
    if last and state == "drop":
        raise ValueError("Dropout cannot be the model's last layer: the loss reads the last Dense layer's output")
    if last and any(f[2] >= 1 for f in out):
        raise ValueError("Dropout(rate=1) drops every output; use a rate below 1")
    return [tuple(f) for f in out]


def _noise_code(layer: Dropout) -> int:
    """Dropout's noise_shape as the C network's mask code: full, (batch, 1) or (1, features)."""
    ns = layer.noise_shape
    if ns is None:
        return 0
    if len(ns) == 2 and ns[0] is None and ns[1] == 1:
        return 1
    if len(ns) == 2 and ns[0] == 1 and ns[1] is None:
        return 2
    if len(ns) == 2 and ns[0] is None and ns[1] is None:
        return 0
    raise ValueError(f"Dropout noise_shape {ns}: the training loop takes None, (None, 1) or (1, None)")
