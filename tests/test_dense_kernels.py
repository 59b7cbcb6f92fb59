"""The dense-layer, loss and network kernels of fastopt._core against their
NumPy twins in fastopt.reference: every transpose combination, alpha/beta,
dtype and path (BLAS and the naive C loop) of the matrix product; every
activation of the dense forward and backward pass; the MSE sums; the network
forward pass and gradients; and a finite-difference check of the gradients
in the style of kann's kad_check_grad."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastopt  # noqa: F401  (loads the BLAS before _core)
from fastopt import _core
from fastopt import reference as ref

DTYPES = [np.float32, np.float64]
ACTS = {"linear": _core.LINEAR, "relu": _core.RELU, "sigmoid": _core.SIGMOID, "tanh": _core.TANH}


def eps(dtype):
    return float(np.finfo(dtype).eps)


def assert_within(got, want, bound, what=""):
    """|got - want| <= bound elementwise (bound: a rounding-error bound)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want)
    bad = ~(err <= bound)
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} elements off; worst error "
                           f"{err[bad].max()} vs bound {np.asarray(bound * np.ones_like(err))[bad].min()}")


@pytest.fixture
def blas_threshold():
    """Set the BLAS crossover for one test; the old value comes back afterwards."""
    old = _core.blas_threshold()
    yield _core.blas_threshold
    _core.blas_threshold(old)


def test_blas_threshold_returns_and_sets(blas_threshold):
    old = _core.blas_threshold()
    assert old > 0
    assert _core.blas_threshold(123) == old
    assert _core.blas_threshold() == 123
    assert _core.blas_threshold(7) == 123
    assert _core.blas_threshold() == 7


# -- gemm -----------------------------------------------------------------------

def _gemm_operands(rng, ta, tb, M, N, K, dtype):
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    c = rng.standard_normal((M, N)).astype(dtype)
    return a, b, c


def _check_gemm(ta, tb, alpha, beta, a, b, c, naive):
    dtype = c.dtype
    a0, b0, c0 = a.copy(), b.copy(), c.copy()
    want = ref.gemm(ta, tb, alpha, a.astype(np.float64), b.astype(np.float64), beta,
                    c.astype(np.float64))
    _core.gemm(ta, tb, alpha, a, b, beta, c, naive)  # positional: see test_gemm_naive_keyword
    opa = np.abs(a0.T if ta else a0).astype(np.float64)
    opb = np.abs(b0.T if tb else b0).astype(np.float64)
    K = opa.shape[1]
    bound = 4 * (K + 3) * eps(dtype) * (abs(alpha) * (opa @ opb)
                                        + (abs(beta) * np.abs(c0) if beta else 0)) + 1e-300
    assert_within(c, want, bound, f"gemm ta={ta} tb={tb} naive={naive}")
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


GEMM_SHAPES = [  # (M, N, K)
    (1, 1, 1), (1, 7, 5), (7, 1, 5), (1, 1, 300), (5, 300, 1), (1, 513, 64), (64, 1, 513),
    (3, 4, 0), (0, 4, 3), (4, 0, 3), (9, 10, 11), (17, 33, 8),
    (31, 32, 32), (32, 32, 32), (33, 32, 32),  # around the default threshold 32768
    (40, 70, 90), (128, 3, 200),
]


