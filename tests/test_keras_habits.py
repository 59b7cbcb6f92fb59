"""Issue 7's notebook checks: Keras habits hold, and nothing goes wrong silently.

Each "Done when" check of issue 7 and where it is tested.  The ones already
tested elsewhere are not repeated here:

* ``fit(x, y, 32, 10)`` trains 10 epochs of batch 32:
  ``test_model_net.py::test_fit_positional_order_is_keras`` (and
  ``test_fit_batch_size_none_is_32``);
* 1000 epochs at ``verbose=1`` write at most a few lines when output is
  captured, through the real ``fit``: ``test_callbacks.py::
  test_1000_epochs_at_verbose_1_write_a_few_lines_when_captured``; here also
  with ``sys.stdout`` a ``StringIO``;
* article 002's float32 schedule emits a ``DivergenceWarning`` through ``fit``:
  ``test_model_net.py::test_article_002_float32_schedule_warns``; here through
  the article's own loop (``compute_gradients`` then ``apply_gradients``);
* swapped pairs raise ``ValueError`` and change nothing:
  ``test_optim_checks.py::test_swapped_pairs_are_named_and_change_nothing``;
  here with a model's own ``compute_gradients`` and ``trainable_variables``;
* ``w[:]`` keeps Adam's state: ``test_optim_memory_state.py``
  (``test_fresh_views_of_the_same_memory_keep_the_state`` and the issue's example);
* ``save("m.keras")`` is refused with a clear message:
  ``test_saving.py::test_save_refuses_other_formats``;
* batch-level callback hooks are called:
  ``test_model_net.py::test_batch_hooks_get_keras_logs_and_can_stop``;
* ``lambda: 0.01`` as the learning rate: ``apply_gradients`` in
  ``test_optim_checks.py::test_keras3_callable_learning_rate_takes_no_argument``;
  ``fit`` here;
* ``verbose=2`` writes one line per epoch: ``test_model.py::test_verbose_levels``.

New here: ``fo.gradient_descent`` warns ``fo.DivergenceWarning``, and the
optimizer features that run inside ``fit`` (``gradient_accumulation_steps``,
``use_ema``'s ``finalize_variable_values`` at the end of ``fit``, as Keras 3's
trainer calls it).
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import fastopt as fo
from fastopt.reference import ReferenceOptimizer
from fastopt.reference import nn as ref_nn


def _data(n=40, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(dtype)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 + 0.1 * rng.standard_normal((n, 1))).astype(dtype)
    return x, y


def _model(opt, dtype="float64", seed=3, hidden=True):
    layers = ([fo.Dense(4, activation="tanh", input_shape=(3,)), fo.Dense(1)] if hidden
              else [fo.Dense(1, input_shape=(3,))])
    model = fo.Sequential(layers, dtype=dtype, seed=seed)
    model.compile(optimizer=opt, loss="mse")
    return model


ACTS = ["tanh", "linear"]


# -- progress when stdout is not a terminal ------------------------------------------------

def test_1000_epochs_at_verbose_1_into_a_stringio_write_a_few_lines():
    x, y = _data()
    model = _model(fo.optimizers.SGD(0.01))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        h = model.fit(x, y, batch_size=40, epochs=1000, verbose=1)
    lines = out.getvalue().strip().splitlines()
    assert 1 <= len(lines) <= 3, out.getvalue()
    assert lines[-1].startswith("Epoch 1000/1000") and len(h.epoch) == 1000


# -- divergence is reported -----------------------------------------------------------------

def test_article_002_float32_loop_form_warns():
    """The article's own loop: theta in float32, alpha_t = 1/sqrt(1 + 0.9 t), the
    GradientTape step as compute_gradients then apply_gradients.  theta passes
    float32's range within the first steps, and the optimizer says so."""
    x = np.arange(1.0, 6.0, dtype=np.float32)
    model = fo.Sequential([fo.Dense(1, use_bias=False, input_shape=(1,))], dtype="float32", seed=0)
    opt = fo.optimizers.SGD(learning_rate=fo.schedules.InverseSqrtDecay(1.0, 0.9))
    with pytest.warns(fo.DivergenceWarning, match="learning_rate") as record:
        for _ in range(1000):
            loss, grads = model.compute_gradients(x, x)
            opt.apply_gradients(zip(grads, model.trainable_variables))
    assert not np.isfinite(model.trainable_variables[0]).all()
    assert "float64" in str(record[0].message)
    # the same loop in float64 stays finite and converges, without a word
    model = fo.Sequential([fo.Dense(1, use_bias=False, input_shape=(1,))], dtype="float64", seed=0)
    opt = fo.optimizers.SGD(learning_rate=fo.schedules.InverseSqrtDecay(1.0, 0.9))
    with warnings.catch_warnings():
        warnings.simplefilter("error", fo.DivergenceWarning)
        for _ in range(1000):
            loss, grads = model.compute_gradients(x, x)
            opt.apply_gradients(zip(grads, model.trainable_variables))
    assert model.trainable_variables[0][0, 0] == pytest.approx(1.0, abs=1e-6)


def test_gradient_descent_warns_divergence():
    x = np.random.default_rng(0).random((100, 1))
    y = 3 * x + 1
    with pytest.warns(fo.DivergenceWarning, match="learning_rate") as record:
        w, b = fo.gradient_descent(x, y, np.zeros(1), 0.0, 100.0, 1000)
    assert not np.isfinite(w).all()
    assert "float64" in str(record[0].message) or "smaller" in str(record[0].message)
    # a filter on RuntimeWarning, as written before DivergenceWarning existed, still catches it
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RuntimeWarning):
            fo.gradient_descent(x, y, np.zeros(1), 0.0, 100.0, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fo.DivergenceWarning)
        fo.gradient_descent(x, y, np.zeros(1), 0.0, 0.1, 1000)  # a sound rate: no warning


