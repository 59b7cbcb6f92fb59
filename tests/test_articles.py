"""Article 000's functions, train_test_split and the regression metrics against
plain NumPy (and scikit-learn, where installed).

The reference is article 000's NumPy with its two faults fixed: the TRUE
gradient (``pred - y``, not ``y - pred``), and targets aligned sample by sample
with the predictions (never ``(100, 1) - (100,)`` broadcast to ``(100, 100)``).
"""
import math
import warnings

import numpy as np
import pytest

import fastopt as fo


# ---- the reference ----------------------------------------------------------------------
def ref_gradient(x, y, w, b):
    """dw (d,), db: gradient of mean((x @ w + b - y)^2), x (n, d), in float64."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    e = x @ np.asarray(w, np.float64).reshape(-1) + float(np.asarray(b).reshape(-1)[0]) \
        - np.asarray(y, np.float64).reshape(-1)
    n = len(x)
    return 2 * (x.T @ e) / n, 2 * e.sum() / n


def ref_gradient_descent(x, y, w, b, learning_rate, num_iterations):
    w = np.asarray(w, np.float64).reshape(-1).copy()
    b = float(np.asarray(b).reshape(-1)[0])
    for _ in range(num_iterations):
        dw, db = ref_gradient(x, y, w, b)
        w = w - learning_rate * dw
        b = b - learning_rate * db
    return w, b


def article_data(n=100, d=1, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, d)
    y = x @ np.arange(3.0, 3.0 + d) + rng.rand(n)
    return x.astype(dtype), y.astype(dtype)


# ---- shapes, dtypes, values -----------------------------------------------------------------
def test_article_000_snippet():
    """The article's call: x (100, 1), y (100, 1), w = zeros(1), b = 0."""
    np.random.seed(0)
    x = np.random.rand(100, 1)
    y = 3 * x + np.random.rand(100, 1)
    w, b = fo.gradient_descent(x, y, np.zeros(1), 0, 0.01, 1000)
    rw, rb = ref_gradient_descent(x, y[:, 0], np.zeros(1), 0, 0.01, 1000)
    assert w.shape == (1,) and w.dtype == np.float64
    assert isinstance(b, float)
    np.testing.assert_allclose(w, rw, rtol=1e-12)
    assert b == pytest.approx(rb, rel=1e-12)
    # descent: the loss went down (the article's sign error makes it go up)
    assert fo.mse_loss(y, fo.linear_model(x, w, b)) < fo.mse_loss(y, fo.linear_model(x, np.zeros(1), 0)) / 10


def test_article_broadcast_is_not_reproduced():
    """(100, 1) targets against (100,) predictions: 100 aligned errors, not 100 x 100."""
    x, y = article_data()
    y2 = y.reshape(-1, 1)
    pred = fo.linear_model(x, np.array([2.0]), 0.5)
    assert pred.shape == (100,)
    assert fo.mse_loss(y2, pred) == pytest.approx(np.mean((y - pred) ** 2), rel=1e-12)
    assert fo.mse_loss(y2, pred) != pytest.approx(np.mean((y2 - pred) ** 2), rel=1e-3)  # the article's value
    dw, db = fo.gradient(x, y2, np.array([2.0]), 0.5)
    rdw, rdb = ref_gradient(x, y, [2.0], 0.5)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12)
    assert db == pytest.approx(rdb, rel=1e-12)


def test_gradient_sign_is_the_true_gradient():
    """At w = 0, b = 0 with positive data, the loss decreases along +w: dw < 0 (the article returns > 0)."""
    x, y = article_data()
    dw, db = fo.gradient(x, y, np.zeros(1), 0)
    assert dw[0] < 0 and db < 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("w_shape", ["flat", "column"])
