"""``Dense``: the fully connected layer, ``y = activation(x @ kernel + bias)``.

Kernel layout is Keras': ``kernel`` has shape ``(inputs, units)``.  In a
model, ``kernel`` and ``bias`` are views into the model's one flat parameter
buffer.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core
from . import initializers as _init
from . import regularizers as _reg
from ._checks import check_int

__all__ = ["Dense", "ACTIVATIONS"]

# activation name -> C code
ACTIVATIONS = {None: _core.LINEAR, "linear": _core.LINEAR, "relu": _core.RELU,
               "sigmoid": _core.SIGMOID, "tanh": _core.TANH}


def activation_code(activation: Optional[str]) -> int:
    key = activation.lower() if isinstance(activation, str) else activation
    if key not in ACTIVATIONS:
        names = sorted(k for k in ACTIVATIONS if k)
        raise ValueError(f"unknown activation {activation!r}; expected one of {names} or None")
    return ACTIVATIONS[key]


class Dense:
    """A densely connected layer: ``output = activation(x @ kernel + bias)``.

    Arguments as Keras' ``Dense``: ``units``, ``activation`` (``None``/``"linear"``,
    ``"relu"``, ``"sigmoid"``, ``"tanh"``), ``use_bias``, ``kernel_initializer``
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
        self.activation = activation
        self._act = activation_code(activation)
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
        _core.dense_forward(out, x, self.kernel, self.bias if self.use_bias else None, self._act)
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
