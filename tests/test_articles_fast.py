"""Article 000's functions: the per-call fast path against the thorough path
(the same bits, forced each way), the descent through the data's statistics
against the per-sample loop kernel and the NumPy twins, float32 accuracy,
zero samples, interrupts, and the benchmark helpers of _core (the memory
stream, the CPU features and the kernel clone).
"""
import os
import signal
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastopt as fo
from fastopt import _core
from fastopt import reference as R


@pytest.fixture
def slow_path():
    """Every call through the thorough path while the test runs."""
    old = fo.articles.use_fast_path(False)
    try:
        yield
    finally:
        fo.articles.use_fast_path(old)


def both_paths(fn, *args):
    """fn(*args) through the fast path and through the thorough path."""
    assert fo.articles.use_fast_path(True) is True  # the default
    fast = fn(*args)
    old = fo.articles.use_fast_path(False)
    try:
        slow = fn(*args)
    finally:
        fo.articles.use_fast_path(old)
    return fast, slow


def assert_same_bits(a, b):
    assert type(a) is type(b)
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            assert_same_bits(u, v)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    else:
        assert np.float64(a).tobytes() == np.float64(b).tobytes()


def data(n=100, d=1, dtype=np.float64, seed=0, x_1d=False, y_col=False, offset=0.0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, d)) + offset).astype(dtype)
    y = (x.astype(np.float64) @ np.arange(3.0, 3.0 + d) + rng.random(n)).astype(dtype)
    if x_1d:
        x = x[:, 0].copy()
    if y_col:
        y = y.reshape(-1, 1)
    return x, y


def biases(dtype):
    return [0, 3, -2, 0.25, -0.0, np.float64(0.5), np.array(0.75, dtype), np.array([-1.5], dtype)]


# ---- the fast path gives the thorough path's bits ------------------------------------------
FAST_CASES = [dict(d=1), dict(d=1, x_1d=True), dict(d=1, y_col=True), dict(d=3), dict(d=3, y_col=True),
              dict(n=1, d=1), dict(n=7, d=2), dict(n=1000, d=1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", FAST_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("w_col", [False, True])
def test_gradient_fast_and_slow_same_bits(dtype, case, w_col):
    x, y = data(dtype=dtype, **case)
    d = 1 if x.ndim == 1 else x.shape[1]
    w = np.linspace(-1.0, 2.0, d).astype(dtype)
    if w_col:
        w = w.reshape(d, 1)
    for b in biases(dtype):
        # the fast path really runs on these (so this test compares two paths)
        assert _core.gradient_fast(x, y, w, b) is not NotImplemented
        fast, slow = both_paths(fo.gradient, x, y, w, b)
        assert_same_bits(fast, slow)
        assert fast[0].shape == w.shape
        assert isinstance(fast[1], float) == (np.ndim(b) == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", FAST_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_gradient_descent_fast_and_slow_same_bits(dtype, case):
    x, y = data(dtype=dtype, **case)
    d = 1 if x.ndim == 1 else x.shape[1]
    w = np.linspace(-0.5, 0.5, d).astype(dtype)
    for b in biases(dtype):
        for iters in (0, 1, 37, 1000):
            assert _core.gradient_descent_fast(x, y, w, b, 0.05, iters) is not NotImplemented
            fast, slow = both_paths(fo.gradient_descent, x, y, w, b, 0.05, iters)
            assert_same_bits(fast, slow)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_1d", [False, True])
@pytest.mark.parametrize("w_col", [False, True])
def test_linear_model_fast_is_numpys_bits(dtype, x_1d, w_col):
    """The fast path gives np.dot(x, w) + b exactly, signed zeros included."""
    x, _ = data(n=64, dtype=dtype, x_1d=x_1d)
    x[::7] = 0.0
    x[1::7] = -0.0
    for w0 in (1.5, -1.5, 0.0, -0.0):
        w = np.array([[w0]] if w_col else [w0], dtype)
        for b in biases(dtype) + [np.float64(-0.0)]:
            # a NumPy float64 scalar makes NumPy's sum float64: the thorough path's job
            strong = isinstance(b, np.float64) and dtype == np.float32
            assert (_core.linear_model_fast(x, w, b) is NotImplemented) == strong
            fast, slow = both_paths(fo.linear_model, x, w, b)
            assert_same_bits(fast, slow)
            x2 = x[:, None] if x.ndim == 1 else x
            assert_same_bits(fast, np.dot(x2, w) + b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((50,), (50,)), ((50,), (50, 1)), ((50, 1), (50,)), ((50, 3), (50, 3)),
                                    ((1,), (1,)), ((1, 1), (1,))])
def test_mse_loss_fast_and_slow_same_bits(dtype, shapes):
    rng = np.random.default_rng(1)
    t = np.asarray(rng.standard_normal(shapes[0]), dtype)
    p = np.asarray(rng.standard_normal(shapes[1]), dtype)
    assert _core.mse_loss_fast(t, p) is not NotImplemented
    fast, slow = both_paths(fo.mse_loss, t, p)
    assert_same_bits(fast, slow)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 4), f32=st.booleans(), seed=st.integers(0, 2**16),
       x_1d=st.booleans(), y_col=st.booleans(), w_col=st.booleans(), iters=st.integers(0, 50))