@pytest.mark.parametrize("y_shape", ["flat", "column"])
@pytest.mark.parametrize("b_kind", ["scalar", "array"])
def test_gradient_and_descent_match_reference(dtype, d, w_shape, y_shape, b_kind):
    x, y = article_data(n=57, d=d, seed=d, dtype=dtype)
    rng = np.random.RandomState(1)
    w = rng.randn(d).astype(dtype)
    w = w if w_shape == "flat" else w.reshape(d, 1)
    y = y if y_shape == "flat" else y.reshape(-1, 1)
    b = 0.25 if b_kind == "scalar" else np.array([0.25], dtype)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    atol = 1e-12 if dtype == np.float64 else 2e-5

    dw, db = fo.gradient(x, y, w, b)
    rdw, rdb = ref_gradient(x, y, w, b)
    assert dw.shape == w.shape and dw.dtype == dtype
    np.testing.assert_allclose(dw.reshape(-1), rdw, rtol=rtol, atol=atol)
    if b_kind == "scalar":
        assert isinstance(db, float)
    else:
        assert db.shape == (1,)
    assert float(np.asarray(db).reshape(-1)[0]) == pytest.approx(rdb, rel=rtol, abs=atol)

    nw, nb = fo.gradient_descent(x, y, w, b, 0.05, 200)
    rw, rb = ref_gradient_descent(x, y, w, b, 0.05, 200)
    assert nw.shape == w.shape and nw.dtype == dtype
    np.testing.assert_allclose(nw.reshape(-1), rw, rtol=rtol * 10, atol=atol * 10)
    assert float(np.asarray(nb).reshape(-1)[0]) == pytest.approx(rb, rel=rtol * 10, abs=atol * 10)
    assert isinstance(nb, float) if b_kind == "scalar" else nb.shape == (1,)

    pred = fo.linear_model(x, w, b)
    np.testing.assert_array_equal(pred, np.dot(x, w) + b)
    expected = np.mean((y.reshape(-1).astype(np.float64) - pred.reshape(-1)) ** 2)
    assert fo.mse_loss(y, pred) == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_x_one_dimensional():
    """x of shape (n,) is n samples of one feature (w of shape (1,))."""
    x, y = article_data()
    x1 = x[:, 0]
    dw, db = fo.gradient(x1, y, np.array([0.5]), 0.1)
    rdw, rdb = ref_gradient(x, y, [0.5], 0.1)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12)
    assert db == pytest.approx(rdb, rel=1e-12)
    w, b = fo.gradient_descent(x1, y, np.zeros(1), 0, 0.1, 100)
    rw, rb = ref_gradient_descent(x, y, np.zeros(1), 0, 0.1, 100)
    np.testing.assert_allclose(w, rw, rtol=1e-12)
    assert b == pytest.approx(rb, rel=1e-12)


def test_linear_model_x_one_dimensional():
    x, _ = article_data()
    pred = fo.linear_model(x[:, 0], np.array([0.5]), 0.1)
    np.testing.assert_allclose(pred, x[:, 0] * 0.5 + 0.1)


def test_mixed_dtypes_compute_in_float64():
    x, y = article_data(dtype=np.float32)
    w, b = fo.gradient_descent(x, y.astype(np.float64), np.zeros(1, np.float32), 0, 0.1, 50)
    assert w.dtype == np.float64
    rw, rb = ref_gradient_descent(x, y, np.zeros(1), 0, 0.1, 50)
    np.testing.assert_allclose(w, rw, rtol=1e-12)


def test_non_contiguous_and_readonly_inputs():
    x, y = article_data(n=80, d=2)
    xf = np.asfortranarray(x)
    big = np.zeros((80, 4))
    big[:, ::2] = x
    xs = big[:, ::2]
    ys = np.repeat(y, 2)[::2]
    for arr in (x, y):
        arr.flags.writeable = False
    ref = ref_gradient_descent(x, y, [0.1, 0.2], 0.3, 0.1, 30)
    for xx, yy in ((x, y), (xf, y), (xs, ys)):
        w, b = fo.gradient_descent(xx, yy, np.array([0.1, 0.2]), 0.3, 0.1, 30)
        np.testing.assert_allclose(w, ref[0], rtol=1e-12)
        assert b == pytest.approx(ref[1], rel=1e-12)


def test_plain_python_lists():
    w, b = fo.gradient_descent([[1.0], [2.0], [3.0]], [2, 4, 6], [0.0], 0, 0.05, 100)
    rw, rb = ref_gradient_descent([[1.0], [2.0], [3.0]], [2, 4, 6], [0.0], 0, 0.05, 100)
    np.testing.assert_allclose(w, rw, rtol=1e-12)
    assert b == pytest.approx(rb, rel=1e-12)


def test_zero_iterations_returns_the_start():
    x, y = article_data()
    w0 = np.array([0.7])
    w, b = fo.gradient_descent(x, y, w0, 0.2, 0.01, 0)
    np.testing.assert_array_equal(w, w0)
    assert b == 0.2
    assert w is not w0


@pytest.mark.parametrize("d", [1, 4])
def test_gradient_matches_central_finite_differences(d):
    x, y = article_data(n=30, d=d, seed=3)
    rng = np.random.RandomState(4)
    w, b = rng.randn(d), 0.3
    dw, db = fo.gradient(x, y, w, b)
    loss = lambda w_, b_: fo.mse_loss(y, fo.linear_model(x, w_, b_))  # noqa: E731
    h = 1e-6
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        fd = (loss(w + e, b) - loss(w - e, b)) / (2 * h)
        assert dw[j] == pytest.approx(fd, rel=1e-6, abs=1e-8)
    assert db == pytest.approx((loss(w, b + h) - loss(w, b - h)) / (2 * h), rel=1e-6, abs=1e-8)


