"""Bad input to the optimizers: a TypeError/ValueError naming the argument, and
nothing changed (variables, optimizer state, iterations), in particular when
the bad pair comes last after several valid ones."""
import math

import numpy as np
import pytest

import fastopt as fo
from optim_helpers import CLASSES, FULL, NAMES



def stepped(name, **extra):
    """An optimizer that has taken two steps over three variables (one float32)."""
    rng = np.random.default_rng(0)
    variables = [rng.standard_normal((3, 4)), rng.standard_normal(5).astype(np.float32),
                 rng.standard_normal(())]
    opt = CLASSES[name](**{**FULL[name], "learning_rate": 0.1, **extra})
    for _ in range(2):
        grads = [rng.standard_normal(v.shape).astype(v.dtype) for v in variables]
        opt.apply_gradients(zip(grads, variables))
    grads = [rng.standard_normal(v.shape).astype(v.dtype) for v in variables]
    return opt, variables, grads


def snapshot(opt, arrays):
    return ([a.copy() for a in arrays], opt.get_state(), opt.iterations)


def assert_unchanged(opt, arrays, snap):
    copies, state, iterations = snap
    assert opt.iterations == iterations
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)
    now = opt.get_state()
    assert now["iterations"] == state["iterations"]
    assert len(now["slots"]) == len(state["slots"])  # no state for a variable of the failed step
    for s_now, s_then in zip(now["slots"], state["slots"]):
        for a, b in zip(s_now, s_then):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)


def _readonly(shape):
    a = np.ones(shape)
    a.flags.writeable = False
    return a


# each case: variables (the three valid ones) -> list of bad (grad, variable) pairs
# appended after four valid pairs (a new variable, then the three stepped ones, so
# the first bad pair is number 4), the exception, and a regex the message must match
BAD_PAIRS = {
    "shape": (lambda vs: [(np.ones(4), np.zeros(5))], ValueError, r"grads\[4\].*shape"),
    "broadcastable shape": (lambda vs: [(np.ones((1, 5)), np.zeros(5))], ValueError, r"grads\[4\]"),
    "0-d grad for 1-element var": (lambda vs: [(np.ones(()), np.zeros(1))], ValueError, r"grads\[4\]"),
    "shape of a known var": (lambda vs: [(np.ones((4, 3)), vs[0])], ValueError, r"grads\[4\]"),
    "int grad": (lambda vs: [(np.ones(5, dtype=np.int64), np.zeros(5))], TypeError, r"grads\[4\]"),
    "complex grad": (lambda vs: [(np.ones(5, dtype=complex), np.zeros(5))], TypeError, r"grads\[4\]"),
    "object grad": (lambda vs: [(np.ones(5, dtype=object), np.zeros(5))], TypeError, r"grads\[4\]"),
    "bool grad": (lambda vs: [(np.ones(5, dtype=bool), np.zeros(5))], TypeError, r"grads\[4\]"),
    "str grad": (lambda vs: [(np.array(["a"] * 5), np.zeros(5))], TypeError, r"grads\[4\]"),
    "float64 grad, float32 var": (lambda vs: [(np.ones(5), np.zeros(5, np.float32))], TypeError,
                                  r"grads\[4\]"),
    "float64 grad, known float32 var": (lambda vs: [(np.ones(5), vs[1])], TypeError, r"grads\[4\]"),
    "longdouble grad": (lambda vs: [(np.ones(5, np.longdouble), np.zeros(5))]
                        if np.finfo(np.longdouble).bits > 64 else pytest.skip("longdouble is double"),
                        TypeError, r"grads\[4\]"),
    "int var": (lambda vs: [(np.ones(5), np.zeros(5, dtype=np.int64))], TypeError, r"variables\[4\]"),
    "complex var": (lambda vs: [(np.ones(5), np.zeros(5, dtype=complex))], TypeError,
                    r"variables\[4\]"),
    "float16 var": (lambda vs: [(np.ones(5, np.float16), np.zeros(5, np.float16))], TypeError,
                    r"variables\[4\]"),
    "list var": (lambda vs: [(np.ones(3), [0.0, 0.0, 0.0])], TypeError, r"variables\[4\]"),
    "float var": (lambda vs: [(np.ones(()), 0.0)], TypeError, r"variables\[4\]"),
    "read-only var": (lambda vs: [(np.ones(5), _readonly(5))], ValueError, r"variables\[4\]"),
    "broadcast var": (lambda vs: [(np.ones(5), np.broadcast_to(np.zeros(1), (5,)))], ValueError,
                      r"variables\[4\]"),
    "same var twice": (lambda vs: [(np.ones((3, 4)), vs[0])], ValueError,
                       r"variables\[[14]\] and variables\[[14]\] share memory"),
    "var repeating its own elements": (
        lambda vs: [(np.ones((3, 2)), np.lib.stride_tricks.as_strided(np.zeros(4), (3, 2), (8, 8)))],
        ValueError, r"variables\[4\] has elements that share memory"),
    "same new var twice": (lambda vs: (lambda x: [(np.ones(3), x), (np.ones(3), x)])(np.zeros(3)),
                           ValueError, r"variables\[[45]\] and variables\[[45]\] share memory"),
    "overlapping new vars": (lambda vs: (lambda x: [(np.ones(3), x[:3]), (np.ones(3), x[2:])])(np.zeros(5)),
                             ValueError, r"variables\[[45]\] and variables\[[45]\] share memory"),
    "view of a known var": (lambda vs: [(np.ones(4), vs[0][1])], ValueError,
                            r"variables\[[14]\] and variables\[[14]\] share memory"),
    "strided views sharing an element": (
        lambda vs: (lambda x: [(np.ones(4), x[::2]), (np.ones(3), x[::3])])(np.zeros(8)),
        ValueError, r"variables\[[45]\] and variables\[[45]\] share memory"),
}


