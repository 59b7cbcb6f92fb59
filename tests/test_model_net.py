"""The model's C network object and the calls built on it: the layout, the fast
and thorough paths of the per-step calls (train_on_batch, test_on_batch,
predict_on_batch, compute_gradients, predict), fit with Keras 3's signature
(batch_size, sample_weight, class_weight, validation_freq, steps_per_epoch,
batch hooks, History from the bulk run), DivergenceWarning, the zero-sample
rule, unaligned input, and the raw Network's checks."""
import warnings

import numpy as np
import pytest

import fastopt as fo
from fastopt import _core
from fastopt import models as fo_models
from fastopt import reference as ref

from optim_helpers import model_fast_path

ARCH = [dict(units=6, activation="tanh"), dict(units=5, activation="sigmoid", use_bias=False),
        dict(units=2)]
ACTS, BIAS = ["tanh", "sigmoid", "linear"], [True, False, True]


def make_model(dtype="float64", seed=0, opt=None, metrics=None, arch=ARCH, n_in=4):
    layers = [fo.Dense(**dict(c, **({"input_shape": (n_in,)} if i == 0 else {}))) for i, c in enumerate(arch)]
    model = fo.Sequential(layers, dtype=dtype, seed=seed)
    model.compile(opt or fo.optimizers.Adam(0.01), "mse", metrics=metrics)
    return model


