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

``FastoptClassifier`` is the same with ``MLPClassifier``'s behaviour: any
labels (``classes_``), a softmax output trained with sparse categorical
cross-entropy (a sigmoid output with binary cross-entropy for two classes),
``predict_proba`` and accuracy as ``score``::

    clf = make_pipeline(StandardScaler(), fo.sklearn.FastoptClassifier(hidden_layer_sizes=(32,), epochs=50))
    cross_val_score(clf, X, labels, cv=5)
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted

from . import losses as _losses
from . import optimizers as _optimizers
from ._checks import check_int
from .layers import Dense
from .models import Sequential

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # older: the estimator's own method
    _sk_validate_data = None

__all__ = ["FastoptRegressor", "FastoptClassifier"]

_DTYPES = [np.float64, np.float32]  # float32 data train a float32 model, anything else float64


def _validate(estimator, X, y="no_validation", reset: bool = True, **check_params):
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, y, reset=reset, **check_params)
    return estimator._validate_data(X, y, reset=reset, **check_params)


_PARAMETERS = """
    hidden_layer_sizes : units of each hidden ``Dense`` layer.
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
        ``learning_rate`` and ``loss``."""

_ATTRIBUTES = """Attributes after ``fit``: ``model_`` (the trained ``Sequential``),
    ``history_`` (``fit``'s per-epoch logs), ``loss_curve_`` (the per-epoch
    training loss, over all ``fit``/``partial_fit`` calls since the last ``fit``),
    ``n_features_in_``.

    Float32 ``X`` trains a float32 model; anything else float64.  A fitted
    estimator pickles with its network, optimizer state and shuffling stream."""


def _shared_doc(cls):
    """The parameters and attributes both estimators document, put in ``cls``'s docstring."""
    cls.__doc__ = cls.__doc__.replace("{parameters}", _PARAMETERS).replace("{attributes}", _ATTRIBUTES)
    return cls


class _Head:
    """What one estimator puts on top of the hidden layers and gives ``fit``:
    the output units and activation, the loss, compile's metrics, the targets in
    the network's form, fit's extra arguments, and the fitted attributes to set
    once training has succeeded."""

    def __init__(self, units: Optional[int], targets: np.ndarray, activation: Optional[str] = None, loss: Any = None,
                 metrics: Optional[list] = None, fit_args: Optional[dict] = None, attrs: Optional[dict] = None):
        self.units, self.targets, self.activation, self.loss = units, targets, activation, loss
        self.metrics, self.fit_args, self.attrs = metrics, fit_args or {}, attrs or {}


class _FastoptEstimator(BaseEstimator):
    """The network behind FastoptRegressor and FastoptClassifier: built from the
    constructor's arguments (or the ``model`` builder), trained by fastopt's
    ``fit``; ``fit`` starts afresh, ``partial_fit`` continues it.  A subclass
    says how targets become the network's outputs (``_head``)."""

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

    def _new_model(self, n_features: int, head: _Head, dtype) -> Sequential:
        seed = self._seed()
        if self.model is not None:
            model = self.model(n_features=n_features, n_outputs=head.units, seed=seed)
            if not model.built:
                model.build((None, n_features))
        else:
            sizes = self.hidden_layer_sizes
            sizes = [sizes] if isinstance(sizes, (int, np.integer)) else list(sizes)
            units = [check_int(u, "hidden_layer_sizes[]", low=1) for u in sizes] + [head.units]
            layers = [Dense(u, activation=self.activation if i < len(sizes) else head.activation,
                            input_shape=(n_features,) if i == 0 else None) for i, u in enumerate(units)]
            model = Sequential(layers, dtype=np.dtype(dtype).name, seed=seed)
        if model.optimizer is None:
            model.compile(optimizer=self._new_optimizer(), loss=self.loss if head.loss is None else head.loss,
                          metrics=head.metrics)
        return model

    def _head(self, X: np.ndarray, y, first: bool, **kwargs) -> tuple[np.ndarray, _Head]:
        raise NotImplementedError

    def _fit(self, X, y, epochs: int, first: bool, **kwargs) -> "_FastoptEstimator":
        """``epochs`` epochs on X, y, of a new network (``first``) or ``model_``;
        the fitted attributes are set only once training has succeeded (a first
        call starts them afresh)."""
        X, head = self._head(X, y, first, **kwargs)
        model = self._new_model(X.shape[1], head, X.dtype) if first else self.model_
        history = model.fit(X, head.targets, epochs=epochs, batch_size=self.batch_size, verbose=self.verbose,
                            **head.fit_args)
        logs = {} if first else self.history_
        for key, values in history.history.items():
            logs.setdefault(key, []).extend(values)
        self.model_, self.history_ = model, logs
        self.loss_curve_ = list(logs.get("loss", []))
        if first:
            for name, value in head.attrs.items():
                setattr(self, name, value)
        return self


