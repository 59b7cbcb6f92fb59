"""The Keras-style model API (Sequential, Dense, compile, fit, predict,
evaluate, compute_gradients, callbacks) against the NumPy twin
fastopt.reference (net_forward, net_gradients, fit, ReferenceOptimizer)."""
import math

import numpy as np
import pytest

import fastopt as fo
from fastopt import reference as ref

# a three-layer network exercising every activation but relu, a layer without
# bias and different widths (relu has its own test: its kinks make the twin
# and the kernels differ when a unit sits at exactly 0, which never happens here)
ARCH = [dict(units=6, activation="tanh"), dict(units=5, activation="sigmoid", use_bias=False),
        dict(units=3, activation="relu"), dict(units=2)]
N_IN = 4


def make_model(arch=ARCH, n_in=N_IN, dtype="float64", seed=0, regs=None, input_shape=True, **kw):
    layers = []
    for i, cfg in enumerate(arch):
        cfg = dict(cfg)
        if regs is not None and regs[i] is not None:
            cfg["kernel_regularizer"] = regs[i]
        if i == 0 and input_shape:
            cfg["input_shape"] = (n_in,)
        layers.append(fo.Dense(**cfg))
    return fo.Sequential(layers, dtype=dtype, seed=seed, **kw)


def twin_spec(arch=ARCH, regs=None):
    """(activations, use_bias, l1, l2) of the twin for `arch`."""
    acts = [c.get("activation") or "linear" for c in arch]
    bias = [c.get("use_bias", True) for c in arch]
    regs = regs or [None] * len(arch)
    return acts, bias, [r.l1 if r else 0.0 for r in regs], [r.l2 if r else 0.0 for r in regs]


def data(n=50, n_in=N_IN, n_out=2, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    y = (np.tanh(x[:, :n_out] * 2) + 0.3 * rng.standard_normal((n, n_out))).astype(dtype)
    return x, y


def assert_weights_close(a, b, atol=1e-10, rtol=1e-10):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, atol=atol, rtol=rtol)


def assert_weights_equal(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# -- construction ------------------------------------------------------------------

def test_dense_defaults_are_keras():
    d = fo.Dense(3)
    assert d.units == 3
    assert d.activation is None
    assert d.use_bias is True
    assert isinstance(d.kernel_initializer, fo.initializers.GlorotUniform)
    assert isinstance(d.bias_initializer, fo.initializers.Zeros)
    assert d.kernel_regularizer is None
    assert d.input_shape is None
    assert not d.built
    # layer.input_shape has the batch dimension (None), as model.layers[i].input_shape in Keras
    assert fo.Dense(3, input_dim=7).input_shape == (None, 7)
    assert fo.Dense(3, input_shape=5).input_shape == (None, 5)
    assert fo.Dense(3, input_shape=5).get_config()["input_shape"] == (5,)


def test_sequential_builds_from_input_shape():
    model = make_model(dtype="float32")
    assert model.built
    assert model.dtype == np.float32  # Keras' default floatx
    shapes = [v.shape for v in model.trainable_variables]
    assert shapes == [(4, 6), (6,), (6, 5), (5, 3), (3,), (3, 2), (2,)]
    assert [l.name for l in model.layers] == ["dense", "dense_1", "dense_2", "dense_3"]
    assert model.count_params() == sum(int(np.prod(s)) for s in shapes)
    for layer in model.layers:
        if layer.use_bias:
            np.testing.assert_array_equal(layer.bias, 0)
        assert np.abs(layer.kernel).max() > 0  # glorot_uniform, not zeros


def test_sequential_builds_on_first_fit_and_add():
    model = fo.Sequential()
    model.add(fo.Dense(6, activation="tanh"))
    model.add(fo.Dense(1))
    assert not model.built
    with pytest.raises(ValueError):
        model.predict(np.zeros((2, 3)))
    model.compile("sgd", "mse")
    x, y = data(20, 3, 1)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built
    assert [v.shape for v in model.trainable_variables] == [(3, 6), (6,), (6, 1), (1,)]
    assert model.predict(x).shape == (20, 1)


def test_add_to_a_built_model_keeps_the_weights():
    model = fo.Sequential([fo.Dense(6, activation="tanh", input_shape=(3,))], dtype="float64", seed=2)
    before = model.get_weights()
    model.add(fo.Dense(2))
    assert [v.shape for v in model.trainable_variables] == [(3, 6), (6,), (6, 2), (2,)]
    assert_weights_equal(model.get_weights()[:2], before)
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(model.predict(x), ref.net_forward(model.get_weights(), ["tanh", "linear"], x),
                               rtol=1e-12, atol=1e-12)


def test_float64_everywhere():
    model = make_model(dtype="float64")
    model.compile(fo.optimizers.Adam(0.01), "mse", metrics=["mae"])
    x, y = data()
    assert all(v.dtype == np.float64 for v in model.trainable_variables)
    assert all(w.dtype == np.float64 for w in model.get_weights())
    model.fit(x, y, epochs=1, verbose=0)
    assert model.predict(x).dtype == np.float64
    loss, grads = model.compute_gradients(x, y)
    assert isinstance(loss, float)
    assert all(g.dtype == np.float64 for g in grads)
    state = model.optimizer.get_state(model.trainable_variables)
    assert all(s.dtype == np.float64 for slots in state["slots"] for s in slots if s is not None)
    # float32 inputs are converted to the model's dtype
    np.testing.assert_array_equal(model.predict(x.astype(np.float32)),
                                  model.predict(x.astype(np.float32).astype(np.float64)))


def test_float32_model_outputs_float32():
    model = make_model(dtype="float32")
    x, y = data()
    assert model.predict(x).dtype == np.float32
    _, grads = model.compute_gradients(x, y)
    assert all(g.dtype == np.float32 for g in grads)


# -- initializers -------------------------------------------------------------------

FAN_IN, FAN_OUT = 400, 300


def _check_initializer(name, w):
    if name == "zeros":
        np.testing.assert_array_equal(w, 0)
        return
    if name == "ones":
        np.testing.assert_array_equal(w, 1)
        return
    assert abs(w.mean()) < 0.02 * w.std()  # centred (the standard error is std / 346)
    uniform_limit = {"random_uniform": 0.05, "glorot_uniform": math.sqrt(6 / (FAN_IN + FAN_OUT)),
                     "he_uniform": math.sqrt(6 / FAN_IN)}
    normal_std = {"random_normal": 0.05, "glorot_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
                  "he_normal": math.sqrt(2 / FAN_IN)}
    if name in uniform_limit:
        limit = uniform_limit[name]
        assert np.abs(w).max() <= limit * (1 + 1e-6)  # (float32 rounding)
        assert np.abs(w).max() > 0.99 * limit  # fills the interval
        assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.03)
    else:
        std = normal_std[name]
        assert w.std() == pytest.approx(std, rel=0.03)
        if name != "random_normal":  # Keras' variance scaling draws a normal truncated at 2 sigma
            assert np.abs(w).max() <= 2 * std / 0.87962566103423978 * (1 + 1e-6)
            assert np.abs(w).max() > 1.9 * std / 0.87962566103423978
        else:
            assert np.abs(w).max() > 3 * std  # not truncated