def data(n=40, n_in=4, n_out=2, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    y = (np.tanh(2 * x[:, :n_out]) + 0.3 * rng.standard_normal((n, n_out))).astype(dtype)
    return x, y


def state(model):
    """Everything a step changes: weights, optimizer slots, iterations, the shuffle state."""
    slots = [s.copy() for s in model._slots if s is not None]
    return [w.copy() for w in model.get_weights()], slots, model.optimizer.iterations, model._rng_state.copy()


def assert_same_state(a, b):
    wa, sa, ia, ra = a
    wb, sb, ib, rb = b
    assert ia == ib
    np.testing.assert_array_equal(ra, rb)
    assert len(wa) == len(wb) and len(sa) == len(sb)
    for u, v in zip(wa + sa, wb + sb):
        np.testing.assert_array_equal(u, v)


# -- the network object: the one place that knows the layout ------------------------------

def test_layout_is_where_the_variables_live():
    model = make_model()
    net = model._net
    assert net.n_params == model.count_params() == 4 * 6 + 6 + 6 * 5 + 5 * 2 + 2
    assert net.units == (4, 6, 5, 2)
    base = model._params.__array_interface__["data"][0]
    assert len(net.layout) == len(model.trainable_variables) == 5
    for (offset, shape), v in zip(net.layout, model.trainable_variables):
        assert v.shape == shape
        assert v.base is model._params
        assert (v.__array_interface__["data"][0] - base) // 8 == offset
    # views of any flat buffer follow the same layout
    flat = np.arange(net.n_params, dtype=np.float64)
    views = net.views(flat)
    for (offset, shape), v in zip(net.layout, views):
        np.testing.assert_array_equal(v.ravel(), flat[offset:offset + v.size])
    assert all(not v.flags.writeable for v in net.views(flat, writeable=False))


def test_optimizer_state_is_views_of_the_flat_slots():
    model = make_model()
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    st = model.optimizer.get_state(model.trainable_variables)
    for (offset, shape), slots in zip(model._net.layout, st["slots"]):
        for flat, s in zip(model._slots, slots):
            if flat is not None:
                np.testing.assert_array_equal(s.ravel(), flat[offset:offset + s.size])


@pytest.mark.parametrize("make,exc,word", [
    (lambda rng: _core.Network(((3, 1), (0,), (True,), (0.0,), (0.0,)), "int32", rng), TypeError, "dtype"),
    (lambda rng: _core.Network(((3, 1), (0,), (True,), (0.0,), (0.0,)), "float64", rng[:3]), ValueError,
     "rng_state"),
    (lambda rng: _core.Network(((3, 1), (2**32,), (True,), (0.0,), (0.0,)), "float64", rng), ValueError,
     "activation"),
    (lambda rng: _core.Network(((3, 0), (0,), (True,), (0.0,), (0.0,)), "float64", rng), ValueError, "units"),
    (lambda rng: _core.Network([3, 1], "float64", rng), TypeError, "spec"),
])
def test_network_refuses_bad_construction(make, exc, word):
    with pytest.raises(exc, match=word):
        make(np.ones(4, np.uint64))


def test_network_calls_refuse_bad_arrays_and_change_nothing():
    model = make_model()
    net, x, y = model._net, *data()
    before = state(model)
    other = make_model(seed=3)._net
    b = other.batches(x, y, None, 8, True)
    cases = [
        (lambda: net.views(np.zeros(3)), ValueError, "flat"),
        (lambda: net.views(np.zeros(net.n_params, np.float32)), TypeError, "flat"),
        (lambda: net.train(b, 1, np.array([0.1]), np.zeros((1, 4))), ValueError, "another network"),
        (lambda: net.train(net.batches(x, y, None, 8, True), 1, np.array([-0.1]), np.zeros((1, 4))),
         ValueError, "lr"),
        (lambda: net.train(net.batches(x, y, None, 8, True), 10, np.array([0.1]), np.zeros((1, 4))),
         ValueError, "stats"),
        (lambda: net.batches(x, y, None, 0, True), ValueError, "batch_size"),
        (lambda: net.batches(x, y, None, 8, True, 99), ValueError, "steps_per_epoch"),
        (lambda: net.batches(x, y[:5], None, 8, True), ValueError, "y"),
        (lambda: net.batches(x, y, -np.ones(len(x)), 8, True), ValueError, "sample_weight"),
        (lambda: net.train_on_batch(x, y, None, np.array([np.nan])), ValueError, "lr"),
        (lambda: net.train_on_batch(x.astype(np.float32), y, None, 0.1), TypeError, "x"),
        (lambda: net.train_on_batch(model._params[:8].reshape(2, 4), y[:2], None, 0.1), ValueError,
         "shares memory"),
        (lambda: net.gradients(x, y[:, :1]), ValueError, "y"),
        (lambda: net.forward(x[:0]), ValueError, "no samples"),
        (lambda: net.bind(model._params, model._params, None, (None,) * _core.MAX_SLOTS), ValueError,
         "shares memory"),
    ]
    for call, exc, word in cases:
        with pytest.raises(exc, match=word):
            call()
    assert_same_state(state(model), before)


def test_all_zero_rng_state_is_refused():
    """xoshiro256** never leaves the all-zero state: a shuffled fit would spin."""
    model = make_model()
    x, y = data()
    model._rng_state[...] = 0
    before = state(model)
    with pytest.raises(ValueError, match="rng_state"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert_same_state(state(model), before)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)  # no shuffle: not used
    with pytest.raises(ValueError, match="rng_state"):
        _core.shuffle(np.arange(5, dtype=np.int64), np.zeros(4, np.uint64))


def test_train_epoch_batch_larger_than_the_rows_stays_in_its_workspace():
    """Regression: the workspace was checked for min(batch, n) rows but split for batch."""
    spec = ((3, 4, 1), (_core.TANH, _core.LINEAR), (True, True), (0.0, 0.0), (0.0, 0.0))
    n_params, wn = _core.net_sizes(spec, 5)
    buf = np.full(wn + 4096, 12345.0)
    work = buf[:wn]
    p, g = np.random.default_rng(0).standard_normal(n_params), np.zeros(n_params)
    hyper = (0.0, 0.0, 0.0, 0.0, 0.0, False, 0.0, False, 0.9, 0.999, 1e-7, False)
    x, y = np.ones((5, 3)), np.ones((5, 1))
    for shuffle in (False, True):
        done, *_ = _core.train_epoch(p, g, (None,) * _core.MAX_SLOTS, _core.SGD, hyper, np.array([0.1]), 0, x, y,
                                     100, spec, np.arange(5, dtype=np.int64), np.arange(1, 5, dtype=np.uint64),
                                     shuffle, work)
        assert done == 1
    assert (buf[wn:] == 12345.0).all()


# -- fast and thorough paths: the same bits -------------------------------------------------

def _per_step_calls(model, x, y, xq):
    out = []
    for _ in range(3):
        out.append(model.train_on_batch(x, y))
        out.append(model.train_on_batch(x, y, return_dict=True))
        loss, grads = model.compute_gradients(x, y)
        out.append((loss, [g.copy() for g in grads]))
        out.append(model.test_on_batch(x, y))
        out.append(model.predict_on_batch(xq))
        out.append(model.predict(xq))
    return out


def _assert_same_outputs(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        if isinstance(u, tuple):
            assert u[0] == v[0]
            for g, h in zip(u[1], v[1]):
                np.testing.assert_array_equal(g, h)
        elif isinstance(u, np.ndarray):
            np.testing.assert_array_equal(u, v)
        else:
            assert u == v


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_and_thorough_paths_give_the_same_bits(dtype, monkeypatch):
    x, y = data(dtype=dtype)
    xq = data(7, seed=5, dtype=dtype)[0]
    results = []
    for fast in (True, False):
        model = make_model(dtype, metrics=["mae"])
        with monkeypatch.context() as m:
            if fast:  # arrays of the model's dtype and layout: C takes them as they are
                def boom(*a, **k):
                    raise AssertionError("the thorough path ran")
                m.setattr(fo.Sequential, "_batch_data", boom)
                m.setattr(fo.Sequential, "_x", boom)
                m.setattr(fo.Sequential, "_compute_gradients", boom)
            with model_fast_path(fast):
                results.append((_per_step_calls(model, x, y, xq), state(model)))
    _assert_same_outputs(results[0][0], results[1][0])
    assert_same_state(results[0][1], results[1][1])


@pytest.mark.parametrize("convert", ["list", "other dtype", "fortran", "strided", "1-d y", "unaligned"])
def test_inputs_the_fast_path_declines_give_the_same_bits(convert):
    """Data C does not take as is goes through the conversion and ends the same."""
    x, y = data(n_out=1)
    arch = [dict(units=3, activation="tanh"), dict(units=1)]

    def unaligned(a):
        raw = np.zeros(a.nbytes + 1, np.uint8)
        u = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
        u[...] = a
        assert not u.flags.aligned
        return u

    conv = {"list": lambda a: a.tolist(), "other dtype": lambda a: a.astype(np.float32).astype(np.float64),
            "fortran": np.asfortranarray, "strided": lambda a: np.repeat(a, 2, axis=0)[::2],
            "1-d y": lambda a: a, "unaligned": unaligned}[convert]
    xc = conv(x)
    yc = y[:, 0] if convert == "1-d y" else conv(y)
    xr = np.asarray(xc, dtype=np.float64) if convert != "unaligned" else x
    out = []
    for xi, yi in ((xc, yc), (np.ascontiguousarray(xr), np.ascontiguousarray(np.asarray(yc, np.float64)))):
        model = make_model(arch=arch)
        r = [model.train_on_batch(xi, yi), model.compute_gradients(xi, yi)[0], model.test_on_batch(xi, yi),
             model.predict(xi), model.predict_on_batch(xi)]
        out.append((r, state(model)))
    assert out[0][0][:3] == out[1][0][:3]
    np.testing.assert_array_equal(out[0][0][3], out[1][0][3])
    np.testing.assert_array_equal(out[0][0][4], out[1][0][4])
    assert_same_state(out[0][1], out[1][1])


def test_per_step_calls_bad_input_still_gets_the_thorough_message():
    """C declines what it cannot take as is: the thorough path explains, nothing changes."""
    model = make_model()
    x, y = data()
    before = state(model)
    for call, exc, words in [
        (lambda: model.train_on_batch(x[:, :3], y), ValueError, ["x", "features"]),
        (lambda: model.train_on_batch(x, y[:-1]), ValueError, ["y"]),
        (lambda: model.train_on_batch(np.where(x > 1, np.nan, x), y), ValueError, ["x", "nan"]),
        (lambda: model.train_on_batch(x, y.astype(str)), TypeError, ["y"]),
        (lambda: model.test_on_batch(x, y[:, :1]), ValueError, ["y"]),
        (lambda: model.predict_on_batch(x[:, :2]), ValueError, ["x"]),
        (lambda: model.compute_gradients(x, y, sample_weight=np.ones(3)), ValueError, ["sample_weight"]),
        (lambda: model.train_on_batch(x, y, sample_weight=np.ones(len(x)), class_weight={0: 1.0}), ValueError,
         ["class_weight", "sample_weight"]),
    ]:
        with pytest.raises(exc) as info:
            call()
        for w in words:
            assert w.lower() in str(info.value).lower(), str(info.value)
    assert_same_state(state(model), before)


# -- train_on_batch, test_on_batch, predict_on_batch, compute_gradients ---------------------------

@pytest.mark.parametrize("opt", [lambda: fo.optimizers.Adam(0.01), lambda: fo.optimizers.SGD(0.05, momentum=0.9),
                                 lambda: fo.optimizers.RMSprop(0.01, centered=True)])
def test_train_on_batch_is_compute_gradients_then_apply_gradients(opt):
    x, y = data()
    a, b = make_model(opt=opt()), make_model(opt=opt())
    for _ in range(4):
        loss = a.train_on_batch(x, y)
        loss_b, grads = b.compute_gradients(x, y)
        b.optimizer.apply_gradients(zip(grads, b.trainable_variables))
        assert loss == loss_b
    assert a.optimizer.iterations == b.optimizer.iterations == 4
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_train_on_batch_returns_as_keras():
    x, y = data()
    model = make_model(metrics=["mae", "mse"])
    w = model.get_weights()
    loss, mae, mse = model.train_on_batch(x, y)
    pred = ref.net_forward(w, ACTS, x)
    assert loss == pytest.approx(np.mean((pred - y) ** 2), rel=1e-12)  # the loss before the update
    assert mse == pytest.approx(loss, rel=1e-12)
    assert mae == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-12)
    d = model.train_on_batch(x, y, return_dict=True)
    assert list(d) == ["loss", "mae", "mse"]
    assert isinstance(make_model().train_on_batch(x, y), float)
    assert model.optimizer.iterations == 2


def test_test_and_predict_on_batch_match_evaluate_and_predict():
    x, y = data()
    model = make_model(metrics=["mae"])
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert model.test_on_batch(x, y) == model.evaluate(x, y)
    assert model.test_on_batch(x, y, return_dict=True) == model.evaluate(x, y, return_dict=True)
    np.testing.assert_array_equal(model.predict_on_batch(x), model.predict(x))
    np.testing.assert_allclose(model.predict(x), ref.net_forward(model.get_weights(), ACTS, x), rtol=1e-12)


def test_compute_gradients_returns_read_only_arrays():
    x, y = data()
    model = make_model()
    loss, grads = model.compute_gradients(x, y)
    assert all(not g.flags.writeable for g in grads)
    with pytest.raises(ValueError):
        grads[0].flags.writeable = True
    with pytest.raises(ValueError):
        grads[0][0, 0] = 1.0
    # the pairs the wrong way round: refused, nothing changed
    before = state(model)
    with pytest.raises(ValueError):
        model.optimizer.apply_gradients(zip(model.trainable_variables, grads))
    assert_same_state(state(model), before)
    want_loss, want = ref.net_gradients(model.get_weights(), ACTS, BIAS, 0, 0, x, y)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_compute_gradients_results_held_anywhere_are_never_written_again():
    """gradients() writes a kept result again only when nothing else holds it: the
    articles' loop (which drops each step's grads) reuses two results in turn, and
    a result held in any way keeps its values through later calls."""
    import weakref
    x, y = data()
    model = make_model()
    opt = model.optimizer
    kept = {}

    def hold(how, loss, grads):
        flat = grads[0].base
        kept[how] = {"list": lambda: grads, "view": lambda: grads[1], "flat": lambda: flat,
                     "memoryview": lambda: memoryview(grads[2]), "view of a view": lambda: grads[3][1:],
                     "weakref": lambda: weakref.ref(grads[4])}[how]()
        return [g.copy() for g in grads], grads

    for how in ("list", "view", "flat", "memoryview", "view of a view", "weakref"):
        want, grads = hold(how, *model.compute_gradients(x, y))
        held = grads
        del grads
        for _ in range(4):  # later steps, dropping their gradients as the articles' loop does
            loss, grads = model.compute_gradients(x, y)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            del loss, grads
        for g, w in zip(held, want):
            np.testing.assert_array_equal(g, w, err_msg=how)
        del held
        kept.clear()


def test_compute_gradients_in_the_articles_loop_matches_fresh_results():
    x, y = data()
    a, b = make_model(), make_model()
    for _ in range(6):
        loss, grads = a.compute_gradients(x, y)
        want_loss, want = ref.net_gradients(a.get_weights(), ACTS, BIAS, 0, 0, x, y)
        assert loss == pytest.approx(want_loss, rel=1e-12)
        for g, w, v in zip(grads, want, a.trainable_variables):
            assert g.shape == v.shape and g.dtype == v.dtype and not g.flags.writeable
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
        a.optimizer.apply_gradients(zip(grads, a.trainable_variables))
        b.train_on_batch(x, y)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_compute_gradients_result_changed_in_place_is_not_reused():
    """An array's shape, dtype and writeable flag can be changed in place; a kept
    result so changed (then dropped) is replaced, not returned changed."""
    x, y = data()
    model = make_model()
    shapes = [v.shape for v in model.trainable_variables]
    for change in (lambda g: setattr(g[0], "shape", (g[0].size,)), lambda g: setattr(g[1], "dtype", np.int64),
                   lambda g: g[0].base.setflags(write=True), lambda g: g.append(g[0]), lambda g: g.pop()):
        for _ in range(3):
            _, grads = model.compute_gradients(x, y)
            change(grads)
            del grads
            _, grads = model.compute_gradients(x, y)
            assert [g.shape for g in grads] == shapes
            assert all(g.dtype == np.float64 and not g.flags.writeable and not g.base.flags.writeable
                       for g in grads)
            del grads


def test_compute_gradients_takes_keras_arguments_by_name_and_names_the_wrong_ones():
    x, y = data()
    model = make_model()
    loss, grads = model.compute_gradients(x, y)
    want = [g.copy() for g in grads]
    del grads
    for call in (lambda: model.compute_gradients(x=x, y=y), lambda: model.compute_gradients(x, y, None),
                 lambda: model.compute_gradients(x, y=y, sample_weight=np.ones(len(x)))):
        loss2, grads = call()
        assert loss2 == loss
        for g, w in zip(grads, want):
            np.testing.assert_array_equal(g, w)
    with pytest.raises(TypeError, match="compute_gradients.*'z'"):
        model.compute_gradients(x, y, z=1)
    with pytest.raises(TypeError, match="compute_gradients"):
        model.compute_gradients(x, y, None, 1)


def test_trainable_variables_is_a_fresh_list_of_the_live_arrays():
    model = make_model()
    a, b = model.trainable_variables, model.trainable_variables
    assert a is not b and len(a) == len(b) == 5 and all(u is v for u, v in zip(a, b))
    a.clear()  # the caller's list: the model's is untouched
    assert len(model.trainable_variables) == 5
    assert model.weights[0] is b[0]
    assert fo.Sequential([fo.Dense(1)]).trainable_variables == []  # not built yet


def test_a_subclass_may_override_the_c_methods():
    class Traced(fo.Sequential):
        def compute_gradients(self, x, y, sample_weight=None):
            self.calls = getattr(self, "calls", 0) + 1
            return super().compute_gradients(x, y, sample_weight)

    x, y = data()
    model = Traced([fo.Dense(2, input_shape=(4,))], dtype="float64", seed=0)
    loss, grads = model.compute_gradients(x, y)
    assert model.calls == 1 and [g.shape for g in grads] == [(4, 2), (2,)]


# -- the zero-sample rule ------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda m, x, y: m.fit(x, y, verbose=0), lambda m, x, y: m.evaluate(x, y), lambda m, x, y: m.predict(x),
    lambda m, x, y: m.train_on_batch(x, y), lambda m, x, y: m.test_on_batch(x, y),
    lambda m, x, y: m.predict_on_batch(x), lambda m, x, y: m.compute_gradients(x, y),
])
def test_zero_samples_are_refused_everywhere(call):
    """One rule for the model API: no samples, no call (Keras refuses fit and evaluate on empty data)."""
    model = make_model()
    x, y = data()
    before = state(model)
    with pytest.raises(ValueError, match="no samples"):
        call(model, x[:0], y[:0])
    assert_same_state(state(model), before)


