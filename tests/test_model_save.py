"""model.save / fo.load_model: the same model comes back (config, weights,
predictions), and training resumed after loading is bit for bit the training
that would have continued without saving; the file is written atomically."""
import os
import stat

import numpy as np
import pytest

import fastopt as fo

OPTIMIZERS = {
    "adam": lambda: fo.optimizers.Adam(fo.schedules.ExponentialDecay(0.02, 5, 0.7), amsgrad=True),
    "sgd": lambda: fo.optimizers.SGD(0.05, momentum=0.9, nesterov=True, clipnorm=0.5),
    "rmsprop": lambda: fo.optimizers.RMSprop(0.005, momentum=0.5, centered=True, weight_decay=0.01),
    "adagrad": lambda: fo.optimizers.Adagrad(fo.schedules.InverseSqrtDecay(0.1, 0.5)),
    "adamw": lambda: fo.optimizers.AdamW(0.01, weight_decay=0.02, global_clipnorm=1.0),
}


def make_model(dtype="float64", optimizer="adam", seed=4):
    model = fo.Sequential([
        fo.Dense(8, activation="tanh", input_shape=(5,), kernel_regularizer=fo.regularizers.l1_l2(0.001, 0.01),
                 kernel_initializer="he_uniform", bias_initializer="ones"),
        fo.Dense(4, activation="relu", use_bias=False, kernel_initializer=fo.initializers.RandomNormal(0.0, 0.3)),
        fo.Dense(2, activation="sigmoid", name="head"),
    ], dtype=dtype, seed=seed, name="saved_model")
    model.compile(OPTIMIZERS[optimizer](), "mean_squared_error", metrics=["mae", "mse"])
    return model


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    y = 1 / (1 + np.exp(-x[:, :2])) + 0.05 * rng.standard_normal((n, 2))
    return x, y


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(u, v)


def assert_same_optimizer_state(a, b):
    assert type(a.optimizer) is type(b.optimizer)
    assert a.optimizer.get_config() == b.optimizer.get_config()
    assert a.optimizer.iterations == b.optimizer.iterations
    sa = a.optimizer.get_state(a.trainable_variables)
    sb = b.optimizer.get_state(b.trainable_variables)
    for va, vb in zip(sa["slots"], sb["slots"]):
        for u, v in zip(va, vb):
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_resumed_training_is_bit_identical(tmp_path, dtype, optimizer):
    x, y = data()
    xv, yv = data(20, seed=1)
    model = make_model(dtype, optimizer)
    model.fit(x, y, epochs=2, batch_size=8, shuffle=True, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fo.load_model(path)

    assert loaded.get_config() == model.get_config()
    assert loaded.dtype == model.dtype
    assert loaded.loss == model.loss and loaded.metrics_names == model.metrics_names
    assert_same_weights(loaded, model)
    assert_same_optimizer_state(loaded, model)
    np.testing.assert_array_equal(loaded.predict(xv), model.predict(xv))
    assert loaded.evaluate(xv, yv) == model.evaluate(xv, yv)

    # continue both: shuffled epochs (the generator state), then manual steps
    # (the per-variable views of the optimizer state), then more epochs
    runs = []
    for m in (model, loaded):
        h1 = m.fit(x, y, epochs=2, batch_size=8, shuffle=True, validation_data=(xv, yv), verbose=0).history
        for _ in range(2):
            _, grads = m.compute_gradients(x[:16], y[:16])
            m.optimizer.apply_gradients(zip(grads, m.trainable_variables))
        h2 = m.fit(x, y, epochs=1, batch_size=7, shuffle=True, verbose=0).history
        runs.append((h1, h2))
    assert runs[0] == runs[1]
    assert_same_weights(loaded, model)
    assert_same_optimizer_state(loaded, model)


def test_save_load_keeps_layer_configuration(tmp_path):
    model = make_model()
    model.save(tmp_path / "m.npz")
    loaded = fo.load_model(tmp_path / "m.npz")
    assert loaded.name == "saved_model"
    assert [l.name for l in loaded.layers] == ["dense", "dense_1", "head"]
    assert [l.activation for l in loaded.layers] == ["tanh", "relu", "sigmoid"]
    assert [l.use_bias for l in loaded.layers] == [True, False, True]
    reg = loaded.layers[0].kernel_regularizer
    assert (reg.l1, reg.l2) == (0.001, 0.01)
    assert loaded.layers[1].kernel_regularizer is None
    assert isinstance(loaded.layers[0].kernel_initializer, fo.initializers.HeUniform)
    init = loaded.layers[1].kernel_initializer
    assert isinstance(init, fo.initializers.RandomNormal) and init.stddev == 0.3
    assert isinstance(loaded.optimizer.learning_rate, float)
    sched = loaded.optimizer._schedule
    assert isinstance(sched, fo.schedules.ExponentialDecay)
    assert sched.get_config() == model.optimizer._schedule.get_config()


def test_model_built_by_fit_and_uncompiled_model(tmp_path):
    model = fo.Sequential([fo.Dense(3, activation="tanh"), fo.Dense(1)], dtype="float64", seed=1)
    model.compile("sgd", "mse")
    x, y = data(20)
    model.fit(x, y[:, 0], epochs=1, verbose=0)
    model.save(tmp_path / "a")
    loaded = fo.load_model(tmp_path / "a")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))

    plain = fo.Sequential([fo.Dense(2, input_shape=(5,))], seed=2)
    plain.save(tmp_path / "b.npz")
    back = fo.load_model(tmp_path / "b.npz")
    assert back.optimizer is None
    assert_same_weights(back, plain)


def test_save_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"not a model")
    a = make_model(seed=1)
    a.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    assert_same_weights(fo.load_model(path), a)
    b = make_model(seed=2)
    b.save(str(path))  # str paths too, over an existing model
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    assert_same_weights(fo.load_model(path), b)


def test_saved_file_has_ordinary_permissions(tmp_path):
    ordinary = tmp_path / "plain"
    ordinary.write_bytes(b"")
    path = tmp_path / "model.npz"
    make_model().save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(ordinary).st_mode)
