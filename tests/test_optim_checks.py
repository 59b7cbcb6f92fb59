"""The optimizer's argument checks: exact self- and cross-overlap, codes and
flags range-checked before truncation, unaligned arrays copied, hyperparameters
that float32 cannot hold, step counts, set_state, mistakes named where they
happen (swapped pairs, gradients without variables, other libraries' keyword
names), Keras 3 configs.  Every refusal changes nothing."""
import itertools
import json
import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastopt as fo
from fastopt import _core
from fastopt.reference import ReferenceOptimizer
from optim_helpers import unaligned

HYPER12 = (0.0, 0.0, 0.0, 0.0, 0.0, False, 0.0, False, 0.9, 0.999, 1e-7, False)


def brute_force_overlap(shape, strides, itemsize):
    offsets = [sum(i * s for i, s in zip(idx, strides)) for idx in itertools.product(*map(range, shape))]
    offsets.sort()
    return any(b - a < itemsize for a, b in zip(offsets, offsets[1:]))


def strided_view(dtype, shape, strides):
    size = np.dtype(dtype).itemsize
    lo = sum(s * (n - 1) for n, s in zip(shape, strides) if s < 0)
    hi = sum(s * (n - 1) for n, s in zip(shape, strides) if s > 0) + size
    buf = np.zeros(hi - lo + 8, np.uint8)
    return np.ndarray(shape, dtype, buffer=buf, offset=-lo, strides=strides)


