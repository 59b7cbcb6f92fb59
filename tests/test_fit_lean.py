"""fit's lean path (no callbacks, verbose=0, no validation or weights, a built and
compiled model) against its thorough path: the same bits in the weights, the
optimizer's state, iterations, the shuffle state and History; the same
messages for bad input, with nothing changed; and the lean path is the one
taken exactly when its conditions hold."""
import contextlib
import warnings

import numpy as np
import pytest

import fastopt as fo
from fastopt import callbacks as fo_callbacks
from fastopt import models as fo_models

from optim_helpers import model_fast_path


def make_model(dtype="float64", n_in=3, units=2, opt=None, metrics=None, seed=0, loss="mse", activation=None):
    model = fo.Sequential([fo.Dense(4, activation="tanh", input_shape=(n_in,)),
                           fo.Dense(units, activation=activation)], dtype=dtype, seed=seed)
    model.compile(opt() if opt else fo.optimizers.Adam(0.01), loss, metrics=metrics)
    return model


def data(n=23, n_in=3, units=2, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    y = (np.sin(x[:, :units]) + 0.1 * rng.standard_normal((n, units))).astype(dtype)
    return x, y


def snapshot(model, history):
    return dict(weights=[w.copy() for w in model.get_weights()],
                slots=[s.copy() for s in model._slots if s is not None],
                iterations=model.optimizer.iterations, rng=model._rng_state.copy(),
                history=history.history, epoch=history.epoch, params=history.params,
                is_model_history=model.history is history, model=history.model is model)


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if k in ("weights", "slots"):
            assert len(a[k]) == len(b[k])
            for u, v in zip(a[k], b[k]):
                np.testing.assert_array_equal(u, v)
        elif k == "rng":
            np.testing.assert_array_equal(a[k], b[k])
        else:
            assert a[k] == b[k], k


def boom(*args, **kwargs):
    raise AssertionError("the other path ran")


def run_fit(path, monkeypatch, make, fit_args, fit_kwargs, fits=2):
    """fit ``fits`` times on a fresh model, forcing ``path`` ("lean" or "thorough")."""
    with monkeypatch.context() as m, contextlib.ExitStack() as stack:
        if path == "lean":  # the thorough path builds a CallbackList; the lean one does not
            m.setattr(fo_callbacks, "CallbackList", boom)
        else:
            m.setattr(fo.Sequential, "_fit_lean", boom)
            stack.enter_context(model_fast_path(False))
        model = make()
        snaps = []
        for _ in range(fits):
            history = model.fit(*fit_args, **fit_kwargs)
            snaps.append(snapshot(model, history))
    return snaps


CASES = {
    "adam, shuffled mini-batches": (dict(), dict(batch_size=5, epochs=4)),
    "default batch size": (dict(), dict(epochs=3)),
    "full batch, not shuffled": (dict(), dict(batch_size=23, epochs=6, shuffle=False)),
    "batch larger than the data": (dict(), dict(batch_size=100, epochs=2)),
    "no epochs": (dict(), dict(batch_size=4, epochs=0)),
    "metrics": (dict(metrics=["mae", "mse"]), dict(batch_size=7, epochs=3)),
    "float32": (dict(dtype="float32"), dict(batch_size=6, epochs=3)),
    "a schedule": (dict(opt=lambda: fo.optimizers.SGD(fo.schedules.InverseTimeDecay(0.1, 3, 0.5))),
                   dict(batch_size=4, epochs=3)),
    "momentum, weight decay": (dict(opt=lambda: fo.optimizers.SGD(0.05, momentum=0.9, weight_decay=0.01)),
                               dict(batch_size=8, epochs=2, shuffle=False)),
    "moving average (use_ema)": (dict(opt=lambda: fo.optimizers.Adam(0.01, use_ema=True, ema_momentum=0.9)),
                                 dict(batch_size=5, epochs=3)),
    "softmax, sparse cross-entropy": (dict(units=3, activation="softmax", loss="sparse_categorical_crossentropy",
                                           metrics=["accuracy"]), dict(batch_size=6, epochs=3, labels=3)),
    "sigmoid, binary cross-entropy": (dict(units=1, activation="sigmoid", loss="binary_crossentropy"),
                                      dict(batch_size=6, epochs=3, labels=2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_lean_and_thorough_fit_give_the_same_bits(case, monkeypatch):
    model_kw, fit_kw = CASES[case]
    x, y = data(dtype=np.float32 if model_kw.get("dtype") == "float32" else np.float64)
    fit_kw = dict(fit_kw)
    labels = fit_kw.pop("labels", None)
    if labels:  # class labels, as integers (sparse) or 0/1 floats (binary)
        y = (np.arange(len(x)) * 7 % labels) if labels > 2 else (x[:, 0] > 0).astype(x.dtype)
    make = lambda: make_model(**model_kw)  # noqa: E731
    lean = run_fit("lean", monkeypatch, make, (x, y), dict(fit_kw, verbose=0))
    thorough = run_fit("thorough", monkeypatch, make, (x, y), dict(fit_kw, verbose=0))
    for a, b in zip(lean, thorough):
        assert_same(a, b)
    assert len(lean[-1]["epoch"]) == fit_kw["epochs"]
    assert lean[-1]["params"] == {"epochs": fit_kw["epochs"], "steps": lean[-1]["params"]["steps"], "verbose": 0}


@pytest.mark.parametrize("shape", ["1-d x and y", "(n, 1) y"])
def test_lean_fit_takes_one_column_data_as_the_thorough_path(shape, monkeypatch):
    """Article 002's x = 1..5 as (n,) into a model of one input and one output."""
    x = np.arange(1.0, 6.0)
    y = x.copy() if shape == "1-d x and y" else x.reshape(-1, 1).copy()

    def make():
        m = fo.Sequential([fo.Dense(1, use_bias=False, input_shape=(1,))], dtype="float64", seed=0)
        m.compile(fo.optimizers.SGD(0.01), "mean_squared_error")
        return m
    kw = dict(batch_size=5, epochs=50, verbose=0, shuffle=False)
    for a, b in zip(run_fit("lean", monkeypatch, make, (x, y), kw),
                    run_fit("thorough", monkeypatch, make, (x, y), kw)):
        assert_same(a, b)


@pytest.mark.parametrize("kwargs", [
    dict(verbose=1), dict(verbose="auto"), dict(callbacks=[]), dict(validation_split=0.2),
    dict(validation_data=None, sample_weight=np.ones(23)), dict(class_weight={0: 1.0}),
    dict(initial_epoch=1), dict(steps_per_epoch=2, batch_size=5), dict(validation_freq=2), dict(batch_size=np.int64(4)),
    dict(shuffle=1), dict(epochs=np.int32(2)),
])
def test_anything_else_takes_the_thorough_path(kwargs, monkeypatch, capsys):
    x, y = data()
    model = make_model()
    monkeypatch.setattr(fo.Sequential, "_fit_lean", boom)
    model.fit(x, y, **dict(dict(epochs=2, verbose=0), **kwargs))
    assert model.optimizer.iterations > 0


def test_an_unbuilt_or_recompiled_model_takes_the_thorough_path_then_the_lean_one(monkeypatch):
    x, y = data()
    model = fo.Sequential([fo.Dense(2)], seed=0)
    model.compile(fo.optimizers.SGD(0.01), "mse")
    with monkeypatch.context() as m:
        m.setattr(fo.Sequential, "_fit_lean", boom)
        model.fit(x, y, epochs=1, verbose=0)  # builds
    with monkeypatch.context() as m:
        m.setattr(fo_callbacks, "CallbackList", boom)
        model.fit(x, y, epochs=1, verbose=0)
    assert model.optimizer.iterations == 2
    model.compile(fo.optimizers.Adam(0.01), "mse")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.optimizer.iterations == 1


@pytest.mark.parametrize("bad", ["nan in x", "features", "samples", "y width", "y dtype", "x list of str",
                                 "empty x"])
def test_bad_data_gets_the_thorough_message_and_changes_nothing(bad, monkeypatch):
    x, y = data()
    bx, by = {"nan in x": (np.where(x > 1, np.nan, x), y), "features": (x[:, :2], y),
              "samples": (x, y[:-1]), "y width": (x, y[:, :1]), "y dtype": (x, y.astype(str)),
              "x list of str": ([["a"] * 3] * 23, y), "empty x": (x[:0], y[:0])}[bad]
    messages = []
    for lean in (True, False):
        model = make_model()
        model.fit(x, y, batch_size=5, epochs=1, verbose=0)
        before = snapshot(model, model.history)
        with model_fast_path(lean):
            with pytest.raises((TypeError, ValueError)) as info:
                model.fit(bx, by, batch_size=5, epochs=3, verbose=0)
        messages.append((type(info.value), str(info.value)))
        assert_same(before, snapshot(model, model.history))
    assert messages[0] == messages[1]


def test_lean_fit_warns_of_divergence_as_the_thorough_path(monkeypatch):
    x, y = data()
    out = []
    for lean in (True, False):
        with model_fast_path(lean), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = make_model(opt=lambda: fo.optimizers.SGD(1e6))
            history = model.fit(x, y, batch_size=5, epochs=3, verbose=0)
        out.append(([str(w.message) for w in caught if issubclass(w.category, fo.DivergenceWarning)],
                    history.history))
    assert out[0][0] and out[0][0] == out[1][0]
    np.testing.assert_array_equal(np.array(out[0][1]["loss"]), np.array(out[1][1]["loss"]))