def test_fast_and_slow_same_bits_hypothesis(n, d, f32, seed, x_1d, y_col, w_col, iters):
    dtype = np.float32 if f32 else np.float64
    x, y = data(n=n, d=d, dtype=dtype, seed=seed, x_1d=x_1d and d == 1, y_col=y_col)
    rng = np.random.default_rng(seed + 1)
    w = rng.standard_normal((d, 1) if w_col else d).astype(dtype)
    b = float(rng.standard_normal())
    assert_same_bits(*both_paths(fo.gradient, x, y, w, b))
    assert_same_bits(*both_paths(fo.gradient_descent, x, y, w, b, 0.01, iters))
    assert_same_bits(*both_paths(fo.mse_loss, y, y[::-1].copy()))
    if d == 1:
        assert_same_bits(*both_paths(fo.linear_model, x, w, b))


# ---- the fast path declines what it does not take, and the thorough path decides ------------
def _declined(x, y, w, b):
    """Inputs the fast path must leave to the thorough path."""
    xs = np.zeros((100, 2))
    xs[:, 0] = x[:, 0]
    swapped = x.astype(x.dtype.newbyteorder())
    nan_x = x.copy()
    nan_x[3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        matrix = np.asmatrix(x)
    return [
        ("list x", (x.tolist(), y, w, b)),
        ("strided x", (xs[:, :1], y, w, b)),
        ("Fortran x", (np.asfortranarray(np.c_[x, x]), y, np.zeros(2), b)),
        ("byte-swapped x", (swapped, y, w, b)),
        ("float32 x, float64 y", (x.astype(np.float32), y, w, b)),
        ("int y", (x, y.astype(np.int64), w, b)),
        ("matrix x", (matrix, y, w, b)),
        ("NaN in x", (nan_x, y, w, b)),
        ("inf b", (x, y, w, np.inf)),
        ("bool b", (x, y, w, True)),
        ("float32 scalar b", (x, y, w, np.float32(1))),
        ("huge int b", (x, y, w, 2**70)),
        ("(1, 1) b", (x, y, w, np.zeros((1, 1)))),
        ("float32 b array", (x, y, w, np.zeros(1, np.float32))),
        ("empty x", (x[:0], y[:0], w, b)),
        ("w 0-d", (x, y, np.array(0.5), b)),
        ("w (2,)", (x, y, np.zeros(2), b)),
        ("y (n, 2)", (x, np.c_[y, y], w, b)),
    ]


@pytest.mark.parametrize("case", range(18))
def test_fast_paths_decline_without_raising(case):
    x, y = data()
    w = np.array([0.5])
    name, args = _declined(x, y, w, 0.0)[case]
    assert _core.gradient_fast(*args) is NotImplemented, name
    assert _core.gradient_descent_fast(*args, 0.01, 10) is NotImplemented, name


def test_gradient_descent_fast_declines_bad_hyperparameters():
    x, y = data()
    w = np.zeros(1)
    for lr, iters in [(-0.01, 10), (np.nan, 10), (np.inf, 10), ("0.01", 10), (None, 10), (True, 10),
                      (0.01, -1), (0.01, 1.5), (0.01, np.int64(10)), (0.01, True), (0.01, 2**80)]:
        assert _core.gradient_descent_fast(x, y, w, 0.0, lr, iters) is NotImplemented


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("iters", [2**53 + 1, 2**63, 2**70])
def test_absurd_step_counts_refused(fast, iters):
    x, y = data()
    old = fo.articles.use_fast_path(fast)
    try:
        with pytest.raises(ValueError, match="num_iterations"):
            fo.gradient_descent(x, y, np.zeros(1), 0.0, 0.01, iters)
    finally:
        fo.articles.use_fast_path(old)


def test_gradient_descent_fast_declines_wide_data():
    """More features than samples: the per-sample loop is cheaper, the thorough path runs it."""
    rng = np.random.default_rng(0)
    x, y, w = rng.random((5, 300)), rng.random(5), np.zeros(300)
    assert not _core.linear_by_stats(5, 300, 100)
    assert _core.gradient_descent_fast(x, y, w, 0.0, 0.01, 100) is NotImplemented
    out = fo.gradient_descent(x, y, w, 0.0, 0.01, 100)
    rw, rb, _ = R.linear_gd_naive(x, y, w, 0.0, 0.01, 100)
    np.testing.assert_allclose(out[0], rw, rtol=1e-12)
    assert out[1] == pytest.approx(rb, rel=1e-12)


def test_linear_model_and_mse_fast_paths_decline():
    x, y = data()
    w = np.array([0.5])
    assert _core.linear_model_fast(x[:, 0][:1].copy(), w, 0.0) is NotImplemented  # 1-d x of one sample
    assert _core.linear_model_fast(np.c_[x, x], np.zeros(2), 0.0) is NotImplemented  # d > 1: np.dot's order
    assert _core.linear_model_fast(x, w, np.zeros(100)) is NotImplemented  # a bias per sample
    assert _core.linear_model_fast(x.astype(np.float32), w.astype(np.float32), 1e300) is NotImplemented
    assert _core.mse_loss_fast(y, y[:50].copy()) is NotImplemented
    assert _core.mse_loss_fast(y.reshape(50, 2), y.reshape(2, 50)) is NotImplemented
    assert _core.mse_loss_fast(y.reshape(50, 2), y[:50].copy()) is NotImplemented  # (n, 2) vs (n,)
    assert _core.mse_loss_fast(y[:1].reshape(()), y[:1].reshape(())) is NotImplemented  # 0-d
    assert _core.mse_loss_fast(y.reshape(10, 5, 2), y.reshape(10, 5, 2)) is NotImplemented  # 3-d
    assert _core.mse_loss_fast(y, y.astype(np.float32)) is NotImplemented
    assert _core.mse_loss_fast(y[:0], y[:0]) is NotImplemented
    nan = y.copy()
    nan[5] = np.nan
    assert _core.mse_loss_fast(y, nan) is NotImplemented
    with pytest.raises(ValueError, match="y_pred"):
        fo.mse_loss(y, nan)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("fn", ["gradient", "gradient_descent"])
@pytest.mark.parametrize("over, exc, name", [
    (dict(y=np.zeros(99)), ValueError, "y"),
    (dict(w=np.zeros(2)), ValueError, "w"),
    (dict(b=np.zeros(2)), ValueError, "b"),
    (dict(b=None), TypeError, "b"),
    (dict(x=np.where(np.arange(100) == 3, np.nan, 1.0)), ValueError, "x"),
    (dict(y=np.where(np.arange(100) == 3, np.inf, 1.0)), ValueError, "y"),
    (dict(w=np.array([np.nan])), ValueError, "w"),
    (dict(b=np.nan), ValueError, "b"),
    (dict(x=np.zeros((0, 1)), y=np.zeros(0)), ValueError, "x"),
    (dict(x=np.zeros(0), y=np.zeros(0)), ValueError, "x"),
])
def test_bad_input_same_message_both_paths(fast, fn, over, exc, name):
    x, y = data()
    args = dict(x=x, y=y, w=np.zeros(1), b=0.0)
    args.update(over)
    extra = (0.01, 10) if fn == "gradient_descent" else ()
    old = fo.articles.use_fast_path(fast)
    try:
        with pytest.raises(exc, match=rf"\b{name}\b"):
            getattr(fo, fn)(*args.values(), *extra)
    finally:
        fo.articles.use_fast_path(old)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("args, exc, name", [
    ((np.ones((4, 3)), np.ones(2), 0.0), ValueError, "w"),
    ((np.ones((4, 3)), np.ones((3, 2)), np.ones(3)), ValueError, "b"),
    ((np.ones((4, 1)), np.ones(1), None), TypeError, "b"),
    ((np.ones((4, 1)), np.ones(1), "0"), TypeError, "b"),
    ((np.ones((4, 1)), np.ones(1), True), TypeError, "b"),
    ((np.array(["a"] * 4), np.ones(1), 0.0), TypeError, "x"),
    ((np.ones((4, 1)), np.array([None], dtype=object), 0.0), TypeError, "w"),
])
def test_linear_model_names_a_bad_argument(fast, args, exc, name):
    old = fo.articles.use_fast_path(fast)
    try:
        with pytest.raises(exc, match=rf"\b{name}\b"):
            fo.linear_model(*args)
    finally:
        fo.articles.use_fast_path(old)


def test_linear_model_biases_that_broadcast():
    """One bias of any shape is one number (as gradient reads it); a bias per output or
    per sample broadcasts to the prediction's shape, never beyond it."""
    x, w = np.ones((4, 3)), np.arange(6.0).reshape(3, 2)
    assert fo.linear_model(x, w, np.array([[0.5]])).shape == (4, 2)
    np.testing.assert_array_equal(fo.linear_model(x, w, np.array([1.0, 2.0])), x @ w + [1.0, 2.0])
    np.testing.assert_array_equal(fo.linear_model(x, w, np.ones((4, 1))), x @ w + 1.0)
    x1, w1 = np.ones((5, 1)), np.ones(1)
    assert fo.linear_model(x1, w1, np.zeros((1, 1))).shape == (5,)  # not (1, 5)


@pytest.mark.parametrize("x", [np.zeros((0, 1)), np.zeros(0), np.zeros((0, 3))])
def test_zero_samples_refused_everywhere(x):
    w = np.zeros(x.shape[1] if x.ndim == 2 else 1)
    for fast in (True, False):
        old = fo.articles.use_fast_path(fast)
        try:
            with pytest.raises(ValueError, match=r"\bx\b.*no samples"):
                fo.gradient(x, np.zeros(0), w, 0.0)
            with pytest.raises(ValueError, match=r"\bx\b.*no samples"):
                fo.gradient_descent(x, np.zeros(0), w, 0.0, 0.01, 10)
            with pytest.raises(ValueError, match=r"\bx\b.*no samples"):
                fo.linear_model(x, w, 0.0)
            with pytest.raises(ValueError):
                fo.mse_loss(np.zeros(0), np.zeros(0))
        finally:
            fo.articles.use_fast_path(old)
    with pytest.raises(ValueError, match="x holds no samples"):
        _core.linear_gd(np.zeros(w.size), np.zeros(1), x.reshape(0, 1) if x.ndim == 1 else x,
                        np.zeros(0), 0.01, 10)


def test_refused_calls_change_nothing():
    x, y = data()
    w, b = np.array([0.5]), np.array([0.25])
    bad_y = y.copy()
    bad_y[7] = np.nan
    before = [a.copy() for a in (x, bad_y, w, b)]
    for fast in (True, False):
        old = fo.articles.use_fast_path(fast)
        try:
            with pytest.raises(ValueError):
                fo.gradient_descent(x, bad_y, w, b, 0.01, 100)
            with pytest.raises(ValueError):
                fo.gradient(x, bad_y, w, b)
        finally:
            fo.articles.use_fast_path(old)
    for a, c in zip((x, bad_y, w, b), before):
        assert a.tobytes() == c.tobytes()


def test_fast_gradient_descent_divergence_warns_as_the_thorough_path():
    x, y = data()
    for dtype in (np.float32, np.float64):
        with pytest.warns(RuntimeWarning, match="diverged"):
            w, b = fo.gradient_descent(x.astype(dtype), y.astype(dtype), np.zeros(1, dtype), 0.0, 10.0, 1000)
        assert not (np.isfinite(w).all() and np.isfinite(b))


# ---- the descent through the statistics --------------------------------------------------------
def well_conditioned(seed, n, d, offset=1.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d) + rng.uniform(-offset, offset, d)
    y = x @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) + rng.uniform(-2, 2)
    a = np.c_[x, np.ones(n)]
    lr = rng.uniform(0.05, 0.9) / np.linalg.eigvalsh(2 * a.T @ a / n).max()  # a stable rate
    return x, y, lr, rng


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("d", [1, 2, 5])
def test_statistics_descent_matches_the_loop_kernel(seed, d):
    """w, b within 1e-12 (relative) of the per-sample loop and of both NumPy twins; the loss too."""
    n = [3, 10, 100, 1000][seed % 4]
    x, y, lr, rng = well_conditioned(seed, n, d)
    iters = int(rng.integers(1, 2000))
    w0, b0 = rng.standard_normal(d), float(rng.standard_normal())
    w, b = w0.copy(), np.array([b0])
    loss = _core.linear_gd(w, b, x, y, lr, iters)
    wn, bn = w0.copy(), np.array([b0])
    loss_n = _core.linear_gd_naive(wn, bn, x, y, lr, iters)
    # relative to the parameters' scale: a component near 0 is held to the others' precision
    scale = np.abs(np.r_[wn, bn]).max()
    tol = dict(rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(w, wn, **tol)
    np.testing.assert_allclose(b, bn, **tol)
    assert loss == pytest.approx(loss_n, rel=1e-12)
    assert loss == pytest.approx(np.mean((x @ w + b[0] - y) ** 2), rel=1e-12)
    # the NumPy twins: the same loop, and the same descent from the statistics
    rw, rb, rloss = R.linear_gd_naive(x, y, w0, b0, lr, iters)
    np.testing.assert_allclose(w, rw, **tol)
    np.testing.assert_allclose(b[0], rb, **tol)
    assert rloss == pytest.approx(loss, rel=1e-12)
    sw, sb = R.linear_gd_stats(R.linear_stats(x, y), w0, b0, lr, iters)
    np.testing.assert_allclose(w, sw, **tol)
    np.testing.assert_allclose(b[0], sb, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 3, 9])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 100, 1001])
