"""The activation kernels (csrc/dense_impl.h) against their NumPy twins
(fastopt.reference.act_forward/act_backward) on random shapes and dtypes,
against torch's autograd to 1e-10 in float64, and against central finite
differences; no NaN from +-1e4 in float32; fo.activations, Dense's activation
argument, the Activation layer, and what bad input gets."""
import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastopt as fo
from fastopt import _core
from fastopt import reference as ref

CODES = fo.activations.CODES
NAMES = list(CODES)  # every C activation, gelu_tanh included
PARAMS = {"leaky_relu": [0.2, 0.0, 0.05, 1.0], "elu": [1.0, 0.0, 0.3, 2.5]}
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def kernel_forward(z, name, param=None):
    out = np.empty_like(z)
    _core.activation(out, z, CODES[name], param)
    return out


def kernel_backward(da, z, a, name, param=None):
    dz = np.empty_like(da)
    _core.activation_backward(dz, da, z, a, CODES[name], param)
    return dz


def away_from_kinks(z, name):
    """Move inputs off the points where a derivative jumps (0; +-3 for hard_sigmoid)."""
    z = np.where(np.abs(z) < 1e-3, 0.5, z)
    if name == "hard_sigmoid":
        z = np.where(np.abs(np.abs(z) - 3) < 1e-3, 1.0, z)
    return z


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), rows=st.integers(0, 7), cols=st.integers(1, 9),
       dtype=st.sampled_from([np.float32, np.float64]), scale=st.sampled_from([0.5, 3.0, 30.0]),
       seed=st.integers(0, 2 ** 31 - 1), pick=st.integers(0, 3))
def test_kernels_match_twin(name, rows, cols, dtype, scale, seed, pick):
    rng = np.random.default_rng(seed)
    param = PARAMS[name][pick] if name in PARAMS else None
    z = (rng.standard_normal((rows, cols)) * scale).astype(dtype)
    da = rng.standard_normal((rows, cols)).astype(dtype)
    a = kernel_forward(z, name, param)
    want_a = ref.act_forward(z, name, param)
    assert a.dtype == dtype
    np.testing.assert_allclose(a, want_a, **TOL[dtype])
    dz = kernel_backward(da, z, a, name, param)
    np.testing.assert_allclose(dz, ref.act_backward(da, z, a, name, param), **TOL[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_in_place_forward_and_backward(name):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 5))
    a = kernel_forward(z, name)
    inplace = z.copy()
    _core.activation(inplace, inplace, CODES[name])
    np.testing.assert_array_equal(inplace, a)
    da = rng.standard_normal((4, 5))
    want = kernel_backward(da, z, a, name)
    d = da.copy()
    _core.activation_backward(d, d, z, a, CODES[name])
    np.testing.assert_array_equal(d, want)


# -- torch ------------------------------------------------------------------------------

def torch_act(torch, name, param):
    F = torch.nn.functional
    p = ref.default_param(name) if param is None else param
    return {
        "linear": lambda x: x, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
        "softmax": lambda x: torch.softmax(x, -1),
        "leaky_relu": lambda x: F.leaky_relu(x, p), "elu": lambda x: F.elu(x, p),
        "gelu": lambda x: F.gelu(x), "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "silu": F.silu, "softplus": lambda x: torch.logaddexp(x, torch.zeros_like(x)),
        # Keras 3's relu6(x + 3) / 6 through autograd: torch's own hardsigmoid
        # backward multiplies by a float32 1/6 (relative error 3e-8)
        "softsign": F.softsign, "hard_sigmoid": lambda x: torch.clamp(x + 3, 0, 6) / 6,
        "exponential": torch.exp,
    }[name]