def test_inputs_are_not_modified():
    x, y = article_data(d=2)
    w = np.array([0.1, -0.2])
    b = np.array([0.3])
    copies = [a.copy() for a in (x, y, w, b)]
    fo.gradient_descent(x, y, w, b, 0.1, 100)
    fo.gradient(x, y, w, b)
    for a, c in zip((x, y, w, b), copies):
        np.testing.assert_array_equal(a, c)


# ---- bad input ------------------------------------------------------------------------------
def _call(fn, **over):
    x, y = article_data(n=20)
    args = dict(x=x, y=y, w=np.zeros(1), b=0.0)
    if fn is fo.gradient_descent:
        args.update(learning_rate=0.01, num_iterations=10)
    args.update(over)
    return fn(**args)


@pytest.mark.parametrize("fn", [fo.gradient, fo.gradient_descent])
@pytest.mark.parametrize("over, exc, name", [
    (dict(y=np.zeros(19)), ValueError, "y"),
    (dict(y=np.zeros((20, 2))), ValueError, "y"),
    (dict(x=np.zeros((21, 1))), ValueError, "y"),
    (dict(w=np.zeros(2)), ValueError, "w"),
    (dict(b=np.zeros(2)), ValueError, "b"),
    (dict(x=np.array(["a"] * 20)), TypeError, "x"),
    (dict(y=np.array([None] * 20, dtype=object)), TypeError, "y"),
    (dict(w="0"), TypeError, "w"),
    (dict(b=None), TypeError, "b"),
    (dict(x=np.where(np.arange(20) == 3, np.nan, 1.0)), ValueError, "x"),
    (dict(y=np.where(np.arange(20) == 3, np.nan, 1.0)), ValueError, "y"),
    (dict(y=np.where(np.arange(20) == 3, np.inf, 1.0)), ValueError, "y"),
    (dict(w=np.array([np.nan])), ValueError, "w"),
])
def test_bad_arrays(fn, over, exc, name):
    with pytest.raises(exc, match=rf"\b{name}\b"):
        _call(fn, **over)


@pytest.mark.parametrize("over, exc, name", [
    (dict(num_iterations=-1), ValueError, "num_iterations"),
    (dict(num_iterations=1.5), TypeError, "num_iterations"),
    (dict(num_iterations=10.0), TypeError, "num_iterations"),
    (dict(num_iterations="10"), TypeError, "num_iterations"),
    (dict(learning_rate=math.nan), ValueError, "learning_rate"),
    (dict(learning_rate=math.inf), ValueError, "learning_rate"),
    (dict(learning_rate=-math.inf), ValueError, "learning_rate"),
    (dict(learning_rate="0.01"), TypeError, "learning_rate"),
    (dict(learning_rate=None), TypeError, "learning_rate"),
])
def test_bad_hyperparameters(over, exc, name):
    with pytest.raises(exc, match=name):
        _call(fo.gradient_descent, **over)


def test_negative_learning_rate_refused():
    with pytest.raises(ValueError, match="learning_rate"):
        _call(fo.gradient_descent, learning_rate=-0.01)