# -- mistakes named where they happen -------------------------------------------------------

def test_swapped_pairs_from_a_model_raise_and_change_nothing():
    x, y = _data()
    model = _model(fo.optimizers.Adam(0.01))
    opt = model.optimizer
    _, grads = model.compute_gradients(x, y)
    weights = model.get_weights()
    grads_before = [g.copy() for g in grads]
    with pytest.raises(ValueError, match="swapped"):
        opt.apply_gradients(zip(model.trainable_variables, grads))
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(grads, grads_before):
        np.testing.assert_array_equal(a, b)
    assert opt.iterations == 0


# -- Keras 3 learning rates in fit ----------------------------------------------------------

def test_callable_learning_rate_in_fit():
    """Keras 3: a callable learning rate takes no arguments; fit with lambda: 0.01
    trains exactly as fit with 0.01."""
    x, y = _data()
    a = _model(fo.optimizers.SGD(learning_rate=lambda: 0.01))
    b = _model(fo.optimizers.SGD(learning_rate=0.01))
    ha = a.fit(x, y, batch_size=8, epochs=3, verbose=0)
    hb = b.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert ha.history == hb.history and a.optimizer.iterations == 15
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    # and batch by batch (a callback with batch hooks), with train_on_batch
    a.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[fo.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: None)])
    a.train_on_batch(x, y)
    assert a.optimizer.iterations == 21


# -- optimizer features inside fit ----------------------------------------------------------

def _loop_twin(model, opt, x, y, batch_size, epochs):
    """Keras' own loop over copies of the weights: the batches in order, each
    compute_gradients (of the reference network) then apply_gradients."""
    weights = [w.copy() for w in model.get_weights()]
    for _ in range(epochs):
        for start, stop in ref_nn.batches(len(x), batch_size):
            _, grads = ref_nn.net_gradients(weights, ACTS, True, 0.0, 0.0, x[start:stop], y[start:stop])
            opt.apply_gradients(zip(grads, weights))
    return weights


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_gradient_accumulation_in_fit_is_the_apply_gradients_loop(opt_name):
    """gradient_accumulation_steps=2, batch 8, 40 samples: 5 calls an epoch, the
    variables change on every 2nd; iterations counts the updates (calls // 2),
    and the schedule sees iterations, as in Keras 3."""
    x, y = _data()
    lr = fo.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)
    cfg = dict(learning_rate=lr, gradient_accumulation_steps=2)
    make = {"sgd": lambda: fo.optimizers.SGD(momentum=0.5, **cfg), "adam": lambda: fo.optimizers.Adam(**cfg)}[opt_name]
    model = _model(make())
    fo_twin = make()
    np_twin = ReferenceOptimizer(opt_name, **dict(cfg, **({"momentum": 0.5} if opt_name == "sgd" else {})))
    want_fo = _loop_twin(model, fo_twin, x, y, 8, 3)
    want_np = _loop_twin(model, np_twin, x, y, 8, 3)
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    assert model.optimizer._step[0] == 15 and model.optimizer.iterations == 7 == fo_twin.iterations
    for got, a, b in zip(model.get_weights(), want_fo, want_np):
        np.testing.assert_allclose(got, a, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got, b, rtol=1e-10, atol=1e-12)


def test_gradient_accumulation_in_train_on_batch():
    x, y = _data(16)
    cfg = dict(learning_rate=0.1, gradient_accumulation_steps=2)
    model = _model(fo.optimizers.SGD(**cfg))
    twin = fo.optimizers.SGD(**cfg)
    weights = [w.copy() for w in model.get_weights()]
    for k in range(5):
        before = model.get_weights()
        model.train_on_batch(x, y)
        _, grads = ref_nn.net_gradients(weights, ACTS, True, 0.0, 0.0, x, y)
        twin.apply_gradients(zip(grads, weights))
        changed = any((a != b).any() for a, b in zip(model.get_weights(), before))
        assert changed == (k % 2 == 1)  # the 2nd, 4th... call updates
        assert model.optimizer.iterations == (k + 1) // 2 == twin.iterations
        for a, b in zip(model.get_weights(), weights):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_fit_with_ema_ends_with_the_moving_averages():
    """Keras 3's trainer calls optimizer.finalize_variable_values(trainable_variables)
    after the last epoch of fit (epochs > 0): with use_ema the model keeps the
    moving averages.  Each epoch's run goes on from the trained weights, not the
    averages (the averages are written once, at the end)."""
    x, y = _data()
    cfg = dict(learning_rate=0.05, use_ema=True, ema_momentum=0.8)
    model = _model(fo.optimizers.Adam(**cfg))
    twin = ReferenceOptimizer("adam", **cfg)
    weights = _loop_twin(model, twin, x, y, 8, 3)
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for got, w in zip(model.get_weights(), weights):
        np.testing.assert_allclose(got, twin.average(w), rtol=1e-10, atol=1e-12)
    # the same through fit with callbacks (epoch by epoch) and validation
    model = _model(fo.optimizers.Adam(**cfg))
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, validation_data=(x, y))
    for got, w in zip(model.get_weights(), weights):
        np.testing.assert_allclose(got, twin.average(w), rtol=1e-10, atol=1e-12)
    # epochs=0 trains nothing and writes nothing
    model = _model(fo.optimizers.Adam(**cfg))
    before = model.get_weights()
    model.fit(x, y, epochs=0, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    # without use_ema, fit's weights are the trained ones
    model = _model(fo.optimizers.Adam(0.05))
    plain = _loop_twin(model, ReferenceOptimizer("adam", learning_rate=0.05), x, y, 8, 3)
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for got, w in zip(model.get_weights(), plain):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12)
