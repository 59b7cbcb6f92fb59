"""fo.sklearn.FastoptClassifier: scikit-learn's estimator checks, the same
training as fastopt's own fit (softmax with sparse cross-entropy, one sigmoid
with binary cross-entropy), any labels, class weights, partial_fit and
pickling, and the tools that drive it (GridSearchCV with n_jobs=2,
cross_val_score, Pipeline) on scikit-learn's iris, breast cancer and digits."""
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_iris  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_class_weight  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastopt as fo  # noqa: E402
from fastopt.sklearn import FastoptClassifier  # noqa: E402


def small(**params):
    return FastoptClassifier(**{"hidden_layer_sizes": (8,), "epochs": 20, "learning_rate": 0.01,
                                "random_state": 0, **params})


def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def cancer(n=200):
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X[:n]), y[:n]


# Every check of scikit-learn's suite that applies passes with the default
# parameters (200 epochs reach the accuracy thresholds of check_classifiers_train):
# none is expected to fail.  Two skip themselves here: the pandas checks when
# pandas is not installed, check_array_api_input unless SCIPY_ARRAY_API is set
# (fastopt takes NumPy arrays; other array libraries are converted by check_array).
@parametrize_with_checks([FastoptClassifier()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def direct(X, y, seed, epochs, units, activation, loss, hidden=(8,), batch_size=32, **fit_args):
    """The network FastoptClassifier should train, written with fastopt's own API."""
    layers = [fo.Dense(hidden[0], activation="relu", input_shape=(X.shape[1],))]
    layers += [fo.Dense(u, activation="relu") for u in hidden[1:]] + [fo.Dense(units, activation=activation)]
    model = fo.Sequential(layers, dtype="float64", seed=seed)
    model.compile(optimizer=fo.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0, **fit_args)
    return model


def test_multiclass_is_fastopts_softmax_fit_with_any_labels():
    X, y = iris()
    names = np.array(["setosa", "versicolor", "virginica"])
    est = small(hidden_layer_sizes=(8, 5), random_state=3, batch_size=16).fit(X, names[y])
    model = direct(X, y.astype(float), 3, 20, 3, "softmax", "sparse_categorical_crossentropy",
                   hidden=(8, 5), batch_size=16)
    proba = est.predict_proba(X)
    assert np.array_equal(proba, model.predict(X))
    assert list(est.classes_) == list(names) and est.n_features_in_ == 4
    assert np.array_equal(est.predict(X), names[np.argmax(proba, axis=1)])
    assert est.score(X, names[y]) == np.mean(est.predict(X) == names[y]) > 0.8
    assert np.array_equal(est.decision_function(X), np.log(proba))
    assert len(est.loss_curve_) == 20 and est.history_["accuracy"] == model.history.history["accuracy"]
    # labels are sorted as np.unique sorts them, whatever their order in y
    shuffled = small(random_state=3).fit(X, np.array([2, -1, 7])[y])
    assert list(shuffled.classes_) == [-1, 2, 7]
    assert set(np.unique(shuffled.predict(X))) <= {-1, 2, 7}


def test_binary_is_one_sigmoid_with_binary_cross_entropy():
    X, y = cancer()
    labels = np.array([False, True])[y]
    est = small(random_state=5).fit(X, labels)
    model = direct(X, y.astype(float), 5, 20, 1, "sigmoid", "binary_crossentropy")
    p = model.predict(X)[:, 0]
    proba = est.predict_proba(X)
    assert est.model_.layers[-1].units == 1 and proba.shape == (200, 2)
    assert np.array_equal(proba[:, 1], p) and np.array_equal(proba[:, 0], 1 - p)
    assert np.array_equal(est.predict(X), p > 0.5)
    assert est.score(X, labels) > 0.9
    assert np.array_equal(est.predict_log_proba(X), np.log(proba))
    logit = est.decision_function(X)
    assert logit.shape == (200,) and np.array_equal(logit, np.log(p) - np.log(1 - p))
    assert np.array_equal(logit > 0, est.predict(X))


def test_the_loss_chooses_the_output_and_the_targets():
    X, y = iris()
    onehot = np.eye(3)[y]
    cat = small(loss="categorical_crossentropy").fit(X, y)
    model = direct(X, onehot, 0, 20, 3, "softmax", "categorical_crossentropy")
    assert np.array_equal(cat.predict_proba(X), model.predict(X))
    ovr = small(loss="binary_crossentropy").fit(X, y)  # one sigmoid per class, one-vs-rest
    model = direct(X, onehot, 0, 20, 3, "sigmoid", "binary_crossentropy")
    p = model.predict(X)
    assert np.allclose(ovr.predict_proba(X), p / p.sum(axis=1, keepdims=True), rtol=1e-15, atol=0)
    assert np.allclose(ovr.predict_proba(X).sum(axis=1), 1)
    two = small(loss="sparse_categorical_crossentropy").fit(*cancer())  # two classes, two softmax units
    assert two.model_.layers[-1].units == 2 and two.predict_proba(cancer()[0]).shape == (200, 2)
    mse = small(loss="mse").fit(X, y)  # a regression loss on softmax probabilities
    assert np.array_equal(mse.predict_proba(X), direct(X, onehot, 0, 20, 3, "softmax", "mse").predict(X))
    binary = small(loss="mse").fit(*cancer())
    assert binary.model_.layers[-1].units == 1 and binary.model_.layers[-1].activation == "sigmoid"
    obj = small(loss=fo.losses.CategoricalCrossentropy(label_smoothing=0.1)).fit(X, y)
    assert obj.model_.layers[-1].units == 3 and obj.score(X, y) > 0.8


def test_float32_and_a_model_builder():
    X, y = iris()
    est = small().fit(X.astype(np.float32), y)
    assert est.model_.dtype == np.float32 and est.predict_proba(X).dtype == np.float32
    built = []

    def builder(n_features, n_outputs, seed):
        built.append((n_features, n_outputs, seed))
        return fo.Sequential([fo.Dense(n_outputs, activation="softmax", input_shape=(n_features,))],
                             dtype="float64", seed=seed)

    est = small(model=builder, optimizer="sgd", learning_rate=0.1).fit(X, y)
    assert built == [(4, 3, 0)] and len(est.model_.layers) == 1
    assert est.model_.optimizer.learning_rate == 0.1 and est.score(X, y) > 0.7


def test_class_weight_balanced_and_a_dict_of_labels():
    X, y = cancer()
    names = np.array(["benign?", "malignant?"])[y]
    balanced = small(class_weight="balanced", random_state=1).fit(X, names)
    weights = compute_class_weight("balanced", classes=np.unique(y), y=y)
    model = direct(X, y.astype(float), 1, 20, 1, "sigmoid", "binary_crossentropy",
                   class_weight={0: weights[0], 1: weights[1]})
    assert np.array_equal(balanced.predict_proba(X)[:, 1], model.predict(X)[:, 0])
    assert not np.allclose(weights, 1)
    as_dict = small(class_weight={"malignant?": weights[1], "benign?": weights[0]}, random_state=1).fit(X, names)
    assert np.array_equal(as_dict.predict_proba(X), balanced.predict_proba(X))
    heavy = small(class_weight={"malignant?": 20.0}, random_state=1).fit(X, names)  # the other class weighs 1
    plain = small(random_state=1).fit(X, names)
    assert np.mean(heavy.predict(X) == "malignant?") > np.mean(plain.predict(X) == "malignant?")


def test_partial_fit_needs_the_classes_first_and_continues():
    X, y = iris()
    est = small(random_state=4, batch_size=16)
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        est.partial_fit(X, y)
    assert not hasattr(est, "model_") and not hasattr(est, "classes_")
    first = y < 2  # the first batch shows two of the three classes
    est.partial_fit(X[first], y[first], classes=[0, 1, 2])
    assert list(est.classes_) == [0, 1, 2] and est.predict_proba(X).shape == (150, 3)
    est.partial_fit(X, y)
    est.partial_fit(X, y, classes=np.array([2, 1, 0]))  # the same classes again
    model = direct(X[first], y[first].astype(float), 4, 1, 3, "softmax", "sparse_categorical_crossentropy",
                   batch_size=16)
    model.fit(X, y.astype(float), epochs=2, batch_size=16, verbose=0)
    assert np.array_equal(est.predict_proba(X), model.predict(X))
    assert len(est.loss_curve_) == 3
    before = est.predict_proba(X)
    iterations = est.model_.optimizer.iterations
    for args, kwargs, match in [((X, y), {"classes": [0, 1]}, "is not the same as on the first call"),
                                ((X, np.where(y == 2, 5, y)), {}, r"y contains labels not in classes .*\[5\]"),
                                ((X[:, :2], y), {}, "X has 2 features, but FastoptClassifier is expecting 4")]:
        with pytest.raises(ValueError, match=match):
            est.partial_fit(*args, **kwargs)
    assert np.array_equal(est.predict_proba(X), before) and est.model_.optimizer.iterations == iterations
    with pytest.raises(ValueError, match="class_weight='balanced' needs the whole training set"):
        small(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    weighted = small(class_weight={2: 3.0}).partial_fit(X, y, classes=[0, 1, 2])
    assert weighted.model_.optimizer.iterations == 5


def test_a_fitted_classifier_pickles_and_resumes_bit_for_bit():
    X, y = iris()
    labels = np.array(["a", "b", "c"])[y]
    est = small(random_state=2).fit(X, labels)
    copy = pickle.loads(pickle.dumps(est))
    assert np.array_equal(copy.predict_proba(X), est.predict_proba(X))
    assert np.array_equal(copy.classes_, est.classes_) and copy.get_params() == est.get_params()
    est.partial_fit(X, labels)
    copy.partial_fit(X, labels)  # same weights, optimizer state and shuffling stream
    assert np.array_equal(copy.predict_proba(X), est.predict_proba(X))
    assert copy.loss_curve_ == est.loss_curve_


def test_params_clone_and_bad_values():
    est = small(class_weight="balanced")
    assert est.get_params()["class_weight"] == "balanced" and est.get_params()["loss"] is None
    assert clone(est).get_params() == est.get_params()
    X, y = iris()
    for params, data, match in [({}, (X, np.zeros(150)), "needs at least 2 classes; y has 1 class"),
                                ({}, (X, X[:, 0]), "Unknown label type"),
                                ({"class_weight": "even"}, (X, y), "class_weight must be None, 'balanced' or a dict"),
                                ({"class_weight": {7: 2.0}}, (X, y), "not in class_weight"),
                                ({"loss": "hinge"}, (X, y), "unknown loss 'hinge'"),
                                ({"epochs": 0}, (X, y), "epochs must be >= 1"),
                                ({"activation": "no_such_activation"}, (X, y), "unknown activation")]:
        with pytest.raises(ValueError, match=match):
            small(**params).fit(*data)


def test_a_failed_fit_keeps_the_fitted_network():
    X, y = iris()
    est = small().fit(X, y)
    before, model = est.predict_proba(X), est.model_
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        est.set_params(batch_size=0).fit(X, np.array(["x", "y", "z"])[y])
    assert est.model_ is model and list(est.classes_) == [0, 1, 2]
    assert np.array_equal(est.predict_proba(X), before)


def test_pipeline_with_a_scaler_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:200], y[:200]
    pipe = make_pipeline(StandardScaler(), small()).fit(X, y)
    scaler = StandardScaler().fit(X)
    alone = small().fit(scaler.transform(X), y)
    assert np.array_equal(pipe.predict_proba(X), alone.predict_proba(scaler.transform(X)))
    assert pipe.score(X, y) > 0.9


def test_cross_val_score_on_iris_is_a_loop_of_fits():
    X, y = iris()
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(small(), X, y, cv=folds)
    by_hand = [small().fit(X[tr], y[tr]).score(X[te], y[te]) for tr, te in folds.split(X, y)]
    assert np.array_equal(scores, by_hand)
    assert np.all(scores > 0.7)


def test_grid_search_cv_on_digits_two_processes_match_one():
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    grid = {"fastoptclassifier__learning_rate": [0.0003, 0.01], "fastoptclassifier__hidden_layer_sizes": [(8,), (16,)]}
    pipe = make_pipeline(StandardScaler(), small(epochs=10))
    one = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    two = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    assert np.array_equal(one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"])
    assert one.best_params_ == two.best_params_
    assert one.best_params_["fastoptclassifier__learning_rate"] == 0.01  # 10 epochs: the larger rate learns
    assert np.array_equal(two.predict(X), one.predict(X)) and two.best_score_ > 0.8