def test_statistics_match_numpy(dtype, d, n):
    rng = np.random.default_rng(n * 10 + d)
    x = (rng.standard_normal((n, d)) + 1000.0).astype(dtype)  # an offset: centered sums keep accuracy
    y = (x.astype(np.float64).sum(axis=1) + rng.standard_normal(n)).astype(dtype)
    got, want = _core.linear_stats(x, y), R.linear_stats(x, y)
    assert got.dtype == np.float64 and got.shape == (d * d + 2 * d + 1,)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * scale)
    # the covariance block is symmetric, and exactly so
    c = got[:d * d].reshape(d, d)
    assert np.array_equal(c, c.T)


@pytest.mark.parametrize("d", [1, 4])
def test_float32_data_descends_in_float64(d):
    """float32 data: the statistics and steps in float64, so the result is the
    float64 descent on the same values, rounded once to float32 (bit for bit),
    and much closer to it than the per-sample loop in float32."""
    x, y, lr, rng = well_conditioned(d, 500, d)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    w0 = rng.standard_normal(d).astype(np.float32)
    w32, b32 = fo.gradient_descent(x32, y32, w0, 0.5, lr, 3000)
    w64, b64 = fo.gradient_descent(x32.astype(np.float64), y32.astype(np.float64), w0.astype(np.float64),
                                   np.float64(np.float32(0.5)), lr, 3000)
    assert w32.dtype == np.float32
    assert w32.tobytes() == w64.astype(np.float32).tobytes()
    assert np.float32(b32) == np.float32(b64)
    np.testing.assert_allclose(w32, w64, rtol=1e-7)
    # the per-sample loop in float32 drifts further from the float64 result
    wn, bn = w0.copy(), np.array([0.5], np.float32)
    _core.linear_gd_naive(wn, bn, x32, y32, lr, 3000)
    err_stats = np.abs(w32 - w64).max()
    err_loop = np.abs(wn.astype(np.float64) - w64).max()
    assert err_stats <= err_loop
    np.testing.assert_allclose(wn, w64, rtol=1e-4)


