"""Optimizer state and configuration: get_state/set_state, get_config/from_config,
serialize/deserialize and fastopt.optimizers.get."""
import json

import numpy as np
import pytest

import fastopt as fo
from optim_helpers import CLASSES, NAMES

CONFIGS = [
    ("sgd", dict(learning_rate=0.05)),
    ("sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True, clipnorm=1.0)),
    ("adagrad", dict(learning_rate=0.1, initial_accumulator_value=0.3, epsilon=1e-6,
                     weight_decay=0.01)),
    ("rmsprop", dict(learning_rate=0.01, rho=0.8, momentum=0.5, centered=True, clipvalue=0.5)),
    ("rmsprop", dict(learning_rate=0.01)),
    ("adam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, amsgrad=True, global_clipnorm=2.0)),
    ("adam", dict(learning_rate=fo.schedules.ExponentialDecay(0.02, 5, 0.9))),
    ("adamw", dict(learning_rate=fo.schedules.InverseSqrtDecay(0.02, 0.5), weight_decay=0.1)),
]
IDS = [f"{n}{i}" for i, (n, _) in enumerate(CONFIGS)]


def grads_for(rng, variables, steps):
    return [[rng.standard_normal(v.shape).astype(v.dtype) for v in variables] for _ in range(steps)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, config", CONFIGS, ids=IDS)
def test_state_round_trip_is_bit_identical(name, config, dtype):
    rng = np.random.default_rng(0)
    variables = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)]
    first, second = grads_for(rng, variables, 10), grads_for(rng, variables, 10)
    opt = CLASSES[name](**config)
    for gs in first:
        opt.apply_gradients(zip(gs, variables))
    state = opt.get_state(variables)
    weights = [v.copy() for v in variables]
    for gs in second:
        opt.apply_gradients(zip(gs, variables))
    assert opt.iterations == 20
    assert state["iterations"] == 10  # a snapshot, not a live view

    fresh = CLASSES[name](**config)
    restored = [w.copy() for w in weights]
    fresh.set_state(state, restored)
    assert fresh.iterations == 10
    for gs in second:
        fresh.apply_gradients(zip(gs, restored))
    assert fresh.iterations == 20
    for a, b in zip(variables, restored):
        np.testing.assert_array_equal(a, b)
    for sa, sb in zip(opt.get_state(variables)["slots"], fresh.get_state(restored)["slots"]):
        for a, b in zip(sa, sb):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_state_restore_matters(name):
    """Restoring into a fresh optimizer without the state gives another result:
    the round trip above is not vacuous."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal(6)
    config = dict(learning_rate=0.1, **({"momentum": 0.9} if name == "sgd" else {}))
    opt = CLASSES[name](**config)
    for gs in grads_for(rng, [w], 5):
        opt.apply_gradients(zip(gs, [w]))
    g = rng.standard_normal(6)
    a = w.copy()
    CLASSES[name](**config).apply_gradients([(g, a)])
    opt.apply_gradients([(g, w)])
    assert not np.allclose(a, w, rtol=1e-9)


def test_get_state_is_a_copy_and_set_state_copies():
    rng = np.random.default_rng(2)
    w = rng.standard_normal(4)
    opt = fo.optimizers.Adam(learning_rate=0.1)
    opt.apply_gradients([(rng.standard_normal(4), w)])
    state = opt.get_state([w])
    m = state["slots"][0][0].copy()
    state["slots"][0][0][...] = 123.0
    np.testing.assert_array_equal(opt.get_state([w])["slots"][0][0], m)
    other = fo.optimizers.Adam(learning_rate=0.1)
    w2 = w.copy()
    other.set_state(opt.get_state([w]), [w2])
    given = other.get_state([w2])
    given_m = given["slots"][0][0]
    given_m[...] = -1.0
    np.testing.assert_array_equal(other.get_state([w2])["slots"][0][0], m)


def test_get_state_default_order_and_unknown_variable():
    a, b, c = np.zeros(2), np.zeros(3), np.zeros(4)
    opt = fo.optimizers.SGD(momentum=0.9)
    opt.apply_gradients([(np.ones(3), b), (np.ones(2), a)])
    assert [s[0].shape for s in opt.get_state()["slots"]] == [(3,), (2,)]
    with pytest.raises(ValueError, match="never"):
        opt.get_state([c])


def _stepped_adam():
    w = np.arange(4.0)
    opt = fo.optimizers.Adam(learning_rate=0.1, amsgrad=True)
    opt.apply_gradients([(np.ones(4), w)])
    return opt, w


@pytest.mark.parametrize("mutate, exc, word", [
    (lambda st, ws: (st, ws + [np.zeros(4)]), ValueError, "variables"),
    (lambda st, ws: ({**st, "slots": [[s[:2] if s is not None else None for s in st["slots"][0]]]}, ws),
     ValueError, "shape"),
    (lambda st, ws: ({**st, "slots": [st["slots"][0][:2]]}, ws), ValueError, "slots"),
    (lambda st, ws: ({**st, "slots": [st["slots"][0][:2] + [None]]}, ws), ValueError, "configuration"),
    (lambda st, ws: (st, [np.zeros(4, dtype=np.int64)]), TypeError, r"variables\[0\]"),
])
def test_set_state_bad_input_changes_nothing(mutate, exc, word):
    opt, w = _stepped_adam()
    state = opt.get_state([w])
    bad_state, bad_vars = mutate(state, [w])
    before = opt.get_state([w])
    with pytest.raises(exc, match=word):
        opt.set_state(bad_state, bad_vars)
    after = opt.get_state([w])
    assert after["iterations"] == before["iterations"] == 1
    for a, b in zip(after["slots"][0], before["slots"][0]):
        np.testing.assert_array_equal(a, b)


# -- config ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, config", CONFIGS, ids=IDS)
def test_config_round_trip(name, config):
    opt = CLASSES[name](**config)
    cfg = opt.get_config()
    json.dumps(cfg)  # plain data, schedules included
    again = CLASSES[name].from_config(cfg)
    assert type(again) is type(opt)
    assert again.get_config() == cfg
    via_serialize = fo.optimizers.deserialize(json.loads(json.dumps(fo.optimizers.serialize(opt))))
    assert type(via_serialize) is type(opt) and via_serialize.get_config() == cfg
    assert type(fo.optimizers.get(fo.optimizers.serialize(opt))) is type(opt)
    # and they step alike
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((2, 3))
    ws = [w0.copy() for _ in range(3)]
    steps = grads_for(rng, [w0], 10)
    for o, w in zip((opt, again, via_serialize), ws):
        for gs in steps:
            o.apply_gradients([(gs[0], w)])
    np.testing.assert_array_equal(ws[0], ws[1])
    np.testing.assert_array_equal(ws[0], ws[2])


def test_config_keeps_every_hyperparameter():
    opt = fo.optimizers.Adam(learning_rate=0.02, beta_1=0.7, beta_2=0.95, epsilon=1e-5,
                             amsgrad=True, weight_decay=0.01, clipnorm=3.0, name="mine")
    cfg = opt.get_config()
    assert {k: cfg[k] for k in ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad",
                                "weight_decay", "clipnorm", "name")} == dict(
        learning_rate=0.02, beta_1=0.7, beta_2=0.95, epsilon=1e-5, amsgrad=True,
        weight_decay=0.01, clipnorm=3.0, name="mine")
    sched = fo.schedules.PiecewiseConstantDecay([5], [0.1, 0.01])
    cfg = fo.optimizers.SGD(learning_rate=sched).get_config()
    assert cfg["learning_rate"] == {"class_name": "PiecewiseConstantDecay",
                                    "config": {"boundaries": [5.0], "values": [0.1, 0.01],
                                               "name": "PiecewiseConstant"}}
    again = fo.optimizers.SGD.from_config(cfg)
    assert isinstance(again.get_config()["learning_rate"], dict)
    w = np.zeros(1)
    for _ in range(6):
        assert again.learning_rate == 0.1
        again.apply_gradients([(np.ones(1), w)])
    assert again.learning_rate == 0.01


# Keras 3's defaults (keras.optimizers.*)
KERAS_DEFAULTS = {
    "sgd": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    "adagrad": dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7),
    "rmsprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    "adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    "adamw": dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                  amsgrad=False),
}


@pytest.mark.parametrize("name", NAMES)
def test_get_by_name_has_keras_defaults(name):
    for ident in (name, name.upper(), {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop",
                                       "adam": "Adam", "adamw": "AdamW"}[name]):
        opt = fo.optimizers.get(ident)
        assert type(opt) is CLASSES[name]
        cfg = opt.get_config()
        assert {k: cfg[k] for k in KERAS_DEFAULTS[name]} == KERAS_DEFAULTS[name]
        if name != "adamw":
            assert cfg["weight_decay"] is None
        assert cfg["clipnorm"] is cfg["clipvalue"] is cfg["global_clipnorm"] is None
    assert fo.optimizers.get(name) is not fo.optimizers.get(name)  # a fresh one each time
    opt = CLASSES[name]()
    assert fo.optimizers.get(opt) is opt


def test_get_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="nadam") as info:
        fo.optimizers.get("nadam")
    for name in NAMES:
        assert name in str(info.value)
    with pytest.raises(ValueError):
        fo.optimizers.deserialize({"class_name": "Nadam", "config": {}})
    with pytest.raises(TypeError):
        fo.optimizers.get(42)


def test_assigning_a_hyperparameter_is_not_silently_ignored():
    opt = fo.optimizers.SGD(learning_rate=0.1)
    w = np.zeros(2)
    opt.momentum = 0.9
    expected = np.zeros(2)
    ref = fo.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    for _ in range(3):
        opt.apply_gradients([(np.ones(2), w)])
        ref.apply_gradients([(np.ones(2), expected)])
    np.testing.assert_array_equal(w, expected)


def test_assigned_hyperparameter_is_checked_and_refused_values_change_nothing():
    opt = fo.optimizers.Adam(learning_rate=0.01, beta_1=0.8)
    with pytest.raises(ValueError, match="beta_1"):
        opt.beta_1 = 1.5
    assert opt.beta_1 == 0.8 and opt.get_config()["beta_1"] == 0.8
    w, expected = np.ones(3), np.ones(3)
    ref = fo.optimizers.Adam(learning_rate=0.01, beta_1=0.8)
    opt.apply_gradients([(np.full(3, 0.5), w)])
    ref.apply_gradients([(np.full(3, 0.5), expected)])
    np.testing.assert_array_equal(w, expected)


def test_assignment_that_needs_other_state_is_refused_after_the_first_step():
    opt = fo.optimizers.Adam(learning_rate=0.01)
    w = np.ones(3)
    opt.apply_gradients([(np.ones(3), w)])
    with pytest.raises(ValueError, match="amsgrad"):
        opt.amsgrad = True
    assert opt.amsgrad is False
    opt.beta_2 = 0.99  # same state, allowed
    assert opt.get_config()["beta_2"] == 0.99


def test_state_goes_with_its_array():
    import gc

    opt = fo.optimizers.Adam()
    w = np.ones(4)
    opt.apply_gradients([(np.ones(4), w)])
    assert len(opt.get_state()["slots"]) == 1
    del w
    gc.collect()
    assert opt.get_state()["slots"] == []
