"""The metric kernel (csrc/loss_impl.h fo_metrics_update: every metric's sums
in one pass over the rows) against its twin, the fo.metrics objects against
Keras' documented examples and scikit-learn, and bad input refused with
nothing changed."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastopt as fo
from fastopt import _core
from fastopt import reference as ref

M = fo.metrics.CODES
DENSE_Y = [k for k in M if k != "sparse_categorical_accuracy"]


def make(rng, B, C, dtype, kinds):
    p = rng.standard_normal((B, C)).astype(dtype)
    if any(k in ("accuracy", "binary_accuracy") for k in kinds):
        y = rng.integers(0, 2, (B, C)).astype(dtype)
        p = np.where(rng.random((B, C)) < 0.3, y, p).astype(dtype)  # some exact hits for accuracy
    elif any(k in ("categorical_accuracy", "top_k_categorical_accuracy") for k in kinds):
        y = np.eye(C, dtype=dtype)[rng.integers(0, C, B)]
    else:
        y = rng.standard_normal((B, C)).astype(dtype)
    return y, p


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(DENSE_Y), min_size=1, max_size=4), B=st.integers(0, 12),
       C=st.integers(1, 6), dtype=st.sampled_from([np.float32, np.float64]), weighted=st.booleans(),
       k=st.integers(1, 7), thr=st.sampled_from([0.5, 0.0, 0.9]), seed=st.integers(0, 2 ** 31 - 1))
def test_one_pass_matches_twin_and_separate_calls(kinds, B, C, dtype, weighted, k, thr, seed):
    rng = np.random.default_rng(seed)
    y, p = make(rng, B, C, dtype, kinds)
    w = rng.uniform(0, 2, B).astype(dtype) if weighted else None
    specs = [(M[name], thr, k) for name in kinds]
    sizes = [ref.metric_acc_size(name, C) for name in kinds]
    start = rng.standard_normal(sum(sizes))
    acc = start.copy()
    _core.metrics_update(acc, specs, y, p, w)
    want = ref.metrics_update(start, specs, y, p, w)
    np.testing.assert_allclose(acc, want, rtol=1e-12, atol=1e-12)
    off = 0
    for spec, size in zip(specs, sizes):  # one metric at a time: the same sums
        one = start[off:off + size].copy()
        _core.metrics_update(one, [spec], y, p, w)
        np.testing.assert_array_equal(one, acc[off:off + size])
        off += size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_accuracy_matches_twin(dtype):
    rng = np.random.default_rng(2)
    p = rng.standard_normal((30, 4)).astype(dtype)
    y = rng.integers(0, 4, 30).astype(dtype)
    for labels in (y, y.reshape(-1, 1)):
        acc = np.zeros(2)
        _core.metrics_update(acc, [(M["sparse_categorical_accuracy"], 0.5, 1)], labels, p)
        np.testing.assert_array_equal(acc, ref.metrics_update(np.zeros(2), [(6, 0.5, 1)], labels, p))
        assert acc[0] == np.sum(np.argmax(p, 1) == y)


# -- Keras' documented examples (keras/src/metrics/*_metrics.py docstrings) --------------

def test_keras_examples():
    m = fo.metrics.Accuracy()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]], sample_weight=[1, 1, 0, 0])
    assert m.result() == pytest.approx(0.5)

    m = fo.metrics.BinaryAccuracy()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(0.5)

    for m in (fo.metrics.CategoricalAccuracy(), fo.metrics.TopKCategoricalAccuracy(k=1)):
        m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        assert m.result() == pytest.approx(0.5)
        m.reset_state()
        m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3])
        assert m.result() == pytest.approx(0.3)

    m = fo.metrics.SparseCategoricalAccuracy()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)

    m = fo.metrics.RootMeanSquaredError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]], sample_weight=[1, 0])
    assert m.result() == pytest.approx(0.70710677)

    m = fo.metrics.R2Score()
    m.update_state(np.array([[1], [4], [3]], np.float32), np.array([[2], [4], [4]], np.float32))
    assert m.result() == pytest.approx(0.57142854)


def test_batches_accumulate_like_one_batch():
    rng = np.random.default_rng(8)
    y, p = rng.standard_normal((40, 3)), rng.standard_normal((40, 3))
    w = rng.uniform(0, 1, 40)
    for cls in (fo.metrics.MeanSquaredError, fo.metrics.MeanAbsoluteError, fo.metrics.RootMeanSquaredError,
                fo.metrics.R2Score):
        whole, parts = cls(), cls()
        whole.update_state(y, p, w)
        for s in range(0, 40, 7):
            parts.update_state(y[s:s + 7], p[s:s + 7], w[s:s + 7])
        assert parts.result() == pytest.approx(whole.result(), rel=1e-12)
    assert fo.metrics.MeanSquaredError().result() == 0.0  # nothing seen yet


def test_match_scikit_learn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(9)
    y, p = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    w = rng.uniform(0, 2, 50)
    assert fo.metrics.mean_squared_error(y, p, w) == pytest.approx(skm.mean_squared_error(y, p, sample_weight=w))
    assert fo.metrics.mean_absolute_error(y, p, w) == pytest.approx(skm.mean_absolute_error(y, p, sample_weight=w))
    assert fo.metrics.r2_score(y, p) == pytest.approx(skm.r2_score(y, p))
    assert fo.metrics.r2_score(y, p, w) == pytest.approx(skm.r2_score(y, p, sample_weight=w))
    assert fo.metrics.root_mean_squared_error(y[:, 0], p[:, :1]) == pytest.approx(
        np.sqrt(skm.mean_squared_error(y[:, 0], p[:, 0])))
    r2 = fo.metrics.R2Score(class_aggregation="variance_weighted_average")
    assert r2(y, p) == pytest.approx(skm.r2_score(y, p, multioutput="variance_weighted"))
    np.testing.assert_allclose(fo.metrics.R2Score(class_aggregation=None)(y, p),
                               skm.r2_score(y, p, multioutput="raw_values"))
    labels = rng.integers(0, 5, 50)
    scores = rng.standard_normal((50, 5))
    assert fo.metrics.sparse_categorical_accuracy(labels, scores, w) == pytest.approx(
        skm.accuracy_score(labels, scores.argmax(1), sample_weight=w))
    assert fo.metrics.categorical_accuracy(np.eye(5)[labels], scores) == pytest.approx(
        skm.accuracy_score(labels, scores.argmax(1)))
    for k in (1, 2, 4):
        assert fo.metrics.top_k_categorical_accuracy(np.eye(5)[labels], scores, k=k) == pytest.approx(
            skm.top_k_accuracy_score(labels, scores, k=k, labels=range(5)))
    binary = rng.integers(0, 2, 50)
    prob = rng.random(50)
    assert fo.metrics.binary_accuracy(binary, prob) == pytest.approx(skm.accuracy_score(binary, prob > 0.5))


def test_top_k_ties_count_in_and_k_beyond_classes():
    y = np.array([[0, 1, 0, 0]])
    tied = np.array([[0.5, 0.5, 0.5, 0.1]])
    assert fo.metrics.top_k_categorical_accuracy(y, tied, k=1) == 1.0
    assert fo.metrics.top_k_categorical_accuracy(y, np.array([[0.9, 0.1, 0.5, 0.2]]), k=2) == 0.0
    assert fo.metrics.top_k_categorical_accuracy(y, np.array([[0.9, 0.1, 0.5, 0.2]]), k=9) == 1.0


def test_adjusted_r2_and_its_fallbacks():
    rng = np.random.default_rng(10)
    y, p = rng.standard_normal((20, 1)), rng.standard_normal((20, 1))
    plain = fo.metrics.R2Score()(y, p)
    adj = fo.metrics.R2Score(num_regressors=3)(y, p)
    assert adj == pytest.approx(1 - (1 - plain) * 19 / 16)
    with pytest.warns(UserWarning, match="More independent predictors"):
        assert fo.metrics.R2Score(num_regressors=30)(y, p) == pytest.approx(plain)
    with pytest.warns(UserWarning, match="Division by zero"):
        assert fo.metrics.R2Score(num_regressors=19)(y, p) == pytest.approx(plain)


def test_get_names_and_configs():
    assert isinstance(fo.metrics.get("mse"), fo.metrics.MeanSquaredError)
    assert fo.metrics.get("mse").name == "mse"
    assert isinstance(fo.metrics.get("SparseCategoricalAccuracy"), fo.metrics.SparseCategoricalAccuracy)
    assert isinstance(fo.metrics.get(fo.metrics.r2_score), fo.metrics.R2Score)
    m = fo.metrics.TopKCategoricalAccuracy(k=3, name="top3")
    again = fo.metrics.get({"class_name": "TopKCategoricalAccuracy", "config": m.get_config()})
    assert again.get_config() == m.get_config() and again.c_spec == (M["top_k_categorical_accuracy"], 0.5, 3)
    assert isinstance(fo.metrics.accuracy_for("accuracy", 1, 1), fo.metrics.BinaryAccuracy)
    assert isinstance(fo.metrics.accuracy_for("accuracy", 1, 10), fo.metrics.SparseCategoricalAccuracy)
    assert isinstance(fo.metrics.accuracy_for("acc", 10, 10), fo.metrics.CategoricalAccuracy)
    with pytest.raises(ValueError, match="auc"):
        fo.metrics.get("auc")


# -- bad input ---------------------------------------------------------------------------

def test_bad_input_changes_no_state():
    m = fo.metrics.CategoricalAccuracy()
    m.update_state(np.eye(3), np.eye(3))
    before = m._acc.copy()
    for args, exc, word in [
        ((np.eye(3), np.eye(3)[:2]), ValueError, "y_true"),
        ((np.eye(3), np.eye(3), [1.0, -1.0, 1.0]), ValueError, "sample_weight"),
        ((np.eye(3), np.eye(3), [1.0, np.nan, 1.0]), ValueError, "sample_weight"),
        ((np.eye(3), np.array([[0.5, np.nan, 0.1]] * 3)), ValueError, "y_pred"),
        ((np.array([["a"] * 3] * 3), np.eye(3)), TypeError, "y_true"),
    ]:
        with pytest.raises(exc, match=word):
            m.update_state(*args)
        np.testing.assert_array_equal(m._acc, before)
    r2 = fo.metrics.R2Score()
    r2.update_state(np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="outputs"):
        r2.update_state(np.ones((3, 3)), np.zeros((3, 3)))


def test_kernel_bad_input_names_the_argument_and_changes_nothing():
    p, y = np.eye(3), np.eye(3)
    acc = np.full(2, 5.0)
    cases = [
        (lambda: _core.metrics_update(acc, [(99, 0.5, 1)], y, p), ValueError, "kind"),
        (lambda: _core.metrics_update(acc, [(3, "x", 1)], y, p), TypeError, "threshold"),
        (lambda: _core.metrics_update(acc, [(3, np.inf, 1)], y, p), ValueError, "threshold"),
        (lambda: _core.metrics_update(acc, [(7, 0.5, 0)], y, p), ValueError, "k"),
        (lambda: _core.metrics_update(acc, [3], y, p), TypeError, "metrics"),
        (lambda: _core.metrics_update(acc, [(6, 0.5, 1)], y, p), ValueError, "y_true"),
        (lambda: _core.metrics_update(acc, [(5, 0.5, 1)], np.zeros(3), p), ValueError, "y_true"),
        (lambda: _core.metrics_update(acc, [(3, 0.5, 1), (3, 0.5, 1)], y, p), ValueError, "acc"),
        (lambda: _core.metrics_update(acc.astype(np.float32), [(3, 0.5, 1)], y, p), TypeError, "acc"),
        (lambda: _core.metrics_update(acc, [(3, 0.5, 1)], y, p, -np.ones(3)), ValueError, "sample_weight"),
        (lambda: _core.metrics_update(p.reshape(-1)[:2], [(3, 0.5, 1)], y, p), ValueError, "shares memory"),
    ]
    for call, exc, word in cases:
        with pytest.raises(exc, match=word):
            call()
        assert (acc == 5.0).all()


def test_functions_refuse_empty_input():
    with pytest.raises(ValueError, match="empty"):
        fo.metrics.accuracy(np.zeros((0, 1)), np.zeros((0, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fo.metrics.mean_squared_error([1.0, 2.0], [[1.0], [4.0]]) == 2.0