@pytest.mark.parametrize("path", ["naive", "blas", "auto"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_gemm_matches_twin(blas_threshold, path, dtype, ta, tb):
    if path == "blas":
        blas_threshold(0)  # every product with K > 0 goes to BLAS (when built with one)
    rng = np.random.default_rng([["naive", "blas", "auto"].index(path), ta, tb, np.dtype(dtype).itemsize])
    for M, N, K in GEMM_SHAPES:
        for alpha, beta in [(1.0, 0.0), (1.0, 1.0), (0.5, -2.0), (-1.5, 0.25), (0.0, 1.0)]:
            a, b, c = _gemm_operands(rng, ta, tb, M, N, K, dtype)
            _check_gemm(ta, tb, alpha, beta, a, b, c, path == "naive")


@pytest.mark.parametrize("naive", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_crossing_the_threshold(blas_threshold, naive, dtype):
    """The same products below, at and above a threshold set just there."""
    rng = np.random.default_rng(5)
    blas_threshold(12 * 13 * 14)
    for M, N, K in [(12, 13, 13), (12, 13, 14), (12, 13, 15), (1, 13 * 14, 12), (12 * 14, 13, 1)]:
        for ta in (False, True):
            for tb in (False, True):
                a, b, c = _gemm_operands(rng, ta, tb, M, N, K, dtype)
                _check_gemm(ta, tb, 1.25, 0.5, a, b, c, naive)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_naive_and_blas_agree(blas_threshold, dtype):
    rng = np.random.default_rng(11)
    blas_threshold(0)
    for ta in (False, True):
        for tb in (False, True):
            a, b, c = _gemm_operands(rng, ta, tb, 37, 45, 53, dtype)
            c1, c2 = c.copy(), c.copy()
            _core.gemm(ta, tb, 0.75, a, b, 1.5, c1, False)
            _core.gemm(ta, tb, 0.75, a, b, 1.5, c2, True)
            np.testing.assert_allclose(c1, c2, rtol=100 * eps(dtype), atol=100 * 53 * eps(dtype))


@pytest.mark.parametrize("path", ["naive", "blas"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_beta_zero_does_not_read_c(blas_threshold, path, dtype):
    """beta == 0 overwrites c, as BLAS specifies: NaN or inf already in c do not leak."""
    if path == "blas":
        blas_threshold(0)
    rng = np.random.default_rng(2)
    for ta in (False, True):
        for tb in (False, True):
            for M, N, K in [(3, 4, 5), (40, 50, 60)]:
                a, b, _ = _gemm_operands(rng, ta, tb, M, N, K, dtype)
                c = np.full((M, N), np.nan, dtype)
                c[0, 0] = np.inf
                _core.gemm(ta, tb, 1.0, a, b, 0.0, c, path == "naive")
                want = ref.gemm(ta, tb, 1.0, a.astype(np.float64), b.astype(np.float64), 0.0,
                                np.zeros((M, N)))
                assert np.isfinite(c).all()
                np.testing.assert_allclose(c, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                                           atol=1e-4 if dtype == np.float32 else 1e-12)


def test_gemm_naive_keyword():
    a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.zeros((2, 4))
    _core.gemm(False, False, 1.0, a, b, 0.0, c, naive=True)
    np.testing.assert_array_equal(c, np.full((2, 4), 3.0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(M=st.integers(0, 40), N=st.integers(0, 40), K=st.integers(0, 40),
       ta=st.booleans(), tb=st.booleans(), naive=st.booleans(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_gemm_random_shapes(M, N, K, ta, tb, naive, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b, c = _gemm_operands(rng, ta, tb, M, N, K, dtype)
    _check_gemm(ta, tb, float(rng.uniform(-2, 2)), float(rng.choice([0.0, rng.uniform(-2, 2)])),
                a, b, c, naive)


# -- dense forward and backward ---------------------------------------------------

def _dense_case(rng, B, IN, OUT, dtype, with_bias):
    x = rng.standard_normal((B, IN)).astype(dtype)
    kernel = (rng.standard_normal((IN, OUT)) / np.sqrt(max(IN, 1))).astype(dtype)
    bias = rng.standard_normal(OUT).astype(dtype) if with_bias else None
    return x, kernel, bias


def _forward_bound(x, kernel, bias, dtype):
    IN = kernel.shape[0]
    mag = np.abs(x.astype(np.float64)) @ np.abs(kernel.astype(np.float64))
    if bias is not None:
        mag = mag + np.abs(bias.astype(np.float64))
    # gemm rounding, then the activation's own rounding (|f'| <= 1, f(z) <= 1 + |z|)
    return 4 * (IN + 4) * eps(dtype) * (mag + 1)


def _check_dense(x, kernel, bias, act, dtype):
    B, IN = x.shape
    OUT = kernel.shape[1]
    saved = [x.copy(), kernel.copy(), None if bias is None else bias.copy()]
    out = np.full((B, OUT), np.nan, dtype)
    _core.dense_forward(out, x, kernel, bias, ACTS[act])
    f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    want = ref.dense_forward(f64(x), f64(kernel), f64(bias), act)
    assert out.dtype == dtype
    assert_within(out, want, _forward_bound(x, kernel, bias, dtype), f"dense_forward {act}")
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(kernel, saved[1])
    if bias is not None:
        np.testing.assert_array_equal(bias, saved[2])

    # backward, from the kernel's own forward output so relu's [a > 0] agrees exactly
    rng = np.random.default_rng(B * 1000 + IN * 10 + OUT)
    dout = rng.standard_normal((B, OUT)).astype(dtype)
    dout0, out0 = dout.copy(), out.copy()
    dx = np.full((B, IN), np.nan, dtype)
    dkernel = np.full((IN, OUT), np.nan, dtype)
    dbias = np.full(OUT, np.nan, dtype)
    _core.dense_backward(dx, dkernel, dbias, dout, x, kernel, out, ACTS[act])
    wdx, wdk, wdb = ref.dense_backward(f64(dout0), f64(x), f64(kernel), f64(out0), act)
    dz = f64(dout0) * ref.activation_derivative(f64(out0), act)
    e = eps(dtype)
    # 1 - a*a cancels near |a| = 1: dz's error is relative to |dout| (1 + a^2)
    a64 = f64(out0)
    dz_err = 4 * e * (np.abs(dz) + np.abs(f64(dout0)) * (1 + a64 * a64))
    assert_within(dout, dz, dz_err + 1e-300, f"dz {act}")
    absdz = np.abs(dz) + dz_err
    absk, absx = np.abs(f64(kernel)), np.abs(f64(x))
    assert_within(dx, wdx, dz_err @ absk.T + 4 * (OUT + 4) * e * (absdz @ absk.T) + 1e-300, f"dx {act}")
    assert_within(dkernel, wdk, absx.T @ dz_err + 4 * (B + 4) * e * (absx.T @ absdz) + 1e-300,
                  f"dkernel {act}")
    assert_within(dbias, wdb, dz_err.sum(axis=0) + 4 * (B + 4) * e * absdz.sum(axis=0) + 1e-300,
                  f"dbias {act}")
    np.testing.assert_array_equal(out, out0)
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(kernel, saved[1])

    # dx and dbias are optional; dkernel does not depend on them
    dout2 = dout0.copy()
    dkernel2 = np.empty_like(dkernel)
    _core.dense_backward(None, dkernel2, None, dout2, x, kernel, out, ACTS[act])
    np.testing.assert_array_equal(dkernel2, dkernel)
    np.testing.assert_array_equal(dout2, dout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("act", list(ACTS))
def test_dense_fixed_shapes(act, with_bias, dtype):
    rng = np.random.default_rng(3)
    for B, IN, OUT in [(1, 1, 1), (1, 9, 1), (7, 1, 5), (16, 13, 10), (300, 64, 100), (33, 200, 3)]:
        x, kernel, bias = _dense_case(rng, B, IN, OUT, dtype, with_bias)
        _check_dense(x, kernel, bias, act, dtype)


@settings(max_examples=60, deadline=None)
@given(B=st.integers(0, 50), IN=st.integers(1, 40), OUT=st.integers(1, 40),
       act=st.sampled_from(list(ACTS)), with_bias=st.booleans(), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**32 - 1))
def test_dense_random_shapes(B, IN, OUT, act, with_bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x, kernel, bias = _dense_case(rng, B, IN, OUT, dtype, with_bias)
    _check_dense(x, kernel, bias, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward_activation_edges(dtype):
    """Large |z| saturate without NaN; relu keeps NaN (as torch and TF do)."""
    x = np.array([[-1000.0], [-30.0], [0.0], [30.0], [1000.0], [np.nan]], dtype)
    kernel = np.ones((1, 1), dtype)
    for act in ACTS:
        out = np.empty((6, 1), dtype)
        _core.dense_forward(out, x, kernel, None, ACTS[act])
        want = ref.activate(x.astype(np.float64), act)
        np.testing.assert_allclose(out, want, rtol=4 * eps(dtype), atol=4 * eps(dtype))
        assert np.isnan(out[5, 0])
        assert np.isfinite(out[:5]).all() or act == "linear"


# -- mse ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 8, 17, 1000])
def test_mse_matches_twin(n, dtype):
    rng = np.random.default_rng(n)
    pred = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    p0, y0 = pred.copy(), y.copy()
    sse, sae = _core.mse(pred, y)
    wsse, wsae = ref.mse(pred, y)
    e = eps(dtype)
    assert sse == pytest.approx(wsse, rel=4 * e, abs=1e-300)
    assert sae == pytest.approx(wsae, rel=4 * e, abs=1e-300)
    dpred = np.full(n, np.nan, dtype)
    scale = 2.0 / max(n, 1)
    assert _core.mse(pred, y, dpred, scale) == (sse, sae)
    want = scale * (pred.astype(np.float64) - y.astype(np.float64))
    assert_within(dpred, want, 4 * e * np.abs(want) + 1e-300, "dpred")
    np.testing.assert_array_equal(pred, p0)
    np.testing.assert_array_equal(y, y0)


def test_mse_compares_elementwise_over_any_shape():
    pred = np.arange(6.0).reshape(2, 3)
    y = np.zeros(6)
    assert _core.mse(pred, y) == ref.mse(pred, y) == (55.0, 15.0)


# -- networks -------------------------------------------------------------------------

NETS = [  # (units, activations, use_bias, l1, l2)
    ((3, 1), ("linear",), (True,), (0.0,), (0.0,)),
    ((4, 5, 1), ("relu", "linear"), (True, True), (0.0, 0.0), (0.0, 0.0)),
    ((6, 7, 5, 2), ("tanh", "sigmoid", "linear"), (True, False, True), (0.01, 0.0, 0.02), (0.0, 0.03, 0.01)),
    ((2, 3, 4, 3), ("sigmoid", "relu", "tanh"), (False, True, False), (0.0, 0.05, 0.0), (0.1, 0.0, 0.0)),
    ((64, 300, 1), ("relu", "linear"), (True, True), (0.0, 0.0), (1e-3, 0.0)),
]


def make_weights(rng, units, use_bias, dtype):
    weights = []
    for i, o, b in zip(units[:-1], units[1:], use_bias):
        weights.append((rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype))
        if b:
            weights.append((0.1 * rng.standard_normal(o)).astype(dtype))
    return weights


def spec_of(net):
    units, acts, bias, l1, l2 = net
    return (tuple(units), tuple(ACTS[a] for a in acts), tuple(bias), tuple(map(float, l1)),
            tuple(map(float, l2)))


def flat(weights):
    return np.concatenate([w.ravel() for w in weights])


def unflat(vec, like):
    out, off = [], 0
    for w in like:
        out.append(vec[off:off + w.size].reshape(w.shape))
        off += w.size
    return out


def core_gradients(params, spec, x, y):
    n_params, work_n = _core.net_sizes(spec, x.shape[0])
    assert n_params == params.size
    grads = np.full(n_params, np.nan, params.dtype)
    work = np.empty(work_n, params.dtype)
    stats = _core.net_gradients(grads, x, y, params, spec, work)
    return stats, grads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", NETS, ids=lambda n: "-".join(map(str, n[0])))
def test_net_forward_and_gradients_match_twin(net, dtype):
    units, acts, use_bias, l1, l2 = net
    spec = spec_of(net)
    rng = np.random.default_rng(len(units) * 100 + units[0])
    weights = make_weights(rng, units, use_bias, dtype)
    params = flat(weights)
    w64 = [w.astype(np.float64) for w in weights]
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    for B in (1, 7, 256):
        x = rng.standard_normal((B, units[0])).astype(dtype)
        y = rng.standard_normal((B, units[-1])).astype(dtype)
        x0, y0, p0 = x.copy(), y.copy(), params.copy()

        out = np.full((B, units[-1]), np.nan, dtype)
        _, work_n = _core.net_sizes(spec, B)
        _core.net_forward(out, x, params, spec, np.empty(work_n, dtype))
        pred = ref.net_forward(w64, acts, x.astype(np.float64))
        np.testing.assert_allclose(out, pred, **tol)

        (loss_b, sse, sae, pen_b), grads = core_gradients(params, spec, x, y)
        loss, wgrads = ref.net_gradients(w64, acts, use_bias, l1, l2, x.astype(np.float64),
                                         y.astype(np.float64))
        wsse, wsae = ref.mse(pred, y.astype(np.float64))
        penalty = sum(a * np.abs(k).sum() + b * np.square(k).sum()
                      for (k, _), a, b in zip(ref.split_weights(w64), l1, l2))
        close = dict(rel=tol["rtol"], abs=tol["atol"])
        assert loss_b / B == pytest.approx(loss, **close)
        assert sse == pytest.approx(wsse, **close)
        assert sae == pytest.approx(wsae, **close)
        assert pen_b / B == pytest.approx(penalty, **close)
        assert loss == pytest.approx(wsse / y.size + penalty, rel=1e-12)
        for g, w, wg in zip(unflat(grads, weights), weights, wgrads):
            assert g.shape == w.shape == wg.shape
            np.testing.assert_allclose(g, wg, **tol)
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)
        np.testing.assert_array_equal(params, p0)


def test_net_gradients_twin_uses_keras_order_and_no_bias_entries():
    rng = np.random.default_rng(0)
    weights = make_weights(rng, (3, 4, 2), (False, True), np.float64)
    assert [w.shape for w in weights] == [(3, 4), (4, 2), (2,)]
    loss, grads = ref.net_gradients(weights, ("tanh", "linear"), (False, True), 0, 0,
                                    rng.standard_normal((5, 3)), rng.standard_normal((5, 2)))
    assert [g.shape for g in grads] == [(3, 4), (4, 2), (2,)]
    with pytest.raises(ValueError):
        ref.net_gradients(weights, ("tanh", "linear"), True, 0, 0, np.ones((5, 3)), np.ones((5, 2)))


# -- finite differences (kann's kad_check_grad) ------------------------------------------

def _core_loss(params, spec, x, y):
    (loss_b, _, _, _), _ = core_gradients(params, spec, x, y)
    return loss_b / x.shape[0]


def _min_abs_preactivation(weights, acts, x):
    """The smallest |z| entering a relu: how far the batch is from a kink."""
    z_min, a = np.inf, x
    for (k, b), act in zip(ref.split_weights(weights), acts):
        z = a @ k + (0 if b is None else b)
        if act == "relu":
            z_min = min(z_min, float(np.abs(z).min()))
        a = ref.activate(z, act)
    return z_min


FD_NETS = [
    ((4, 5, 3, 2), ("tanh", "sigmoid", "linear"), (True, True, True), (0.01, 0.0, 0.02), (0.03, 0.05, 0.0)),
    ((3, 6, 4, 1), ("relu", "tanh", "linear"), (True, False, True), (0.0, 0.02, 0.0), (0.01, 0.0, 0.0)),
    ((5, 4, 3), ("sigmoid", "relu"), (False, True), (0.05, 0.0), (0.0, 0.02)),
    ((2, 3), ("linear",), (True,), (0.1,), (0.1,)),
]


@pytest.mark.parametrize("net", FD_NETS, ids=lambda n: "-".join(n[1]))
def test_net_gradients_finite_differences(net):
    units, acts, use_bias, l1, l2 = net
    spec = spec_of(net)
    B = 9
    # the first seed whose batch keeps every relu input and every l1-regularized
    # kernel entry away from its kink (deterministic)
    for seed in range(1000):
        rng = np.random.default_rng(seed)
        weights = make_weights(rng, units, use_bias, np.float64)
        for w in weights:  # no kernel entry near 0 (the l1 kink)
            w[...] = np.sign(w) * np.maximum(np.abs(w), 0.05)
        x = rng.standard_normal((B, units[0]))
        y = rng.standard_normal((B, units[-1]))
        if _min_abs_preactivation(weights, acts, x) > 1e-3:
            break
    else:
        pytest.fail("no batch away from the relu kinks")
    params = flat(weights)
    _, grads = core_gradients(params, spec, x, y)
    h = 1e-6

    # kad_check_grad: the derivative along a random direction ...
    u = np.random.default_rng(1).standard_normal(params.size)
    fd = (_core_loss(params + h * u, spec, x, y) - _core_loss(params - h * u, spec, x, y)) / (2 * h)
    an = float(grads @ u)
    assert abs(fd - an) <= 1e-6 * max(1.0, abs(an)), (fd, an)

    # ... and along every coordinate
    fd_all = np.empty_like(params)
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = h
        fd_all[i] = (_core_loss(params + e, spec, x, y) - _core_loss(params - e, spec, x, y)) / (2 * h)
    np.testing.assert_allclose(grads, fd_all, rtol=1e-5, atol=1e-7)

    # the twin's gradients pass the same check
    _, wgrads = ref.net_gradients(weights, acts, use_bias, l1, l2, x, y)
    np.testing.assert_allclose(flat(wgrads), fd_all, rtol=1e-5, atol=1e-7)


def test_twin_fit_batches_in_order_with_partial_last():
    assert ref.batches(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert ref.batches(8, 4) == [(0, 4), (4, 8)]
    assert ref.batches(5, None) == [(0, 5)]
    assert ref.batches(3, 32) == [(0, 3)]


# -- inputs that are only read ---------------------------------------------------------

def _ro(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_only_inputs_are_accepted(dtype):
    rng = np.random.default_rng(8)
    a, b, c = _gemm_operands(rng, False, True, 5, 6, 7, dtype)
    want = c.copy()
    _core.gemm(False, True, 1.0, a, b, 0.5, want, False)
    _core.gemm(False, True, 1.0, _ro(a), _ro(b), 0.5, c, False)
    np.testing.assert_array_equal(c, want)

    x, kernel, bias = _dense_case(rng, 6, 4, 3, dtype, True)
    out, out_ro = np.empty((6, 3), dtype), np.empty((6, 3), dtype)
    _core.dense_forward(out, x, kernel, bias, _core.TANH)
    _core.dense_forward(out_ro, _ro(x), _ro(kernel), _ro(bias), _core.TANH)
    np.testing.assert_array_equal(out, out_ro)
    grads = []
    for wrap in (lambda v: v, _ro):
        dx, dk, db, dout = np.empty((6, 4), dtype), np.empty((4, 3), dtype), np.empty(3, dtype), np.ones((6, 3), dtype)
        _core.dense_backward(dx, dk, db, dout, wrap(x), wrap(kernel), wrap(out), _core.TANH)
        grads.append((dx, dk, db))
    for u, v in zip(*grads):
        np.testing.assert_array_equal(u, v)
    assert _core.mse(_ro(out), _ro(out_ro)) == (0.0, 0.0)

    net = NETS[2]
    spec = spec_of(net)
    params = flat(make_weights(rng, net[0], net[2], dtype))
    xb = rng.standard_normal((4, net[0][0])).astype(dtype)
    yb = rng.standard_normal((4, net[0][-1])).astype(dtype)
    s1, g1 = core_gradients(params, spec, xb, yb)
    s2, g2 = core_gradients(_ro(params), spec, _ro(xb), _ro(yb))
    assert s1 == s2
    np.testing.assert_array_equal(g1, g2)


# -- NaN and inf propagate -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["naive", "blas"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagates(blas_threshold, path, dtype):
    """A NaN in an input reaches every output it feeds, on both gemm paths and
    through every activation (no -ffast-math): never silently dropped."""
    if path == "blas":
        blas_threshold(0)
    rng = np.random.default_rng(4)
    for ta in (False, True):
        for tb in (False, True):
            a, b, c = _gemm_operands(rng, ta, tb, 6, 5, 4, dtype)
            a[0, 0] = np.nan  # op(a): row 0 (or column 0 of a^T) feeds C's row 0 (or its row 0)
            _core.gemm(ta, tb, 1.0, a, b, 0.0, c, path == "naive")
            row = 0
            assert np.isnan(c[row]).all()
            assert np.isfinite(np.delete(c, row, axis=0)).all()
    x, kernel, bias = _dense_case(rng, 4, 3, 2, dtype, True)
    x[1, 2] = np.nan
    for act in ACTS:
        out = np.empty((4, 2), dtype)
        _core.dense_forward(out, x, kernel, bias, ACTS[act])
        assert np.isnan(out[1]).all() and np.isfinite(np.delete(out, 1, axis=0)).all()
    sse, sae = _core.mse(np.array([1.0, np.nan, 2.0], dtype), np.zeros(3, dtype))
    assert np.isnan(sse) and np.isnan(sae)
    sse, sae = _core.mse(np.array([1.0, np.inf, 2.0], dtype), np.zeros(3, dtype))
    assert sse == np.inf and sae == np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 100])
def test_all_finite_matches_numpy(dtype, n):
    rng = np.random.default_rng(n)
    for bad in [None, np.nan, np.inf, -np.inf]:
        for where in range(max(n, 1)):
            a = rng.standard_normal(n).astype(dtype)
            if bad is not None and n:
                a[where] = bad
            assert _core.all_finite(a) == bool(np.isfinite(a).all())
            if bad is None:
                break