# -- fit: Keras 3's signature --------------------------------------------------------------

def test_fit_positional_order_is_keras():
    x, y = data(100)
    model = make_model()
    h = model.fit(x, y, 32, 10, 0)  # batch_size, epochs, verbose
    assert h.epoch == list(range(10))
    assert model.optimizer.iterations == 10 * 4
    assert h.params["steps"] == 4


def test_fit_batch_size_none_is_32():
    x, y = data(100)
    a, b = make_model(), make_model()
    ha = a.fit(x, y, epochs=2, verbose=0)
    hb = b.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert ha.history == hb.history and a.optimizer.iterations == 8
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_fit_refuses_bad_arguments_before_touching():
    model = make_model()
    x, y = data()
    before = state(model)
    for kw, exc, word in [
        (dict(verbose=3), ValueError, "verbose"), (dict(steps_per_epoch=0), ValueError, "steps_per_epoch"),
        (dict(steps_per_epoch=99), ValueError, "steps_per_epoch"),
        (dict(validation_freq=0), ValueError, "validation_freq"),
        (dict(validation_freq=[1, 0]), ValueError, "validation_freq"),
        (dict(validation_batch_size=0), ValueError, "validation_batch_size"),
        (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
        (dict(sample_weight=-np.ones(len(x))), ValueError, "sample_weight"),
        (dict(sample_weight=np.ones(len(x)), class_weight={0: 2.0}), ValueError, "class_weight"),
        (dict(class_weight=[1.0, 2.0]), TypeError, "class_weight"),
        (dict(class_weight={0: -1.0}), ValueError, "class_weight"),
        (dict(validation_data=(x, y, -np.ones(len(x)))), ValueError, "validation_data"),
        (dict(validation_data=(x[:, :2], y)), ValueError, "validation_data"),
    ]:
        with pytest.raises(exc, match=word):
            model.fit(x, y, batch_size=8, epochs=2, **{"verbose": 0, **kw})
    assert_same_state(state(model), before)


def test_unbuilt_model_is_not_built_by_a_refused_fit():
    model = fo.Sequential([fo.Dense(3), fo.Dense(1)], seed=0)
    model.compile("sgd", "mse")
    x, y = data(n_out=1)
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(x, y, validation_data=(x[:, :3], y), verbose=0)
    assert not model.built
    model.fit(x, y, verbose=0)
    assert model.built


def test_steps_per_epoch_takes_the_first_batches_of_each_epoch():
    x, y = data(40)
    a, b = make_model(), make_model()
    a.fit(x, y, batch_size=8, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0)
    assert a.optimizer.iterations == 6
    for _ in range(3):
        b.fit(x[:16], y[:16], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


# -- sample and class weights --------------------------------------------------------------

def test_sample_weight_follows_keras_sum_over_batch_size():
    """loss = sum_i w_i * mean_j (pred_ij - y_ij)**2 / n (Keras 3's default reduction)."""
    x, y = data(30)
    w = np.random.default_rng(3).uniform(0, 3, len(x))
    model = make_model(metrics=["mae"])
    weights = model.get_weights()
    pred = ref.net_forward(weights, ACTS, x)
    want = np.sum(w * np.mean((pred - y) ** 2, axis=1)) / len(x)
    loss, grads = model.compute_gradients(x, y, sample_weight=w)
    assert loss == pytest.approx(want, rel=1e-12)
    _, wgrads = ref.net_gradients(weights, ACTS, BIAS, 0, 0, x, y, w)
    for g, h in zip(grads, wgrads):
        np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-12)
    ev = model.evaluate(x, y, sample_weight=w[:, None], return_dict=True)
    assert ev["loss"] == pytest.approx(want, rel=1e-12)
    assert ev["mae"] == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-12)  # metrics are not weighted
    assert model.test_on_batch(x, y, sample_weight=w, return_dict=True)["loss"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_with_sample_weight_follows_twin(dtype):
    x, y = data(30, dtype=dtype)
    w = np.random.default_rng(4).uniform(0, 2, len(x)).astype(dtype)
    model = make_model(dtype, opt=fo.optimizers.SGD(0.05, momentum=0.5))
    weights = model.get_weights()
    h = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, sample_weight=w, verbose=0)
    twin = ref.fit(weights, ACTS, BIAS, 0, 0, ref.ReferenceOptimizer("sgd", learning_rate=0.05, momentum=0.5),
                   x, y, 3, 8, sample_weight=w)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.history["loss"], twin["loss"], **tol)
    for u, v in zip(model.get_weights(), weights):
        np.testing.assert_allclose(u, v, **tol)


