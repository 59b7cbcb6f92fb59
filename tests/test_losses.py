"""The loss kernels (csrc/loss_impl.h) against their NumPy twins
(fastopt.reference.loss, act_loss) on random shapes, dtypes, weights and
reductions; every loss gradient and the fused sigmoid + binary cross-entropy
and softmax + cross-entropy against torch's autograd to 1e-10 in float64 and
against central finite differences; no NaN from +-1e4 logits in float32; the
fo.losses classes and functions; bad input (labels out of range, rows that are
no distribution, negative or NaN sample weights...) refused with the argument
named and nothing written."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastopt as fo
from fastopt import _core
from fastopt import reference as ref

LOSS = fo.losses.CODES
RED = {k: v for k, v in fo.losses.REDUCTIONS.items() if isinstance(k, str) and k != "mean"}
ACT = fo.activations.CODES
CE = ("categorical_crossentropy", "sparse_categorical_crossentropy")
# (loss, from_logits, label_smoothing, delta) configurations covering every branch
CONFIGS = [
    ("mean_squared_error", False, 0.0, 1.0), ("mean_absolute_error", False, 0.0, 1.0),
    ("huber", False, 0.0, 1.0), ("huber", False, 0.0, 0.3), ("log_cosh", False, 0.0, 1.0),
    ("binary_crossentropy", False, 0.0, 1.0), ("binary_crossentropy", True, 0.0, 1.0),
    ("binary_crossentropy", False, 0.2, 1.0), ("binary_crossentropy", True, 0.1, 1.0),
    ("categorical_crossentropy", False, 0.0, 1.0), ("categorical_crossentropy", True, 0.0, 1.0),
    ("categorical_crossentropy", False, 0.1, 1.0), ("categorical_crossentropy", True, 0.3, 1.0),
    ("sparse_categorical_crossentropy", False, 0.0, 1.0), ("sparse_categorical_crossentropy", True, 0.0, 1.0),
]
IDS = [f"{k}-logits{f}-ls{ls}-d{d}" for k, f, ls, d in CONFIGS]


def make_batch(rng, kind, from_logits, B, C, dtype):
    """(y_true, y_pred) of a plausible batch for the loss."""
    if kind in CE or (kind == "binary_crossentropy"):
        pred = rng.standard_normal((B, C)) * 2 if from_logits else rng.uniform(0.02, 0.98, (B, C))
    else:
        pred = rng.standard_normal((B, C)) * 2
    if kind == "sparse_categorical_crossentropy":
        y = rng.integers(0, C, B).astype(float)
    elif kind == "categorical_crossentropy":
        y = rng.dirichlet(np.ones(C), B) if rng.random() < 0.5 else np.eye(C)[rng.integers(0, C, B)]
    elif kind == "binary_crossentropy":
        y = rng.uniform(0, 1, (B, C)) if rng.random() < 0.5 else rng.integers(0, 2, (B, C)).astype(float)
    else:
        y = rng.standard_normal((B, C))
        y = np.where(np.abs(pred - y) < 1e-3, y + 0.1, y)  # off the kinks of MAE and Huber
    return y.astype(dtype), pred.astype(dtype)


def kernel(kind, y, p, w=None, reduction="sum_over_batch_size", from_logits=False, ls=0.0, delta=1.0):
    g = np.empty_like(p)
    v = np.empty(p.shape[0], p.dtype)
    value = _core.loss(LOSS[kind], y, p, w, g, v, reduction=RED[reduction], from_logits=from_logits,
                       label_smoothing=ls, delta=delta)
    return value, g, v


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=st.sampled_from(CONFIGS), B=st.integers(1, 9), C=st.integers(1, 6),
       dtype=st.sampled_from([np.float32, np.float64]), reduction=st.sampled_from(list(RED)),
       weighted=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_kernel_matches_twin(cfg, B, C, dtype, reduction, weighted, seed):
    kind, from_logits, ls, delta = cfg
    rng = np.random.default_rng(seed)
    y, p = make_batch(rng, kind, from_logits, B, C, dtype)
    w = rng.uniform(0, 3, B).astype(dtype) if weighted else None
    value, g, v = kernel(kind, y, p, w, reduction, from_logits, ls, delta)
    want, want_g, want_v = ref.loss(kind, y, p, w, reduction, from_logits, ls, delta)
    tol = dict(rtol=3e-5, atol=3e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)
    assert value == pytest.approx(want, rel=tol["rtol"], abs=tol["atol"])
    np.testing.assert_allclose(g, want_g, **tol)
    np.testing.assert_allclose(v, want_v, **tol)


def test_gradient_only_or_values_only_are_the_same_numbers():
    rng = np.random.default_rng(0)
    for kind, from_logits, ls, delta in CONFIGS:
        y, p = make_batch(rng, kind, from_logits, 7, 3, np.float64)
        value, g, v = kernel(kind, y, p, None, "sum_over_batch_size", from_logits, ls, delta)
        bare = _core.loss(LOSS[kind], y, p, from_logits=from_logits, label_smoothing=ls, delta=delta)
        g2 = np.empty_like(p)
        with_g = _core.loss(LOSS[kind], y, p, None, g2, from_logits=from_logits, label_smoothing=ls,
                            delta=delta)
        assert bare == pytest.approx(value, rel=1e-14) and with_g == pytest.approx(value, rel=1e-14)
        np.testing.assert_array_equal(g, g2)


# -- torch ------------------------------------------------------------------------------

def torch_rows(torch, kind, y, p, from_logits, ls, delta):
    """Keras 3's per-sample losses, written with torch ops (autograd gives the gradient)."""
    F = torch.nn.functional
    eps = 1e-7
    C = p.shape[1]
    if kind == "mean_squared_error":
        return ((p - y) ** 2).mean(1)
    if kind == "mean_absolute_error":
        return (p - y).abs().mean(1)
    if kind == "huber":
        return F.huber_loss(p, y, reduction="none", delta=delta).mean(1)
    if kind == "log_cosh":
        e = p - y
        return (e + F.softplus(-2 * e) - np.log(2.0)).mean(1)
    if kind == "binary_crossentropy":
        t = y * (1 - ls) + 0.5 * ls
        if from_logits:
            return F.binary_cross_entropy_with_logits(p, t, reduction="none").mean(1)
        pc = p.clamp(eps, 1 - eps)
        return (-(t * pc.log() + (1 - t) * (1 - pc).log())).mean(1)
    if kind == "sparse_categorical_crossentropy":
        y = F.one_hot(y.long(), C).double()
    else:
        y = y * (1 - ls) + ls / C
    if from_logits:
        return -(y * F.log_softmax(p, 1)).sum(1)
    q = (p / p.sum(1, keepdim=True)).clamp(eps, 1 - eps)
    return -(y * q.log()).sum(1)