@pytest.mark.parametrize("seed", range(40))
def test_self_overlap_is_decided_exactly(seed):
    """Random shapes and byte strides (some misaligned): a variable whose
    elements share a byte is refused, any other is stepped like a copy of it."""
    rng = np.random.default_rng(seed)
    dtype = rng.choice([np.float32, np.float64])
    size = np.dtype(dtype).itemsize
    for _ in range(25):
        nd = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, 5, nd))
        strides = tuple(int(s) for s in rng.choice([-3, -2, -1, 1, 2, 3, 5, 7], nd) * int(rng.choice([size, size // 2, 4])))
        v = strided_view(dtype, shape, strides)
        v[...] = rng.standard_normal(shape)
        g = rng.standard_normal(shape).astype(dtype)
        expected = v.copy()
        if v.size > 1 and brute_force_overlap(shape, strides, size):
            opt = fo.optimizers.SGD(0.1, momentum=0.5)
            before = v.copy()
            with pytest.raises(ValueError, match=r"variables\[0\] has elements that share memory"):
                opt.apply_gradients([(g, v)])
            np.testing.assert_array_equal(v, before)
            assert opt.iterations == 0 and opt.get_state()["slots"] == []
        else:
            fo.optimizers.SGD(0.1, momentum=0.5).apply_gradients([(g, v)])
            fo.optimizers.SGD(0.1, momentum=0.5).apply_gradients([(g, expected)])
            np.testing.assert_array_equal(v, expected)


def test_the_issue_example_is_refused():
    base = np.zeros(16)
    v = as_strided(base, (2, 2, 2), (8, 8, 64))  # v[1, 0, k] and v[0, 1, k] are one element
    with pytest.raises(ValueError, match=r"variables\[0\] has elements that share memory"):
        fo.optimizers.Adam().apply_gradients([(np.ones((2, 2, 2)), v)])
    assert not base.any()


def test_interleaved_layouts_beyond_the_quick_rule():
    """(2, n) with strides (24, 16): rows interleave without sharing an element.
    The quick rule cannot tell; a few thousand elements are decided exactly,
    more than the work bound are refused with a message that says so."""
    base = np.zeros(2 * 16 * 2000)
    small = as_strided(base, (2, 1000), (24, 16))
    fo.optimizers.SGD(0.1).apply_gradients([(np.ones((2, 1000)), small)])
    assert np.count_nonzero(base) == 2000
    big_base = np.zeros(2 * 700_000 + 4)
    big = as_strided(big_base, (2, 700_000), (24, 16))
    with pytest.raises(ValueError, match=r"variables\[0\] has strides too irregular"):
        fo.optimizers.SGD(0.1).apply_gradients([(np.ones((2, 700_000)), big)])
    assert not big_base.any()


def test_cross_overlap_of_strided_views():
    w = np.zeros(24)
    a, b, c = w[0::3], w[1::3], w[::4]  # a and b interleave; c crosses a at 0, 12
    opt = fo.optimizers.SGD(0.1)
    opt.apply_gradients([(np.ones(8), a), (np.ones(8), b)])
    before = w.copy()
    with pytest.raises(ValueError, match=r"variables\[0\] and variables\[1\] share memory"):
        opt.apply_gradients([(np.ones(8), a), (np.ones(6), c)])
    np.testing.assert_array_equal(w, before)


# -- codes, flags, counts ---------------------------------------------------------------------

def test_kind_is_range_checked_before_truncation():
    w = np.zeros(3)
    for kind in (2**32, 2**32 + _core.ADAM, -1, 4, 2**70):
        with pytest.raises(ValueError, match="kind"):
            _core.optim_update(kind, [w], [np.ones(3)], [(None, None, None)], HYPER12, 0.1, 0)
    with pytest.raises(TypeError, match="kind"):
        _core.optim_update(1.0, [w], [np.ones(3)], [(None, None, None)], HYPER12, 0.1, 0)
    assert not w.any()


@pytest.mark.parametrize("index, value, exc", [
    (5, 2, ValueError), (5, 2**32, ValueError), (7, -1, ValueError), (11, 1.0, TypeError),
    (0, -0.1, ValueError), (0, float("nan"), ValueError), (4, 1.0, ValueError), (8, 1.5, ValueError),
    (10, float("inf"), ValueError), (12, 2, ValueError), (13, 1.5, ValueError), (14, -1, ValueError),
    (15, 2**53 + 1, ValueError), (16, -1.0, ValueError), (17, 3, ValueError),
])
def test_hyper_entries_are_range_checked(index, value, exc):
    hyper = list(HYPER12) + [False, 0.99, 0, 0, 0.0, False]
    hyper[index] = value
    w = np.zeros(3)
    with pytest.raises(exc, match=rf"hyper\[{index}\]"):
        _core.optim_update(_core.ADAM, [w], [np.ones(3)], [(np.zeros(3), np.zeros(3), None)], tuple(hyper),
                           0.1, 0)
    assert not w.any()


@pytest.mark.parametrize("value", [-1, 2**53 + 1, 2**63, 1.5, "3", True, None])
def test_iterations_must_be_a_step_count(value):
    opt = fo.optimizers.Adam()
    with pytest.raises((TypeError, ValueError), match="iterations"):
        opt.iterations = value
    assert opt.iterations == 0
    opt.iterations = 2**53  # the largest count
    assert opt.iterations == 2**53
    w = np.zeros(2)
    with pytest.raises(ValueError, match="iterations"):  # one more step would leave the range
        opt.apply_gradients([(np.ones(2), w)])
    assert not w.any() and opt.iterations == 2**53


def test_step_count_in_the_raw_binding():
    w = np.zeros(3)
    for step in (-1, 2**53, 2**64):
        with pytest.raises(ValueError, match="iteration"):
            _core.optim_update(_core.SGD, [w], [np.ones(3)], [(None,) * 3], HYPER12, 0.1, step)
    for step in (np.array([-1]), np.array([2**53])):
        with pytest.raises(ValueError, match="iterations"):
            _core.optim_update(_core.SGD, [w], [np.ones(3)], [(None,) * 3], HYPER12, 0.1, step)
    with pytest.raises(TypeError, match="step"):
        _core.optim_update(_core.SGD, [w], [np.ones(3)], [(None,) * 3], HYPER12, 0.1, np.zeros(1, np.int32))
    assert not w.any()
    step = np.array([5])
    _core.optim_update(_core.SGD, [w], [np.ones(3)], [(None,) * 3], HYPER12, 0.1, step)
    assert step[0] == 6  # counted with the step


# -- unaligned arrays ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_unaligned_arrays_are_copied_and_written_back(name, dtype):
    rng = np.random.default_rng(9)
    w0 = rng.standard_normal((3, 5)).astype(dtype)
    w, aligned = unaligned(w0), w0.copy()
    cls = {"sgd": fo.optimizers.SGD, "adam": fo.optimizers.Adam, "rmsprop": fo.optimizers.RMSprop}[name]
    opt_a, opt_b = cls(learning_rate=0.1), cls(learning_rate=0.1)
    for _ in range(4):
        g = rng.standard_normal((3, 5)).astype(dtype)
        opt_a.apply_gradients([(unaligned(g), w)])
        opt_b.apply_gradients([(g, aligned)])
    np.testing.assert_array_equal(w, aligned)


# -- hyperparameters float32 cannot hold ---------------------------------------------------------

FLOAT32_BAD = [
    (fo.optimizers.Adam, dict(epsilon=1e-46), "epsilon", "underflows"),
    (fo.optimizers.Adagrad, dict(epsilon=1e-50), "epsilon", "underflows"),
    (fo.optimizers.RMSprop, dict(epsilon=1e-46), "epsilon", "underflows"),
    (fo.optimizers.SGD, dict(learning_rate=1e39), "learning_rate", "overflows"),
    (fo.optimizers.SGD, dict(learning_rate=1e-46), "learning_rate", "underflows"),
    (fo.optimizers.SGD, dict(learning_rate=0.1, clipvalue=1e-50), "clipvalue", "underflows"),
    (fo.optimizers.SGD, dict(learning_rate=0.1, loss_scale_factor=1e-50), "loss_scale_factor", "underflows"),
    (fo.optimizers.SGD, dict(learning_rate=1e30, weight_decay=1e10), "weight_decay", "overflows"),
    (fo.optimizers.Adam, dict(learning_rate=2e38, beta_1=0.99), "bias-corrected", "overflows"),
    (fo.optimizers.Adagrad, dict(initial_accumulator_value=1e39), "initial_accumulator_value", "overflows"),
]


@pytest.mark.parametrize("cls, kwargs, name, what", FLOAT32_BAD,
                         ids=[f"{c.__name__}-{n}-{w}" for c, _, n, w in FLOAT32_BAD])
def test_hyperparameters_float32_cannot_hold_are_refused(cls, kwargs, name, what):
    opt = cls(**kwargs)
    w64, w32 = np.ones(4), np.ones(4, np.float32)
    if cls is not fo.optimizers.SGD or "learning_rate" not in kwargs or kwargs["learning_rate"] < 1e38:
        opt.apply_gradients([(np.full(4, 0.5), w64)])  # float64 holds them all
    before = w32.copy()
    with pytest.raises(ValueError, match=name) as info:
        opt.apply_gradients([(np.full(4, 0.5, np.float32), w32)])
    assert what in str(info.value) and "float32" in str(info.value)
    np.testing.assert_array_equal(w32, before)
    with pytest.raises(ValueError, match="never"):
        opt.get_state([w32])


def test_a_schedule_reaching_a_float32_overflow_is_refused_at_that_step():
    opt = fo.optimizers.SGD(learning_rate=lambda step: 0.1 if step < 2 else 1e39)
    w = np.ones(3, np.float32)
    opt.apply_gradients([(np.ones(3, np.float32), w)])
    opt.apply_gradients([(np.ones(3, np.float32), w)])
    before = w.copy()
    with pytest.raises(ValueError, match="learning_rate .* overflows float32"):
        opt.apply_gradients([(np.ones(3, np.float32), w)])
    np.testing.assert_array_equal(w, before)
    assert opt.iterations == 2


# -- set_state ------------------------------------------------------------------------------------

def stepped():
    w = np.arange(4.0)
    opt = fo.optimizers.Adam(learning_rate=0.1, amsgrad=True)
    opt.apply_gradients([(np.ones(4), w)])
    return opt, w


@pytest.mark.parametrize("mutate, exc, word", [
    (lambda st: {k: v for k, v in st.items() if k != "slots"}, ValueError, "slots"),
    (lambda st: {k: v for k, v in st.items() if k != "iterations"}, ValueError, "iterations"),
    (lambda st: {**st, "iterations": -1}, ValueError, "iterations"),
    (lambda st: {**st, "iterations": 2**53 + 1}, ValueError, "iterations"),
    (lambda st: {**st, "iterations": 2.5}, TypeError, "iterations"),
    (lambda st: {**st, "iterations": "7"}, TypeError, "iterations"),
    (lambda st: [st], TypeError, "state"),
    (lambda st: {**st, "slots": [[s if s is None else s.astype(complex) for s in st["slots"][0]]]},
     TypeError, "real"),
    (lambda st: {**st, "slots": 5}, ValueError, "slots"),
])
def test_set_state_checks_everything_before_writing(mutate, exc, word):
    opt, w = stepped()
    good = opt.get_state([w])
    good["iterations"] = 9
    for k in range(3):
        if good["slots"][0][k] is not None:
            good["slots"][0][k] = good["slots"][0][k] + 1.0
    before = opt.get_state([w])
    with pytest.raises(exc, match=word):
        opt.set_state(mutate(good), [w])
    after = opt.get_state([w])
    assert after["iterations"] == before["iterations"] == 1
    for a, b in zip(after["slots"][0], before["slots"][0]):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    opt.set_state(good, [w])  # the good one goes through
    assert opt.iterations == 9
    np.testing.assert_array_equal(opt.get_state([w])["slots"][0][0], good["slots"][0][0])


def test_set_state_of_ema_and_accumulation():
    opt = fo.optimizers.SGD(0.1, use_ema=True, gradient_accumulation_steps=3)
    w = np.ones(3)
    for _ in range(4):
        opt.apply_gradients([(np.ones(3), w)])
    state = opt.get_state([w])
    assert state["iterations"] == 1 and state["accumulated_steps"] == 1
    other = fo.optimizers.SGD(0.1, use_ema=True, gradient_accumulation_steps=3)
    with pytest.raises(ValueError, match="average"):
        other.set_state({k: v for k, v in state.items() if k != "average"}, [w.copy()])
    w2 = w.copy()
    other.set_state(state, [w2])
    assert int(other._step[0]) == 4
    for _ in range(5):
        opt.apply_gradients([(np.ones(3), w)])
        other.apply_gradients([(np.ones(3), w2)])
    np.testing.assert_array_equal(w, w2)


# -- mistakes named where they happen ----------------------------------------------------------------

def test_swapped_pairs_are_named_and_change_nothing():
    """compute_gradients returns read-only gradients: zip(variables, grads) puts a
    read-only array where the variable goes."""
    model_vars = [np.ones((2, 3)), np.zeros(3)]
    grads = [np.full((2, 3), 0.5), np.full(3, 0.5)]
    for g in grads:
        g.flags.writeable = False
    opt = fo.optimizers.Adam(0.1)
    snapshot = [v.copy() for v in model_vars] + [g.copy() for g in grads]
    with pytest.raises(ValueError, match="swapped"):
        opt.apply_gradients(zip(model_vars, grads))
    with pytest.raises(ValueError, match=r"variables\[1\].*swapped"):  # one pair swapped
        opt.apply_gradients([(grads[0], model_vars[0]), (model_vars[1], grads[1])])
    for a, b in zip(model_vars + grads, snapshot):
        np.testing.assert_array_equal(a, b)
    assert opt.iterations == 0 and opt.get_state()["slots"] == []


@pytest.mark.parametrize("arg", [[np.ones(3), np.ones(3)], np.ones((2, 3)), 5, [np.ones(2)], [(np.ones(2),)]])
def test_gradients_without_variables_say_what_to_pass(arg):
    with pytest.raises(TypeError, match=r"zip\(grads, variables\)"):
        fo.optimizers.SGD().apply_gradients(arg)


@pytest.mark.parametrize("cls, kwargs, hint", [
    (fo.optimizers.Adam, dict(beta1=0.9), "beta_1"),
    (fo.optimizers.Adam, dict(beta2=0.99), "beta_2"),
    (fo.optimizers.SGD, dict(lr=0.1), "learning_rate"),
    (fo.optimizers.Adam, dict(decay=0.01), "InverseTimeDecay"),
    (fo.optimizers.Adam, dict(betas=(0.9, 0.99)), "beta_1 and beta_2"),
    (fo.optimizers.RMSprop, dict(alpha=0.9), "rho"),
    (fo.optimizers.Adagrad, dict(epsilonn=1e-7), "epsilon"),
    (fo.optimizers.SGD, dict(nesterow=True), "nesterov"),
])
def test_unknown_keywords_suggest_the_keras_name(cls, kwargs, hint):
    with pytest.raises(TypeError, match=hint):
        cls(**kwargs)


def test_get_none_and_keras_configs():
    assert fo.optimizers.get(None) is None
    # keras.optimizers.Adam().get_config() in Keras 3
    keras_config = {"name": "adam", "learning_rate": 0.0010000000474974513, "weight_decay": None,
                    "clipnorm": None, "global_clipnorm": None, "clipvalue": None, "use_ema": False,
                    "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
                    "gradient_accumulation_steps": None, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
                    "amsgrad": False}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = fo.optimizers.Adam.from_config(keras_config)
        fo.optimizers.Adam.from_config({**keras_config, "is_legacy_optimizer": False})
        serialized = {"module": "keras.optimizers", "class_name": "Adam", "config": keras_config,
                      "registered_name": None}
        assert isinstance(fo.optimizers.deserialize(serialized), fo.optimizers.Adam)
        assert isinstance(fo.optimizers.get(json.loads(json.dumps(serialized))), fo.optimizers.Adam)
    assert opt.get_config() == {**keras_config}
    with pytest.warns(UserWarning, match="jit_compile") as record:
        opt = fo.optimizers.Adam.from_config({**keras_config, "jit_compile": True, "decay": 0.01,
                                              "is_legacy_optimizer": True, "mesh_shape": [2]})
    message = str(record[0].message)
    assert "decay" in message and "is_legacy_optimizer" in message and "mesh_shape" in message
    assert opt.get_config() == keras_config


def test_keras3_callable_learning_rate_takes_no_argument():
    rates = iter([0.1, 0.2, 0.3])
    opt = fo.optimizers.SGD(learning_rate=lambda: next(rates))
    w = np.zeros(2)
    for _ in range(3):
        opt.apply_gradients([(np.ones(2), w)])
    np.testing.assert_allclose(w, -0.6)
    assert fo.optimizers.SGD(learning_rate=lambda: 0.05)._learning_rates(10).tolist() == [0.05]
    assert fo.optimizers.SGD(learning_rate=lambda step: 0.1 * step)._learning_rates(3).tolist() == [0.0, 0.1, 0.2]


# -- weight-decay exclusion ---------------------------------------------------------------------

def test_exclusion_is_set_before_the_first_step():
    opt = fo.optimizers.AdamW()
    opt.apply_gradients([(np.ones(2), np.ones(2))])
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["bias"])
    with pytest.raises(TypeError, match=r"var_list\[0\]"):
        fo.optimizers.AdamW().exclude_from_weight_decay(var_list=[[1.0]])


def test_excluded_memory_covers_its_views():
    kernel, bias = np.ones((2, 2)), np.ones(2)
    opt = fo.optimizers.SGD(learning_rate=0.5, weight_decay=0.1)
    opt.exclude_from_weight_decay(var_list=[bias])
    zero = np.zeros(2)
    opt.apply_gradients([(np.zeros((2, 2)), kernel.T), (zero, bias[:])])
    np.testing.assert_array_equal(bias, 1.0)
    np.testing.assert_array_equal(kernel, 0.95)


def test_exclusion_by_name_in_a_models_flat_buffer():
    """_bind_flat's names (a model's variable names): the flat weight-decay mask
    is 0 on the excluded views, and a step over the flat buffer (as fit does)
    decays only the others."""
    flat = np.ones(6)
    views = [flat[:4].reshape(2, 2), flat[4:]]
    opt = fo.optimizers.SGD(learning_rate=0.5, weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=["bias"])
    slots = opt._bind_flat(flat, views, names=["dense/kernel", "dense/bias"])
    np.testing.assert_array_equal(slots[5], [1, 1, 1, 1, 0, 0])
    step = np.zeros(1, np.int64)
    _core.optim_update(opt._kind, [flat], [np.zeros(6)], [slots], opt._hyper, 0.5, step)
    np.testing.assert_array_equal(flat, [0.95] * 4 + [1.0] * 2)
    opt.apply_gradients([(np.zeros((2, 2)), views[0]), (np.zeros(2), views[1])])  # the views agree
    np.testing.assert_allclose(flat, [0.95 ** 2] * 4 + [1.0] * 2)


def test_fit_gets_ema_and_weight_decay_exclusion():
    """The Keras 3 features run inside the C step, so fit has them: a model
    trained by fit (one C call over the flat buffer) with AdamW excluding the
    bias and an EMA matches the NumPy twin stepping each variable."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((16, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = fo.Sequential([fo.Dense(1, input_shape=(3,))], dtype="float64", seed=3)
    w = [v.copy() for v in model.get_weights()]
    opt = fo.optimizers.AdamW(learning_rate=0.05, weight_decay=0.2, use_ema=True, ema_momentum=0.8)
    opt.exclude_from_weight_decay(var_list=[model.trainable_variables[1]])
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    ref = ReferenceOptimizer("adamw", learning_rate=0.05, weight_decay=0.2, use_ema=True, ema_momentum=0.8)
    ref.exclude_from_weight_decay(var_list=[w[1]])
    for _ in range(3):
        err = x @ w[0] + w[1] - y
        grads = [2 * x.T @ err / len(x), 2 * err.sum(axis=0) / len(x)]
        ref.apply_gradients(zip(grads, w))
    # fit ends as Keras 3's does, with finalize_variable_values: the model holds the averages
    for a, b in zip(model.get_weights(), w):
        np.testing.assert_allclose(a, ref.average(b), rtol=1e-10)
    averages = opt.get_state(model.trainable_variables)["average"]
    for a, v in zip(averages, w):
        np.testing.assert_allclose(a, ref.average(v), rtol=1e-10)