INITIALIZERS = ["zeros", "ones", "random_normal", "random_uniform", "glorot_uniform", "glorot_normal",
                "he_normal", "he_uniform"]


@pytest.mark.parametrize("name", INITIALIZERS)
def test_kernel_initializers(name):
    model = fo.Sequential([fo.Dense(FAN_OUT, kernel_initializer=name, input_shape=(FAN_IN,))],
                          dtype="float64", seed=3)
    _check_initializer(name, model.layers[0].kernel)
    np.testing.assert_array_equal(model.layers[0].bias, 0)


@pytest.mark.parametrize("name", INITIALIZERS)
def test_initializer_objects_and_bias_initializer(name):
    init = fo.initializers.get(name)
    model = fo.Sequential([fo.Dense(FAN_OUT, kernel_initializer=init, bias_initializer="ones",
                                    input_shape=(FAN_IN,))], dtype="float32", seed=4)
    _check_initializer(name, model.layers[0].kernel.astype(np.float64))
    np.testing.assert_array_equal(model.layers[0].bias, 1)


def test_initializer_arguments():
    model = fo.Sequential([fo.Dense(200, kernel_initializer=fo.initializers.RandomNormal(1.0, 0.5),
                                    bias_initializer=fo.initializers.RandomUniform(2.0, 3.0),
                                    input_shape=(300,))], dtype="float64", seed=0)
    k, b = model.get_weights()
    assert k.mean() == pytest.approx(1.0, abs=0.01)
    assert k.std() == pytest.approx(0.5, rel=0.03)
    assert b.min() >= 2.0 and b.max() <= 3.0


def test_seed_fixes_the_initial_weights():
    a, b, c = make_model(seed=7), make_model(seed=7), make_model(seed=8)
    assert_weights_equal(a.get_weights(), b.get_weights())
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    k0, k1 = a.get_weights()[0], a.get_weights()[2]
    assert not np.array_equal(k0[:4, :5], k1[:4, :5])  # each layer drawn afresh


# -- regularizers ---------------------------------------------------------------------

REGS = [fo.regularizers.l1(0.01), fo.regularizers.l2(0.02), fo.regularizers.l1_l2(0.005, 0.03), None]


def test_regularizer_defaults_are_keras():
    assert (fo.regularizers.l1().l1, fo.regularizers.l1().l2) == (0.01, 0.0)
    assert (fo.regularizers.l2().l1, fo.regularizers.l2().l2) == (0.0, 0.01)
    assert (fo.regularizers.l1_l2().l1, fo.regularizers.l1_l2().l2) == (0.01, 0.01)
    assert fo.Dense(2, kernel_regularizer="l2").kernel_regularizer.l2 == 0.01


def test_regularizers_in_loss_gradients_and_fit():
    model = make_model(regs=REGS)
    model.compile(fo.optimizers.SGD(0.05, momentum=0.5), "mse", metrics=["mse"])
    acts, bias, l1, l2 = twin_spec(regs=REGS)
    x, y = data(40)
    xv, yv = data(15, seed=9)
    w = model.get_weights()
    penalty = sum(a * np.abs(k).sum() + b * np.square(k).sum()
                  for (k, _), a, b in zip(ref.split_weights(w), l1, l2))
    assert penalty > 0.01
    loss = ref.net_loss(w, acts, l1, l2, x, y)
    mse = np.mean((ref.net_forward(w, acts, x) - y) ** 2)
    assert loss == pytest.approx(mse + penalty, rel=1e-12)
    ev = model.evaluate(x, y, return_dict=True)
    assert ev["loss"] == pytest.approx(loss, rel=1e-12)
    assert ev["mse"] == pytest.approx(mse, rel=1e-12)  # the metric has no penalty

    closs, grads = model.compute_gradients(x, y)
    wloss, wgrads = ref.net_gradients(w, acts, bias, l1, l2, x, y)
    assert closs == pytest.approx(wloss, rel=1e-12)
    assert_weights_close(grads, wgrads, atol=1e-12)

    h = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, validation_data=(xv, yv), verbose=0)
    twin = ref.ReferenceOptimizer("sgd", learning_rate=0.05, momentum=0.5)
    val = []
    hist = {"loss": [], "mse": []}
    for _ in range(3):
        e = ref.fit(w, acts, bias, l1, l2, twin, x, y, 1, 16)
        hist["loss"] += e["loss"]
        hist["mse"] += e["mse"]
        val.append(ref.net_loss(w, acts, l1, l2, xv, yv))
    np.testing.assert_allclose(h.history["loss"], hist["loss"], rtol=1e-10)
    np.testing.assert_allclose(h.history["mse"], hist["mse"], rtol=1e-10)
    np.testing.assert_allclose(h.history["val_loss"], val, rtol=1e-10)
    assert all(l > m for l, m in zip(h.history["loss"], h.history["mse"]))
    assert_weights_close(model.get_weights(), w)


