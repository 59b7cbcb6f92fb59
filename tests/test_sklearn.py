"""fo.sklearn.FastoptRegressor: scikit-learn's estimator checks, the same
training as fastopt's own fit, and the tools that drive it (GridSearchCV with
n_jobs=2, cross_val_score, Pipeline); pickling and partial_fit."""
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastopt as fo  # noqa: E402
from fastopt.sklearn import FastoptRegressor  # noqa: E402

from parallel_builds import data  # noqa: E402


def small(**params):
    return FastoptRegressor(**{"hidden_layer_sizes": (8,), "epochs": 30, "learning_rate": 0.01,
                               "random_state": 0, **params})


# Every check of scikit-learn's suite that applies passes: none is expected to fail.
# Two skip themselves here: check_regressor_data_not_an_array when pandas is not
# installed, check_array_api_input unless SCIPY_ARRAY_API is set (fastopt takes
# NumPy arrays; other array libraries are converted by check_array like any list).
@parametrize_with_checks([FastoptRegressor()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def direct(X, y, seed, epochs, hidden=(8,), optimizer=None, batch_size=32):
    """The network FastoptRegressor should train, written with fastopt's own API."""
    layers = [fo.Dense(hidden[0], activation="relu", input_shape=(X.shape[1],))]
    layers += [fo.Dense(u, activation="relu") for u in hidden[1:]] + [fo.Dense(1)]
    model = fo.Sequential(layers, dtype="float64", seed=seed)
    model.compile(optimizer=optimizer or fo.optimizers.Adam(0.01), loss="mean_squared_error")
    model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def test_fit_is_fastopts_fit():
    X, y = data()
    est = small(hidden_layer_sizes=(8, 5), random_state=7, batch_size=10).fit(X, y)
    model = direct(X, y, 7, 30, hidden=(8, 5), batch_size=10)
    assert np.array_equal(est.predict(X), model.predict(X).ravel())
    assert est.predict(X).shape == (120,)
    assert len(est.loss_curve_) == 30 and est.loss_curve_ == est.history_["loss"]
    assert est.n_features_in_ == 3
    assert est.score(X, y) == pytest.approx(1 - np.sum((y - est.predict(X)) ** 2) / np.sum((y - y.mean()) ** 2))


def test_optimizer_forms_and_learning_rate():
    X, y = data()
    template = fo.optimizers.SGD(0.5, momentum=0.9)
    a = small(optimizer=template, learning_rate=0.01).fit(X, y)
    b = small(optimizer="sgd", learning_rate=0.01).fit(X, y)
    c = small(optimizer=fo.optimizers.serialize(fo.optimizers.SGD(0.3, momentum=0.9)), learning_rate=0.01).fit(X, y)
    model = direct(X, y, 0, 30, optimizer=fo.optimizers.SGD(0.01, momentum=0.9))
    assert np.array_equal(a.predict(X), model.predict(X).ravel())  # learning_rate replaces the object's
    assert np.array_equal(c.predict(X), a.predict(X))
    assert not np.array_equal(b.predict(X), a.predict(X))
    assert template.iterations == 0 and template.learning_rate == 0.5  # never stepped or changed


def test_multioutput_float32_and_a_model_builder():
    X, y = data()
    Y = np.column_stack([y, -2 * y])
    est = small().fit(X.astype(np.float32), Y)
    assert est.model_.dtype == np.float32 and est.predict(X).shape == (120, 2)
    built = []

    def builder(n_features, n_outputs, seed):
        built.append((n_features, n_outputs, seed))
        return fo.Sequential([fo.Dense(n_outputs, input_shape=(n_features,))], dtype="float64", seed=seed)

    est = small(model=builder, optimizer="sgd", learning_rate=0.05).fit(X, Y)
    assert built == [(3, 2, 0)] and len(est.model_.layers) == 1
    assert est.model_.optimizer.learning_rate == 0.05


def test_partial_fit_continues_the_network_and_its_optimizer():
    X, y = data()
    est = small(random_state=4, batch_size=16)
    for _ in range(3):
        est.partial_fit(X, y)
    model = direct(X, y, 4, 1, batch_size=16)
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    assert np.array_equal(est.predict(X), model.predict(X).ravel())
    assert len(est.loss_curve_) == 3 and est.model_.optimizer.iterations == 3 * 8
    with pytest.raises(ValueError, match="X has 2 features, but FastoptRegressor is expecting 3"):
        est.partial_fit(X[:, :2], y)


def test_a_fitted_estimator_pickles_and_resumes_bit_for_bit():
    X, y = data()
    est = small(random_state=2).fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    assert np.array_equal(copy.predict(X), est.predict(X))
    assert copy.get_params()["epochs"] == 30
    est.partial_fit(X, y)
    copy.partial_fit(X, y)  # same weights, optimizer state and shuffling stream
    assert np.array_equal(copy.predict(X), est.predict(X))
    assert copy.loss_curve_ == est.loss_curve_


def test_params_clone_and_bad_values():
    est = small(learning_rate=0.02)
    assert est.get_params()["learning_rate"] == 0.02
    assert est.set_params(epochs=5) is est and est.epochs == 5
    assert clone(est).get_params() == est.get_params()
    X, y = data()
    for params, error, match in [({"random_state": -1}, ValueError, "random_state must be >= 0"),
                                 ({"epochs": 0}, ValueError, "epochs must be >= 1"),
                                 ({"hidden_layer_sizes": (0,)}, ValueError, r"hidden_layer_sizes\[\] must be >= 1"),
                                 ({"activation": "no_such_activation"}, ValueError, "unknown activation"),
                                 ({"optimizer": "nadam"}, ValueError, "unknown optimizer")]:
        with pytest.raises(error, match=match):
            small(**params).fit(X, y)


def test_pipeline_with_a_scaler():
    X, y = data()
    X = X * [1.0, 100.0, 0.01] + [0.0, 50.0, -3.0]
    pipe = make_pipeline(StandardScaler(), small()).fit(X, y)
    scaler = StandardScaler().fit(X)
    alone = small().fit(scaler.transform(X), y)
    assert np.array_equal(pipe.predict(X), alone.predict(scaler.transform(X)))


def test_cross_val_score_is_a_loop_of_fits():
    X, y = data()
    folds = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(small(), X, y, cv=folds)
    by_hand = [small().fit(X[tr], y[tr]).score(X[te], y[te]) for tr, te in folds.split(X)]
    assert np.array_equal(scores, by_hand)
    assert np.all(scores > 0.5)  # a linear target: the network fits it


def test_grid_search_cv_on_two_processes_matches_one():
    X, y = data()
    grid = {"fastoptregressor__learning_rate": [0.001, 0.03], "fastoptregressor__batch_size": [8, 32]}
    pipe = make_pipeline(StandardScaler(), small())
    one = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    two = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    assert np.array_equal(one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"])
    assert one.best_params_ == two.best_params_
    assert one.best_params_["fastoptregressor__learning_rate"] == 0.03  # 30 epochs: the larger rate fits better
    assert np.array_equal(two.predict(X), one.predict(X))


def test_a_failed_fit_keeps_the_fitted_network():
    X, y = data()
    est = small().fit(X, y)
    before = est.predict(X)
    model = est.model_
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        est.set_params(batch_size=0).fit(X, y)
    assert est.model_ is model and np.array_equal(est.predict(X), before)