def torch_reduce(rows, w, reduction):
    B = rows.shape[0]
    total = (rows * w).sum() if w is not None else rows.sum()
    if reduction == "sum_over_batch_size":
        return total / B
    if reduction == "mean_with_sample_weight":
        return total / (w.sum() if w is not None else B)
    return total  # sum; none: the gradient of the values' sum


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("reduction", list(RED))
def test_loss_and_gradient_match_torch_autograd_float64(cfg, reduction):
    torch = pytest.importorskip("torch")
    kind, from_logits, ls, delta = cfg
    rng = np.random.default_rng(LOSS[kind] * 7 + len(reduction))
    y, p = make_batch(rng, kind, from_logits, 6, 4, np.float64)
    w = rng.uniform(0, 2, 6)
    for weights in (None, w):
        pt = torch.tensor(p, requires_grad=True)
        rows = torch_rows(torch, kind, torch.tensor(y), pt, from_logits, ls, delta)
        wt = None if weights is None else torch.tensor(weights)
        out = torch_reduce(rows, wt, reduction)
        out.backward()
        value, g, v = kernel(kind, y, p, weights, reduction, from_logits, ls, delta)
        want_v = (rows * (wt if wt is not None else 1)).detach().numpy()
        np.testing.assert_allclose(v, want_v, rtol=1e-10, atol=1e-12)
        assert value == pytest.approx(out.item(), rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(g, pt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind,ls", [("binary_crossentropy", 0.0), ("binary_crossentropy", 0.2),
                                     ("categorical_crossentropy", 0.0), ("categorical_crossentropy", 0.2),
                                     ("sparse_categorical_crossentropy", 0.0)])
