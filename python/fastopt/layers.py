"""Layers, as in ``keras.layers``: ``Dense`` (``y = activation(x @ kernel + bias)``),
``Input`` / ``InputLayer`` (the width of the data), ``Dropout``, ``Activation``
and the ``Layer`` base.

    model = fo.Sequential([fo.Input((13,)), fo.layers.Dense(10, activation="relu"), fo.layers.Dense(1)])
    model.layers[0].get_weights()            # [kernel (13, 10), bias (10,)], copies
    model.layers[0].input_shape              # (None, 13)

Kernel layout is Keras': ``kernel`` has shape ``(inputs, units)``.  In a
model, ``kernel`` and ``bias`` are views into the model's one flat parameter
buffer, so ``set_weights`` writes into the model.

A new layer type subclasses :class:`Layer`: it is then known by its class
name to :func:`deserialize` (and so to ``Sequential.from_config``).
"""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _core
from . import activations as _activations
from . import initializers as _init
from . import regularizers as _reg
from ._checks import as_float_array, check_int, check_real, keras_keywords

__all__ = ["Layer", "Dense", "Input", "InputLayer", "Dropout", "Activation", "ACTIVATIONS", "serialize",
           "deserialize"]

# activation name (Keras') -> C code; gelu's approximate=True form has its own code
ACTIVATIONS = {None: _core.LINEAR, **{name: _activations.CODES[name] for name in (
    "linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "silu", "softplus",
    "softsign", "hard_sigmoid", "exponential")}, "swish": _activations.CODES["silu"]}

_LAYERS: dict[str, type] = {}  # class name -> layer class, for deserialize


def activation_code(activation) -> int:
    """The C code of an activation name, function or config (ValueError if none)."""
    return _activations.resolve(activation)[0]


