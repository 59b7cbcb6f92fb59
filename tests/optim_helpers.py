"""Helpers shared by the optimizer and model tests: the optimizers by name, a
configuration using every slot of each, forcing apply_gradients' or the
model's per-step calls' fast or thorough path, and an unaligned copy of an
array."""
import contextlib

import numpy as np

import fastopt as fo
from fastopt import _core

NAMES = ["sgd", "adagrad", "rmsprop", "adam", "adamw"]
CLASSES = {"sgd": fo.optimizers.SGD, "adagrad": fo.optimizers.Adagrad,
           "rmsprop": fo.optimizers.RMSprop, "adam": fo.optimizers.Adam,
           "adamw": fo.optimizers.AdamW}
# every slot of the rule in use, so the state is exercised
FULL = {"sgd": dict(momentum=0.9), "adagrad": {}, "rmsprop": dict(momentum=0.5, centered=True),
        "adam": dict(amsgrad=True), "adamw": dict(weight_decay=0.05)}


@contextlib.contextmanager
def fast_path(enabled: bool):
    """Force apply_gradients' fast path on or off (off: every call takes the thorough path)."""
    before = _core.optim_fast_path(enabled)
    try:
        yield
    finally:
        _core.optim_fast_path(before)


@contextlib.contextmanager
def model_fast_path(enabled: bool):
    """Force the model's per-step calls' fast path on or off (fastopt.models.use_fast_path)."""
    before = fo.models.use_fast_path(enabled)
    try:
        yield
    finally:
        fo.models.use_fast_path(before)


def unaligned(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` at an odd address (not aligned for its dtype)."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out