def test_fused_activation_and_crossentropy_match_torch(kind, ls):
    """sigmoid + BCE and softmax + (sparse) CE from probabilities are computed from
    the logits z: the values and d loss / d z are torch's logits losses."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    act = "sigmoid" if kind == "binary_crossentropy" else "softmax"
    y, z = make_batch(rng, kind, True, 8, 5, np.float64)
    w = rng.uniform(0, 2, 8)
    zt = torch.tensor(z, requires_grad=True)
    rows = torch_rows(torch, kind, torch.tensor(y), zt, True, ls, 1.0)
    out = torch_reduce(rows, torch.tensor(w), "sum_over_batch_size")
    out.backward()
    a = np.empty_like(z)
    _core.activation(a, z, ACT[act])
    g = np.empty_like(z)
    value = _core.act_loss(LOSS[kind], y, z, a, ACT[act], sample_weight=w, grad=g, label_smoothing=ls)
    assert value == pytest.approx(out.item(), rel=1e-10)
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-10, atol=1e-12)
    twin = ref.act_loss(kind, y, z, act, sample_weight=w, label_smoothing=ls)
    assert value == pytest.approx(twin[0], rel=1e-12)
    np.testing.assert_allclose(g, twin[1], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("kind,act", [("mean_squared_error", "tanh"), ("mean_squared_error", "softmax"),
                                      ("huber", "gelu"), ("binary_crossentropy", "softmax"),
                                      ("categorical_crossentropy", "sigmoid"), ("log_cosh", "elu")])
def test_unfused_activation_and_loss_match_torch(kind, act):
    """Any other pair: the loss of a = act(z), then the activation's backward pass."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    y, _ = make_batch(rng, kind, False, 6, 4, np.float64)
    z = rng.standard_normal((6, 4))
    a = np.empty_like(z)
    _core.activation(a, z, ACT[act])
    g = np.empty_like(z)
    value = _core.act_loss(LOSS[kind], y, z, a, ACT[act], grad=g)
    zt = torch.tensor(z, requires_grad=True)
    F = torch.nn.functional
    at = {"tanh": torch.tanh, "softmax": lambda x: torch.softmax(x, 1), "gelu": F.gelu,
          "sigmoid": torch.sigmoid, "elu": F.elu}[act](zt)
    out = torch_reduce(torch_rows(torch, kind, torch.tensor(y), at, False, 0.0, 1.0), None, "sum_over_batch_size")
    out.backward()
    assert value == pytest.approx(out.item(), rel=1e-10)
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_gradient_matches_finite_differences(cfg):
    kind, from_logits, ls, delta = cfg
    rng = np.random.default_rng(LOSS[kind] + 40)
    y, p = make_batch(rng, kind, from_logits, 4, 3, np.float64)
    w = rng.uniform(0.5, 2, 4)
    _, g, _ = kernel(kind, y, p, w, "sum_over_batch_size", from_logits, ls, delta)
    h = 1e-6
    num = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        pp, pm = p.copy(), p.copy()
        pp[i] += h
        pm[i] -= h
        num[i] = (kernel(kind, y, pp, w, "sum_over_batch_size", from_logits, ls, delta)[0]
                  - kernel(kind, y, pm, w, "sum_over_batch_size", from_logits, ls, delta)[0]) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_large_logits_float32_give_no_nan(kind):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [1e4, 1e4, -1e4]], np.float32)
    y = {"binary_crossentropy": np.array([[1, 0, 1], [1, 0, 0], [0, 1, 1]], np.float32),
         "categorical_crossentropy": np.eye(3, dtype=np.float32)[[1, 0, 2]],
         "sparse_categorical_crossentropy": np.array([1, 0, 2], np.float32)}[kind]
    value, g, v = kernel(kind, y, z, from_logits=True)
    assert np.isfinite(value) and np.isfinite(g).all() and np.isfinite(v).all(), (value, g, v)
    assert value > 1e3  # confidently wrong rows cost about |z|
    act = "sigmoid" if kind == "binary_crossentropy" else "softmax"
    a = np.empty_like(z)
    _core.activation(a, z, ACT[act])
    gz = np.empty_like(z)
    fused = _core.act_loss(LOSS[kind], y, z, a, ACT[act], grad=gz)
    assert fused == pytest.approx(value, rel=1e-6) and np.isfinite(gz).all()
    np.testing.assert_allclose(gz, g, rtol=1e-6)
    # from probabilities (clipped, not fused): finite as well
    probs = kernel(kind, y, a)
    assert np.isfinite(probs[0]) and np.isfinite(probs[1]).all()


