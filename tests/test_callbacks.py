"""Callbacks: the Keras 3 Callback base and CallbackList (fan-out, batch-hook
detection), the progress of fit at each verbose level (with an injected
stream and clock, so no test sleeps), TerminateOnNaN's restore, and
LearningRateScheduler, ReduceLROnPlateau, ModelCheckpoint, CSVLogger and
LambdaCallback beyond what Keras' own tests (tests/test_keras_callbacks.py) cover."""
import csv
import io
import math
import sys
import types

import numpy as np
import pytest

import fastopt as fo

C = fo.callbacks

KERAS_HOOKS = ["on_batch_begin", "on_batch_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
               "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
               "on_predict_batch_end", "on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
               "on_predict_begin", "on_predict_end"]


def data(n=40, n_in=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in))
    return x, x @ np.array([1.0, -2.0, 0.5])[:n_in] + 0.1 * rng.standard_normal(n)


def make_model(lr=0.05, seed=0, optimizer=None):
    model = fo.Sequential([fo.Dense(4, activation="tanh", input_shape=(3,)), fo.Dense(1)],
                          dtype="float64", seed=seed)
    model.compile(optimizer or fo.optimizers.SGD(lr), "mse", metrics=["mae"])
    return model


def weights_equal(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


class Script(C.Callback):
    """Writes scripted values into logs[key] at each epoch end (placed before the
    callbacks under test) and records the weights there."""

    def __init__(self, key=None, values=()):
        super().__init__()
        self.key, self.values, self.weights = key, list(values), []

    def on_epoch_end(self, epoch, logs=None):
        if self.key is not None:
            logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


class Clock:
    """An injected clock: time moves only when the test says."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class TTY(io.StringIO):
    def isatty(self):
        return True


# -- the base class and the list ------------------------------------------------------------------

def test_callback_has_every_keras_hook():
    cb = C.Callback()
    assert cb.params is None and cb.model is None
    for name in KERAS_HOOKS:
        hook = getattr(cb, name)
        if "batch" in name or name.startswith("on_epoch"):
            hook(0, logs={})
            hook(0)
        else:
            hook(logs={})
            hook()
    cb.set_params({"epochs": 3})
    cb.set_model("m")
    assert cb.params == {"epochs": 3} and cb.model == "m"


def test_train_batch_hooks_call_the_old_aliases():
    seen = []

    class Old(C.Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch))

    cbs = C.CallbackList([Old()])
    cbs.on_train_batch_begin(0)
    cbs.on_train_batch_end(0, {"loss": 1.0})
    assert seen == [("begin", 0), ("end", 0)]
    assert cbs.uses_train_batch_hooks


def test_callback_list_fans_out_in_order():
    events = []

    class Rec(C.Callback):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def on_epoch_end(self, epoch, logs=None):
            events.append((self.tag, epoch, logs.get("loss")))
            logs["seen_by_" + self.tag] = True

        def on_test_batch_end(self, batch, logs=None):
            events.append((self.tag, "test", batch))

    model = make_model()
    a, b = Rec("a"), Rec("b")
    cbs = C.CallbackList([a, b], add_history=True, add_progbar=True, model=model, epochs=2, steps=3, verbose=0)
    assert [type(c) for c in cbs] == [Rec, Rec, C.History, C.ProgbarLogger] and len(cbs) == 4
    assert all(c.params == {"epochs": 2, "steps": 3, "verbose": 0} and c.model is model for c in cbs)
    assert model.history is cbs.callbacks[2]
    logs = {"loss": 0.5}
    cbs.on_train_begin()
    cbs.on_epoch_end(0, logs)
    cbs.on_test_batch_end(4)
    assert events == [("a", 0, 0.5), ("b", 0, 0.5), ("a", "test", 4), ("b", "test", 4)]
    assert logs == {"loss": 0.5, "seen_by_a": True, "seen_by_b": True}  # one dict passed along
    assert model.history.history == {"loss": [0.5], "seen_by_a": [True], "seen_by_b": [True]}
    # a History or ProgbarLogger in the list is used, not doubled; a single callback works too
    h = C.History()
    assert C.CallbackList([h], add_history=True).callbacks == [h]
    assert len(C.CallbackList(C.ProgbarLogger(), add_progbar=True)) == 1
    late = Rec("c")
    cbs.append(late)
    assert late.model is model and late.params["steps"] == 3


@pytest.mark.parametrize("callbacks, train, test, predict", [
    ([], False, False, False),
    ([C.History(), C.ProgbarLogger(), C.EarlyStopping(), C.TerminateOnNaN(), C.CSVLogger("x.csv"),
      C.ReduceLROnPlateau(), C.LearningRateScheduler(lambda e: 0.1), C.ModelCheckpoint("m.npz")],
     False, False, False),
    ([C.ModelCheckpoint("m.npz", save_freq=3)], True, False, False),
    ([C.LambdaCallback(on_epoch_end=lambda e, l: None)], False, False, False),
    ([C.LambdaCallback(on_train_batch_end=lambda b, logs: None)], True, False, False),
    ([C.LambdaCallback(on_test_batch_begin=lambda b, logs: None)], False, True, False),
    ([C.LambdaCallback(on_predict_batch_end=lambda b, logs: None)], False, False, True),
    ([C.CallbackList([C.LambdaCallback(on_batch_end=lambda b, logs: None)])], True, False, False),
])
def test_callback_list_tells_which_batch_hooks_are_used(callbacks, train, test, predict):
    cbs = C.CallbackList(callbacks)
    assert (cbs.uses_train_batch_hooks, cbs.uses_test_batch_hooks, cbs.uses_predict_batch_hooks) == (
        train, test, predict)
    assert cbs.uses_batch_hooks == (train or test or predict)


def test_a_subclass_overriding_a_batch_hook_is_seen():
    class Batches(C.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    assert C.CallbackList([C.History(), Batches()]).uses_train_batch_hooks


@pytest.mark.parametrize("bad, word", [(["history"], "callbacks\\[0\\]"), ("history", "list"),
                                       (3, "list"), ([C.History(), None], "callbacks\\[1\\]")])
def test_callback_list_refuses_what_is_no_callback(bad, word):
    with pytest.raises(TypeError, match=word):
        C.CallbackList(bad)
    with pytest.raises(TypeError):
        C.CallbackList().append("x")


def test_fit_refuses_bad_callbacks_before_training():
    model = make_model()
    before = model.get_weights()
    with pytest.raises(TypeError, match="callbacks"):
        model.fit(*data(), epochs=2, verbose=0, callbacks=[print])
    assert weights_equal(model.get_weights(), before) and model.optimizer.iterations == 0


def test_fit_uses_a_given_history_and_sets_model_history():
    model = make_model()
    h = C.History()
    out = model.fit(*data(), epochs=3, verbose=0, callbacks=[h])
    assert out is h and model.history is h and h.epoch == [0, 1, 2]


# -- progress -------------------------------------------------------------------------------------

def run_progbar(progbar, epochs, seconds_per_epoch, clock, logs=lambda e: {"loss": 1.0 / (e + 1)},
                steps=4, verbose=1, stop_after=None):
    cbs = C.CallbackList([progbar], epochs=epochs, steps=steps, verbose=verbose)
    cbs.on_train_begin()
    for e in range(epochs):
        cbs.on_epoch_begin(e)
        clock.t += seconds_per_epoch
        cbs.on_epoch_end(e, logs(e))
        if stop_after is not None and e + 1 == stop_after:
            break
    cbs.on_train_end()


def test_1000_epochs_at_verbose_1_write_a_few_lines_when_captured(capsys):
    x, y = data()
    model = make_model()
    model.fit(x, y, epochs=1000, batch_size=40, verbose=1)
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert 1 <= len(lines) <= 3, out
    assert lines[-1].startswith("Epoch 1000/1000 [") and "loss: " in lines[-1] and "mae: " in lines[-1]
    model.fit(x, y, epochs=1000, batch_size=40, verbose="auto")  # Keras' default means the same
    assert 1 <= len(capsys.readouterr().out.strip().splitlines()) <= 3


def test_lines_mode_writes_one_line_every_interval():
    clock, out = Clock(), io.StringIO()
    run_progbar(C.ProgbarLogger(stream=out, clock=clock), 1000, 1 / 16, clock)
    lines = out.getvalue().splitlines()
    # 62.5 s in all: a line at 5 s, 10 s, ... 60 s (epochs 80, 160, ... 960), then the last
    assert [l.split(" [")[0] for l in lines] == [f"Epoch {80 * k}/1000" for k in range(1, 13)] + ["Epoch 1000/1000"]
    assert all("ETA: " in l for l in lines[:-1]) and "ETA" not in lines[-1]
    assert lines[0].startswith("Epoch 80/1000 [=>....") and "loss: 0.0125" in lines[0]
    assert lines[0].endswith("] - ETA: 57s - loss: 0.0125")
    assert "[" + "=" * 30 + "]" in lines[-1] and "1m" not in lines[-1] and "1:02" in lines[-1]


def test_eta_and_timing():
    clock, out = Clock(), io.StringIO()
    run_progbar(C.ProgbarLogger(stream=out, clock=clock, interval=0), 100, 1.0, clock)
    lines = out.getvalue().splitlines()
    assert len(lines) == 100
    assert " - ETA: 1:30 - " in lines[9]      # 10 epochs in 10 s: 90 s to go
    assert " - ETA: 1s - " in lines[98]
    assert lines[-1].startswith("Epoch 100/100 [") and " - 1:40 1s/epoch - loss: 0.0100" in lines[-1]


def test_terminal_mode_redraws_one_line_in_place():
    clock, out = Clock(), TTY()
    run_progbar(C.ProgbarLogger(stream=out, clock=clock), 200, 1 / 64, clock,
                logs=lambda e: {"loss": 10.0 ** -(e % 7)})
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    frames = text[:-1].split("\r")[1:]
    assert 25 <= len(frames) <= 35  # 3.1 s at one redraw per 0.1 s, plus the last
    assert frames[-1].startswith("Epoch 200/200 [" + "=" * 30 + "]")
    width = 0
    for f in frames:  # a shorter bar is padded to blank the longer one before it
        assert len(f) >= width
        width = len(f)


def test_verbose_2_writes_keras_epoch_lines():
    clock, out = Clock(), io.StringIO()
    run_progbar(C.ProgbarLogger(stream=out, clock=clock), 5, 0.5, clock, verbose=2,
                logs=lambda e: {"loss": 0.123449, "mae": 0.000125})
    lines = out.getvalue().splitlines()
    assert lines == [f"Epoch {e}/5 - 4/4 - 0s - 125ms/step - loss: 0.1234 - mae: 1.2500e-04" for e in range(1, 6)]


def test_verbose_0_writes_nothing():
    clock, out = Clock(), TTY()
    run_progbar(C.ProgbarLogger(stream=out, clock=clock), 50, 1.0, clock, verbose=0)
    assert out.getvalue() == ""


def test_an_early_stop_ends_the_bar_with_the_time_taken():
    clock, out = Clock(), io.StringIO()
    run_progbar(C.ProgbarLogger(stream=out, clock=clock), 100, 1.0, clock, stop_after=30)
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("Epoch 30/100 [") and "ETA" not in lines[-1] and " - 30s 1s/epoch" in lines[-1]


def test_tqdm_bar():
    pytest.importorskip("tqdm")
    clock, out = Clock(), io.StringIO()
    run_progbar(C.ProgbarLogger(stream=out, clock=clock, display="tqdm"), 50, 0.0, clock)
    text = out.getvalue()
    assert "50/50" in text and "loss: 0.0200" in text and "Epoch" in text


def test_display_choice(monkeypatch):
    kernel = types.SimpleNamespace(get_ipython=lambda: types.SimpleNamespace(kernel=object()))
    terminal_ipython = types.SimpleNamespace(get_ipython=lambda: types.SimpleNamespace())
    p = C.ProgbarLogger()
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert p._choose_display() == "lines"
    monkeypatch.setattr(sys, "stdout", TTY())
    assert p._choose_display() == "bar"
    monkeypatch.setitem(sys.modules, "IPython", terminal_ipython)
    assert p._choose_display() == "bar"
    monkeypatch.setitem(sys.modules, "IPython", kernel)  # a Jupyter kernel
    try:
        import tqdm.auto  # noqa: F401
        assert p._choose_display() == "tqdm"
    except ImportError:
        pass
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm not installed
    assert p._choose_display() == "bar"
    # an explicit stream is never a notebook widget
    assert C.ProgbarLogger(stream=io.StringIO())._choose_display() == "lines"
    assert C.ProgbarLogger(display="lines")._choose_display() == "lines"


def test_fit_uses_a_given_progbar_logger(capsys):
    clock, out = Clock(), io.StringIO()
    tick = C.LambdaCallback(on_epoch_end=lambda e, logs: setattr(clock, "t", clock.t + 2.0))
    model = make_model()
    model.fit(*data(), epochs=10, verbose=1, callbacks=[tick, C.ProgbarLogger(stream=out, clock=clock)])
    assert capsys.readouterr().out == ""
    lines = out.getvalue().splitlines()
    assert [l.split(" [")[0] for l in lines] == ["Epoch 3/10", "Epoch 6/10", "Epoch 9/10", "Epoch 10/10"]


@pytest.mark.parametrize("make, exc, word", [
    (lambda: C.ProgbarLogger(count_mode="batches"), ValueError, "count_mode"),
    (lambda: C.ProgbarLogger(display="widget"), ValueError, "display"),
    (lambda: C.ProgbarLogger(interval=-1), ValueError, "interval"),
    (lambda: C.ProgbarLogger(clock=3), TypeError, "clock"),
    (lambda: C.ProgbarLogger().set_params({"verbose": 3, "epochs": 1}), ValueError, "verbose"),
    (lambda: C.ProgbarLogger().set_params({"verbose": "yes", "epochs": 1}), ValueError, "verbose"),
])
def test_progbar_bad_arguments(make, exc, word):
    with pytest.raises(exc, match=word):
        make()


# -- TerminateOnNaN -------------------------------------------------------------------------------

def diverging_model():
    return make_model(optimizer=fo.optimizers.SGD(0.6))  # diverges after a few epochs on data()


def test_terminate_on_nan_restores_the_last_finite_weights(capsys):
    x, y = data()
    model = diverging_model()
    script = Script()
    h = model.fit(x, y, epochs=200, batch_size=8, callbacks=[script, C.TerminateOnNaN()], verbose=0)
    losses = h.history["loss"]
    assert len(losses) < 200 and not math.isfinite(losses[-1]) and len(losses) > 2
    last_finite = len(losses) - 2
    assert all(math.isfinite(l) for l in losses[:-1])
    assert weights_equal(model.get_weights(), script.weights[last_finite])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert f"restored the weights of the end of epoch {last_finite + 1}" in capsys.readouterr().out


def test_terminate_on_nan_at_the_first_epoch_restores_the_starting_weights():
    x, y = data()
    model = make_model()
    start = model.get_weights()
    h = model.fit(x, y * 1e200, epochs=5, batch_size=8, callbacks=[C.TerminateOnNaN()], verbose=0)
    assert len(h.epoch) == 1 and not math.isfinite(h.history["loss"][0])
    assert weights_equal(model.get_weights(), start)


def test_terminate_on_nan_raise_error_restores_then_raises():
    x, y = data()
    model = diverging_model()
    script = Script()
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at epoch"):
        model.fit(x, y, epochs=200, batch_size=8, callbacks=[script, C.TerminateOnNaN(raise_error=True)],
                  verbose=0)
    assert weights_equal(model.get_weights(), script.weights[-2])


def test_terminate_on_nan_leaves_finite_training_alone():
    x, y = data()
    a, b = make_model(), make_model()
    a.fit(x, y, epochs=5, batch_size=8, shuffle=False, verbose=0, callbacks=[C.TerminateOnNaN()])
    b.fit(x, y, epochs=5, batch_size=8, shuffle=False, verbose=0)
    assert weights_equal(a.get_weights(), b.get_weights())


# -- learning rate callbacks ----------------------------------------------------------------------

def test_learning_rate_scheduler_sets_each_epochs_rate():
    x, y = data()
    rates = [0.1, 0.03, 0.01, 0.003]
    a = make_model()
    h = a.fit(x, y, epochs=4, batch_size=40, shuffle=False, verbose=0,
              callbacks=[C.LearningRateScheduler(lambda epoch: rates[epoch])])
    assert h.history["learning_rate"] == rates
    b = make_model()
    for r in rates:  # the same training, the rate set by hand between epochs
        b.optimizer.learning_rate = r
        b.fit(x, y, epochs=1, batch_size=40, shuffle=False, verbose=0)
    assert weights_equal(a.get_weights(), b.get_weights())
    # two arguments: (epoch, current lr); initial_epoch counts
    c = make_model(lr=0.08)
    seen = []
    c.fit(x, y, epochs=3, initial_epoch=1, verbose=0,
          callbacks=[C.LearningRateScheduler(lambda epoch, lr: seen.append((epoch, lr)) or lr / 2)])
    assert seen == [(1, 0.08), (2, 0.04)] and c.optimizer.learning_rate == 0.02


@pytest.mark.parametrize("schedule, exc, word", [
    (lambda e, lr: "0.1", TypeError, "float"), (lambda e, lr: None, TypeError, "float"),
    (lambda e, lr: -0.1, ValueError, "-0.1"), (lambda e, lr: math.nan, ValueError, "nan"),
])
def test_learning_rate_scheduler_refuses_bad_rates_before_training(schedule, exc, word):
    model = make_model()
    before = model.get_weights()
    with pytest.raises(exc, match=word):
        model.fit(*data(), epochs=2, verbose=0, callbacks=[C.LearningRateScheduler(schedule)])
    assert weights_equal(model.get_weights(), before) and model.optimizer.learning_rate == 0.05


@pytest.mark.parametrize("lr, word", [(fo.schedules.ExponentialDecay(0.1, 10, 0.5), "LearningRateSchedule"),
                                      (lambda: 0.1, "callable")])
def test_learning_rate_callbacks_refuse_a_scheduled_optimizer_before_training(lr, word):
    if callable(lr) and not isinstance(lr, fo.schedules.LearningRateSchedule):
        try:
            fo.optimizers.SGD(learning_rate=lr)
        except (TypeError, ValueError):
            pytest.skip("this optimizer takes no callable learning rate")
    for cb in (C.LearningRateScheduler(lambda e, lr: lr), C.ReduceLROnPlateau(monitor="loss")):
        model = make_model(optimizer=fo.optimizers.SGD(learning_rate=lr))
        before = model.get_weights()
        with pytest.raises(TypeError, match=word):
            model.fit(*data(), epochs=2, verbose=0, callbacks=[cb])
        assert weights_equal(model.get_weights(), before)


def test_reduce_lr_on_plateau_on_scripted_values():
    values = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85]
    model = make_model(lr=0.1)
    reduce = C.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_delta=0.01, cooldown=1,
                                 min_lr=0.02)
    h = model.fit(*data(), epochs=len(values), verbose=0, callbacks=[Script("val_loss", values), reduce])
    # epoch 3: two epochs without improvement -> 0.05 (seen from epoch 4 on); cooldown 1;
    # epoch 5 improves; epochs 6, 7 do not -> 0.025 at 7; cooldown; 9: 0.0125 floored at min_lr 0.02
    assert h.history["learning_rate"] == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025]
    assert model.optimizer.learning_rate == 0.02


@pytest.mark.parametrize("make, exc, word", [
    (lambda: C.ReduceLROnPlateau(factor=1.0), ValueError, "factor"),
    (lambda: C.ReduceLROnPlateau(factor=-0.1), ValueError, "factor"),
    (lambda: C.ReduceLROnPlateau(min_lr=-1.0), ValueError, "min_lr"),
    (lambda: C.ReduceLROnPlateau(patience=-1), ValueError, "patience"),
    (lambda: C.ReduceLROnPlateau(cooldown=1.5), TypeError, "cooldown"),
    (lambda: C.ReduceLROnPlateau(mode="bogus"), ValueError, "mode"),
    (lambda: C.ReduceLROnPlateau(min_delta="0.1"), TypeError, "min_delta"),
    (lambda: C.EarlyStopping(mode="bogus"), ValueError, "mode"),
    (lambda: C.EarlyStopping(monitor=3), TypeError, "monitor"),
    (lambda: C.EarlyStopping(patience=None), TypeError, "patience"),
    (lambda: C.LearningRateScheduler(0.1), TypeError, "schedule"),
])
def test_bad_callback_arguments(make, exc, word):
    with pytest.raises(exc, match=word):
        make()


@pytest.mark.parametrize("monitor, direction", [
    ("loss", np.less), ("val_loss", np.less), ("mse", np.less), ("val_mae", np.less),
    ("mean_squared_error", np.less), ("binary_crossentropy", np.less), ("val_hinge", np.less),
    ("accuracy", np.greater), ("val_acc", np.greater), ("binary_accuracy", np.greater),
    ("val_auc", np.greater), ("f1_score", np.greater), ("precision", np.greater),
])
def test_auto_mode_direction(monitor, direction):
    cb = C.MonitorCallback(monitor)
    cb._set_monitor_op()
    assert cb.monitor_op is direction


def test_auto_mode_refuses_an_unknown_metric_before_training():
    model = make_model()
    before = model.get_weights()
    for cb in (C.EarlyStopping(monitor="val_score"), C.ReduceLROnPlateau(monitor="score"),
               C.ModelCheckpoint("m.npz", monitor="score", save_best_only=True)):
        with pytest.raises(ValueError, match="mode='max'"):
            model.fit(*data(), epochs=2, verbose=0, callbacks=[cb])
    assert weights_equal(model.get_weights(), before)


# -- ModelCheckpoint, CSVLogger, LambdaCallback ------------------------------------------------

def test_model_checkpoint_names_files_from_the_epoch_and_logs(tmp_path):
    model = make_model()
    script = Script()
    pattern = str(tmp_path / "ckpt" / "{epoch:02d}-{loss:.3f}.npz")
    h = model.fit(*data(), epochs=3, verbose=0, callbacks=[script, C.ModelCheckpoint(pattern)])
    for e in range(3):
        path = pattern.format(epoch=e + 1, loss=h.history["loss"][e])
        assert path.endswith(f"{e + 1:02d}-{h.history['loss'][e]:.3f}.npz")
        assert weights_equal(fo.load_model(path).get_weights(), script.weights[e])


def test_model_checkpoint_save_best_only(tmp_path, capsys):
    values = [0.5, 0.4, 0.6, 0.3, 0.35]
    model = make_model()
    script = Script("val_loss", values)
    best = tmp_path / "best.npz"
    cb = C.ModelCheckpoint(best, monitor="val_loss", save_best_only=True, verbose=1)
    model.fit(*data(), epochs=5, verbose=0, callbacks=[script, cb])
    assert weights_equal(fo.load_model(best).get_weights(), script.weights[3])
    assert cb.best == 0.3
    out = capsys.readouterr().out
    assert "Epoch 4: val_loss improved from 0.40000 to 0.30000, saving model to" in out
    assert "Epoch 5: val_loss did not improve from 0.30000" in out
    every = tmp_path / "e{epoch}.npz"
    model.fit(*data(), epochs=5, verbose=0, callbacks=[Script("val_loss", values),
                                                      C.ModelCheckpoint(every, save_best_only=True)])
    assert sorted(p.name for p in tmp_path.glob("e*.npz")) == ["e1.npz", "e2.npz", "e4.npz"]


def test_model_checkpoint_every_n_batches_through_the_batch_hooks(tmp_path):
    model = make_model()
    cb = C.ModelCheckpoint(tmp_path / "b{epoch}-{batch}.npz", save_freq=3)
    cbs = C.CallbackList([cb], model=model, epochs=2, steps=5, verbose=0)
    assert cbs.uses_train_batch_hooks
    cbs.on_train_begin()
    for epoch in range(2):
        cbs.on_epoch_begin(epoch)
        for batch in range(5):
            cbs.on_train_batch_begin(batch)
            cbs.on_train_batch_end(batch, {"loss": 1.0})
        cbs.on_epoch_end(epoch, {"loss": 1.0})
    cbs.on_train_end()
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["b1-3.npz", "b2-1.npz", "b2-4.npz"]


@pytest.mark.parametrize("make, exc, word", [
    (lambda: C.ModelCheckpoint("m.keras"), ValueError, ".npz"),
    (lambda: C.ModelCheckpoint("m.weights.h5", save_weights_only=True), ValueError, ".npz"),
    (lambda: C.ModelCheckpoint(3), TypeError, "filepath"),
    (lambda: C.ModelCheckpoint("m.npz", save_freq="batch"), ValueError, "save_freq"),
    (lambda: C.ModelCheckpoint("m.npz", save_freq=0), ValueError, "save_freq"),
    (lambda: C.ModelCheckpoint("m.npz", save_freq=True), ValueError, "save_freq"),
    (lambda: C.ModelCheckpoint("m.npz", mode="largest"), ValueError, "mode"),
    (lambda: C.CSVLogger("log.csv", separator=";;"), ValueError, "separator"),
    (lambda: C.CSVLogger(None), TypeError, "filename"),
    (lambda: C.LambdaCallback(on_epoch_ned=print), TypeError, "did you mean 'on_epoch_end'"),
    (lambda: C.LambdaCallback(on_epoch_end="print"), TypeError, "callable"),
])
def test_bad_saving_and_logging_arguments(make, exc, word):
    with pytest.raises(exc, match=word):
        make()


def test_model_checkpoint_with_a_placeholder_the_logs_lack(tmp_path):
    model = make_model()
    with pytest.raises(ValueError, match="val_accuracy.*loss"):
        model.fit(*data(), epochs=1, verbose=0, callbacks=[C.ModelCheckpoint(tmp_path / "{val_accuracy}.npz")])


@pytest.mark.skipif(hasattr(fo.Sequential, "save_weights"), reason="the model can save its weights")
def test_model_checkpoint_weights_only_needs_save_weights(tmp_path):
    model = make_model()
    before = model.get_weights()
    with pytest.raises(TypeError, match="save_weights"):
        model.fit(*data(), epochs=1, verbose=0,
                  callbacks=[C.ModelCheckpoint(tmp_path / "w.npz", save_weights_only=True)])
    assert weights_equal(model.get_weights(), before)


@pytest.mark.skipif(not hasattr(fo.Sequential, "save_weights"), reason="Sequential has no save_weights yet")
def test_model_checkpoint_weights_only(tmp_path):
    model = make_model()
    script = Script()
    model.fit(*data(), epochs=2, verbose=0,
              callbacks=[script, C.ModelCheckpoint(tmp_path / "w{epoch}.weights.npz", save_weights_only=True)])
    other = make_model(seed=9)
    other.load_weights(tmp_path / "w2.weights.npz")
    assert weights_equal(other.get_weights(), script.weights[1])


def test_csv_logger_rows(tmp_path):
    path = tmp_path / "log.csv"
    model = make_model()
    extra = C.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(vec=np.array([1, 2])))
    h = model.fit(*data(), epochs=3, verbose=0, callbacks=[extra, C.CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "loss", "mae", "vec", "val_loss", "val_mae", "val_vec"]
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert [float(r["loss"]) for r in rows] == h.history["loss"]
    assert {r["val_loss"] for r in rows} == {"NA"} and rows[0]["vec"] == '"[1, 2]"'
    model.fit(*data(), epochs=2, verbose=0, callbacks=[C.CSVLogger(path, append=True)])
    with open(path) as f:
        text = f.read()
    assert text.count("epoch") == 1 and len(text.splitlines()) == 6


def test_lambda_callback_calls_each_function():
    calls = []
    cb = C.LambdaCallback(on_train_begin=lambda logs: calls.append("begin"),
                          on_epoch_begin=lambda epoch, logs: calls.append(("epoch", epoch)),
                          on_epoch_end=lambda epoch, logs: calls.append(("end", epoch, round(logs["loss"], 9))),
                          on_train_end=lambda logs: calls.append("done"), extra_state=7)
    model = make_model()
    h = model.fit(*data(), epochs=2, verbose=0, callbacks=[cb])
    assert calls == ["begin", ("epoch", 0), ("end", 0, round(h.history["loss"][0], 9)), ("epoch", 1),
                     ("end", 1, round(h.history["loss"][1], 9)), "done"]
    assert cb.extra_state == 7