@_shared_doc
class FastoptRegressor(RegressorMixin, _FastoptEstimator):
    """A fully connected network regressor trained by fastopt (mean squared error).

    Parameters
    ----------{parameters}
        The output layer has one unit per target column, without activation.

    {attributes}
    """

    def _head(self, X, y, first: bool) -> tuple[np.ndarray, _Head]:
        X, y = _validate(self, X, y, reset=first, dtype=_DTYPES, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=X.dtype)
        return X, _Head(1 if y.ndim == 1 else y.shape[1], y, attrs={"_y_ndim": y.ndim})

    # -- scikit-learn's API --------------------------------------------------------------------------
    def fit(self, X, y) -> "FastoptRegressor":
        """Train a new network for ``epochs`` epochs on ``X`` (n_samples, n_features)
        and ``y`` (n_samples,) or (n_samples, n_targets)."""
        return self._fit(X, y, check_int(self.epochs, "epochs", low=1), first=True)

    def partial_fit(self, X, y) -> "FastoptRegressor":
        """One more epoch on ``X, y``, continuing the network and its optimizer
        state (a first call builds the network, as ``fit`` does)."""
        return self._fit(X, y, 1, first=not hasattr(self, "model_"))

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


@_shared_doc
class FastoptClassifier(ClassifierMixin, _FastoptEstimator):
    """A fully connected network classifier trained by fastopt, ``MLPClassifier``'s
    behaviour: labels of any type (``classes_``, sorted as ``np.unique`` sorts
    them), ``predict`` gives labels, ``predict_proba`` one column per class
    (two for a binary problem), ``score`` the accuracy.

    Parameters
    ----------{parameters}
        The loss chooses the output layer and the targets:

        - ``None``: ``"binary_crossentropy"`` for two classes, else
          ``"sparse_categorical_crossentropy"``;
        - ``"sparse_categorical_crossentropy"``: a softmax unit per class, class
          indices as targets;
        - ``"binary_crossentropy"``: one sigmoid unit for two classes, else a
          sigmoid unit per class against one-hot targets (one-vs-rest);
        - ``"categorical_crossentropy"``: a softmax unit per class, one-hot targets;
        - a regression loss: as binary cross-entropy for two classes, else as
          categorical cross-entropy.

        A ``model`` builder gets that ``n_outputs``; its network must output
        probabilities.
    class_weight : None, ``"balanced"`` (``n_samples / (n_classes * count(c))``,
        as scikit-learn), or a dict label -> weight (1 for a label left out):
        each sample's loss weighs its class' weight (``fit``'s ``class_weight``).

    {attributes}
    ``classes_`` holds the labels, and ``history_`` the training ``accuracy`` too.

    ``predict_proba`` is the network's output, as two columns ``1 - p, p`` for one
    sigmoid output; with binary cross-entropy on several outputs (one-vs-rest)
    each row is divided by its sum.
    """

    def __init__(self, hidden_layer_sizes: Sequence[int] = (100,), activation: str = "relu",
                 optimizer: Union[str, Any] = "adam", learning_rate: Any = 0.001, batch_size: int = 32,
                 epochs: int = 200, loss: Any = None, random_state: Any = None,
                 verbose: Union[int, str] = 0, model: Optional[Callable[..., Any]] = None,
                 class_weight: Union[None, str, dict] = None):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, optimizer=optimizer,
                         learning_rate=learning_rate, batch_size=batch_size, epochs=epochs, loss=loss,
                         random_state=random_state, verbose=verbose, model=model)
        self.class_weight = class_weight

    def _head(self, X, y, first: bool, classes=None, partial: bool = False) -> tuple[np.ndarray, _Head]:
        X, y = _validate(self, X, y, reset=first, dtype=_DTYPES)
        check_classification_targets(y)
        if first:
            labels = np.unique(y) if classes is None else unique_labels(classes)
            if len(labels) < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 classes; y has 1 class "
                                 f"({labels[0]!r})" if len(labels) else "classes is empty")
        else:
            labels = self.classes_
        known = np.isin(y, labels)
        if not known.all():
            raise ValueError(f"y contains labels not in classes {labels.tolist()}: "
                             f"{np.unique(y[~known]).tolist()}")
        index = np.searchsorted(labels, y)
        k = len(labels)
        if first:
            loss = self.loss if self.loss is not None else \
                "binary_crossentropy" if k == 2 else "sparse_categorical_crossentropy"
            kind = _losses.as_loss(loss).kind
            if kind == "sparse_categorical_crossentropy":
                units, activation = k, "softmax"
            elif k == 2 and kind != "categorical_crossentropy":
                units, activation = 1, "sigmoid"
            else:
                units, activation = k, "sigmoid" if kind == "binary_crossentropy" else "softmax"
            one_hot = units > 1 and kind != "sparse_categorical_crossentropy"
        else:
            loss = activation = units = None  # the network exists
            one_hot = self._one_hot
        targets = np.eye(k, dtype=X.dtype)[index] if one_hot else index.astype(X.dtype)
        fit_args = {}
        if self.class_weight is not None:
            if isinstance(self.class_weight, str) and partial:
                raise ValueError("class_weight='balanced' needs the whole training set: partial_fit takes a "
                                 "dict (compute_class_weight('balanced', classes=classes, y=y))")
            if not (isinstance(self.class_weight, dict) or
                    (isinstance(self.class_weight, str) and self.class_weight == "balanced")):
                raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {self.class_weight!r}")
            weights = compute_class_weight(self.class_weight, classes=labels, y=y)
            fit_args["class_weight"] = {i: float(w) for i, w in enumerate(weights)}
        return X, _Head(units, targets, activation, loss, ["accuracy"], fit_args,
                        {"classes_": labels, "_one_hot": one_hot})

    # -- scikit-learn's API --------------------------------------------------------------------------
    def fit(self, X, y) -> "FastoptClassifier":
        """Train a new network for ``epochs`` epochs on ``X`` (n_samples, n_features)
        and the labels ``y`` (n_samples,)."""
        return self._fit(X, y, check_int(self.epochs, "epochs", low=1), first=True)

    def partial_fit(self, X, y, classes=None) -> "FastoptClassifier":
        """One more epoch on ``X, y``, continuing the network and its optimizer
        state.  The first call builds the network and needs ``classes``, every
        label of the problem (``y`` may show only some); later calls may repeat it."""
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if not first and classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"classes={classes!r} is not the same as on the first call to partial_fit, "
                             f"was: {self.classes_!r}")
        return self._fit(X, y, 1, first, classes=classes, partial=True)

    def predict_proba(self, X) -> np.ndarray:
        """The probability of each class, shape (n_samples, n_classes), columns in
        ``classes_`` order."""
        check_is_fitted(self)
        X = _validate(self, X, reset=False, dtype=_DTYPES)
        p = self.model_.predict(X)
        if p.shape[1] == 1:
            return np.hstack([1 - p, p])
        if _losses.as_loss(self.model_.loss).kind != "binary_crossentropy":
            return p  # a softmax output
        total = p.sum(axis=1, keepdims=True)  # one sigmoid per class: one-vs-rest
        return np.where(total > 0, p / np.where(total > 0, total, 1), 1 / p.shape[1])

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X) -> np.ndarray:
        """The log-odds ``log(p_1) - log(p_0)`` of ``classes_[1]``, shape (n_samples,),
        for two classes (positive: ``predict`` gives ``classes_[1]``); the
        log-probabilities, shape (n_samples, n_classes), for more."""
        log_p = self.predict_log_proba(X)
        return log_p[:, 1] - log_p[:, 0] if log_p.shape[1] == 2 else log_p

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample (the first on a tie), a label of ``classes_``."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