def _features(shape, name: str) -> tuple:
    """``(features,)`` from an int or a one-entry sequence."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple (features,), got {type(shape).__name__}") from None
    if len(shape) != 1:
        raise ValueError(f"{name} must be (features,), got {shape}")
    check_int(shape[0], f"{name}[0]", low=1)
    return (int(shape[0]),)


def assign_weights(variables: Sequence[np.ndarray], weights, who: str) -> None:
    """Copy ``weights`` into ``variables`` (same count, shapes), checking them
    all before writing any (a bad array changes nothing)."""
    if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence) or isinstance(weights, str):
        raise TypeError(f"{who}: weights must be a list of arrays (in get_weights() order), "
                        f"got {type(weights).__name__}")
    if len(weights) != len(variables):
        raise ValueError(f"{who}: expected {len(variables)} arrays, got {len(weights)}")
    staged = []
    for i, (w, v) in enumerate(zip(weights, variables)):
        a = as_float_array(w, f"weights[{i}]")
        if a.shape != v.shape:
            raise ValueError(f"weights[{i}] has shape {a.shape}, expected {v.shape}")
        staged.append(a)
    for a, v in zip(staged, variables):
        v[...] = a


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Layer:
    """Base class of fastopt's layers.

    A layer has a ``name``, its ``weights`` (the live arrays; views into the
    model's buffer once the model is built), ``get_weights()`` /
    ``set_weights()`` (copies in, copies out), ``input_shape`` /
    ``output_shape`` (with ``None`` for the batch) and ``get_config()`` /
    ``from_config()``.
    """

    name: Optional[str] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _LAYERS[cls.__name__] = cls

    @property
    def weights(self) -> list[np.ndarray]:
        return []

    @property
    def trainable_variables(self) -> list[np.ndarray]:
        return self.weights

    @property
    def built(self) -> bool:
        return True

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the layer's weights (``[kernel, bias]`` for ``Dense``); ``[]`` before it is built."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence) -> None:
        """Copy ``weights`` (``get_weights()`` order and shapes) into the layer,
        and so into its model.  Nothing is written unless every array fits."""
        assign_weights(self.weights, weights, f"layer {self.name!r} set_weights")

    @property
    def input_shape(self) -> Optional[tuple]:
        return None

    @property
    def output_shape(self) -> Optional[tuple]:
        return None

    def count_params(self, *args) -> int:
        return sum(int(w.size) for w in self.weights)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Layer":
        return cls(**config)

    def _default_name(self) -> str:
        return _snake(type(self).__name__)


class InputLayer(Layer):
    """The model's input: ``shape=(features,)`` (without the batch), as
    ``keras.layers.InputLayer``.  Usually made by :func:`Input`."""

    @keras_keywords(keras_only=("sparse", "ragged", "input_tensor", "optional"))
    def __init__(self, shape: Optional[tuple] = None, batch_size: Optional[int] = None,
                 dtype: Optional[str] = None, batch_shape: Optional[tuple] = None,
                 name: Optional[str] = None):
        if batch_shape is not None:
            if shape is not None or batch_size is not None:
                raise ValueError("give either shape (and batch_size) or batch_shape, not both")
            batch_shape = tuple(batch_shape)
            if len(batch_shape) != 2:
                raise ValueError(f"batch_shape must be (batch_size, features), got {batch_shape}")
            batch_size, shape = batch_shape[0], batch_shape[1:]
        if shape is None:
            raise ValueError("Input needs shape=(features,)")
        shape = _features(shape, "shape")
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", low=1)
        if dtype is not None:
            dtype = np.dtype(dtype).name
            if dtype not in ("float32", "float64"):
                raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.batch_shape = (batch_size,) + shape
        self.dtype = dtype
        self.name = name

    @property
    def shape(self) -> tuple:
        """``(batch_size, features)``, as the tensor ``keras.Input`` returns."""
        return self.batch_shape

    @property
    def input_shape(self) -> tuple:
        return self.batch_shape

    @property
    def output_shape(self) -> tuple:
        return self.batch_shape

    def get_config(self):
        return {"batch_shape": self.batch_shape, "dtype": self.dtype, "name": self.name}

    def _default_name(self) -> str:
        return "input_layer"

    def __repr__(self) -> str:
        return f"Input(shape={self.batch_shape[1:]})"


@keras_keywords(keras_only=("sparse", "ragged", "tensor", "optional"))
def Input(shape: Optional[tuple] = None, batch_size: Optional[int] = None, dtype: Optional[str] = None,
          batch_shape: Optional[tuple] = None, name: Optional[str] = None) -> InputLayer:
    """The input of a model, as ``keras.Input``: ``fo.Input((13,))`` first in
    ``Sequential([fo.Input((13,)), fo.Dense(10), ...])`` builds the model at
    once for 13 features.  ``dtype``, when given, must be the model's."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name)


class Dense(Layer):
    """A densely connected layer: ``output = activation(x @ kernel + bias)``.

    Arguments as Keras' ``Dense``: ``units``, ``activation`` (``None``/``"linear"``,
    ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``, ``"leaky_relu"``, ``"elu"``,
    ``"gelu"``, ``"silu"``/``"swish"``, ``"softplus"``, ``"softsign"``,
    ``"hard_sigmoid"``, ``"exponential"``, or a ``fo.activations`` function; see
    :mod:`fastopt.activations` for the formulas), ``use_bias``, ``kernel_initializer``
    (default ``"glorot_uniform"``), ``bias_initializer`` (``"zeros"``),
    ``kernel_regularizer`` (``fo.regularizers.l2(0.01)`` ...), and
    ``input_shape=(features,)`` (or ``input_dim``) on the first layer (or put
    ``fo.Input((features,))`` first in the model).
    """

    @keras_keywords(keras_only=("bias_regularizer", "activity_regularizer", "kernel_constraint",
                                "bias_constraint", "lora_rank", "lora_alpha", "dtype", "trainable",
                                "batch_size", "batch_input_shape", "quantization_config"))
    def __init__(self, units: int, activation: Optional[str] = None, use_bias: bool = True,
                 kernel_initializer: Union[str, _init.Initializer] = "glorot_uniform",
                 bias_initializer: Union[str, _init.Initializer] = "zeros",
                 kernel_regularizer: Optional[_reg.Regularizer] = None,
                 input_shape: Optional[tuple] = None, input_dim: Optional[int] = None,
                 name: Optional[str] = None):
        self.units = check_int(units, "units", low=1)
        self._act, self._act_param = _activations.resolve(activation)
        self.activation = _activations.serialize(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _init.get(kernel_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer = _reg.get(kernel_regularizer)
        if input_dim is not None:
            input_shape = (input_dim,)
        # the constructor's input_shape=(features,), as Keras 3 keeps it
        self._input_shape_arg = None if input_shape is None else _features(input_shape, "input_shape")
        self.name = name
        self.kernel: Optional[np.ndarray] = None
        self.bias: Optional[np.ndarray] = None

    @property
    def built(self) -> bool:
        return self.kernel is not None

    @property
    def input_dim(self) -> Optional[int]:
        return None if self.kernel is None else self.kernel.shape[0]

    @property
    def input_shape(self) -> Optional[tuple]:
        """``(None, features)`` once known (the model is built, or ``input_shape`` was given)."""
        if self.kernel is not None:
            return (None, self.kernel.shape[0])
        return None if self._input_shape_arg is None else (None,) + self._input_shape_arg

    @property
    def output_shape(self) -> tuple:
        return (None, self.units)

    @property
    def weights(self) -> list[np.ndarray]:
        return [self.kernel] + ([self.bias] if self.use_bias else []) if self.built else []

    def count_params(self, input_dim: Optional[int] = None) -> int:
        if input_dim is None:
            if not self.built:
                raise ValueError(f"layer {self.name!r} is not built: count_params needs its input width")
            input_dim = self.kernel.shape[0]
        return input_dim * self.units + (self.units if self.use_bias else 0)

    def __call__(self, x) -> np.ndarray:
        """``activation(x @ kernel + bias)`` for a built layer (one C call)."""
        if not self.built:
            raise ValueError(f"layer {self.name} is not built; add it to a model and build it")
        x = np.ascontiguousarray(x, dtype=self.kernel.dtype)
        if x.ndim != 2 or x.shape[1] != self.kernel.shape[0]:
            raise ValueError(f"x must have shape (n, {self.kernel.shape[0]}), got {x.shape}")
        out = np.empty((x.shape[0], self.units), self.kernel.dtype)
        _core.dense_forward(out, x, self.kernel, self.bias if self.use_bias else None, self._act,
                            self._act_param)
        return out

    def get_config(self) -> dict[str, Any]:
        reg = self.kernel_regularizer
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": _init.serialize(self.kernel_initializer),
                "bias_initializer": _init.serialize(self.bias_initializer),
                "kernel_regularizer": None if reg is None else reg.get_config(),
                "input_shape": self._input_shape_arg, "name": self.name}

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation!r})"