def test_gradient_descent_is_interruptible():
    """A long descent hears Ctrl-C between chunks of steps; the caller's arrays are untouched."""
    if not hasattr(signal, "setitimer"):
        pytest.skip("no setitimer")
    x, y = data()
    w = np.zeros(1)
    old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            fo.gradient_descent(x, y, w, 0.0, 0.01, 10**10)
        assert time.perf_counter() - t0 < 3.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert w.tobytes() == np.zeros(1).tobytes()


def test_linear_gd_bad_input():
    x, y = data()
    with pytest.raises(TypeError, match=r"\bw\b"):
        _core.linear_gd(np.zeros(1, np.float32), np.zeros(1), x, y, 0.01, 1)  # state is float64
    with pytest.raises(ValueError, match=r"\bb\b"):
        _core.linear_gd(np.zeros(1), np.zeros(2), x, y, 0.01, 1)
    with pytest.raises(ValueError, match="num_iterations"):
        _core.linear_gd(np.zeros(1), np.zeros(1), x, y, 0.01, -1)
    with pytest.raises(ValueError, match="learning_rate"):
        _core.linear_gd(np.zeros(1), np.zeros(1), x, y, np.nan, 1)
    w = np.zeros(1)
    with pytest.raises(ValueError, match="shares memory"):
        _core.linear_gd(w, w, x, y, 0.01, 1)
    ro = np.zeros(1)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"\bw\b.*read-only"):
        _core.linear_gd(ro, np.zeros(1), x, y, 0.01, 1)