def test_mean_squared_error_gradient_is_the_training_loops():
    """The MSE loss code gives the bits of fo_mse, the kernel the loop calls today."""
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        p, y = rng.standard_normal((9, 3)).astype(dtype), rng.standard_normal((9, 3)).astype(dtype)
        value, g, _ = kernel("mean_squared_error", y, p)
        g_old = np.empty_like(p)
        sse, _ = _core.mse(p, y, g_old, 2.0 / p.size)
        np.testing.assert_array_equal(g, g_old)
        assert value == pytest.approx(sse / p.size, rel=1e-12)


def test_zero_weights_and_mean_with_sample_weight():
    y, p = np.array([[1.0], [0.0]]), np.array([[0.5], [0.25]])
    assert kernel("mean_squared_error", y, p, np.zeros(2), "mean_with_sample_weight")[0] == 0.0
    value, g, v = kernel("mean_squared_error", y, p, np.array([0.0, 2.0]), "mean_with_sample_weight")
    assert value == pytest.approx(0.0625) and g[0, 0] == 0.0
    np.testing.assert_allclose(v, [0.0, 0.125])


# -- fo.losses --------------------------------------------------------------------------

CLASSES = {"mean_squared_error": fo.losses.MeanSquaredError, "mean_absolute_error": fo.losses.MeanAbsoluteError,
           "huber": fo.losses.Huber, "log_cosh": fo.losses.LogCosh,
           "binary_crossentropy": fo.losses.BinaryCrossentropy,
           "categorical_crossentropy": fo.losses.CategoricalCrossentropy,
           "sparse_categorical_crossentropy": fo.losses.SparseCategoricalCrossentropy}


def make_loss(kind, from_logits, ls, delta, **kw):
    cls = CLASSES[kind]
    if kind == "huber":
        return cls(delta=delta, **kw)
    if kind in ("binary_crossentropy", "categorical_crossentropy"):
        return cls(from_logits=from_logits, label_smoothing=ls, **kw)
    if kind == "sparse_categorical_crossentropy":
        return cls(from_logits=from_logits, **kw)
    return cls(**kw)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight", None])