# -- Dropout and Activation ------------------------------------------------------------
# Layer objects with Keras' arguments and config.  In a Sequential model they
# fold into the C network: a Dropout into the dropout of the Dense layer before
# it (masks from the model's xoshiro stream, so a seeded model trains the same
# bits every run; the layer's own seed serves its standalone calls), an
# Activation into the linear Dense layer before it.

class Dropout(Layer):
    """Inverted dropout (Keras' ``Dropout``): while training, each input is set to 0
    with probability ``rate`` and the others are scaled by ``1 / (1 - rate)``, so the
    expected output equals the input; at inference (``training=False``, the
    default) the layer passes its input through.

    ``noise_shape`` (for 2-d input ``(batch, features)``): ``(batch, 1)`` drops
    whole rows, ``(1, features)`` the same features in every row; ``None`` entries
    take the input's size.  ``seed`` makes the masks of the layer's own calls
    reproducible (xoshiro256**, the generator the training loop uses).  Inside a
    model, ``fit`` and ``train_on_batch`` draw every layer's masks from the
    model's generator instead (``Sequential(seed=...)``), one stream for the
    shuffle and all the masks, so a seeded model trains the same every run."""

    @keras_keywords(keras_only=("dtype", "trainable"))
    def __init__(self, rate: float, noise_shape: Optional[tuple] = None, seed: Optional[int] = None,
                 name: Optional[str] = None):
        self.rate = check_real(rate, "rate", low=0.0, high=1.0)
        if noise_shape is not None:
            noise_shape = tuple(noise_shape)
            for i, d in enumerate(noise_shape):
                if d is not None:
                    check_int(d, f"noise_shape[{i}]", low=1)
        self.noise_shape = noise_shape
        self.seed = None if seed is None else check_int(seed, "seed", low=0)
        self.name = name
        self._rng_state = np.zeros(4, np.uint64)
        start = np.random.SeedSequence(self.seed).generate_state(1, np.uint64)[0]
        _core.rng_seed(self._rng_state, int(start))

    def _mask_shape(self, shape: tuple) -> tuple:
        if self.noise_shape is None:
            return shape
        if len(self.noise_shape) != len(shape):
            raise ValueError(f"noise_shape {self.noise_shape} has {len(self.noise_shape)} entries for "
                             f"input of shape {shape}")
        mask = tuple(s if d is None else d for d, s in zip(self.noise_shape, shape))
        if any(d not in (1, s) for d, s in zip(mask, shape)):
            raise ValueError(f"noise_shape {self.noise_shape} does not broadcast to the input's shape {shape}")
        return mask

    def __call__(self, inputs, training: bool = False) -> np.ndarray:
        """``inputs * mask`` with a fresh mask when ``training``, else ``inputs``."""
        x = _activations._as_input(inputs, "inputs")
        if not training or self.rate == 0:
            return x
        if x.ndim != 2 and self.noise_shape is not None:
            raise ValueError(f"noise_shape needs 2-d input (batch, features), got shape {x.shape}")
        x2 = x.reshape(1, -1) if x.ndim != 2 else x
        mask = np.empty(self._mask_shape(x2.shape), x.dtype)
        out = np.empty_like(x2)
        _core.dropout(out, mask, x2, self.rate, self._rng_state)
        return out.reshape(x.shape)

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed, "name": self.name}

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"