# ---- benchmark helpers: the memory stream, CPU features, kernel clone ---------------------------
def test_kernel_clone_follows_the_resolver_rule():
    feats = _core.cpu_features()
    assert set(feats) >= {"avx512f", "avx2"}
    clone = _core.kernel_clone()
    assert clone in ("avx512f", "avx2", "default")
    if os.environ.get("FASTOPT_FORCE_CLONE"):
        return
    if feats["avx512f"] is None:  # not x86: the baseline build
        assert clone == "default"
        return
    want = "avx512f" if feats["avx512f"] else "avx2" if feats["avx2"] else "default"
    assert clone == want
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return
    assert feats["avx512f"] == ("avx512f" in flags)
    assert feats["avx2"] == ("avx2" in flags)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 511, 513, 5000])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("counts", [(1, 1), (3, 1), (2, 1), (1, 0), (2, 3)])
def test_stream_reads_every_array_and_writes_in_place(dtype, n, threads, counts):
    n_written, n_read = counts
    rng = np.random.default_rng(n)
    written = [rng.standard_normal(n).astype(dtype) for _ in range(n_written)]
    read = [rng.standard_normal(n).astype(dtype) for _ in range(n_read)]
    want = [w + dtype(0.5) * (np.sum(read, axis=0, dtype=dtype) if read else dtype(0)) for w in written]
    before = [r.copy() for r in read]
    _core.stream(read, written, threads, 0.5)
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    for w, v in zip(written, want):
        np.testing.assert_allclose(w, v, rtol=rtol, atol=rtol)
    for r, c in zip(read, before):
        assert r.tobytes() == c.tobytes()
    # scale 0 (the benchmark's setting) changes no value
    keep = [w.copy() for w in written]
    _core.stream(read, written, threads)
    for w, c in zip(written, keep):
        np.testing.assert_array_equal(w, c)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_stream_long_arrays_in_chunks(threads):
    """Lengths past one chunk (65536 elements; csrc/parallel.c's fo_range_chunks),
    run on the thread pool as an optimizer step is: every element once."""
    n = 2 * 65536 + 17
    rng = np.random.default_rng(threads)
    written = [rng.standard_normal(n).astype(np.float32) for _ in range(3)]
    read = [rng.standard_normal(n).astype(np.float32)]
    want = [w + np.float32(0.25) * read[0] for w in written]
    _core.stream(read, written, threads, 0.25)
    for w, v in zip(written, want):
        np.testing.assert_array_equal(w, v)