def test_numpy_integer_iterations_accepted():
    w, _ = _call(fo.gradient_descent, num_iterations=np.int64(10))
    w2, _ = _call(fo.gradient_descent, num_iterations=10)
    np.testing.assert_array_equal(w, w2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_divergence_warns_once_and_returns_non_finite(dtype):
    x, y = article_data(dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anything but the one RuntimeWarning below fails
        with pytest.warns(RuntimeWarning, match="diverged") as record:
            w, b = fo.gradient_descent(x, y, np.zeros(1, dtype), 0, 10, 1000)
    assert len(record) == 1
    assert not np.isfinite(w).all() or not math.isfinite(b)


def test_large_but_stable_learning_rate_does_not_warn():
    x, y = article_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w, b = fo.gradient_descent(x, y, np.zeros(1), 0, 0.5, 2000)
    rw, rb = ref_gradient_descent(x, y, np.zeros(1), 0, 0.5, 2000)
    np.testing.assert_allclose(w, rw, rtol=1e-10)


# ---- train_test_split -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sk_split():
    return pytest.importorskip("sklearn.model_selection").train_test_split


SPLITS = [
    dict(test_size=0.2, random_state=42),
    dict(test_size=0.2, random_state=0),
    dict(test_size=0.33, random_state=7),
    dict(test_size=0.25, random_state=123),
    dict(random_state=5),
    dict(test_size=13, random_state=3),
    dict(train_size=0.5, random_state=11),
    dict(train_size=40, random_state=11),
    dict(train_size=0.6, test_size=0.3, random_state=2),
    dict(train_size=50, test_size=20, random_state=9),
    dict(test_size=0.2, shuffle=False),
    dict(train_size=0.7, shuffle=False),
    dict(train_size=0.5, test_size=0.25, shuffle=False),
]


@pytest.mark.parametrize("n", [101, 506])
@pytest.mark.parametrize("kw", SPLITS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_train_test_split_matches_sklearn(sk_split, n, kw):
    X = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    y = np.arange(n) * 10
    ours = fo.train_test_split(X, y, **kw)
    theirs = sk_split(X, y, **kw)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_train_test_split_article_call_and_rows_stay_together():
    X = np.arange(506 * 13, dtype=np.float64).reshape(506, 13)
    y = X[:, 0] * 2
    X_train, X_test, y_train, y_test = fo.train_test_split(X, y, test_size=0.2, random_state=42)
    assert X_train.shape == (404, 13) and X_test.shape == (102, 13)
    np.testing.assert_array_equal(y_train, X_train[:, 0] * 2)
    np.testing.assert_array_equal(y_test, X_test[:, 0] * 2)
    assert sorted(np.r_[X_train[:, 0], X_test[:, 0]]) == sorted(X[:, 0])
    # random_state fixes the split; another state gives another
    again = fo.train_test_split(X, y, test_size=0.2, random_state=42)
    np.testing.assert_array_equal(again[1], X_test)
    other = fo.train_test_split(X, y, test_size=0.2, random_state=43)
    assert not np.array_equal(other[1], X_test)


@pytest.mark.parametrize("kw", [
    dict(test_size=0), dict(test_size=0.0), dict(test_size=1.0), dict(test_size=1.5), dict(test_size=-0.2),
    dict(test_size=20), dict(test_size=25), dict(train_size=20), dict(train_size=0),
    dict(train_size=0.8, test_size=0.3), dict(train_size=15, test_size=6), dict(test_size="0.2"),
])
def test_train_test_split_bad_sizes(kw):
    X, y = np.zeros((20, 2)), np.zeros(20)
    with pytest.raises(ValueError):
        fo.train_test_split(X, y, **kw)


def test_train_test_split_bad_arrays():
    with pytest.raises(ValueError):
        fo.train_test_split(np.zeros((20, 2)), np.zeros(19), test_size=0.2)
    with pytest.raises(ValueError):
        fo.train_test_split()
    with pytest.raises(ValueError):
        fo.train_test_split(np.zeros((1, 2)), test_size=0.5)


# ---- metrics ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("true_shape, pred_shape", [
    ((50,), (50,)), ((50,), (50, 1)), ((50, 1), (50,)), ((50, 1), (50, 1)), ((50, 3), (50, 3))])
def test_metrics_match_numpy(dtype, true_shape, pred_shape):
    rng = np.random.RandomState(0)
    t = rng.randn(*true_shape).astype(dtype)
    p = rng.randn(*pred_shape).astype(dtype)
    diff = t.reshape(-1).astype(np.float64) - p.reshape(-1).astype(np.float64)
    rel = 1e-5 if dtype == np.float32 else 1e-12
    assert fo.metrics.mean_squared_error(t, p) == pytest.approx(np.mean(diff ** 2), rel=rel)
    assert fo.metrics.mean_absolute_error(t, p) == pytest.approx(np.mean(np.abs(diff)), rel=rel)
    assert fo.mse_loss(t, p) == pytest.approx(np.mean(diff ** 2), rel=rel)


def test_metrics_match_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.RandomState(1)
    t, p = rng.randn(40), rng.randn(40, 1)
    assert fo.metrics.mean_squared_error(t, p) == pytest.approx(skm.mean_squared_error(t, p), rel=1e-12)
    assert fo.metrics.mean_absolute_error(t, p) == pytest.approx(skm.mean_absolute_error(t, p), rel=1e-12)


@pytest.mark.parametrize("t, p", [
    (np.zeros(5), np.zeros(6)), (np.zeros((5, 2)), np.zeros(5)), (np.zeros((5, 1)), np.zeros((1, 5)))])
def test_metrics_refuse_misaligned(t, p):
    with pytest.raises(ValueError):
        fo.metrics.mean_squared_error(t, p)
    with pytest.raises(ValueError):
        fo.metrics.mean_absolute_error(t, p)


def test_metrics_refuse_nan_and_strings():
    with pytest.raises(ValueError, match="y_pred"):
        fo.metrics.mean_squared_error(np.zeros(3), np.array([0.0, np.nan, 1.0]))
    with pytest.raises(TypeError, match="y_true"):
        fo.metrics.mean_squared_error(np.array(["a", "b"]), np.zeros(2))
