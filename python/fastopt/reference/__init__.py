"""fastopt.reference: the obvious NumPy version of every C kernel.

Slow on purpose and written to be read: the tests compare each kernel of
fastopt._core with its twin here on random shapes, dtypes and
hyperparameters.
"""
from .optim import *  # noqa: F401,F403  the optimizer updates
from .nn import *  # noqa: F401,F403  dense layers, MSE, networks, training
from .loss import *  # noqa: F401,F403  activations, losses, metrics, dropout
from .linear import *  # noqa: F401,F403  article 000's linear regression