class Activation(Layer):
    """Applies an activation function (Keras' ``Activation``): ``Activation("relu")``,
    ``Activation(fo.activations.softmax)``; any name :mod:`fastopt.activations`
    knows, with its parameter through ``functools.partial`` or a config."""

    @keras_keywords(keras_only=("dtype", "trainable"))
    def __init__(self, activation, name: Optional[str] = None):
        self._act, self._act_param = _activations.resolve(activation)
        self.activation = _activations.serialize(activation)
        self._fn = _activations.get(self.activation)
        self.name = name

    def __call__(self, inputs) -> np.ndarray:
        return self._fn(inputs)

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation, "name": self.name}

    def __repr__(self) -> str:
        return f"Activation({self.activation!r})"


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": "Dense", "config": {...}}``, as Keras writes a layer."""
    if not isinstance(layer, Layer):
        raise TypeError(f"layer must be a fastopt layer, got {type(layer).__name__}")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict[str, Any]) -> Layer:
    """The layer of a :func:`serialize` result (a Keras 3 one works for the
    layers fastopt has: its ``module`` and ``registered_name`` are ignored)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError(f"a serialized layer is a dict {{'class_name': ..., 'config': {{...}}}}, got {config!r}")
    name = config.get("class_name")
    if name not in _LAYERS:
        raise ValueError(f"unknown layer {name!r}; expected one of {sorted(_LAYERS)}")
    return _LAYERS[name].from_config(config["config"])