def test_loss_objects_match_twin(cfg, reduction):
    kind, from_logits, ls, delta = cfg
    rng = np.random.default_rng(21)
    y, p = make_batch(rng, kind, from_logits, 5, 3, np.float64)
    w = rng.uniform(0, 2, 5)
    loss = make_loss(kind, from_logits, ls, delta, reduction=reduction)
    want, want_g, want_v = ref.loss(kind, y, p, w, reduction or "none", from_logits, ls, delta)
    got = loss(y, p, sample_weight=w)
    if reduction is None:
        np.testing.assert_allclose(got, want_v, rtol=1e-12)
    else:
        assert isinstance(got, float) and got == pytest.approx(want, rel=1e-12)
    value, grad = loss.gradient(y, p, sample_weight=w.reshape(5, 1))
    np.testing.assert_allclose(grad, want_g, rtol=1e-12, atol=1e-14)
    assert loss.c_spec == (LOSS[kind], fo.losses.REDUCTIONS[reduction], from_logits, ls, delta)


def test_functions_are_the_batch_mean_and_take_keras_arguments():
    rng = np.random.default_rng(4)
    y, p = rng.standard_normal(10), rng.standard_normal((10, 1))
    assert fo.losses.mean_squared_error(y, p) == pytest.approx(np.mean((y - p[:, 0]) ** 2), rel=1e-14)
    assert fo.losses.mean_absolute_error(y, p) == pytest.approx(np.mean(np.abs(y - p[:, 0])), rel=1e-14)
    np.testing.assert_allclose(fo.losses.mean_squared_error(y, p, reduction=None), (y - p[:, 0]) ** 2)
    assert fo.losses.huber(y, p, delta=0.5) == pytest.approx(fo.losses.Huber(0.5)(y, p))
    logits = rng.standard_normal((10, 4))
    labels = rng.integers(0, 4, 10)
    assert fo.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True) == pytest.approx(
        fo.losses.categorical_crossentropy(np.eye(4)[labels], logits, from_logits=True), rel=1e-14)
    assert fo.losses.binary_crossentropy(y > 0, 1 / (1 + np.exp(-p)), label_smoothing=0.1) == pytest.approx(
        fo.losses.BinaryCrossentropy(label_smoothing=0.1)(y > 0, 1 / (1 + np.exp(-p))))


def test_dtype_follows_the_floating_inputs():
    y = np.array([[1, 0], [0, 1]])  # ints do not vote
    p32 = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)
    _, g = fo.losses.BinaryCrossentropy().gradient(y, p32)
    assert g.dtype == np.float32
    _, g = fo.losses.BinaryCrossentropy(dtype="float64").gradient(y, p32)
    assert g.dtype == np.float64
    _, g = fo.losses.MeanSquaredError().gradient(y, [[1, 2], [3, 4]])
    assert g.dtype == np.float64


