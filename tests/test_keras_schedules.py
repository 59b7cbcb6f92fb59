"""Keras 3's own learning-rate schedule tests, ported to fastopt with their
golden values and tolerances unchanged.

Source: keras-team/keras, keras/src/optimizers/schedules/learning_rate_schedule_test.py
at commit 3422977a5e38fb2f7709aaa9a08e47f0c43d0f60.

Every test of that file is here.  What changed in the port:
- ``backend.Variable`` steps (``step.assign(...)``) become plain integers:
  fastopt schedules take the optimizer's integer ``iterations``;
- ``run_class_serialization_test`` becomes a round trip through
  ``get_config``/``from_config`` and ``serialize``/``deserialize``;
- ``test_fit_lr_correctness`` reads ``optimizer.iterations`` where Keras reads
  ``optimizer.variables[0]`` (fastopt optimizers hold no backend variables);
  ``self.assertAllClose(a, b, 1e-6)`` is ``rtol=1e-6`` (its third argument);
  where Keras passes no tolerance its default ``atol=rtol=1e-6`` applies;
  fits run with ``verbose=0`` to keep the test output quiet.
"""
import math

import numpy as np
import pytest

import fastopt as fo
from fastopt.optimizers import schedules


def assert_all_close(actual, expected, rtol=1e-6, atol=1e-6):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def check_serialization(schedule):
    config = schedule.get_config()
    again = type(schedule).from_config(config)
    assert type(again) is type(schedule)
    assert again.get_config() == config
    revived = schedules.deserialize(schedules.serialize(schedule))
    assert revived.get_config() == config
    np.testing.assert_array_equal(revived.values(0, 50), schedule.values(0, 50))


# -- TestFitLRSchedulesFlow -------------------------------------------------------------

def test_fit_lr_correctness():
    model = fo.Sequential([fo.Dense(2, kernel_initializer="ones", bias_initializer="ones")])
    optimizer = fo.optimizers.Adam(
        learning_rate=schedules.ExponentialDecay(initial_learning_rate=0.05, decay_steps=1, decay_rate=0.9))
    assert optimizer.iterations == 0
    model.compile(optimizer=optimizer, loss="mse")
    x = np.arange(32).reshape((16, 2))
    y = np.arange(32).reshape((16, 2))
    history = model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0)
    assert optimizer.iterations == 4 * 3
    np.testing.assert_allclose(history.history["loss"],
                               [230.79457092285156, 128.30319213867188, 79.33648681640625], rtol=5e-5)


# -- ExponentialDecayTest ---------------------------------------------------------------

def test_exponential_config():
    check_serialization(schedules.ExponentialDecay(initial_learning_rate=0.05, decay_steps=10,
                                                   decay_rate=0.96, staircase=True, name="my_ed"))


def test_exponential_continuous():
    step = 5
    decayed_lr = schedules.ExponentialDecay(0.05, 10, 0.96)
    expected = 0.05 * 0.96 ** (5.0 / 10.0)
    assert_all_close(decayed_lr(step), expected, 1e-6)


