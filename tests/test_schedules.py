"""Learning-rate schedules: each against its formula (Keras semantics, step
0-based), ``values`` against step-by-step calls, optimizers using
``lr(iterations)`` at each step (against the reference twin), bad arguments."""
import math

import numpy as np
import pytest

import fastopt as fo
from fastopt.reference import ReferenceOptimizer, schedule_value

S = fo.schedules
STEPS = range(0, 60)


def check(schedule, formula, steps=STEPS, rtol=1e-14):
    for step in steps:
        assert schedule(step) == pytest.approx(formula(step), rel=rtol, abs=0), step


@pytest.mark.parametrize("lr0, decay_steps, rate", [(0.1, 10, 0.5), (1.0, 3, 0.96), (0.01, 1, 1.0),
                                                    (0.5, 2.5, 0.0), (2.0, 7, 1.5)])
def test_exponential_decay(lr0, decay_steps, rate):
    check(S.ExponentialDecay(lr0, decay_steps, rate),
          lambda s: lr0 * rate ** (s / decay_steps) if rate else lr0 * (s == 0))
    check(S.ExponentialDecay(lr0, decay_steps, rate, staircase=True),
          lambda s: lr0 * rate ** (s // decay_steps))


def test_exponential_decay_known_values():
    s = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(0) == 0.1 and s(10) == pytest.approx(0.05) and s(20) == pytest.approx(0.025)
    assert s(5) == pytest.approx(0.1 / math.sqrt(2))
    st = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert [st(k) for k in (0, 9, 10, 19, 20)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


@pytest.mark.parametrize("lr0, decay_steps, rate", [(0.1, 10, 0.5), (1.0, 1, 1.0), (0.3, 4.5, 2.0),
                                                    (0.2, 5, 0.0)])
def test_inverse_time_decay(lr0, decay_steps, rate):
    check(S.InverseTimeDecay(lr0, decay_steps, rate), lambda s: lr0 / (1 + rate * s / decay_steps))
    check(S.InverseTimeDecay(lr0, decay_steps, rate, staircase=True),
          lambda s: lr0 / (1 + rate * (s // decay_steps)))
    assert S.InverseTimeDecay(1.0, 2, 1.0)(2) == pytest.approx(0.5)
    assert S.InverseTimeDecay(1.0, 2, 1.0, staircase=True)(3) == pytest.approx(0.5)


def test_piecewise_constant_decay():
    s = S.PiecewiseConstantDecay(boundaries=[3, 10.5, 20], values=[1.0, 0.5, 0.1, 0.0])
    # values[i] while step <= boundaries[i]; the last one after the last boundary
    expected = {0: 1.0, 3: 1.0, 4: 0.5, 10: 0.5, 11: 0.1, 20: 0.1, 21: 0.0, 1000: 0.0}
    for step, lr in expected.items():
        assert s(step) == lr, step
    assert S.PiecewiseConstantDecay([], [0.3])(5) == 0.3


@pytest.mark.parametrize("lr0, beta", [(1.0, 0.9), (0.1, 0.0), (0.5, 2.0)])
def test_inverse_sqrt_decay(lr0, beta):
    check(S.InverseSqrtDecay(lr0, beta), lambda s: lr0 * (1 + beta * s) ** -0.5)
    # article 002: alpha_t = 1 / sqrt(1 + beta t)
    assert S.InverseSqrtDecay(1.0, 0.9)(10) == pytest.approx(1 / math.sqrt(10.0))


SCHEDULES = [
    S.ExponentialDecay(0.1, 7, 0.96), S.ExponentialDecay(0.1, 3, 0.5, staircase=True),
    S.ExponentialDecay(0.3, 2.5, 1.2),
    S.InverseTimeDecay(0.3, 5, 0.7), S.InverseTimeDecay(0.3, 5, 0.7, staircase=True),
    S.InverseSqrtDecay(1.0, 0.9), S.InverseSqrtDecay(0.05, 0.0),
    S.PiecewiseConstantDecay([3, 10.5], [1.0, 0.5, 0.1]),
    S.PiecewiseConstantDecay([0], [0.2, 0.1]),
]
# Keras' other schedules; the twin computes them another way (the restarts period
# by period), so it agrees to round-off rather than bit for bit
NEW_SCHEDULES = [
    S.PolynomialDecay(0.1, 20, 0.01), S.PolynomialDecay(0.1, 7, 0.0, power=0.5, cycle=True),
    S.PolynomialDecay(0.3, 12.5, 0.05, power=2.0),
    S.CosineDecay(0.1, 30), S.CosineDecay(0.2, 25, alpha=0.1),
    S.CosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=15),
    S.CosineDecay(0.05, 20, alpha=0.2, warmup_target=0.1, warmup_steps=0),
    S.CosineDecayRestarts(0.1, 10), S.CosineDecayRestarts(0.1, 7, t_mul=1.0, m_mul=0.5, alpha=0.1),
    S.CosineDecayRestarts(0.2, 5, t_mul=1.5, m_mul=0.9),
]
IDS = [repr(s) for s in SCHEDULES]
NEW_IDS = [repr(s) for s in NEW_SCHEDULES]


@pytest.mark.parametrize("start, count", [(0, 100), (37, 50), (5, 1), (3, 0)])
@pytest.mark.parametrize("schedule", SCHEDULES + NEW_SCHEDULES, ids=IDS + NEW_IDS)
def test_values_equal_calls(schedule, start, count):
    v = schedule.values(start, count)
    assert v.dtype == np.float64 and v.shape == (count,)
    # bit-equal: fit() takes values(), apply_gradients calls the schedule
    np.testing.assert_array_equal(v, [schedule(k) for k in range(start, start + count)])


def test_values_of_a_user_schedule():
    class Halving(S.LearningRateSchedule):
        def __call__(self, step):
            return 1.0 / 2 ** (step // 4)

        def get_config(self):
            return {}

    np.testing.assert_array_equal(Halving().values(2, 10), [Halving()(k) for k in range(2, 12)])


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_reference_twin_formulas_agree(schedule):
    """The twin computes each schedule from its config with its own formula."""
    for k in STEPS:
        assert schedule_value(schedule, k) == pytest.approx(schedule(k), rel=1e-15)


@pytest.mark.parametrize("schedule", NEW_SCHEDULES, ids=NEW_IDS)
def test_reference_twin_formulas_agree_new(schedule):
    for k in range(200):
        assert schedule_value(schedule, k) == pytest.approx(schedule(k), rel=1e-12, abs=1e-15), k


def test_calling_with_an_array_of_steps():
    s = S.CosineDecay(0.1, 30, warmup_target=0.2, warmup_steps=5)
    steps = np.arange(50)
    np.testing.assert_array_equal(s(steps), [s(int(k)) for k in steps])
    assert isinstance(s(3), float) and isinstance(s(np.int64(3)), float)
    np.testing.assert_array_equal(S.InverseSqrtDecay(1.0, 0.9)(steps), S.InverseSqrtDecay(1.0, 0.9).values(0, 50))


def test_every_schedule_has_a_keras_name():
    defaults = {S.ExponentialDecay(0.1, 2, 0.5): "ExponentialDecay",
                S.InverseTimeDecay(0.1, 2, 0.5): "InverseTimeDecay",
                S.PiecewiseConstantDecay([1], [0.1, 0.2]): "PiecewiseConstant",
                S.PolynomialDecay(0.1, 2): "PolynomialDecay", S.CosineDecay(0.1, 2): "CosineDecay",
                S.CosineDecayRestarts(0.1, 2): "SGDRDecay", S.InverseSqrtDecay(1.0, 0.5): "InverseSqrtDecay"}
    for schedule, name in defaults.items():
        assert schedule.name == name and schedule.get_config()["name"] == name
        named = type(schedule).from_config({**schedule.get_config(), "name": "mine"})
        assert named.name == "mine"


def test_optimizers_schedules_is_this_module():
    assert fo.optimizers.schedules is fo.schedules
    assert fo.optimizers.schedules.CosineDecay is S.CosineDecay


def test_a_user_schedule_subclass_in_fit_and_apply_gradients():
    class Halving(S.LearningRateSchedule):
        def __init__(self, lr):
            self.lr = lr

        def __call__(self, step):
            return self.lr / 2 ** (step // 3)

        def get_config(self):
            return {"lr": self.lr}

    opt = fo.optimizers.SGD(learning_rate=Halving(0.8))
    w = np.zeros(1)
    for _ in range(7):
        opt.apply_gradients([(np.ones(1), w)])
    np.testing.assert_allclose(w, [-(3 * 0.8 + 3 * 0.4 + 0.2)], rtol=1e-15)
    again = S.deserialize(S.serialize(Halving(0.8)), custom_objects={"Halving": Halving})
    assert again.lr == 0.8
    with pytest.raises(ValueError, match="custom_objects"):
        S.deserialize(S.serialize(Halving(0.8)))
    # a subclass of a built-in schedule with a __call__ of its own: values() follows its __call__
    class Doubled(S.ExponentialDecay):
        def __call__(self, step):
            return 2 * super().__call__(step)

    d = Doubled(0.1, 2, 0.5)
    np.testing.assert_array_equal(d.values(0, 6), [2 * S.ExponentialDecay(0.1, 2, 0.5)(k) for k in range(6)])


def test_base_class_says_what_to_override():
    class Empty(S.LearningRateSchedule):
        pass

    with pytest.raises(NotImplementedError, match="__call__"):
        Empty()(0)
    with pytest.raises(NotImplementedError, match="get_config"):
        Empty().get_config()
    assert "Empty" in repr(Empty())


def test_fit_with_new_schedules_follows_apply_gradients():
    """fit takes values() for a whole epoch; a step-by-step run calls the schedule."""
    for schedule in NEW_SCHEDULES[::3]:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((12, 3))
        y = rng.standard_normal((12, 1))
        a = fo.Sequential([fo.Dense(1, input_shape=(3,))], dtype="float64", seed=0)
        b = fo.Sequential([fo.Dense(1, input_shape=(3,))], dtype="float64", seed=0)
        a.compile(fo.optimizers.SGD(learning_rate=schedule), "mse")
        b.compile(fo.optimizers.SGD(learning_rate=schedule), "mse")
        a.fit(x, y, epochs=5, batch_size=4, shuffle=False, verbose=0)
        for _ in range(5):
            for k in range(0, 12, 4):
                _, grads = b.compute_gradients(x[k:k + 4], y[k:k + 4])
                b.optimizer.apply_gradients(zip(grads, b.trainable_variables))
        for u, v in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)


# -- optimizers evaluate lr(iterations) ----------------------------------------------

OPTIMIZERS = [("sgd", dict(momentum=0.9)), ("sgd", dict(momentum=0.0)), ("adagrad", {}),
              ("rmsprop", dict(centered=True, momentum=0.5)), ("adam", dict(amsgrad=True)),
              ("adamw", dict(weight_decay=0.1))]
CLASSES = {"sgd": fo.optimizers.SGD, "adagrad": fo.optimizers.Adagrad,
           "rmsprop": fo.optimizers.RMSprop, "adam": fo.optimizers.Adam,
           "adamw": fo.optimizers.AdamW}


@pytest.mark.parametrize("schedule", SCHEDULES + [lambda step: 0.05 * (1 + math.cos(step / 5))],
                         ids=IDS + ["lambda"])
@pytest.mark.parametrize("name, config", OPTIMIZERS, ids=[f"{n}-{c}" for n, c in OPTIMIZERS])
def test_optimizer_follows_schedule(name, config, schedule):
    rng = np.random.default_rng(0)
    opt = CLASSES[name](learning_rate=schedule, **config)
    ref = ReferenceOptimizer(name, learning_rate=schedule, **config)
    w = rng.standard_normal((3, 4))
    w_ref = w.copy()
    for k in range(30):
        assert opt.iterations == k
        assert opt.learning_rate == pytest.approx(schedule(k), rel=1e-15)
        g = rng.standard_normal((3, 4))
        opt.apply_gradients([(g, w)])
        ref.apply_gradients([(g, w_ref)])
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-14)


def test_schedule_is_evaluated_at_zero_based_iterations():
    # lr 1 at step 0, then 0: one step moves w by -g, later steps do nothing
    opt = fo.optimizers.SGD(learning_rate=S.PiecewiseConstantDecay([0], [1.0, 0.0]))
    w = np.zeros(3)
    for _ in range(4):
        opt.apply_gradients([(np.ones(3), w)])
        np.testing.assert_array_equal(w, -np.ones(3))
    # a restored iterations count picks the schedule up where it was
    lr = S.PiecewiseConstantDecay([4], [0.0, 2.0])
    opt = fo.optimizers.SGD(learning_rate=lr)
    w = np.zeros(2)
    opt.apply_gradients([(np.ones(2), w)])
    state = opt.get_state([w])
    state["iterations"] = 5
    opt.set_state(state, [w])
    opt.apply_gradients([(np.ones(2), w)])
    np.testing.assert_array_equal(w, [-2.0, -2.0])


def test_learning_rate_can_be_replaced_by_a_schedule():
    opt = fo.optimizers.SGD(learning_rate=0.5)
    w = np.zeros(2)
    opt.apply_gradients([(np.ones(2), w)])
    opt.learning_rate = S.InverseSqrtDecay(1.0, 3.0)
    assert opt.learning_rate == pytest.approx(0.5)  # 1 / sqrt(1 + 3 * 1)
    opt.apply_gradients([(np.ones(2), w)])
    np.testing.assert_allclose(w, [-1.0, -1.0], rtol=1e-15)


# -- serialization and bad arguments ------------------------------------------------

@pytest.mark.parametrize("schedule", SCHEDULES + NEW_SCHEDULES, ids=IDS + NEW_IDS)
def test_serialize_round_trip(schedule):
    again = S.deserialize(S.serialize(schedule))
    assert type(again) is type(schedule)
    assert again.get_config() == schedule.get_config()
    np.testing.assert_array_equal(again.values(0, 40), schedule.values(0, 40))


BAD = [
    (lambda: S.ExponentialDecay(0.1, 0, 0.5), ValueError, "decay_steps"),
    (lambda: S.ExponentialDecay(0.1, -3, 0.5), ValueError, "decay_steps"),
    (lambda: S.ExponentialDecay(0.1, math.inf, 0.5), ValueError, "decay_steps"),
    (lambda: S.ExponentialDecay(0.1, 10, -0.5), ValueError, "decay_rate"),
    (lambda: S.ExponentialDecay(0.1, 10, math.nan), ValueError, "decay_rate"),
    (lambda: S.ExponentialDecay(-0.1, 10, 0.5), ValueError, "initial_learning_rate"),
    (lambda: S.ExponentialDecay(math.nan, 10, 0.5), ValueError, "initial_learning_rate"),
    (lambda: S.ExponentialDecay("0.1", 10, 0.5), TypeError, "initial_learning_rate"),
    (lambda: S.InverseTimeDecay(0.1, 0, 0.5), ValueError, "decay_steps"),
    (lambda: S.InverseTimeDecay(0.1, 10, -1.0), ValueError, "decay_rate"),
    (lambda: S.InverseTimeDecay(math.inf, 10, 1.0), ValueError, "initial_learning_rate"),
    (lambda: S.InverseSqrtDecay(-1.0, 0.5), ValueError, "initial_learning_rate"),
    (lambda: S.InverseSqrtDecay(1.0, -0.5), ValueError, "beta"),
    (lambda: S.InverseSqrtDecay(1.0, math.nan), ValueError, "beta"),
    (lambda: S.InverseSqrtDecay(1.0, None), TypeError, "beta"),
    (lambda: S.PiecewiseConstantDecay([1], [1.0]), ValueError, "values"),
    (lambda: S.PiecewiseConstantDecay([1, 2], [1.0, 0.5, 0.1, 0.0]), ValueError, "values"),
    (lambda: S.PiecewiseConstantDecay([2, 1], [1.0, 0.5, 0.1]), ValueError, "boundaries"),
    (lambda: S.PiecewiseConstantDecay([1, 1], [1.0, 0.5, 0.1]), ValueError, "boundaries"),
    (lambda: S.PiecewiseConstantDecay([math.nan], [1.0, 0.5]), ValueError, "boundaries"),
    (lambda: S.PiecewiseConstantDecay([1], [1.0, -0.5]), ValueError, "values"),
    (lambda: S.PiecewiseConstantDecay([1], [1.0, math.inf]), ValueError, "values"),
    (lambda: S.deserialize({"class_name": "NoSuchDecay", "config": {}}), ValueError, "NoSuchDecay"),
    (lambda: S.deserialize("ExponentialDecay"), ValueError, "class_name"),
    (lambda: S.serialize(lambda step: 0.1), TypeError, "LearningRateSchedule"),
    (lambda: S.ExponentialDecay(0.1, 10, 0.5, name=3), TypeError, "name"),
    (lambda: S.PolynomialDecay(0.1, 0), ValueError, "decay_steps"),
    (lambda: S.PolynomialDecay(-0.1, 10), ValueError, "initial_learning_rate"),
    (lambda: S.PolynomialDecay(0.1, 10, end_learning_rate=-1.0), ValueError, "end_learning_rate"),
    (lambda: S.PolynomialDecay(0.1, 10, power=-1.0), ValueError, "power"),
    (lambda: S.PolynomialDecay(0.1, 10, power=math.nan), ValueError, "power"),
    (lambda: S.CosineDecay(0.1, 0), ValueError, "decay_steps"),
    (lambda: S.CosineDecay(0.1, 10, alpha=-0.1), ValueError, "alpha"),
    (lambda: S.CosineDecay(0.1, 10, warmup_target=-0.1, warmup_steps=3), ValueError, "warmup_target"),
    (lambda: S.CosineDecay(0.1, 10, warmup_target=0.2, warmup_steps=-3), ValueError, "warmup_steps"),
    (lambda: S.CosineDecay(0.1, 10, warmup_target="0.2"), TypeError, "warmup_target"),
    (lambda: S.CosineDecayRestarts(0.1, 0), ValueError, "first_decay_steps"),
    (lambda: S.CosineDecayRestarts(0.1, 10, t_mul=0.5), ValueError, "t_mul"),
    (lambda: S.CosineDecayRestarts(0.1, 10, m_mul=-1.0), ValueError, "m_mul"),
    (lambda: S.CosineDecayRestarts(0.1, 10, alpha=math.inf), ValueError, "alpha"),
]


@pytest.mark.parametrize("make, exc, word", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments(make, exc, word):
    with pytest.raises(exc, match=word):
        make()