@pytest.mark.parametrize("case", list(BAD_PAIRS))
@pytest.mark.parametrize("name", NAMES)
def test_bad_pair_last_changes_nothing(name, case):
    make, exc, match = BAD_PAIRS[case]
    opt, variables, grads = stepped(name)
    bad = make(variables)
    # a new valid variable before the bad pair: it must not be stepped nor get state
    fresh = np.linspace(-1, 1, 6)
    pairs = [(np.ones(6), fresh)] + list(zip(grads, variables)) + bad
    arrays = variables + [fresh] + [v for _, v in bad if isinstance(v, np.ndarray)] + grads
    snap = snapshot(opt, arrays)
    with pytest.raises(exc, match=match):
        opt.apply_gradients(pairs)
    assert_unchanged(opt, arrays, snap)
    # and the optimizer still works afterwards
    opt.apply_gradients(zip(grads, variables))
    assert opt.iterations == 3


@pytest.mark.parametrize("case", ["shape", "int grad", "read-only var", "overlapping new vars"])
def test_bad_pair_after_many_valid_ones(case):
    """More pairs than the binding keeps on its stack: the same checks, nothing written."""
    make, exc, _ = BAD_PAIRS[case]
    rng = np.random.default_rng(4)
    variables = [rng.standard_normal(3) for _ in range(20)]
    opt = fo.optimizers.Adam(learning_rate=0.1, amsgrad=True)
    grads = [rng.standard_normal(3) for _ in range(20)]
    opt.apply_gradients(zip(grads, variables))
    bad = make(variables)
    arrays = variables + grads
    snap = snapshot(opt, arrays)
    with pytest.raises(exc, match=r"(grads|variables)\[2[01]\]"):
        opt.apply_gradients(list(zip(grads, variables)) + bad)
    assert_unchanged(opt, arrays, snap)


@pytest.mark.parametrize("name", NAMES)
def test_bad_first_pair_names_index_0(name):
    opt, variables, grads = stepped(name)
    snap = snapshot(opt, variables)
    with pytest.raises(ValueError, match=r"grads\[0\] has shape"):
        opt.apply_gradients([(np.ones(2), variables[0])] + list(zip(grads[1:], variables[1:])))
    assert_unchanged(opt, variables, snap)


def test_error_index_counts_skipped_none_pairs():
    opt = fo.optimizers.SGD()
    a, b = np.zeros(3), np.zeros(3)
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        opt.apply_gradients([(None, a), (np.ones(2), b)])


def test_same_known_variable_twice_names_the_variables():
    messages = []
    for name in NAMES:
        for size in range(1, 5):
            opt = CLASSES[name](**FULL[name])
            w = np.zeros(size)
            opt.apply_gradients([(np.ones(size), w)])
            with pytest.raises(ValueError, match="share memory") as info:
                opt.apply_gradients([(np.ones(size), w), (np.ones(size), w)])
            messages.append(str(info.value))
    assert all(m.startswith("variables[") for m in messages), messages


# -- None gradients -------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_none_gradients_skipped(name):
    a, b = np.arange(4.0), np.arange(3.0)
    a0 = a.copy()
    opt = CLASSES[name](**FULL[name], learning_rate=0.1)
    ref = CLASSES[name](**FULL[name], learning_rate=0.1)
    b_ref = b.copy()
    for _ in range(3):
        opt.apply_gradients([(None, a), (np.ones(3), b)])
        ref.apply_gradients([(np.ones(3), b_ref)])
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b_ref)
    assert opt.iterations == 3
    with pytest.raises(ValueError):
        opt.get_state([a])  # a was never stepped: it has no state