def test_get_serialize_and_config_round_trip():
    L = fo.losses
    assert L.get("mse") is L.mean_squared_error and L.get("MAE") is L.mean_absolute_error
    assert L.get("bce") is L.binary_crossentropy and L.get("binary_crossentropy") is L.binary_crossentropy
    assert L.get(None) is None
    assert isinstance(L.get("CategoricalCrossentropy"), L.CategoricalCrossentropy)
    h = L.Huber(delta=2.0, reduction="sum", name="huber")
    assert h.get_config() == {"name": "huber", "reduction": "sum", "delta": 2.0}
    for obj in (h, L.BinaryCrossentropy(from_logits=True, label_smoothing=0.2),
                L.SparseCategoricalCrossentropy(from_logits=True), L.LogCosh(reduction=None)):
        again = L.get(L.serialize(obj))
        assert type(again) is type(obj) and again.get_config() == obj.get_config()
    assert L.as_loss("bce").c_spec == L.BinaryCrossentropy().c_spec
    with pytest.raises(ValueError, match="hinge"):
        L.get("hinge")
    with pytest.raises(ValueError, match="reduction"):
        L.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="axis"):
        L.CategoricalCrossentropy(axis=0)
    with pytest.raises(ValueError, match="ignore_class"):
        L.SparseCategoricalCrossentropy(ignore_class=-1)
    with pytest.raises(ValueError, match="delta"):
        L.Huber(delta=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        L.BinaryCrossentropy(label_smoothing=1.5)


def test_compile_takes_every_loss():
    model = fo.Sequential([fo.Dense(2, input_shape=(3,))])
    model.compile("sgd", fo.losses.MeanSquaredError())
    assert model.loss == "mean_squared_error"
    for loss in ("binary_crossentropy", fo.losses.Huber(), fo.losses.MeanSquaredError(reduction="sum"),
                 "categorical_crossentropy", "sparse_categorical_crossentropy", "log_cosh", "mae"):
        model.compile("sgd", loss)
        assert model._net.loss == fo.losses.as_loss(loss).code
    model.compile("sgd", fo.losses.Huber(delta=2.0))
    assert model.loss == fo.losses.serialize(fo.losses.Huber(delta=2.0))


# -- bad input ----------------------------------------------------------------------------

def test_bad_targets_and_weights_are_refused_and_nothing_is_written():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, (4, 3))
    labels = np.array([0.0, 2.0, 1.0, 1.0])
    onehot = np.eye(3)[[0, 2, 1, 1]]
    g, v = np.full_like(p, 7.0), np.full(4, 7.0)
    S, C, B = LOSS["sparse_categorical_crossentropy"], LOSS["categorical_crossentropy"], LOSS["binary_crossentropy"]
    cases = [
        (lambda: _core.loss(S, np.array([0.0, 3.0, 1.0, 1.0]), p, None, g, v), ValueError, r"y_true\[1\] is 3"),
        (lambda: _core.loss(S, np.array([0.0, -1.0, 1.0, 1.0]), p, None, g, v), ValueError, "y_true"),
        (lambda: _core.loss(S, np.array([0.0, 1.5, 1.0, 1.0]), p, None, g, v), ValueError, "class index"),
        (lambda: _core.loss(S, np.array([0.0, np.nan, 1.0, 1.0]), p, None, g, v), ValueError, "y_true"),
        (lambda: _core.loss(S, labels[:3], p, None, g, v), ValueError, "y_true"),
        (lambda: _core.loss(C, onehot * 2, p, None, g, v, strict=True), ValueError, "y_true row 0"),
        (lambda: _core.loss(C, -onehot + 2 * np.eye(3)[[1, 0, 0, 0]], p, None, g, v, strict=True),
         ValueError, "y_true"),
        (lambda: _core.loss(B, onehot * 1.5, p, None, g, v, strict=True), ValueError, "y_true"),
        (lambda: _core.loss(S, labels, p, np.array([1.0, -0.5, 1.0, 1.0]), g, v), ValueError,
         r"sample_weight\[1\]"),
        (lambda: _core.loss(S, labels, p, np.array([1.0, 1.0, np.nan, 1.0]), g, v), ValueError, "sample_weight"),
        (lambda: _core.loss(S, labels, p, np.array([1.0, 1.0, np.inf, 1.0]), g, v), ValueError, "sample_weight"),
        (lambda: _core.loss(S, labels, p, np.ones(3), g, v), ValueError, "sample_weight"),
        (lambda: _core.loss(S, labels, p, np.ones(4, np.float32), g, v), TypeError, "sample_weight"),
        (lambda: _core.loss(7, labels, p, None, g, v), ValueError, "kind"),
        (lambda: _core.loss(2 ** 33, labels, p, None, g, v), ValueError, "kind"),
        (lambda: _core.loss(S, labels, p, None, g, v, reduction=9), ValueError, "reduction"),
        (lambda: _core.loss(S, labels, p, None, g, v, label_smoothing=-0.1), ValueError, "label_smoothing"),
        (lambda: _core.loss(LOSS["huber"], onehot, p, None, g, v, delta=0.0), ValueError, "delta"),
        (lambda: _core.loss(LOSS["huber"], onehot.astype(np.float32), p.astype(np.float32), None, None, None,
                            delta=1e300), ValueError, "delta"),
        (lambda: _core.loss(S, labels, p, None, p, v), ValueError, "shares memory"),
        (lambda: _core.loss(S, labels, p, None, g, g[0]), ValueError, "values"),
        (lambda: _core.loss(S, labels, p.astype(np.float32), None, g, v), TypeError, "y_true"),
        (lambda: _core.loss(S, labels, p, None, g.T, v), ValueError, "grad"),
    ]
    for call, exc, word in cases:
        with pytest.raises(exc, match=word):
            call()
        assert (g == 7.0).all() and (v == 7.0).all()
    # the check the training data path runs on all of y once
    with pytest.raises(ValueError, match="y_true row 2"):
        _core.check_targets(C, np.vstack([onehot[:2], [[0.5, 0.6, 0.0]], onehot[3:]]), 3)
    with pytest.raises(ValueError, match=r"y_true\[3\]"):
        _core.check_targets(S, np.array([0.0, 1, 2, 3]), 3)
    _core.check_targets(C, np.array([[0.2, 0.3, 0.5]]), 3)  # soft labels are fine
    _core.check_targets(C, onehot * 2, 3, strict=False)      # Keras computes these without complaint
    assert ref.check_targets("categorical_crossentropy", onehot * 2, 3) == 0