@pytest.mark.parametrize("name", NAMES)
def test_match_torch_autograd_float64(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(CODES[name])
    for param in PARAMS.get(name, [None]):
        z = away_from_kinks(rng.standard_normal((6, 7)) * 3, name)
        g = rng.standard_normal((6, 7))
        zt = torch.tensor(z, requires_grad=True)
        at = torch_act(torch, name, param)(zt)
        (at * torch.tensor(g)).sum().backward()
        a = kernel_forward(z, name, param)
        np.testing.assert_allclose(a, at.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(kernel_backward(g, z, a, name, param), zt.grad.numpy(),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_finite_differences(name):
    rng = np.random.default_rng(100 + CODES[name])
    for param in PARAMS.get(name, [None]):
        z = away_from_kinks(rng.standard_normal((3, 4)) * 2, name)
        g = rng.standard_normal((3, 4))
        a = kernel_forward(z, name, param)
        dz = kernel_backward(g, z, a, name, param)
        h = 1e-6
        num = np.zeros_like(z)
        for i in np.ndindex(z.shape):
            zp, zm = z.copy(), z.copy()
            zp[i] += h
            zm[i] -= h
            num[i] = np.sum(g * (kernel_forward(zp, name, param) - kernel_forward(zm, name, param))) / (2 * h)
        np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_large_inputs_float32_give_no_nan(name):
    z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], np.float32)
    a = kernel_forward(z, name)
    da = np.ones_like(z)
    dz = kernel_backward(da, z, a, name)
    assert not np.isnan(a).any() and not np.isnan(dz).any(), (a, dz)
    if name != "exponential":  # exp(1e4) is inf, as it should be
        assert np.isfinite(a).all() and np.isfinite(dz).all(), (a, dz)


def test_softmax_rows_sum_to_one_and_are_stable():
    z = np.array([[1e4, 0.0, -1e4], [3.0, 3.0, 3.0]], np.float32)
    a = kernel_forward(z, "softmax")
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(a[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(a[1], 1 / 3, rtol=1e-6)


# -- the dense layer with every activation ------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_forward_backward_with_z_and_param(name, dtype):
    rng = np.random.default_rng(7)
    param = PARAMS[name][2] if name in PARAMS else None
    x = rng.standard_normal((5, 3)).astype(dtype)
    k = rng.standard_normal((3, 4)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    out, z = np.empty((5, 4), dtype), np.empty((5, 4), dtype)
    _core.dense_forward(out, x, k, b, CODES[name], param, z=z)
    zz = x @ k + b
    np.testing.assert_allclose(z, zz, **TOL[dtype])
    np.testing.assert_allclose(out, ref.act_forward(z, name, param), **TOL[dtype])
    dout = rng.standard_normal((5, 4)).astype(dtype)
    dz_want = ref.act_backward(dout, z, out, name, param)
    dx, dk, db = np.empty_like(x), np.empty_like(k), np.empty_like(b)
    d = dout.copy()
    _core.dense_backward(dx, dk, db, d, x, k, out, CODES[name], param, z=z)
    np.testing.assert_allclose(d, dz_want, **TOL[dtype])
    np.testing.assert_allclose(dk, x.T @ dz_want, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)
    np.testing.assert_allclose(dx, dz_want @ k.T, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)
    np.testing.assert_allclose(db, dz_want.sum(0), rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)


def test_dense_forward_without_z_is_the_same_bits():
    rng = np.random.default_rng(3)
    x, k, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    for name in NAMES:
        a1, a2, z = np.empty((6, 3)), np.empty((6, 3)), np.empty((6, 3))
        _core.dense_forward(a1, x, k, b, CODES[name])
        _core.dense_forward(a2, x, k, b, CODES[name], None, z=z)
        np.testing.assert_array_equal(a1, a2)


def test_dense_backward_needs_z_for_gelu_silu_softsign():
    x, k = np.ones((2, 3)), np.ones((3, 2))
    out, dout = np.ones((2, 2)), np.ones((2, 2))
    for name in ("gelu", "gelu_tanh", "silu", "softsign"):
        before = dout.copy()
        with pytest.raises(ValueError, match="z"):
            _core.dense_backward(None, np.empty((3, 2)), None, dout, x, k, out, CODES[name])
        np.testing.assert_array_equal(dout, before)


# -- fo.activations ----------------------------------------------------------------------

FUNCS = {"linear": fo.activations.linear, "relu": fo.activations.relu, "sigmoid": fo.activations.sigmoid,
         "tanh": fo.activations.tanh, "softmax": fo.activations.softmax,
         "leaky_relu": fo.activations.leaky_relu, "elu": fo.activations.elu, "gelu": fo.activations.gelu,
         "silu": fo.activations.silu, "softplus": fo.activations.softplus,
         "softsign": fo.activations.softsign, "hard_sigmoid": fo.activations.hard_sigmoid,
         "exponential": fo.activations.exponential}


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functions_match_twin_and_keep_dtype(name, dtype):
    x = np.random.default_rng(2).standard_normal((3, 4, 5)).astype(dtype)
    got = FUNCS[name](x)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, ref.act_forward(x, name), **TOL[dtype])


def test_function_parameters_and_aliases():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(fo.activations.leaky_relu(x, negative_slope=0.1), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(fo.activations.elu(x, alpha=0.5), np.where(x > 0, x, 0.5 * np.expm1(x)))
    np.testing.assert_allclose(fo.activations.gelu(x, approximate=True), ref.act_forward(x, "gelu_tanh"))
    assert fo.activations.swish is fo.activations.silu
    np.testing.assert_allclose(fo.activations.hard_sigmoid(x), np.clip(x / 6 + 0.5, 0, 1), rtol=1e-15)
    assert fo.activations.relu([-1, 2]).dtype == np.float64  # lists and ints become float64
    assert fo.activations.tanh(0.5).shape == () and fo.activations.sigmoid(np.float32(0)) == 0.5
    big_endian = np.array([-1.0, 2.0], dtype=">f8")
    np.testing.assert_array_equal(fo.activations.relu(big_endian), [0.0, 2.0])


def test_softmax_axis():
    x = np.random.default_rng(4).standard_normal((3, 4, 5))
    for axis in (0, 1, 2, -1, -3):
        got = fo.activations.softmax(x, axis=axis)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        np.testing.assert_allclose(got, e / e.sum(axis=axis, keepdims=True), rtol=1e-12)
    with pytest.raises(ValueError, match="axis"):
        fo.activations.softmax(x, axis=3)
    with pytest.raises(ValueError, match="scalar"):
        fo.activations.softmax(1.0)


def test_get_serialize_resolve():
    A = fo.activations
    assert A.get(None) is A.linear and A.get("swish") is A.silu and A.get("ReLU") is A.relu
    assert A.resolve("gelu") == (CODES["gelu"], 0.0)
    assert A.resolve(functools.partial(A.gelu, approximate=True)) == (CODES["gelu_tanh"], 0.0)
    assert A.resolve(A.leaky_relu) == (CODES["leaky_relu"], 0.2)
    leaky = functools.partial(A.leaky_relu, negative_slope=0.1)
    assert A.resolve(leaky) == (CODES["leaky_relu"], 0.1)
    assert A.serialize(leaky) == {"name": "leaky_relu", "negative_slope": 0.1}
    assert A.serialize(A.elu) == "elu" and A.serialize("tanh") == "tanh" and A.serialize(None) is None
    back = A.get(A.serialize(leaky))
    np.testing.assert_array_equal(back(np.array([-1.0, 1.0])), [-0.1, 1.0])


@pytest.mark.parametrize("bad,exc,word", [
    ("softmin", ValueError, "softmin"),
    (lambda x: x, ValueError, "fastopt.activations"),
    (functools.partial(fo.activations.softmax, axis=0), ValueError, "axis"),
    (functools.partial(fo.activations.relu, max_value=6), ValueError, "max_value"),
    (functools.partial(fo.activations.leaky_relu, negative_slope=2.0), ValueError, "negative_slope"),
    (functools.partial(fo.activations.elu, alpha=-1.0), ValueError, "alpha"),
    (functools.partial(fo.activations.gelu, approximate="yes"), TypeError, "approximate"),
])
def test_resolve_refuses_what_the_kernels_cannot_run(bad, exc, word):
    with pytest.raises(exc, match=word):
        fo.activations.resolve(bad)


def test_functions_refuse_bad_input():
    with pytest.raises(TypeError, match="x"):
        fo.activations.relu(np.array(["a"]))
    with pytest.raises(ValueError, match="negative_slope"):
        fo.activations.leaky_relu(np.ones(2), negative_slope=-0.1)
    with pytest.raises(TypeError, match="alpha"):
        fo.activations.elu(np.ones(2), alpha="1")


# -- Dense and the Activation layer ------------------------------------------------------

def test_dense_takes_every_name_and_function():
    for name in list(fo.layers.ACTIVATIONS)[1:]:
        layer = fo.Dense(2, activation=name)
        assert layer._act == fo.layers.ACTIVATIONS[name]
    for fn in FUNCS.values():
        layer = fo.Dense(2, activation=fn)
        assert layer.activation == fn.__name__
    layer = fo.Dense(2, activation=functools.partial(fo.activations.gelu, approximate=True))
    assert layer._act == CODES["gelu_tanh"]
    assert fo.Dense.from_config(layer.get_config())._act == CODES["gelu_tanh"]


def test_dense_carries_its_activation_parameter_into_the_network():
    for act, param in ((functools.partial(fo.activations.leaky_relu, negative_slope=0.1), 0.1),
                       ({"name": "elu", "alpha": 0.5}, 0.5)):
        model = fo.Sequential([fo.Dense(2, activation=act, input_shape=(3,))], dtype="float64", seed=0)
        assert model.layers[0]._act_param == param
        assert model.spec[5] == (param,)
        x = np.random.default_rng(1).standard_normal((5, 3))
        layer = model.layers[0]
        np.testing.assert_allclose(model.predict(x), layer(x), rtol=0, atol=0)


def test_dense_call_uses_the_activation():
    model = fo.Sequential([fo.Dense(3, activation="elu", input_shape=(2,))], dtype="float64", seed=1)
    x = np.random.default_rng(0).standard_normal((4, 2))
    layer = model.layers[0]
    np.testing.assert_allclose(layer(x), ref.act_forward(x @ layer.kernel + layer.bias, "elu"), rtol=1e-14)


@pytest.mark.parametrize("act", ["elu", "leaky_relu", "softplus", "hard_sigmoid"])
def test_sequential_trains_with_output_differentiated_activations_as_the_twin(act):
    """The training loop runs the activations differentiated from their output
    (with Keras' default parameter); softmax last, with MSE, exercises its Jacobian."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((24, 3)), rng.random((24, 2))
    model = fo.Sequential([fo.Dense(4, activation=act, input_shape=(3,)), fo.Dense(2, activation="softmax")],
                          dtype="float64", seed=3)
    model.compile(fo.optimizers.SGD(0.1), "mse")
    w0 = model.get_weights()
    h = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    twin_w = [w.copy() for w in w0]
    twin = ref.fit(twin_w, [act, "softmax"], True, 0.0, 0.0, ref.ReferenceOptimizer("sgd", learning_rate=0.1),
                   x, y, 2, 8)
    np.testing.assert_allclose(h.history["loss"], twin["loss"], rtol=1e-10)
    for got, want in zip(model.get_weights(), twin_w):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_sequential_trains_activations_that_need_z():
    model = fo.Sequential([fo.Dense(3, activation="gelu", input_shape=(3,)), fo.Dense(1, activation="silu")],
                          dtype="float64", seed=0)
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).standard_normal((8, 3))
    loss, grads = model.compute_gradients(x, x[:, :1])
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads)


def test_activation_layer():
    layer = fo.layers.Activation("softmax")
    x = np.random.default_rng(0).standard_normal((2, 3))
    np.testing.assert_allclose(layer(x), fo.activations.softmax(x))
    leaky = fo.layers.Activation(functools.partial(fo.activations.leaky_relu, negative_slope=0.3))
    np.testing.assert_allclose(leaky(np.array([-1.0, 2.0])), [-0.3, 2.0])
    again = fo.layers.Activation.from_config(leaky.get_config())
    assert again.get_config() == leaky.get_config() == {"activation": {"name": "leaky_relu",
                                                                       "negative_slope": 0.3}, "name": None}
    assert layer.count_params() == 0 and layer.trainable_variables == []
    with pytest.raises(ValueError):
        fo.layers.Activation("nope")


# -- bad input to the kernels --------------------------------------------------------------

def test_kernel_bad_input_names_the_argument_and_changes_nothing():
    z = np.ones((2, 3))
    out = np.zeros((2, 3))
    cases = [
        (lambda: _core.activation(out, z, 99), ValueError, "activation"),
        (lambda: _core.activation(out, z, 2 ** 40), ValueError, "activation"),
        (lambda: _core.activation(out, z, True), TypeError, "activation"),
        (lambda: _core.activation(out, z, CODES["leaky_relu"], 1.5), ValueError, "act_param"),
        (lambda: _core.activation(out, z, CODES["elu"], float("nan")), ValueError, "act_param"),
        (lambda: _core.activation(out, z.astype(np.float32), CODES["elu"], 1e300), ValueError, "act_param"),
        (lambda: _core.activation(out, z.astype(np.float32), 1), TypeError, "out"),
        (lambda: _core.activation(np.zeros((3, 2)), z, 1), ValueError, "out"),
        (lambda: _core.activation(out[:, :2], z[:, :2], 1), ValueError, "C-contiguous"),
        (lambda: _core.activation(out.reshape(-1)[1:4], out.reshape(-1)[0:3], 1), ValueError, "overlaps"),
        (lambda: _core.activation_backward(out, z, None, None, CODES["relu"]), ValueError, "a"),
        (lambda: _core.activation_backward(out, z, None, z, CODES["gelu"]), ValueError, "z"),
    ]
    for call, exc, word in cases:
        before = out.copy()
        with pytest.raises(exc, match=word):
            call()
        np.testing.assert_array_equal(out, before)