def test_class_weight_is_sample_weight_by_class():
    """Keras: each sample weighs class_weight[round(y)] (argmax for several outputs), 1 if unlisted."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, (40, 1)).astype(np.float64)
    arch = [dict(units=3, activation="tanh"), dict(units=1)]
    cw = {0: 0.5, 2: 3.0}
    sw = np.array([cw.get(int(c), 1.0) for c in y[:, 0]])
    a, b = make_model(arch=arch), make_model(arch=arch)
    ha = a.fit(x, y, batch_size=8, epochs=2, class_weight=cw, verbose=0)
    hb = b.fit(x, y, batch_size=8, epochs=2, sample_weight=sw, verbose=0)
    assert ha.history == hb.history
    assert a.train_on_batch(x, y, class_weight=cw) == b.train_on_batch(x, y, sample_weight=sw)
    # several outputs: the class is the argmax
    y2 = np.eye(3)[rng.integers(0, 3, 40)]
    m = make_model(arch=[dict(units=3)])
    loss = m.test_on_batch(x, y2)
    assert m.train_on_batch(x, y2, class_weight={0: 1.0, 1: 1.0, 2: 1.0}) == pytest.approx(loss, rel=1e-12)


def test_validation_data_with_sample_weight():
    x, y = data(40)
    xv, yv = data(12, seed=7)
    wv = np.linspace(0, 2, len(xv))
    model = make_model()
    h = model.fit(x, y, batch_size=8, epochs=2, validation_data=(xv, yv, wv), verbose=0)
    assert h.history["val_loss"][-1] == model.evaluate(xv, yv, sample_weight=wv)


# -- epochs: in bulk, watched, batch by batch -------------------------------------------------

class EpochWatcher(fo.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        pass


class BatchWatcher(fo.callbacks.Callback):
    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("end", batch, dict(logs)))
        if self.stop_at is not None and len(self.calls) // 2 == self.stop_at:
            self.model.stop_training = True


@pytest.mark.parametrize("schedule", [False, True])
def test_history_in_bulk_equals_epoch_by_epoch_and_batch_by_batch(schedule, monkeypatch):
    monkeypatch.setattr(fo_models, "_STEPS_PER_CALL", 7)  # a schedule's rates come in several calls
    x, y = data(45)
    lr = fo.schedules.InverseTimeDecay(0.05, 3, 0.5) if schedule else 0.05
    runs = []
    for cbs in ([], [EpochWatcher()], [BatchWatcher()]):
        model = make_model(opt=fo.optimizers.Adam(lr), metrics=["mae"])
        h = model.fit(x, y, batch_size=8, epochs=4, callbacks=cbs, verbose=0)
        runs.append((h.history, h.epoch, state(model)))
    for r in runs[1:]:
        assert r[0] == runs[0][0] and r[1] == runs[0][1] == [0, 1, 2, 3]
        assert_same_state(r[2], runs[0][2])
    assert all(isinstance(v, float) for v in runs[0][0]["loss"])


def test_batch_hooks_get_keras_logs_and_can_stop():
    x, y = data(45)
    watcher = BatchWatcher()
    model = make_model(metrics=["mae"])
    h = model.fit(x, y, batch_size=8, epochs=2, callbacks=[watcher], verbose=0)
    assert [c[:2] for c in watcher.calls] == [(kind, b) for _ in range(2) for b in range(6)
                                              for kind in ("begin", "end")]
    last = watcher.calls[-1][2]  # the running means of the epoch, as Keras logs them
    assert last["loss"] == h.history["loss"][-1] and last["mae"] == h.history["mae"][-1]
    stopper = BatchWatcher(stop_at=3)
    model = make_model()
    h = model.fit(x, y, batch_size=8, epochs=5, callbacks=[stopper], verbose=0)
    assert model.optimizer.iterations == 3 and h.epoch == [0]


def test_validation_freq():
    x, y = data(30)
    xv, yv = data(10, seed=9)
    model = make_model()
    h = model.fit(x, y, batch_size=10, epochs=6, validation_data=(xv, yv), validation_freq=2, verbose=0)
    assert len(h.history["loss"]) == 6 and len(h.history["val_loss"]) == 3
    assert h.history["val_loss"][-1] == model.evaluate(xv, yv)
    h = model.fit(x, y, batch_size=10, epochs=4, validation_data=(xv, yv), validation_freq=[1, 4], verbose=0)
    assert len(h.history["val_loss"]) == 2


def test_evaluate_and_predict_callbacks_and_steps():
    x, y = data(40)
    model = make_model(metrics=["mae"])
    seen = []

    class Hooks(fo.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append(("test", batch, logs["loss"]))

        def on_predict_batch_end(self, batch, logs=None):
            seen.append(("predict", batch, logs["outputs"].shape))

    full = model.evaluate(x, y)
    assert model.evaluate(x, y, batch_size=16, callbacks=[Hooks()]) == pytest.approx(full, rel=1e-12)
    assert [s[:2] for s in seen] == [("test", 0), ("test", 1), ("test", 2)]
    assert seen[-1][2] == pytest.approx(full[0], rel=1e-12)
    np.testing.assert_array_equal(model.predict(x, batch_size=16, callbacks=[Hooks()]), model.predict(x))
    assert seen[-1] == ("predict", 2, (8, 2))
    assert model.predict(x, batch_size=16, steps=1).shape == (16, 2)
    assert model.evaluate(x, y, batch_size=16, steps=1) == model.evaluate(x[:16], y[:16])


# -- divergence ------------------------------------------------------------------------

def test_fit_warns_once_when_training_diverges():
    x, y = data(40)
    model = make_model(opt=fo.optimizers.SGD(1e6))
    with pytest.warns(fo.DivergenceWarning) as record:
        model.fit(x, y, batch_size=8, epochs=20, verbose=0)
    assert len([r for r in record if r.category is fo.DivergenceWarning]) == 1
    msg = str(record[0].message)
    assert "epoch 1" in msg and "learning_rate=1e+06" in msg and "float64" in msg


def test_article_002_float32_schedule_warns():
    """The article's alpha_t = 1/sqrt(1 + 0.9 t) on y = x * theta, x = 1..5, in float32."""
    x = np.arange(1.0, 6.0)
    model = fo.Sequential([fo.Dense(1, use_bias=False, input_shape=(1,))], seed=0)
    model.compile(fo.optimizers.SGD(fo.schedules.InverseSqrtDecay(1.0, 0.9)), "mse")
    with pytest.warns(fo.DivergenceWarning, match="learning_rate"):
        model.fit(x, 2 * x, batch_size=5, epochs=1000, verbose=0)


def test_sound_training_does_not_warn():
    x, y = data(40)
    model = make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", fo.DivergenceWarning)
        model.fit(x, y, batch_size=8, epochs=5, verbose=0)
        for _ in range(5):
            model.train_on_batch(x, y)


def test_train_on_batch_warns_when_it_diverges_not_at_every_step():
    x, y = data(40)
    model = make_model(opt=fo.optimizers.SGD(1e8))
    with pytest.warns(fo.DivergenceWarning) as record:
        for _ in range(6):
            model.train_on_batch(x, y)
    assert len([r for r in record if r.category is fo.DivergenceWarning]) == 1
    assert "train_on_batch" in str(record[0].message)
