"""``Sequential``: a stack of ``Dense`` layers trained by a loop that runs in C.

All weights and biases of a model live in one contiguous array (each layer's
``kernel`` and ``bias`` are views into it); the gradients and the optimizer's
state are flat arrays of the same length, so one optimizer step is one kernel
call over the whole model.  ``fit`` makes one C call per epoch: the shuffle,
every mini-batch's forward pass, MSE backprop and update run there, on
workspace allocated once; Python runs between epochs only (history,
callbacks, progress).
"""
from __future__ import annotations

import difflib
import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _core
from . import callbacks as _callbacks
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from . import layers as _layers
from . import saving as _saving
from ._checks import as_float_array, check_int, check_real, keras_keywords
from .layers import Dense, InputLayer
from .saving import load_model  # noqa: F401  (fastopt.models.load_model, as before)

__all__ = ["Sequential", "load_model", "clone_model"]

_PREDICT_ROWS = 4096  # rows per C call in predict: bounds the workspace
# when fit runs several epochs in one C call: at most this many steps, and about
# this many multiply-adds of forward and backward work (samples x parameters)
_STEPS_PER_CALL = 1 << 16
_WORK_PER_CALL = 1 << 27


class Sequential:
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
        self.optimizer: Optional[_optimizers.Optimizer] = None
        self.loss: Optional[str] = None
        self.metrics_names: list[str] = []
        self.stop_training = False
        self._params: Optional[np.ndarray] = None
        self._variables: list[np.ndarray] = []
        self._slots: tuple = (None, None, None)
        seed_seq = np.random.SeedSequence(self.seed)
        self._init_rng = np.random.default_rng(seed_seq.spawn(1)[0])
        self._rng_state = np.zeros(4, np.uint64)
        _core.rng_seed(self._rng_state, int(seed_seq.generate_state(1, np.uint64)[0]))
        for layer in layers or ():
            self._append(layer)
        width = self._declared_input_dim()
        if self.layers and width is not None:
            self.build((None, width))

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
        if not isinstance(layer, Dense):
            raise TypeError(f"Sequential takes Dense layers, got {type(layer).__name__}")
        if any(layer is l for l in self.layers):
            raise ValueError("this layer is already in the model")
        if layer.built:
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
        if self.layers and self.layers[0]._input_shape_arg is not None:
            return self.layers[0]._input_shape_arg[0]
        return None

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
        units = (self._input_dim,) + tuple(l.units for l in self.layers)
        regs = [l.kernel_regularizer for l in self.layers]
        return (units, tuple(l._act for l in self.layers), tuple(l.use_bias for l in self.layers),
                tuple(float(r.l1) if r else 0.0 for r in regs),
                tuple(float(r.l2) if r else 0.0 for r in regs))

    def build(self, input_shape: tuple) -> None:
        """Allocate the flat parameter buffer and initialize every layer's weights."""
        if self.built:
            return
        if not self.layers:
            raise ValueError("the model has no layers")
        self._input_dim = check_int(input_shape[-1], "input_shape[-1]", low=1)
        self.spec = self._spec()
        n_params, _ = _core.net_sizes(self.spec, 0)
        params = np.zeros(n_params, self.dtype)
        variables, layout = [], []
        off, fan_in = 0, self._input_dim
        for layer in self.layers:
            n = fan_in * layer.units
            layer.kernel = params[off:off + n].reshape(fan_in, layer.units)
            layer.kernel[...] = layer.kernel_initializer((fan_in, layer.units), self.dtype, self._init_rng)
            variables.append(layer.kernel)
            layout.append((off, n, layer.kernel.shape))
            off += n
            if layer.use_bias:
                layer.bias = params[off:off + layer.units]
                layer.bias[...] = layer.bias_initializer((layer.units,), self.dtype, self._init_rng)
                variables.append(layer.bias)
                layout.append((off, layer.units, layer.bias.shape))
                off += layer.units
            fan_in = layer.units
        self._params = params
        self._work_sizes: dict[int, int] = {}  # rows -> workspace elements
        self._variables = variables
        self._layout = layout  # (offset, size, shape) of each variable in the flat buffer
        self._grads = np.zeros_like(params)
        if self.optimizer is not None:
            self._slots = self.optimizer._bind_flat(self._params, self._variables)

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
        """Copy ``weights`` (``get_weights()`` order and shapes) into the model."""
        self._require_built("set_weights")
        _layers.assign_weights(self._variables, weights, "set_weights")

    # -- training configuration ---------------------------------------------------
    @keras_keywords(keras_only=("loss_weights", "weighted_metrics", "run_eagerly", "steps_per_execution",
                                "jit_compile", "auto_scale_loss"))
    def compile(self, optimizer: Union[str, _optimizers.Optimizer] = "rmsprop",
                loss: Any = "mean_squared_error", metrics: Optional[Sequence] = None) -> None:
        """Choose the optimizer (a name such as ``"adam"`` or an optimizer object),
        the loss (mean squared error) and the metrics (``"mse"``, ``"mae"`` and
        their long names)."""
        opt = _optimizers.get(optimizer)
        loss_name = _losses._training_loss_name(loss)
        names = list(metrics or [])
        kinds = [_metrics._training_metric_kind(m) for m in names]
        self.optimizer, self.loss = opt, loss_name
        self.metrics_names = [m if isinstance(m, str) else m.__name__ for m in names]
        self._metric_kinds = kinds
        if self.built:
            self._slots = opt._bind_flat(self._params, self._variables)

    def _require_compiled(self, what: str) -> None:
        if self.optimizer is None:
            raise ValueError(f"{what}: call compile(optimizer=..., loss=...) first")

    # -- data ---------------------------------------------------------------------
    def _x(self, x, name: str = "x") -> np.ndarray:
        x = as_float_array(x, name, self.dtype)
        if x.ndim == 1 and self.built and self._input_dim == 1:
            x = x.reshape(-1, 1)
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-d (samples, features), got shape {x.shape}")
        if self.built and x.shape[1] != self._input_dim:
            raise ValueError(f"{name} has {x.shape[1]} features but the model takes {self._input_dim}")
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

    def _training_data(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """x and y converted and checked once; an unbuilt model is built for x's width."""
        x = self._x(x)
        y = self._y(y, x.shape[0])
        if x.shape[0] == 0:
            raise ValueError("x has no samples")
        if not self.built:
            self.build(x.shape)
            x = self._x(x)  # now the feature count is checked too (1-d x becomes a column)
        return x, y

    def _workspace(self, rows: int) -> np.ndarray:
        """Scratch for one C call over ``rows`` rows: allocated per call (fit: once
        for all its epochs), so threads sharing a model never share scratch."""
        size = self._work_sizes.get(rows)
        if size is None:
            size = self._work_sizes[rows] = max(_core.net_sizes(self.spec, rows)[1], 1)
        return np.empty(size, self.dtype)

    # -- training -----------------------------------------------------------------
    def fit(self, x, y, epochs: int = 1, batch_size: Optional[int] = 32, shuffle: bool = True,
            validation_split: float = 0.0, validation_data: Optional[tuple] = None,
            verbose: Union[int, str] = 1, callbacks: Optional[Sequence[_callbacks.Callback]] = None,
            initial_epoch: int = 0) -> _callbacks.History:
        """Train for ``epochs`` epochs of mini-batches (``batch_size=None``: the
        whole set per step).  Returns a ``History`` with per-epoch ``loss``,
        metrics and ``val_*`` values."""
        self._require_compiled("fit")
        epochs = check_int(epochs, "epochs", low=0)
        initial_epoch = check_int(initial_epoch, "initial_epoch", low=0)
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", low=1)
        validation_split = check_real(validation_split, "validation_split", low=0, high=1, high_open=True)
        if verbose == "auto":
            verbose = 1
        x, y = self._training_data(x, y)
        val = None
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be (x_val, y_val)")
            vx = self._x(validation_data[0], "validation_data[0]")
            val = (vx, self._y(validation_data[1], vx.shape[0], "validation_data[1]"))
        elif validation_split > 0:
            split = int(x.shape[0] * (1 - validation_split))  # Keras: the last samples, unshuffled
            if split == 0 or split == x.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves no training or validation samples")
            val = (x[split:], y[split:])
            x, y = np.ascontiguousarray(x[:split]), np.ascontiguousarray(y[:split])
        n = x.shape[0]
        batch = n if batch_size is None else min(batch_size, n)
        steps = -(-n // batch)
        work = self._workspace(batch)
        perm = np.arange(n, dtype=np.int64)
        out_units = self.layers[-1].units
        opt = self.optimizer

        cbs = _callbacks.CallbackList(callbacks, add_history=True, add_progbar=bool(verbose), model=self,
                                      epochs=epochs, steps=steps, verbose=verbose)
        # with nothing to run between epochs, many epochs go to C in one call
        together = not callbacks and val is None and not verbose
        self.stop_training = False
        cbs.on_train_begin()
        epoch = initial_epoch
        while epoch < epochs and not self.stop_training:
            chunk = 1
            if together:  # bounded so the lr array stays small and Ctrl-C is heard within ~0.1 s
                chunk = min(epochs - epoch, _STEPS_PER_CALL // steps,
                            _WORK_PER_CALL // (n * self._params.size))
                chunk = max(chunk, 1)
            for e in range(epoch, epoch + chunk):
                cbs.on_epoch_begin(e)
            lr = opt._learning_rates(steps * chunk)
            stats = np.empty((chunk, 4))
            done, *_ = _core.train_epoch(
                self._params, self._grads, self._slots, opt._kind, opt._hyper, lr, opt.iterations,
                x, y, batch, self.spec, perm, self._rng_state, bool(shuffle), work, chunk, stats)
            opt.iterations += done
            for e, (loss_sum, sse, sae, _) in enumerate(stats.tolist(), start=epoch):
                logs = {"loss": loss_sum / n}
                logs.update(self._metric_logs(sse, sae, n * out_units))
                if val is not None:
                    logs.update({"val_" + k: v for k, v in self._evaluate_logs(*val).items()})
                cbs.on_epoch_end(e, logs)
            epoch += chunk
        cbs.on_train_end()
        return self.history

    def _metric_logs(self, sse: float, sae: float, count: int) -> dict[str, float]:
        return {name: (sse if kind == "se" else sae) / count
                for name, kind in zip(self.metrics_names, self._metric_kinds)}

    def _forward(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((x.shape[0], self.layers[-1].units), self.dtype)
        work = self._workspace(min(_PREDICT_ROWS, x.shape[0]))
        for start in range(0, x.shape[0], _PREDICT_ROWS):
            _core.net_forward(out[start:start + _PREDICT_ROWS], x[start:start + _PREDICT_ROWS],
                              self._params, self.spec, work)
        return out

    def _evaluate_logs(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        pred = self._forward(x)
        sse, sae = _core.mse(pred, y)
        penalty = sum(l.kernel_regularizer(l.kernel) for l in self.layers if l.kernel_regularizer)
        count = max(y.size, 1)
        logs = {"loss": sse / count + penalty}
        logs.update(self._metric_logs(sse, sae, count))
        return logs

    # -- inference ------------------------------------------------------------------
    def predict(self, x, batch_size: Optional[int] = None, verbose: int = 0) -> np.ndarray:
        """The model's outputs, shape ``(n, units of the last layer)``."""
        self._require_built("predict")
        if batch_size is not None:
            check_int(batch_size, "batch_size", low=1)
        return self._forward(self._x(x))

    def __call__(self, x) -> np.ndarray:
        return self.predict(x)

    def evaluate(self, x, y, batch_size: Optional[int] = None, verbose: int = 0,
                 return_dict: bool = False) -> Union[float, list, dict]:
        """The loss (and metrics) on ``x, y``: a float without metrics, else
        ``[loss, metric, ...]`` (or a dict with ``return_dict=True``)."""
        self._require_built("evaluate")
        self._require_compiled("evaluate")
        if batch_size is not None:
            check_int(batch_size, "batch_size", low=1)
        x = self._x(x)
        logs = self._evaluate_logs(x, self._y(y, x.shape[0]))
        if return_dict:
            return logs
        return logs["loss"] if not self.metrics_names else list(logs.values())

    def compute_gradients(self, x, y) -> tuple[float, list[np.ndarray]]:
        """``loss, grads`` of the whole batch ``x, y`` (MSE plus regularization),
        the grads shaped like ``trainable_variables``: the articles' GradientTape
        step is ``opt.apply_gradients(zip(grads, model.trainable_variables))``."""
        x, y = self._training_data(x, y)
        grads = np.empty_like(self._params)
        loss_sum, _, _, _ = _core.net_gradients(grads, x, y, self._params, self.spec,
                                                self._workspace(x.shape[0]))
        views = [grads[off:off + size].reshape(shape) for off, size, shape in self._layout]
        return loss_sum / x.shape[0], views

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
                "input_dim": self._input_dim if self.built else self._declared_input_dim(),
                "layers": [l.get_config() for l in self.layers]}

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