# -- compile ----------------------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [("sgd", "SGD"), ("adam", "Adam"), ("rmsprop", "RMSprop"),
                                      ("adagrad", "Adagrad"), ("adamw", "AdamW"), ("Adam", "Adam")])
def test_compile_optimizer_names(name, cls):
    model = make_model()
    model.compile(optimizer=name, loss="mean_squared_error")
    assert type(model.optimizer) is getattr(fo.optimizers, cls)


def test_compile_optimizer_object_is_used_as_is():
    opt = fo.optimizers.SGD(0.1)
    model = make_model()
    model.compile(optimizer=opt, loss="mse")
    assert model.optimizer is opt
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=25, verbose=0)
    assert opt.iterations == 4


@pytest.mark.parametrize("loss", ["mse", "mean_squared_error", "MSE",
                                  fo.losses.MeanSquaredError(), fo.losses.mean_squared_error])
def test_compile_loss_names_and_objects_train_identically(loss):
    x, y = data()
    runs = []
    for l in ("mean_squared_error", loss):
        model = make_model()
        model.compile(fo.optimizers.Adam(0.01), loss=l)
        runs.append((model.fit(x, y, epochs=2, verbose=0).history["loss"], model.get_weights()))
    assert runs[0][0] == runs[1][0]
    assert_weights_equal(runs[0][1], runs[1][1])


def test_metrics_keys_and_values():
    model = make_model()
    metrics = ["mse", "mean_squared_error", "mae", "mean_absolute_error", fo.metrics.mean_absolute_error]
    model.compile(fo.optimizers.SGD(0.05), "mse", metrics=metrics)
    x, y = data(48)
    xv, yv = data(12, seed=3)
    w = model.get_weights()
    h = model.fit(x, y, epochs=2, batch_size=16, shuffle=False, validation_data=(xv, yv), verbose=0)
    keys = {"loss", "mse", "mean_squared_error", "mae", "mean_absolute_error"}
    assert set(h.history) == keys | {"val_" + k for k in keys}
    assert all(len(v) == 2 for v in h.history.values())
    acts, bias, l1, l2 = twin_spec()
    twin = ref.fit(w, acts, bias, l1, l2, ref.ReferenceOptimizer("sgd", learning_rate=0.05), x, y, 2, 16)
    np.testing.assert_allclose(h.history["mse"], twin["mse"], rtol=1e-10)
    np.testing.assert_allclose(h.history["mean_squared_error"], twin["mse"], rtol=1e-10)
    np.testing.assert_allclose(h.history["mae"], twin["mae"], rtol=1e-10)
    np.testing.assert_allclose(h.history["mean_absolute_error"], twin["mae"], rtol=1e-10)
    np.testing.assert_allclose(h.history["loss"], twin["loss"], rtol=1e-10)  # no penalty: loss == mse
    np.testing.assert_allclose(h.history["loss"], h.history["mse"], rtol=1e-12)
    pred = ref.net_forward(w, acts, xv)
    assert h.history["val_mae"][-1] == pytest.approx(np.mean(np.abs(pred - yv)), rel=1e-10)
    assert h.history["val_mse"][-1] == pytest.approx(np.mean((pred - yv) ** 2), rel=1e-10)
    assert h.history["val_loss"][-1] == pytest.approx(np.mean((pred - yv) ** 2), rel=1e-10)


# -- fit against the twin -----------------------------------------------------------------

OPTIMIZERS = [
    ("sgd", dict(learning_rate=0.05)),
    ("sgd", dict(learning_rate=0.05, momentum=0.9)),
    ("sgd", dict(learning_rate=0.05, momentum=0.8, nesterov=True)),
    ("rmsprop", dict(learning_rate=0.005)),
    ("rmsprop", dict(learning_rate=0.005, momentum=0.5, centered=True, rho=0.8)),
    ("adam", dict(learning_rate=0.01)),
    ("adam", dict(learning_rate=0.01, amsgrad=True, beta_1=0.8)),
    ("adagrad", dict(learning_rate=0.05)),
    ("adamw", dict(learning_rate=0.01, weight_decay=0.05)),
    ("sgd", dict(learning_rate=fo.schedules.ExponentialDecay(0.1, 4, 0.5), momentum=0.9)),
    ("sgd", dict(learning_rate=fo.schedules.InverseSqrtDecay(0.1, 0.5))),
    ("adam", dict(learning_rate=fo.schedules.InverseTimeDecay(0.02, 3, 1.0, staircase=True))),
    ("rmsprop", dict(learning_rate=fo.schedules.PiecewiseConstantDecay([3, 7], [0.01, 0.005, 0.001]))),
    # clipping and decoupled weight decay, small enough to be active
    ("sgd", dict(learning_rate=0.1, clipnorm=0.05)),
    ("sgd", dict(learning_rate=0.1, momentum=0.5, global_clipnorm=0.05)),
    ("sgd", dict(learning_rate=0.1, clipvalue=0.01)),
    ("adam", dict(learning_rate=0.01, clipnorm=0.02, weight_decay=0.1)),
    ("adam", dict(learning_rate=0.01, global_clipnorm=0.02)),
    ("rmsprop", dict(learning_rate=0.01, clipvalue=0.005, weight_decay=0.2)),
]
CLASSES = {"sgd": fo.optimizers.SGD, "adagrad": fo.optimizers.Adagrad, "rmsprop": fo.optimizers.RMSprop,
           "adam": fo.optimizers.Adam, "adamw": fo.optimizers.AdamW}