@pytest.mark.parametrize("pairs", [[(None, np.zeros(3))], [(None, np.zeros(3)), (None, np.ones(2))], []])
def test_no_gradient_at_all_raises(pairs):
    opt, variables, grads = stepped("adam")
    snap = snapshot(opt, variables)
    with pytest.raises(ValueError, match="gradient"):
        opt.apply_gradients(pairs)
    assert_unchanged(opt, variables, snap)


# -- hyperparameters --------------------------------------------------------------

nan, inf = math.nan, math.inf
BAD_HYPER = [
    (n, dict(learning_rate=v), ValueError, "learning_rate") for n in NAMES for v in (-0.1, nan, inf, -inf)
] + [
    (n, dict(learning_rate="0.1"), TypeError, "learning_rate") for n in NAMES
] + [
    (n, dict(learning_rate=None), TypeError, "learning_rate") for n in NAMES
] + [
    (n, {k: v}, ValueError, k)
    for n, keys in [("adam", ("beta_1", "beta_2")), ("adamw", ("beta_1", "beta_2")),
                    ("rmsprop", ("rho", "momentum")), ("sgd", ("momentum",))]
    for k in keys for v in (1.0, 1.5, -0.1, nan, inf)
] + [
    (n, dict(epsilon=v), ValueError, "epsilon")
    for n in ("adagrad", "rmsprop", "adam", "adamw") for v in (0.0, -1e-7, nan, inf)
] + [
    ("adagrad", dict(initial_accumulator_value=-0.1), ValueError, "initial_accumulator_value"),
    ("adagrad", dict(initial_accumulator_value=nan), ValueError, "initial_accumulator_value"),
    ("adam", dict(beta_1=True), TypeError, "beta_1"),
    ("adamw", dict(weight_decay=None), ValueError, "weight_decay"),
] + [
    (n, dict(weight_decay=v), ValueError, "weight_decay") for n in NAMES for v in (-0.1, nan, inf)
] + [
    (n, {k: v}, ValueError, k) for n in ("sgd", "adam")
    for k in ("clipnorm", "clipvalue", "global_clipnorm") for v in (0.0, -1.0, nan, inf)
] + [
    (n, clip, ValueError, "clip") for n in NAMES
    for clip in (dict(clipnorm=1.0, clipvalue=1.0), dict(clipnorm=1.0, global_clipnorm=1.0),
                 dict(clipvalue=1.0, global_clipnorm=1.0),
                 dict(clipnorm=1.0, clipvalue=1.0, global_clipnorm=1.0))
]


@pytest.mark.parametrize("name, kwargs, exc, word", BAD_HYPER,
                         ids=[f"{n}-{k}" for n, k, _, _ in BAD_HYPER])
def test_bad_hyperparameter(name, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        CLASSES[name](**kwargs)


@pytest.mark.parametrize("value", [-0.1, nan, inf, "x"])
def test_bad_learning_rate_assignment_keeps_the_old_one(value):
    opt, variables, grads = stepped("sgd")
    with pytest.raises((TypeError, ValueError), match="learning_rate"):
        opt.learning_rate = value
    assert opt.learning_rate == 0.1
    opt.apply_gradients(zip(grads, variables))


def test_bad_learning_rate_assignment_keeps_the_old_schedule():
    schedule = fo.schedules.ExponentialDecay(0.1, 10, 0.5)
    opt = fo.optimizers.SGD(learning_rate=schedule)
    w = np.zeros(3)
    opt.apply_gradients([(np.ones(3), w)])
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0
    assert opt.learning_rate == schedule(1)
    opt.apply_gradients([(np.ones(3), w)])  # raises TypeError: must be real number, not NoneType


# -- schedules that misbehave during a step ---------------------------------------

@pytest.mark.parametrize("bad", [nan, inf, -0.5])
@pytest.mark.parametrize("name", NAMES)
def test_schedule_giving_bad_value_changes_nothing(name, bad):
    def schedule(step):
        return 0.1 if step < 2 else bad

    rng = np.random.default_rng(1)
    variables = [rng.standard_normal(4), rng.standard_normal((2, 2))]
    opt = CLASSES[name](**FULL[name], learning_rate=schedule)
    grads = [rng.standard_normal(4), rng.standard_normal((2, 2))]
    for _ in range(2):
        opt.apply_gradients(zip(grads, variables))
    snap = snapshot(opt, variables + grads)
    with pytest.raises(ValueError, match="learning_rate"):
        opt.apply_gradients(zip(grads, variables))
    assert_unchanged(opt, variables + grads, snap)


def test_schedule_that_raises_changes_nothing():
    def schedule(step):
        if step == 1:
            raise RuntimeError("boom")
        return 0.1

    opt = fo.optimizers.Adam(learning_rate=schedule)
    w = np.zeros(3)
    opt.apply_gradients([(np.ones(3), w)])
    snap = snapshot(opt, [w])
    with pytest.raises(RuntimeError, match="boom"):
        opt.apply_gradients([(np.ones(3), w)])
    assert_unchanged(opt, [w], snap)