def test_exponential_staircase():
    decayed_lr = schedules.ExponentialDecay(0.1, 3, 0.96, staircase=True)
    # no change to learning rate due to staircase
    assert_all_close(decayed_lr(1), 0.1, 1e-6)
    assert_all_close(decayed_lr(2), 0.1, 1e-6)
    # decayed learning rate
    assert_all_close(decayed_lr(100), 0.1 * 0.96 ** (100 // 3), 1e-6)


def test_exponential_variables():
    decayed_lr = schedules.ExponentialDecay(0.1, 3, 0.96, staircase=True)
    assert_all_close(decayed_lr(1), 0.1, 1e-6)
    assert_all_close(decayed_lr(2), 0.1, 1e-6)
    assert_all_close(decayed_lr(100), 0.1 * 0.96 ** (100 // 3), 1e-6)


# -- PiecewiseConstantDecayTest ---------------------------------------------------------

def test_piecewise_config():
    check_serialization(schedules.PiecewiseConstantDecay(boundaries=[10, 20], values=[1, 2, 3], name="my_pcd"))


def test_piecewise_values():
    decayed_lr = schedules.PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001])
    assert_all_close(decayed_lr(-999.0), 1.0, 1e-6)
    assert_all_close(decayed_lr(100), 1.0, 1e-6)
    assert_all_close(decayed_lr(105), 0.1, 1e-6)
    assert_all_close(decayed_lr(110), 0.1, 1e-6)
    assert_all_close(decayed_lr(120), 0.01, 1e-6)
    assert_all_close(decayed_lr(999), 0.001, 1e-6)


def test_piecewise_boundary_values():
    boundaries, values = [1, 2, 3], [0.4, 0.5, 0.6, 0.7]
    decayed_lr = schedules.PiecewiseConstantDecay(boundaries, values)
    for step, expected in [(np.int64(0), 0.4), (np.int64(1), 0.4), (np.int64(2), 0.5),
                           (np.int64(3), 0.6), (np.int64(4), 0.7)]:
        assert_all_close(decayed_lr(step), expected, 1e-6)


# -- LinearDecayTest (PolynomialDecay, power 1) -------------------------------------------

def test_linear_config():
    check_serialization(schedules.PolynomialDecay(initial_learning_rate=0.1, decay_steps=100,
                                                  end_learning_rate=0.005, power=1.0, cycle=False,
                                                  name="my_ld"))


def test_linear_halfway():
    lr, end_lr = 0.05, 0.0
    assert_all_close(schedules.PolynomialDecay(lr, 10, end_lr)(5), lr * 0.5, 1e-6)


def test_linear_end():
    lr, end_lr = 0.05, 0.001
    assert_all_close(schedules.PolynomialDecay(lr, 10, end_lr)(10), end_lr, 1e-6)


def test_linear_halfway_with_end():
    lr, end_lr = 0.05, 0.001
    assert_all_close(schedules.PolynomialDecay(lr, 10, end_lr)(5), (lr + end_lr) * 0.5, 1e-6)


def test_linear_beyond_end():
    lr, end_lr = 0.05, 0.001
    assert_all_close(schedules.PolynomialDecay(lr, 10, end_lr)(15), end_lr, 1e-6)


def test_linear_beyond_end_with_cycle():
    lr, end_lr = 0.05, 0.001
    decayed_lr = schedules.PolynomialDecay(lr, 10, end_lr, cycle=True)
    assert_all_close(decayed_lr(15), (lr - end_lr) * 0.25 + end_lr, 1e-6)


# -- SqrtDecayTest (PolynomialDecay, power 0.5) -------------------------------------------

def test_sqrt_halfway():
    lr, end_lr, power = 0.05, 0.0, 0.5
    assert_all_close(schedules.PolynomialDecay(lr, 10, end_lr, power=power)(5), lr * 0.5**power, 1e-6)


def test_sqrt_end():
    lr, end_lr, power = 0.05, 0.001, 0.5
    assert_all_close(schedules.PolynomialDecay(lr, 10, end_lr, power=power)(10), end_lr, 1e-6)


def test_sqrt_halfway_with_end():
    lr, end_lr, power = 0.05, 0.001, 0.5
    assert_all_close(schedules.PolynomialDecay(lr, 10, end_lr, power=power)(5),
                     (lr - end_lr) * 0.5**power + end_lr, 1e-6)


def test_sqrt_beyond_end():
    lr, end_lr, power = 0.05, 0.001, 0.5
    assert_all_close(schedules.PolynomialDecay(lr, 10, end_lr, power=power)(15), end_lr, 1e-6)


def test_sqrt_beyond_end_with_cycle():
    lr, end_lr, power = 0.05, 0.001, 0.5
    decayed_lr = schedules.PolynomialDecay(lr, 10, end_lr, power=power, cycle=True)
    assert_all_close(decayed_lr(15), (lr - end_lr) * 0.25**power + end_lr, 1e-6)


def test_sqrt_begin_with_cycle():
    lr, decay_steps = 0.001, 10
    decayed_lr = schedules.PolynomialDecay(lr, decay_steps, cycle=True)
    assert_all_close(decayed_lr(0), lr, 1e-6)


# -- InverseTimeDecayTest ---------------------------------------------------------------

def test_inverse_time_config():
    check_serialization(schedules.InverseTimeDecay(initial_learning_rate=0.05, decay_steps=10,
                                                   decay_rate=0.96, staircase=True, name="my_itd"))


def test_inverse_time_decay():
    initial_lr, k, decay_rate = 0.1, 10, 0.96
    decayed_lr = schedules.InverseTimeDecay(initial_lr, k, decay_rate)
    for i in range(k + 1):
        assert_all_close(decayed_lr(i), initial_lr / (1 + i / k * decay_rate), 1e-6)


def test_inverse_time_staircase():
    initial_lr, k, decay_rate = 0.1, 10, 0.96
    decayed_lr = schedules.InverseTimeDecay(initial_lr, k, decay_rate, staircase=True)
    for i in range(k + 1):
        assert_all_close(decayed_lr(i), initial_lr / (1 + decay_rate * (i // k)), 1e-6)


# -- CosineDecayTest --------------------------------------------------------------------

def np_cosine_decay(step, decay_steps, alpha=0.0):
    step = min(step, decay_steps)
    completed_fraction = step / decay_steps
    decay = 0.5 * (1.0 + math.cos(math.pi * completed_fraction))
    return (1.0 - alpha) * decay + alpha


def linear_warmup(step, warmup_steps, initial_lr, target_lr):
    completed_fraction = step / warmup_steps
    total_delta = target_lr - initial_lr
    return completed_fraction * total_delta


def test_cosine_config():
    check_serialization(schedules.CosineDecay(initial_learning_rate=0.05, decay_steps=10, alpha=0.1,
                                              warmup_target=0.2, warmup_steps=2, name="my_cd"))


def test_cosine_decay():
    num_training_steps, initial_lr = 1000, 1.0
    for step in range(0, 1500, 250):
        decayed_lr = schedules.CosineDecay(initial_lr, num_training_steps)
        assert_all_close(decayed_lr(step), np_cosine_decay(step, num_training_steps), 1e-6)


def test_cosine_warmup():
    warmup_steps, initial_lr, target_lr = 1500, 0.0, 10.0
    for step in range(0, 1500, 250):
        lr = schedules.CosineDecay(initial_lr, 10, warmup_target=target_lr, warmup_steps=warmup_steps)
        assert_all_close(lr(step), linear_warmup(step, warmup_steps, initial_lr, target_lr))


def test_cosine_alpha():
    num_training_steps, initial_lr, alpha = 1000, 1.0, 0.1
    for step in range(0, 1500, 250):
        decayed_lr = schedules.CosineDecay(initial_lr, num_training_steps, alpha)
        assert_all_close(decayed_lr(step), np_cosine_decay(step, num_training_steps, alpha), 1e-6)


def test_cosine_float64():
    num_training_steps, initial_lr = 1000, np.float64(1.0)
    for step in range(0, 1500, 250):
        decayed_lr = schedules.CosineDecay(initial_lr, num_training_steps)
        assert_all_close(decayed_lr(step), np_cosine_decay(step, num_training_steps), 1e-6)


def test_cosine_warmup_decay():
    warmup_steps, decay_steps, initial_lr, target_lr = 2000, 1000, 0.0, 10.0
    for step in range(0, 3000, 250):
        lr = schedules.CosineDecay(initial_lr, decay_steps, warmup_target=target_lr, warmup_steps=warmup_steps)
        if step < warmup_steps + 1:
            expected = linear_warmup(step, warmup_steps, initial_lr, target_lr)
        else:
            expected = target_lr * np_cosine_decay(step - warmup_steps, decay_steps)
        assert_all_close(lr(step), expected)


# -- CosineDecayRestartsTest ------------------------------------------------------------

def np_cosine_decay_restarts(step, decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0):
    fac = 1.0
    while step >= decay_steps:
        step -= decay_steps
        decay_steps *= t_mul
        fac *= m_mul
    completed_fraction = step / decay_steps
    decay = fac * 0.5 * (1.0 + math.cos(math.pi * completed_fraction))
    return (1.0 - alpha) * decay + alpha


def test_restarts_config():
    check_serialization(schedules.CosineDecayRestarts(initial_learning_rate=0.05, first_decay_steps=10,
                                                      alpha=0.1, t_mul=3.0, m_mul=4.0, name="my_cdr"))


@pytest.mark.parametrize("initial_lr", [1.0, np.float64(1.0)], ids=["decay", "float64"])
def test_restarts_decay(initial_lr):
    num_training_steps = 1000
    for step in range(0, 1500, 250):
        decayed_lr = schedules.CosineDecayRestarts(initial_lr, num_training_steps)
        assert_all_close(decayed_lr(step), np_cosine_decay_restarts(step, num_training_steps), 1e-6)


def test_restarts_alpha():
    num_training_steps, initial_lr, alpha = 1000, 1.0, 0.1
    for step in range(0, 1500, 250):
        decayed_lr = schedules.CosineDecayRestarts(initial_lr, num_training_steps, alpha=alpha)
        assert_all_close(decayed_lr(step), np_cosine_decay_restarts(step, num_training_steps, alpha=alpha), 1e-6)


def test_restarts_mmul():
    num_training_steps, initial_lr, m_mul = 1000, 1.0, 0.9
    for step in range(0, 1500, 250):
        decayed_lr = schedules.CosineDecayRestarts(initial_lr, num_training_steps, m_mul=m_mul)
        assert_all_close(decayed_lr(step), np_cosine_decay_restarts(step, num_training_steps, m_mul=m_mul), 1e-6)


def test_restarts_tmul():
    num_training_steps, initial_lr, t_mul = 1000, 1.0, 1.0
    for step in range(0, 1500, 250):
        decayed_lr = schedules.CosineDecayRestarts(initial_lr, num_training_steps, t_mul=t_mul)
        assert_all_close(decayed_lr(step), np_cosine_decay_restarts(step, num_training_steps, t_mul=t_mul), 1e-6)