def _opt_id(p):
    name, cfg = p
    return name + "-" + "-".join(f"{k}" for k in cfg if k != "learning_rate") + (
        "-sched" if not isinstance(cfg["learning_rate"], float) else "")


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=_opt_id)
def test_fit_without_shuffle_matches_twin(opt):
    name, cfg = opt
    model = make_model(regs=[None, fo.regularizers.l2(0.01), None, None])
    optimizer = CLASSES[name](**cfg)
    model.compile(optimizer, "mse", metrics=["mae"])
    x, y = data(50)
    w = model.get_weights()
    h = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    twin_opt = ref.ReferenceOptimizer(name, **cfg)
    acts, bias, l1, l2 = twin_spec(regs=[None, fo.regularizers.l2(0.01), None, None])
    twin = ref.fit(w, acts, bias, l1, l2, twin_opt, x, y, 3, 16)
    assert optimizer.iterations == twin_opt.iterations == 3 * 4
    assert_weights_close(model.get_weights(), w)
    np.testing.assert_allclose(h.history["loss"], twin["loss"], rtol=1e-10)
    np.testing.assert_allclose(h.history["mae"], twin["mae"], rtol=1e-10)
    state = optimizer.get_state(model.trainable_variables)
    for v, slots in zip(w, state["slots"]):
        for s, t in zip(slots, twin_opt.slots(v)):
            assert (s is None) == (t is None)
            if s is not None:
                np.testing.assert_allclose(s, t, rtol=1e-9, atol=1e-12)


def test_fit_relu_network_matches_twin():
    arch = [dict(units=16, activation="relu"), dict(units=8, activation="relu"), dict(units=1)]
    model = make_model(arch, n_in=5)
    model.compile(fo.optimizers.Adam(0.01), "mse")
    x, y = data(64, 5, 1)
    w = model.get_weights()
    model.fit(x, y, epochs=4, batch_size=10, shuffle=False, verbose=0)
    acts, bias, l1, l2 = twin_spec(arch)
    ref.fit(w, acts, bias, l1, l2, ref.ReferenceOptimizer("adam", learning_rate=0.01), x, y, 4, 10)
    assert_weights_close(model.get_weights(), w)


def test_validation_split_takes_the_last_samples():
    x, y = data(50)
    a, b = make_model(), make_model()
    for m in (a, b):
        m.compile(fo.optimizers.Adam(0.01), "mse", metrics=["mae"])
    w = a.get_weights()
    ha = a.fit(x, y, epochs=3, batch_size=8, shuffle=False, validation_split=0.2, verbose=0)
    hb = b.fit(x[:40], y[:40], epochs=3, batch_size=8, shuffle=False, validation_data=(x[40:], y[40:]),
               verbose=0)
    assert ha.history == hb.history
    assert_weights_equal(a.get_weights(), b.get_weights())
    acts, bias, l1, l2 = twin_spec()
    twin_opt = ref.ReferenceOptimizer("adam", learning_rate=0.01)
    val = []
    for _ in range(3):
        ref.fit(w, acts, bias, l1, l2, twin_opt, x[:40], y[:40], 1, 8)
        val.append(ref.net_loss(w, acts, l1, l2, x[40:], y[40:]))
    np.testing.assert_allclose(ha.history["val_loss"], val, rtol=1e-10)
    # with shuffle=True too, the validation set is the last samples, never trained on
    c = make_model()
    c.compile(fo.optimizers.SGD(0.01), "mse")
    y_poison = y.copy()
    y_poison[40:] = 1e6
    c.fit(x, y_poison, epochs=2, batch_size=8, validation_split=0.2, verbose=0)
    assert np.abs(c.predict(x)).max() < 100
    # and the training part is shuffled exactly as if it had been given alone
    d, e = make_model(seed=4), make_model(seed=4)
    for m in (d, e):
        m.compile(fo.optimizers.SGD(0.01), "mse")
    hd = d.fit(x, y, epochs=2, batch_size=8, validation_split=0.2, verbose=0)
    he = e.fit(x[:40], y[:40], epochs=2, batch_size=8, validation_data=(x[40:], y[40:]), verbose=0)
    assert hd.history == he.history
    assert_weights_equal(d.get_weights(), e.get_weights())


def test_validation_values_equal_evaluate_at_epoch_end():
    x, y = data(40)
    xv, yv = data(20, seed=5)

    class Check(fo.callbacks.Callback):
        seen = 0

        def on_epoch_end(self, epoch, logs=None):
            ev = self.model.evaluate(xv, yv, return_dict=True)
            assert logs["val_loss"] == ev["loss"]
            assert logs["val_mae"] == ev["mae"]
            Check.seen += 1

    model = make_model(regs=REGS)
    model.compile("adam", "mse", metrics=["mae"])
    model.fit(x, y, epochs=3, validation_data=(xv, yv), callbacks=[Check()], verbose=0)
    assert Check.seen == 3


