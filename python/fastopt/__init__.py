"""fastopt: the gradient-descent articles' Python, with every hot loop in C.

    import fastopt as fo

    w, b = fo.gradient_descent(x, y, np.zeros(1), 0, 0.01, 1000)     # article 000

    opt = fo.optimizers.Adam(learning_rate=0.01)                     # article 001
    loss, grads = model.compute_gradients(x, y)
    opt.apply_gradients(zip(grads, model.trainable_variables))       # NumPy arrays, in place

    model = fo.Sequential([fo.Dense(10, activation="relu", input_shape=(13,)), fo.Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error")      # article 003
    model.fit(x, y, epochs=100, batch_size=32, verbose=0)
"""
from ._blas import preload as _preload_blas

_preload_blas()

from . import _core  # noqa: E402,F401  (loaded after the BLAS it links)
from ._warnings import DivergenceWarning  # noqa: E402
from . import (callbacks, initializers, layers, losses, metrics, model_selection, optimizers,  # noqa: E402
               regularizers, schedules)
from . import activations  # noqa: E402
from .articles import gradient, gradient_descent, linear_model, mse_loss  # noqa: E402
from .data import train_test_split  # noqa: E402
from .layers import Dense, Input, InputLayer  # noqa: E402
from .models import Sequential, clone_model, load_model  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Sequential", "Dense", "Input", "InputLayer", "load_model", "clone_model", "train_test_split",
    "linear_model", "mse_loss", "gradient", "gradient_descent",
    "optimizers", "schedules", "initializers", "regularizers", "callbacks", "losses", "metrics", "layers",
    "model_selection", "activations", "DivergenceWarning",
    "__version__",
]
