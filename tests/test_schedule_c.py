"""Built-in schedules that apply_gradients' fast path computes in C
(InverseSqrtDecay, InverseTimeDecay): the C rate is ``float(schedule(step))``
bit for bit, and a run of steps gives the same bits with the fast path on or off."""
import numpy as np
import pytest

import fastopt as fo
from fastopt import _core

from optim_helpers import CLASSES, FULL, NAMES, fast_path

S = fo.schedules
STEPS = [0, 1, 2, 3, 7, 99, 100, 101, 12345, 10**6 + 1, 2**31 + 5, 2**40 + 3, 2**53 - 1, 2**53]


def c_schedules(rng):
    out = [S.InverseSqrtDecay(1.0, 0.3), S.InverseSqrtDecay(0.37, 0.0),
           S.InverseTimeDecay(0.1, 1000, 0.5), S.InverseTimeDecay(0.1, 7, 0.9, staircase=True)]
    for _ in range(20):
        out.append(S.InverseSqrtDecay(rng.uniform(0, 2), rng.uniform(0, 10) ** rng.uniform(-3, 3)))
        out.append(S.InverseTimeDecay(rng.uniform(0, 2), rng.uniform(0.1, 1e4), rng.uniform(0, 5),
                                      staircase=bool(rng.randint(2))))
    return out


def test_c_value_is_the_schedule_value_bit_for_bit():
    rng = np.random.RandomState(0)
    for sched in c_schedules(rng):
        fast_lr = fo.optimizers.SGD(learning_rate=sched)._fast[2]
        assert isinstance(fast_lr, tuple) and fast_lr[1] is sched
        steps = STEPS + list(rng.randint(0, 2**53, size=50)) + list(rng.randint(0, 10**5, size=50))
        for step in steps:
            step = int(step)
            got = _core.optim_schedule_value(fast_lr, step)
            want = float(sched(step))
            assert got.hex() == want.hex(), (sched, step, got, want)
            assert float(sched.values(step, 1)[0]).hex() == want.hex()


def test_changed_or_odd_parameters():
    sched = S.InverseTimeDecay(0.1, 10, 0.5)
    fast_lr = fo.optimizers.SGD(learning_rate=sched)._fast[2]
    sched.decay_rate = 2.0  # read at each step
    assert _core.optim_schedule_value(fast_lr, 30) == float(sched(30)) == 0.1 / 7
    sched.decay_rate = np.float64(2.0)  # not a float: the schedule is called instead
    assert _core.optim_schedule_value(fast_lr, 30) is None
    sched.decay_rate = 2.0
    sched.staircase = 1
    assert _core.optim_schedule_value(fast_lr, 30) is None
    # schedules with pow/cos keep the Python call; a subclass too
    for other in (S.ExponentialDecay(0.1, 10, 0.5), S.CosineDecay(0.1, 100), S.PolynomialDecay(0.1, 10)):
        assert fo.optimizers.SGD(learning_rate=other)._fast[2] is other

    class Mine(S.InverseSqrtDecay):
        pass
    assert not isinstance(fo.optimizers.SGD(learning_rate=Mine(1.0, 0.1))._fast[2], tuple)
    with pytest.raises(ValueError, match="step"):
        _core.optim_schedule_value(fast_lr, -1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_and_thorough_paths_same_bits(name, dtype):
    rng = np.random.RandomState(1)
    grads = [rng.standard_normal(5).astype(dtype) for _ in range(40)]
    for sched in (S.InverseSqrtDecay(0.5, 0.7), S.InverseTimeDecay(0.2, 3, 0.4, staircase=True),
                  S.InverseTimeDecay(0.2, 3, 0.4)):
        results = []
        for enabled in (True, False):
            opt = CLASSES[name](learning_rate=sched, **FULL[name])
            opt.iterations = 2**40  # large steps too
            w = np.linspace(-1, 1, 5).astype(dtype)
            with fast_path(enabled):
                for g in grads:
                    opt.apply_gradients([(g, w)])
            results.append(w.tobytes())
        assert results[0] == results[1]