def test_batch_size_len_x_is_full_batch():
    x, y = data(30)
    results = []
    for bs in (len(x), 30, 1000):
        model = make_model()
        model.compile(fo.optimizers.SGD(0.1, momentum=0.5), "mse")
        h = model.fit(x, y, epochs=3, batch_size=bs, shuffle=False, verbose=0)
        results.append((h.history["loss"], model.get_weights(), model.optimizer.iterations))
    for r in results[1:]:
        assert r[0] == results[0][0]
        assert_weights_equal(r[1], results[0][1])
        assert r[2] == results[0][2] == 3
    w = make_model().get_weights()
    acts, bias, l1, l2 = twin_spec()
    ref.fit(w, acts, bias, l1, l2, ref.ReferenceOptimizer("sgd", learning_rate=0.1, momentum=0.5),
            x, y, 3, len(x))
    assert_weights_close(results[0][1], w)


def test_full_batch_shuffle_only_reorders():
    """With one batch per epoch, shuffling changes nothing but the summation order:
    the shuffle is a permutation of the samples."""
    x, y = data(30)
    out = []
    for shuffle in (False, True):
        model = make_model(seed=3)
        model.compile(fo.optimizers.Adam(0.01), "mse")
        model.fit(x, y, epochs=3, batch_size=len(x), shuffle=shuffle, verbose=0)
        out.append(model.get_weights())
    assert_weights_close(out[0], out[1], atol=1e-13, rtol=1e-12)


def test_vector_and_column_targets_train_identically():
    arch = [dict(units=5, activation="tanh"), dict(units=1)]
    x, y = data(40, 3, 1)
    runs = []
    for target in (y[:, 0], y):
        model = make_model(arch, 3, seed=2)
        model.compile(fo.optimizers.Adam(0.01), "mse", metrics=["mae"])
        h = model.fit(x, target, epochs=3, batch_size=7, verbose=0, validation_data=(x[:5], target[:5]))
        runs.append((h.history, model.get_weights(), model.evaluate(x, target, return_dict=True),
                     model.compute_gradients(x, target)))
    assert runs[0][0] == runs[1][0]
    assert_weights_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]
    assert runs[0][3][0] == runs[1][3][0]
    assert_weights_equal(runs[0][3][1], runs[1][3][1])


# -- inference ------------------------------------------------------------------------

