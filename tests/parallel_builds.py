"""Build functions for the executor tests: module-level, so that a process
pool or a Dask worker unpickles them by reference (importing this module)."""
import numpy as np

import fastopt as fo


def data(n=120, features=3, seed=0):
    """A small regression problem: y = x @ w + 0.3 + noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    y = x @ np.linspace(1.0, -1.0, features) + 0.3 + 0.05 * rng.standard_normal(n)
    return x, y


def build_net(learning_rate=0.01, units=4, seed=0):
    """A compiled 3-units-1 network (grid_search's builder)."""
    model = fo.Sequential([fo.Dense(units, activation="tanh", input_shape=(3,)), fo.Dense(1)], seed=seed)
    model.compile(optimizer=fo.optimizers.Adam(learning_rate), loss="mse", metrics=["mae"])
    return model


def build_line(seed):
    """Article 004's Dense(1) on one feature, float64 (compare's builder)."""
    return fo.Sequential([fo.Dense(1, input_shape=(1,))], dtype="float64", seed=seed)


def build_small(seed):
    """An uncompiled 3-4-1 network (compare's builder)."""
    return fo.Sequential([fo.Dense(4, activation="relu", input_shape=(3,)), fo.Dense(1)], seed=seed)
