"""fastopt: the gradient-descent articles' Python, with every hot loop in C.

    import fastopt as fo
    opt = fo.optimizers.Adam(learning_rate=0.01)
    opt.apply_gradients(zip(grads, variables))      # NumPy arrays, in place
"""
from ._blas import preload as _preload_blas

_preload_blas()

from . import _core  # noqa: E402
from . import optimizers, schedules  # noqa: E402

__version__ = "0.1.0"

__all__ = ["optimizers", "schedules", "__version__"]
