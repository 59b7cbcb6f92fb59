"""``train_test_split`` with scikit-learn's arguments and the same split:
for a given ``random_state`` the rows land where scikit-learn puts them."""
from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import numpy as np

__all__ = ["train_test_split"]


def _count(size, n: int, name: str) -> Union[int, float, None]:
    if size is None:
        return None
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        if not 0 < size < n:
            raise ValueError(f"{name}={size} must be between 1 and {n - 1} samples")
        return int(size)
    if isinstance(size, numbers.Real) and 0 < size < 1:
        return float(size)  # a fraction: the caller rounds (test up, train down)
    raise ValueError(f"{name} must be a fraction in (0, 1) or a sample count, got {size!r}")


def train_test_split(*arrays, test_size: Union[float, int, None] = None,
                     train_size: Union[float, int, None] = None,
                     random_state: Optional[int] = None, shuffle: bool = True) -> list:
    """Split arrays (same first dimension) into train and test parts:
    ``x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)``.

    ``test_size`` defaults to 0.25 (of the samples, rounded up); with a fixed
    ``random_state`` the split is scikit-learn's.
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    arrays = [np.asarray(a) for a in arrays]
    n = arrays[0].shape[0] if arrays[0].ndim else 0
    for i, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[0] != n:
            raise ValueError(f"arrays[{i}] has {a.shape[0] if a.ndim else 0} samples, arrays[0] has {n}")
    if n < 2:
        raise ValueError(f"cannot split {n} samples")
    test, train = _count(test_size, n, "test_size"), _count(train_size, n, "train_size")
    if test is None and train is None:
        test = 0.25
    n_test = (math.ceil(test * n) if isinstance(test, float) else test) if test is not None else None
    n_train = (math.floor(train * n) if isinstance(train, float) else train) if train is not None else None
    if n_test is None:
        n_test = n - n_train
    if n_train is None:
        n_train = n - n_test
    if n_train + n_test > n or n_train < 1 or n_test < 1:
        raise ValueError(f"train_size={train_size} and test_size={test_size} do not fit {n} samples")
    if shuffle:
        perm = np.random.RandomState(random_state).permutation(n)  # scikit-learn's ShuffleSplit
        test_idx, train_idx = perm[:n_test], perm[n_test:n_test + n_train]
    else:
        train_idx, test_idx = np.arange(n_train), np.arange(n_train, n_train + n_test)
    out = []
    for a in arrays:
        out += [a[train_idx], a[test_idx]]
    return out