def test_predict_matches_twin():
    model = make_model()
    acts = twin_spec()[0]
    for n in (1, 7, 5000):  # 5000 > the rows predict gives one C call
        x, _ = data(n, seed=n)
        pred = model.predict(x)
        assert pred.shape == (n, 2)
        np.testing.assert_allclose(pred, ref.net_forward(model.get_weights(), acts, x), rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(model(x), model.predict(x))


def test_predict_accepts_a_vector_for_one_feature():
    arch = [dict(units=3, activation="tanh"), dict(units=1)]
    model = make_model(arch, 1)
    x = np.linspace(-1, 1, 9)
    np.testing.assert_array_equal(model.predict(x), model.predict(x.reshape(-1, 1)))


def test_evaluate_forms():
    x, y = data(30)
    model = make_model()
    model.compile("sgd", "mse")
    want = np.mean((ref.net_forward(model.get_weights(), twin_spec()[0], x) - y) ** 2)
    loss = model.evaluate(x, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(want, rel=1e-12)
    model.compile("sgd", "mse", metrics=["mae", "mse"])
    values = model.evaluate(x, y)
    assert isinstance(values, list) and len(values) == 3
    assert values[0] == pytest.approx(want, rel=1e-12)
    assert values[2] == pytest.approx(want, rel=1e-12)
    pred = ref.net_forward(model.get_weights(), twin_spec()[0], x)
    assert values[1] == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-12)
    d = model.evaluate(x, y, return_dict=True)
    assert list(d) == ["loss", "mae", "mse"]
    assert list(d.values()) == values


def test_summary_lists_layers_and_params(capsys):
    model = make_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for layer, count in zip(model.layers, [4 * 6 + 6, 6 * 5, 5 * 3 + 3, 3 * 2 + 2]):
        row = next(l for l in lines if l.startswith(layer.name + " "))
        assert f"(None, {layer.units})" in row
        assert row.split()[-1] == str(count)
    assert str(model.count_params()) in lines[-1]
    assert "sequential" in text
    assert capsys.readouterr().out == ""
    model.summary()
    assert capsys.readouterr().out.strip() == text.strip()


def test_get_and_set_weights():
    model = make_model()
    w = model.get_weights()
    assert [a.shape for a in w] == [(4, 6), (6,), (6, 5), (5, 3), (3,), (3, 2), (2,)]
    assert w[0] is not model.layers[0].kernel
    np.testing.assert_array_equal(w[0], model.layers[0].kernel)
    np.testing.assert_array_equal(w[3], model.layers[2].kernel)
    np.testing.assert_array_equal(w[4], model.layers[2].bias)
    w[0][...] = 5.0  # a copy: the model does not change
    assert not np.any(model.layers[0].kernel == 5.0)
    rng = np.random.default_rng(0)
    new = [rng.standard_normal(a.shape) for a in w]
    model.set_weights(new)
    assert_weights_equal(model.get_weights(), new)
    new[0][...] = 0.0  # set_weights copied too
    assert np.any(model.get_weights()[0] != 0)
    x, _ = data(5)
    np.testing.assert_allclose(model.predict(x), ref.net_forward(model.get_weights(), twin_spec()[0], x),
                               rtol=1e-12)
    model.set_weights([a.tolist() for a in model.get_weights()])  # nested lists are fine


def test_trainable_variables_are_live_views():
    model = make_model()
    model.compile(fo.optimizers.SGD(0.1), "mse")
    tv = model.trainable_variables
    tv2 = model.trainable_variables
    assert len(tv) == len(tv2) == 7
    assert all(a is b for a, b in zip(tv, tv2))
    assert tv[0] is model.layers[0].kernel and tv[1] is model.layers[0].bias
    x, y = data(10)
    before = model.predict(x)
    tv[-1][...] += 1.0  # the output bias
    np.testing.assert_allclose(model.predict(x), before + 1.0, rtol=1e-12)
    tv[0][0, 0] = 3.0
    np.testing.assert_allclose(model.predict(x), ref.net_forward(model.get_weights(), twin_spec()[0], x),
                               rtol=1e-12)
    model.fit(x, y, epochs=2, verbose=0)
    assert all(a is b for a, b in zip(model.trainable_variables, tv))
    assert_weights_equal([v.copy() for v in tv], model.get_weights())
    assert tv[0][0, 0] != 3.0  # the training wrote through the same arrays


@pytest.mark.parametrize("name,cfg", [("adam", dict(learning_rate=0.01)),
                                      ("sgd", dict(learning_rate=0.05, momentum=0.9)),
                                      ("rmsprop", dict(learning_rate=0.01, centered=True))])
def test_compute_gradients_loop_matches_twin(name, cfg):
    model = make_model(regs=REGS)
    opt = CLASSES[name](**cfg)
    acts, bias, l1, l2 = twin_spec(regs=REGS)
    w = model.get_weights()
    twin = ref.ReferenceOptimizer(name, **cfg)
    x, y = data(25)
    for _ in range(6):
        loss, grads = model.compute_gradients(x, y)
        assert [g.shape for g in grads] == [v.shape for v in model.trainable_variables]
        opt.apply_gradients(zip(grads, model.trainable_variables))
        wloss, wgrads = ref.net_gradients(w, acts, bias, l1, l2, x, y)
        assert loss == pytest.approx(wloss, rel=1e-10)
        twin.apply_gradients(zip(wgrads, w))
    assert opt.iterations == 6
    assert_weights_close(model.get_weights(), w)


def test_compute_gradients_before_build_builds():
    model = fo.Sequential([fo.Dense(3, activation="tanh"), fo.Dense(1)], dtype="float64", seed=0)
    x, y = data(10, 2, 1)
    loss, grads = model.compute_gradients(x, y)
    assert model.built
    wl, wg = ref.net_gradients(model.get_weights(), ["tanh", "linear"], True, 0, 0, x, y)
    assert loss == pytest.approx(wl, rel=1e-12)
    assert_weights_close(grads, wg, atol=1e-13)


def test_compute_gradients_steps_and_fit_share_one_optimizer_state():
    model = make_model()
    opt = fo.optimizers.Adam(0.01)
    model.compile(opt, "mse")
    acts, bias, l1, l2 = twin_spec()
    w = model.get_weights()
    twin = ref.ReferenceOptimizer("adam", learning_rate=0.01)
    x, y = data(40)

    def manual(k):
        for _ in range(k):
            _, grads = model.compute_gradients(x[:20], y[:20])
            opt.apply_gradients(zip(grads, model.trainable_variables))
            _, wgrads = ref.net_gradients(w, acts, bias, l1, l2, x[:20], y[:20])
            twin.apply_gradients(zip(wgrads, w))

    manual(2)
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    ref.fit(w, acts, bias, l1, l2, twin, x, y, 1, 16)
    manual(2)
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    ref.fit(w, acts, bias, l1, l2, twin, x, y, 2, 16)
    manual(1)
    assert opt.iterations == twin.iterations == 2 + 3 + 2 + 6 + 1
    assert_weights_close(model.get_weights(), w)
    state = opt.get_state(model.trainable_variables)
    for v, slots in zip(w, state["slots"]):
        np.testing.assert_allclose(slots[0], twin.slots(v)[0], rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(slots[1], twin.slots(v)[1], rtol=1e-9, atol=1e-15)


def test_steps_before_compile_keep_their_optimizer_state():
    model = make_model()
    opt = fo.optimizers.SGD(0.05, momentum=0.9)
    acts, bias, l1, l2 = twin_spec()
    w = model.get_weights()
    twin = ref.ReferenceOptimizer("sgd", learning_rate=0.05, momentum=0.9)
    x, y = data(32)
    for _ in range(3):
        _, grads = model.compute_gradients(x, y)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        _, wgrads = ref.net_gradients(w, acts, bias, l1, l2, x, y)
        twin.apply_gradients(zip(wgrads, w))
    model.compile(opt, "mse")  # the same optimizer: its momentum must carry on
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    ref.fit(w, acts, bias, l1, l2, twin, x, y, 1, 32)
    assert_weights_close(model.get_weights(), w)


# -- shuffling and seeds ------------------------------------------------------------------

def test_seed_makes_shuffled_fit_reproducible():
    x, y = data(50)
    runs = {}
    init = make_model(seed=1).get_weights()
    for key, seed in [("a", 5), ("b", 5), ("c", 6)]:
        model = make_model(seed=seed)
        model.set_weights(init)  # same start: only the shuffle differs
        model.compile(fo.optimizers.Adam(0.01), "mse")
        h = model.fit(x, y, epochs=3, batch_size=8, shuffle=True, verbose=0)
        runs[key] = (h.history["loss"], model.get_weights())
    assert runs["a"][0] == runs["b"][0]
    assert_weights_equal(runs["a"][1], runs["b"][1])
    assert runs["a"][0] != runs["c"][0]
    assert not np.array_equal(runs["a"][1][0], runs["c"][1][0])
    model = make_model(seed=5)
    model.set_weights(init)
    model.compile(fo.optimizers.Adam(0.01), "mse")
    model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    assert not np.array_equal(model.get_weights()[0], runs["a"][1][0])


def test_shuffled_fit_matches_twin_on_the_same_permutation():
    """The C loop gathers each batch's rows of x and y through the permutation:
    the twin, trained on x[perm], y[perm] without shuffling, must agree.  The
    permutation comes from the model's generator state (an internal:
    ``_rng_state``) stepped by ``_core.shuffle``, as the training loop steps it."""
    from fastopt import _core

    x, y = data(45)
    model = make_model(seed=11)
    model.compile(fo.optimizers.SGD(0.05, momentum=0.9), "mse")
    state = model._rng_state.copy()
    w = model.get_weights()
    model.fit(x, y, epochs=3, batch_size=8, shuffle=True, verbose=0)
    acts, bias, l1, l2 = twin_spec()
    twin = ref.ReferenceOptimizer("sgd", learning_rate=0.05, momentum=0.9)
    perms = []
    for _ in range(3):
        perm = np.arange(45, dtype=np.int64)
        _core.shuffle(perm, state)
        perms.append(perm)
        ref.fit(w, acts, bias, l1, l2, twin, x[perm], y[perm], 1, 8)
    assert sorted(perms[0]) == list(range(45))
    assert not np.array_equal(perms[0], perms[1])
    np.testing.assert_array_equal(model._rng_state, state)
    assert_weights_close(model.get_weights(), w)


def test_each_epoch_shuffles_anew():
    """Two epochs of one fit call equal two fit calls of one epoch (the shuffle
    state carries over), and the second epoch's order differs from the first's."""
    x, y = data(40)
    a, b = make_model(seed=9), make_model(seed=9)
    for m in (a, b):
        m.compile(fo.optimizers.SGD(0.05), "mse")
    ha = a.fit(x, y, epochs=2, batch_size=5, verbose=0)
    hb = [b.fit(x, y, epochs=1, batch_size=5, verbose=0).history["loss"][0] for _ in range(2)]
    assert ha.history["loss"] == hb
    assert_weights_equal(a.get_weights(), b.get_weights())


# -- callbacks -------------------------------------------------------------------------------

class Script(fo.callbacks.Callback):
    """Overwrites logs[key] with scripted values (run before the callbacks under test)
    and records the weights at each epoch end."""

    def __init__(self, key, values):
        self.key, self.values, self.weights = key, list(values), []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def _fit_scripted(values, key="val_loss", epochs=None, **es):
    x, y = data(20)
    model = make_model()
    model.compile(fo.optimizers.SGD(0.05), "mse")
    script = Script(key, values)
    stop = fo.callbacks.EarlyStopping(monitor=key, **es)
    h = model.fit(x, y, epochs=epochs or len(values), batch_size=10, validation_data=(x, y),
                  callbacks=[script, stop], verbose=0)
    return h, model, script, stop


def test_early_stopping_patience():
    h, *_ = _fit_scripted([1.0, 0.5, 0.6, 0.7, 0.4, 0.3, 0.2], patience=2)
    assert h.epoch == [0, 1, 2, 3]
    h, *_ = _fit_scripted([1.0, 0.5, 0.6, 0.7, 0.4, 0.3, 0.2], patience=3)
    assert h.epoch == list(range(7))
    h, *_ = _fit_scripted([1.0, 1.0, 1.0, 1.0], patience=0)
    assert h.epoch == [0, 1]


def test_early_stopping_min_delta():
    values = [1.0, 0.95, 0.9, 0.85, 0.8]
    h, *_ = _fit_scripted(values, patience=1, min_delta=0.1)
    assert h.epoch == [0, 1]
    h, *_ = _fit_scripted(values, patience=1, min_delta=0.01)
    assert h.epoch == list(range(5))


def test_early_stopping_mode():
    values = [1.0, 2.0, 3.0, 2.5, 2.0, 4.0]
    h, *_ = _fit_scripted(values, key="val_score", patience=1, mode="max")
    assert h.epoch == [0, 1, 2, 3]
    h, *_ = _fit_scripted(values, key="val_score", patience=1, mode="min")
    assert h.epoch == [0, 1]
    h, *_ = _fit_scripted(values, key="val_loss", patience=1, mode="auto")  # a loss: min
    assert h.epoch == [0, 1]


def test_early_stopping_restore_best_weights():
    h, model, script, stop = _fit_scripted([1.0, 0.2, 0.5, 0.6, 0.7], patience=2, restore_best_weights=True)
    assert h.epoch == [0, 1, 2, 3]
    assert_weights_equal(model.get_weights(), script.weights[1])
    assert not np.array_equal(script.weights[1][0], script.weights[3][0])
    h, model, script, _ = _fit_scripted([1.0, 0.2, 0.5, 0.6, 0.7], patience=2)
    assert_weights_equal(model.get_weights(), script.weights[3])  # not restored without the flag


def test_early_stopping_restores_best_weights_without_stopping():
    h, model, script, _ = _fit_scripted([1.0, 0.2, 0.5, 0.6], patience=10, restore_best_weights=True)
    assert h.epoch == [0, 1, 2, 3]  # patience never ran out
    assert_weights_equal(model.get_weights(), script.weights[1])


def test_early_stopping_on_real_training():
    x, y = data(40)
    model = make_model()
    model.compile(fo.optimizers.SGD(0.5), "mse")
    stop = fo.callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=1e-3)
    h = model.fit(x, y, epochs=500, batch_size=40, callbacks=[stop], verbose=0)
    assert len(h.epoch) < 500
    losses = h.history["loss"]
    best = min(losses[:-2])
    assert all(l > best - 1e-3 for l in losses[-2:])


def test_terminate_on_nan(capsys):
    x, y = data(40)
    model = make_model()
    model.compile(fo.optimizers.SGD(1e12), "mse")
    with pytest.warns(fo.DivergenceWarning):
        h = model.fit(x, y, epochs=50, batch_size=8, callbacks=[fo.callbacks.TerminateOnNaN()], verbose=0)
    assert len(h.epoch) < 50
    assert not math.isfinite(h.history["loss"][-1])
    assert all(math.isfinite(l) for l in h.history["loss"][:-1])


def test_custom_callback_sees_logs():
    events = []

    class Recorder(fo.callbacks.Callback):
        def on_train_begin(self, logs=None):
            events.append(("begin", self.model))

        def on_epoch_begin(self, epoch, logs=None):
            events.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            events.append(("epoch_end", epoch, dict(logs)))

        def on_train_end(self, logs=None):
            events.append(("end",))

    x, y = data(30)
    model = make_model()
    model.compile("adam", "mse", metrics=["mae"])
    h = model.fit(x, y, epochs=3, validation_split=0.2, callbacks=[Recorder()], verbose=0)
    assert events[0] == ("begin", model)
    assert events[-1] == ("end",)
    ends = [e for e in events if e[0] == "epoch_end"]
    assert [e[1] for e in ends] == [0, 1, 2]
    assert [e[0] for e in events[1:-1]] == ["epoch_begin", "epoch_end"] * 3
    for e in ends:
        assert set(e[2]) == {"loss", "mae", "val_loss", "val_mae"}
    for k in h.history:
        assert h.history[k] == [e[2][k] for e in ends]


def test_stop_training_from_a_callback():
    class StopAt(fo.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    x, y = data(20)
    model = make_model()
    model.compile("sgd", "mse")
    h = model.fit(x, y, epochs=10, callbacks=[StopAt()], verbose=0)
    assert h.epoch == [0, 1]
    h = model.fit(x, y, epochs=3, verbose=0)  # the flag does not stick
    assert h.epoch == [0, 1, 2]


# -- progress, epochs, history --------------------------------------------------------------

def test_verbose_levels(capsys):
    """verbose=1: one bar for the run (captured output is no terminal: a last line);
    verbose=2: one line per epoch; verbose=0: nothing (tests/test_callbacks.py has the rest)."""
    x, y = data(20)
    model = make_model()
    model.compile("sgd", "mse", metrics=["mae"])
    model.fit(x, y, epochs=4, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Epoch 4/4 [") and "loss: " in lines[0] and "mae: " in lines[0]
    model.fit(x, y, epochs=3, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split(" - ")[0] for l in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all("loss: " in l and "mae: " in l for l in lines)
    model.fit(x, y, epochs=4, verbose=0)
    model.predict(x)
    model.evaluate(x, y)
    assert capsys.readouterr().out == ""


def test_initial_epoch(capsys):
    x, y = data(20)
    model = make_model()
    model.compile("sgd", "mse")
    h = model.fit(x, y, epochs=5, batch_size=10, initial_epoch=3, verbose=2)
    assert h.epoch == [3, 4]
    assert len(h.history["loss"]) == 2
    assert model.optimizer.iterations == 4
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split(" - ")[0] for l in lines] == ["Epoch 4/5", "Epoch 5/5"]
    h = model.fit(x, y, epochs=2, initial_epoch=2, verbose=0)
    assert h.epoch == [] and h.history == {}


def test_fit_returns_history():
    x, y = data(20)
    model = make_model()
    model.compile("sgd", "mse")
    h = model.fit(x, y, epochs=3, batch_size=6, verbose=0)
    assert isinstance(h, fo.callbacks.History)
    assert h.epoch == [0, 1, 2]
    assert h.params["epochs"] == 3 and h.params["steps"] == 4
    assert h.model is model
    assert list(h.history) == ["loss"]
    assert model.optimizer.iterations == 12


def test_fit_float32_follows_twin_loosely():
    model = make_model(dtype="float32", regs=REGS)
    model.compile(fo.optimizers.Adam(0.01), "mse")
    x, y = data(50, dtype=np.float32)
    w = model.get_weights()
    assert w[0].dtype == np.float32
    model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    acts, bias, l1, l2 = twin_spec(regs=REGS)
    ref.fit(w, acts, bias, l1, l2, ref.ReferenceOptimizer("adam", learning_rate=0.01), x, y, 3, 16)
    assert w[0].dtype == np.float32
    assert_weights_close(model.get_weights(), w, atol=1e-4, rtol=1e-3)


def test_predict_from_two_threads():
    import threading

    model = fo.Sequential([fo.Dense(256, activation="tanh", input_shape=(64,)), fo.Dense(64, activation="tanh"),
                           fo.Dense(1)], dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1000, 64)) for _ in range(2)]
    want = [model.predict(x) for x in xs]
    wrong = threading.Event()

    def run(i):
        for _ in range(60):
            if wrong.is_set():
                return
            if not np.array_equal(model.predict(xs[i]), want[i]):
                wrong.set()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong.is_set(), "a prediction differed from the single-threaded one"
