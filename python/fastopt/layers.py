"""``Dense``: the fully connected layer, ``y = activation(x @ kernel + bias)``;
``Dropout`` and ``Activation``.

Kernel layout is Keras': ``kernel`` has shape ``(inputs, units)``.  In a
model, ``kernel`` and ``bias`` are views into the model's one flat parameter
buffer.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core
from . import activations as _activations
from . import initializers as _init
from . import regularizers as _reg
from ._checks import check_int, check_real

__all__ = ["Dense", "Dropout", "Activation", "ACTIVATIONS"]

# activation name (Keras') -> C code; gelu's approximate=True form has its own code
ACTIVATIONS = {None: _core.LINEAR, **{name: _activations.CODES[name] for name in (
    "linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "silu", "softplus",
    "softsign", "hard_sigmoid", "exponential")}, "swish": _activations.CODES["silu"]}


def activation_code(activation) -> int:
    """The C code of an activation name, function or config (ValueError if none)."""
    return _activations.resolve(activation)[0]


class Dense:
    """A densely connected layer: ``output = activation(x @ kernel + bias)``.

    Arguments as Keras' ``Dense``: ``units``, ``activation`` (``None``/``"linear"``,
    ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``, ``"leaky_relu"``, ``"elu"``,
    ``"gelu"``, ``"silu"``/``"swish"``, ``"softplus"``, ``"softsign"``,
    ``"hard_sigmoid"``, ``"exponential"``, or a ``fo.activations`` function; see
    :mod:`fastopt.activations` for the formulas), ``use_bias``, ``kernel_initializer``
    (default ``"glorot_uniform"``), ``bias_initializer`` (``"zeros"``),
    ``kernel_regularizer`` (``fo.regularizers.l2(0.01)`` ...), and
    ``input_shape=(features,)`` (or ``input_dim``) on the first layer.
    """

    def __init__(self, units: int, activation: Optional[str] = None, use_bias: bool = True,
                 kernel_initializer: Union[str, _init.Initializer] = "glorot_uniform",
                 bias_initializer: Union[str, _init.Initializer] = "zeros",
                 kernel_regularizer: Optional[_reg.Regularizer] = None,
                 input_shape: Optional[tuple] = None, input_dim: Optional[int] = None,
                 name: Optional[str] = None):
        self.units = check_int(units, "units", low=1)
        self._act, self._act_param = _activations.resolve(activation)
        if self._act_param != _activations.DEFAULT_PARAMS.get(self._act, 0.0):
            raise ValueError(f"activation {activation!r}: Dense takes Keras' default parameter "
                             f"({_activations.DEFAULT_PARAMS[self._act]}) only, as the training loop "
                             "does not carry a per-layer parameter yet; apply "
                             "fo.activations with the parameter to the layer's output instead")
        self.activation = _activations.serialize(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _init.get(kernel_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer = _reg.get(kernel_regularizer)
        if input_dim is not None:
            input_shape = (input_dim,)
        if input_shape is not None:
            if isinstance(input_shape, int):
                input_shape = (input_shape,)
            input_shape = tuple(input_shape)
            if len(input_shape) != 1:
                raise ValueError(f"input_shape must be (features,), got {input_shape}")
            check_int(input_shape[0], "input_shape[0]", low=1)
        self.input_shape = input_shape
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
    def trainable_variables(self) -> list[np.ndarray]:
        return [self.kernel] + ([self.bias] if self.use_bias else []) if self.built else []

    @property
    def weights(self) -> list[np.ndarray]:
        return self.trainable_variables

    def count_params(self, input_dim: int) -> int:
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
                "input_shape": self.input_shape, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Dense":
        return cls(**config)

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation!r})"


# -- Dropout and Activation ------------------------------------------------------------
# Layer objects with Keras' arguments and config.  Sequential does not take them
# yet: the C training loop has the dropout kernel (fo_dropout_forward/backward)
# and every activation, but not these layers in its network spec.

class Dropout:
    """Inverted dropout (Keras' ``Dropout``): while training, each input is set to 0
    with probability ``rate`` and the others are scaled by ``1 / (1 - rate)``, so the
    expected output equals the input; at inference (``training=False``, the
    default) the layer passes its input through.

    ``noise_shape`` (for 2-d input ``(batch, features)``): ``(batch, 1)`` drops
    whole rows, ``(1, features)`` the same features in every row; ``None`` entries
    take the input's size.  ``seed`` makes the masks reproducible (xoshiro256**,
    the stream the training loop uses)."""

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

    trainable_variables: list = []
    weights: list = []

    def count_params(self, input_dim: Optional[int] = None) -> int:
        return 0

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

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Dropout":
        return cls(**config)

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"


class Activation:
    """Applies an activation function (Keras' ``Activation``): ``Activation("relu")``,
    ``Activation(fo.activations.softmax)``; any name :mod:`fastopt.activations`
    knows, with its parameter through ``functools.partial`` or a config."""

    def __init__(self, activation, name: Optional[str] = None):
        self._act, self._act_param = _activations.resolve(activation)
        self.activation = _activations.serialize(activation)
        self._fn = _activations.get(self.activation)
        self.name = name

    trainable_variables: list = []
    weights: list = []

    def count_params(self, input_dim: Optional[int] = None) -> int:
        return 0

    def __call__(self, inputs) -> np.ndarray:
        return self._fn(inputs)

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Activation":
        return cls(**config)

    def __repr__(self) -> str:
        return f"Activation({self.activation!r})"