def test_training_targets_check():
    L = fo.losses
    onehot = np.eye(3)[[0, 2, 1]]
    L.CategoricalCrossentropy().check_targets(onehot, 3)
    L.SparseCategoricalCrossentropy().check_targets(np.array([[0.0], [2.0], [1.0]]), 3)
    L.BinaryCrossentropy().check_targets(np.array([[0.0], [1.0], [0.3]]), 1)
    L.MeanSquaredError().check_targets(np.array([[5.0], [-1.0]]), 1)
    with pytest.raises(ValueError, match="y_true row 1"):
        L.CategoricalCrossentropy().check_targets(np.array([[1.0, 0, 0], [1.0, 1.0, 0]]), 3)
    with pytest.raises(ValueError, match=r"y_true\[2\] is 3"):
        L.SparseCategoricalCrossentropy().check_targets(np.array([0.0, 1.0, 3.0]), 3)
    with pytest.raises(ValueError, match="y_true row 0"):
        L.BinaryCrossentropy().check_targets(np.array([[2.0]]), 1)
    with pytest.raises(ValueError, match="y_true"):
        L.CategoricalCrossentropy().check_targets(onehot, 4)


def test_loss_objects_refuse_bad_input():
    L = fo.losses
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    with pytest.raises(ValueError, match="y_true"):
        L.SparseCategoricalCrossentropy()(np.array([0, 3]), p)
    with pytest.raises(ValueError, match="same shape"):
        L.CategoricalCrossentropy()(np.array([[0], [1]]), p)
    with pytest.raises(ValueError, match="sample_weight"):
        L.CategoricalCrossentropy()(np.eye(3)[[0, 2]], p, sample_weight=-1.0)
    with pytest.raises(ValueError, match="sample_weight"):
        L.CategoricalCrossentropy()(np.eye(3)[[0, 2]], p, sample_weight=[1.0, np.nan])
    with pytest.raises(ValueError, match="sample_weight"):
        L.CategoricalCrossentropy()(np.eye(3)[[0, 2]], p, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="y_pred"):
        L.MeanSquaredError()(np.zeros((0, 1)), np.zeros((0, 1)))
    with pytest.raises(ValueError, match="y_pred"):
        L.MeanSquaredError()(np.zeros(2), np.array([0.0, np.inf]))
    with pytest.raises(TypeError, match="y_true"):
        L.MeanSquaredError()(np.array(["a", "b"]), np.zeros(2))
    with pytest.warns(SyntaxWarning, match="num_classes"):
        L.CategoricalCrossentropy()(np.ones((2, 1)), np.full((2, 1), 0.5))