def test_stream_bad_input():
    a, b = np.zeros(10, np.float32), np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="threads"):
        _core.stream([a], [b], 0)
    with pytest.raises(TypeError, match="read"):
        _core.stream([np.zeros(10)], [b], 1)
    with pytest.raises(ValueError, match="read"):
        _core.stream([np.zeros(11, np.float32)], [b], 1)
    with pytest.raises(ValueError, match="written.*shares memory"):
        _core.stream([a], [a], 1)
    with pytest.raises(ValueError, match="written.*shares memory"):
        _core.stream([], [b, b], 1)
    ro = np.zeros(10, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="written.*read-only"):
        _core.stream([a], [ro], 1)
    with pytest.raises(ValueError, match="at most"):
        _core.stream([a] * 9, [b], 1)
    with pytest.raises(TypeError):
        _core.stream(a, 3, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.stream([np.zeros(20, np.float32)[::2]], [b], 1)


def test_use_fast_path_returns_the_previous_setting():
    assert fo.articles.use_fast_path(False) is True
    try:
        assert fo.articles.use_fast_path(False) is False
        x, y = data()
        assert _core.gradient_fast(x, y, np.zeros(1), 0.0) is NotImplemented
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fo.gradient(x, y, np.zeros(1), 0.0)
    finally:
        assert fo.articles.use_fast_path(True) is False
