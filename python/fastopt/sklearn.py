"""scikit-learn's estimator interface to fastopt (``fo.sklearn``, imported only
when used, since it imports scikit-learn).

``FastoptRegressor`` is a fastopt ``Sequential`` network behind scikit-learn's
API, with ``MLPRegressor``'s names where they mean the same thing, so
``GridSearchCV``, ``cross_val_score`` and ``Pipeline`` drive fastopt's C
training loop::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.model_selection import GridSearchCV

    reg = make_pipeline(StandardScaler(), fo.sklearn.FastoptRegressor(hidden_layer_sizes=(10,), epochs=100))
    search = GridSearchCV(reg, {"fastoptregressor__learning_rate": [1e-3, 1e-2]}, n_jobs=2).fit(X, y)

A classifier (``FastoptClassifier``) needs cross-entropy losses, which fastopt
does not have yet.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import optimizers as _optimizers
from ._checks import check_int
from .layers import Dense
from .models import Sequential

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # older: the estimator's own method
    _sk_validate_data = None

__all__ = ["FastoptRegressor"]

_DTYPES = [np.float64, np.float32]  # float32 data train a float32 model, anything else float64


def _validate(estimator, X, y="no_validation", reset: bool = True, **check_params):
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, y, reset=reset, **check_params)
    return estimator._validate_data(X, y, reset=reset, **check_params)


class FastoptRegressor(RegressorMixin, BaseEstimator):
    """A fully connected network regressor trained by fastopt (mean squared error).

    Parameters
    ----------
    hidden_layer_sizes : units of each hidden ``Dense`` layer; the output layer
        has one unit per target column, without activation.
    activation : of the hidden layers: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"linear"``.
    optimizer : a name (``"adam"``, ``"sgd"``, ``"rmsprop"``, ``"adagrad"``,
        ``"adamw"``), an optimizer object or its ``serialize`` config: its
        configuration, copied for every fit (the object is never stepped).
    learning_rate : the optimizer's learning rate (a float or a schedule); it
        replaces the one of an optimizer object.
    batch_size, epochs : as in ``fit``; ``fit`` trains ``epochs`` epochs,
        ``partial_fit`` one.
    loss : as in ``compile``.
    random_state : seeds the initial weights and the shuffling (an int, a
        ``RandomState``, or None for a fresh seed each fit).
    verbose : ``fit``'s progress output.
    model : instead of the layers above, a builder
        ``model(n_features=..., n_outputs=..., seed=...)`` returning a fastopt
        model; when not compiled, it is compiled with ``optimizer``,
        ``learning_rate`` and ``loss``.

    Attributes after ``fit``: ``model_`` (the trained ``Sequential``),
    ``history_`` (``fit``'s per-epoch logs), ``loss_curve_`` (the per-epoch
    training loss, over all ``fit``/``partial_fit`` calls since the last ``fit``),
    ``n_features_in_``.

    Float32 ``X`` trains a float32 model; anything else float64.  A fitted
    estimator pickles with its network, optimizer state and shuffling stream.
    """

    def __init__(self, hidden_layer_sizes: Sequence[int] = (100,), activation: str = "relu",
                 optimizer: Union[str, Any] = "adam", learning_rate: Any = 0.001, batch_size: int = 32,
                 epochs: int = 200, loss: Any = "mean_squared_error", random_state: Any = None,
                 verbose: Union[int, str] = 0, model: Optional[Callable[..., Any]] = None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.loss = loss
        self.random_state = random_state
        self.verbose = verbose
        self.model = model

    # -- the network -------------------------------------------------------------------------------
    def _seed(self) -> int:
        rs = self.random_state
        if rs is None or isinstance(rs, np.random.RandomState):
            return int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        return check_int(rs, "random_state", low=0)

    def _new_optimizer(self) -> _optimizers.Optimizer:
        opt = self.optimizer
        if isinstance(opt, _optimizers.Optimizer):
            opt = _optimizers.serialize(opt)
        opt = _optimizers.get(opt)  # a fresh optimizer from a name or a config
        opt.learning_rate = self.learning_rate
        return opt

    def _new_model(self, n_features: int, n_outputs: int, dtype) -> Sequential:
        seed = self._seed()
        if self.model is not None:
            model = self.model(n_features=n_features, n_outputs=n_outputs, seed=seed)
            if not model.built:
                model.build((None, n_features))
        else:
            sizes = self.hidden_layer_sizes
            sizes = [sizes] if isinstance(sizes, (int, np.integer)) else list(sizes)
            units = [check_int(u, "hidden_layer_sizes[]", low=1) for u in sizes] + [n_outputs]
            layers = [Dense(u, activation=self.activation if i < len(sizes) else None,
                            input_shape=(n_features,) if i == 0 else None) for i, u in enumerate(units)]
            model = Sequential(layers, dtype=np.dtype(dtype).name, seed=seed)
        if model.optimizer is None:
            model.compile(optimizer=self._new_optimizer(), loss=self.loss)
        return model

    def _train(self, model: Sequential, X: np.ndarray, y: np.ndarray, epochs: int, first: bool) -> None:
        """``epochs`` epochs of ``model`` on X, y; the fitted attributes are set only
        once training has succeeded (a first call starts them afresh)."""
        history = model.fit(X, y, epochs=epochs, batch_size=self.batch_size, verbose=self.verbose)
        logs = {} if first else self.history_
        for key, values in history.history.items():
            logs.setdefault(key, []).extend(values)
        self.model_, self.history_ = model, logs
        self.loss_curve_ = list(logs.get("loss", []))
        if first:
            self._y_ndim = y.ndim

    def _data(self, X, y, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = _validate(self, X, y, reset=reset, dtype=_DTYPES, multi_output=True, y_numeric=True)
        return X, np.asarray(y, dtype=X.dtype)

    # -- scikit-learn's API --------------------------------------------------------------------------
    def fit(self, X, y) -> "FastoptRegressor":
        """Train a new network for ``epochs`` epochs on ``X`` (n_samples, n_features)
        and ``y`` (n_samples,) or (n_samples, n_targets)."""
        epochs = check_int(self.epochs, "epochs", low=1)
        X, y = self._data(X, y, reset=True)
        model = self._new_model(X.shape[1], 1 if y.ndim == 1 else y.shape[1], X.dtype)
        self._train(model, X, y, epochs, first=True)
        return self

    def partial_fit(self, X, y) -> "FastoptRegressor":
        """One more epoch on ``X, y``, continuing the network and its optimizer
        state (a first call builds the network, as ``fit`` does)."""
        first = not hasattr(self, "model_")
        X, y = self._data(X, y, reset=first)
        model = self._new_model(X.shape[1], 1 if y.ndim == 1 else y.shape[1], X.dtype) if first else self.model_
        self._train(model, X, y, 1, first)
        return self

    def predict(self, X) -> np.ndarray:
        """The network's output: shape (n_samples,) when fitted on a 1-d ``y``."""
        check_is_fitted(self)
        X = _validate(self, X, reset=False, dtype=_DTYPES)
        pred = self.model_.predict(X)
        return pred.ravel() if self._y_ndim == 1 else pred

    if hasattr(BaseEstimator, "__sklearn_tags__"):  # scikit-learn >= 1.6
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.target_tags.multi_output = True
            return tags
    else:
        def _more_tags(self):
            return {"multioutput": True}
