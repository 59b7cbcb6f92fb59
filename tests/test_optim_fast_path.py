"""apply_gradients' two paths: arguments that need no conversion go straight to
C (the fast path), the others through the thorough path.  Both must give the
same bits, the same state and the same step count; every refusal gives the
same message whichever path was asked for.  Each test forces each path with
``_core.optim_fast_path`` and counts the calls of the thorough path, so a test
cannot pass by running one path twice."""
import math

import numpy as np
import pytest

import fastopt as fo
from fastopt.reference import ReferenceOptimizer
from optim_helpers import CLASSES, NAMES, fast_path, unaligned

FULL = {"sgd": dict(momentum=0.9, nesterov=True), "adagrad": {}, "rmsprop": dict(momentum=0.5, centered=True),
        "adam": dict(amsgrad=True), "adamw": dict(weight_decay=0.05)}


def counted(opt):
    """Count the optimizer's calls of its thorough path."""
    calls = []
    thorough = opt._apply_thorough

    def spy(pairs):
        calls.append(1)
        return thorough(pairs)

    opt._apply_thorough = spy  # the instance attribute is what the C fast path calls
    return calls


def random_config(rng, name):
    cfg = {"learning_rate": float(10 ** rng.uniform(-3, -1))}
    if name == "adamw" or rng.random() < 0.4:
        cfg["weight_decay"] = float(rng.uniform(0, 0.2))
    clip = rng.choice(["none", "clipnorm", "clipvalue", "global_clipnorm"])
    if clip != "none":
        cfg[str(clip)] = float(rng.uniform(0.2, 3.0))
    if rng.random() < 0.3:
        cfg.update(use_ema=True, ema_momentum=float(rng.uniform(0.5, 0.99)),
                   ema_overwrite_frequency=int(rng.choice([0, 2, 3])) or None)
    if rng.random() < 0.3:
        cfg["gradient_accumulation_steps"] = int(rng.integers(2, 4))
    if rng.random() < 0.3:
        cfg["loss_scale_factor"] = float(rng.choice([2.0, 1024.0, 3.0]))
    cfg.update(FULL[name])
    return cfg


def run(name, cfg, variables, steps, fast, exclude=None):
    opt = CLASSES[name](**cfg)
    if exclude is not None:
        opt.exclude_from_weight_decay(var_list=[variables[i] for i in exclude])
    calls = counted(opt)
    its = []
    with fast_path(fast):
        for grads in steps:
            its.append(opt.apply_gradients(zip(grads, variables)))
    return opt, calls, its


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_fast_and_thorough_paths_give_the_same_bits(name, dtype, seed):
    rng = np.random.default_rng([seed, NAMES.index(name), np.dtype(dtype).itemsize])
    cfg = random_config(rng, name)
    shapes = [(10,), (3, 4), (), (0,), (2, 1, 3)]
    w0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    steps = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(12)]
    exclude = [1] if cfg.get("weight_decay") and rng.random() < 0.5 else None
    fast_w, slow_w = [w.copy() for w in w0], [w.copy() for w in w0]
    fast, fast_calls, fast_its = run(name, cfg, fast_w, steps, True, exclude)
    slow, slow_calls, slow_its = run(name, cfg, slow_w, steps, False, exclude)
    assert len(fast_calls) == 1 and len(slow_calls) == 12  # the first step makes the state
    assert fast_its == slow_its and fast.iterations == slow.iterations
    assert int(fast._step[0]) == int(slow._step[0]) == 12
    for a, b in zip(fast_w, slow_w):
        np.testing.assert_array_equal(a, b)
    sa, sb = fast.get_state(fast_w), slow.get_state(slow_w)
    assert sa.keys() == sb.keys()
    for key in sa:
        if key in ("iterations", "accumulated_steps"):
            assert sa[key] == sb[key]
            continue
        for xa, xb in zip(sa[key], sb[key]):
            for a, b in zip(xa if isinstance(xa, list) else [xa], xb if isinstance(xb, list) else [xb]):
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_array_equal(a, b)
    # and both follow the twin
    ref = ReferenceOptimizer(name, **cfg)
    twin = [w.copy() for w in w0]
    if exclude is not None:
        ref.exclude_from_weight_decay(var_list=[twin[i] for i in exclude])
    for grads in steps:
        ref.apply_gradients(zip(grads, twin))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(fast_w, twin):
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("schedule", [
    fo.schedules.ExponentialDecay(0.1, 3, 0.5),
    lambda step: 0.1 / (1 + step),       # a callable taking the step (fastopt's older convention)
    lambda: 0.05,                        # Keras 3: a callable without arguments
], ids=["schedule", "step-callable", "keras3-callable"])
def test_schedules_on_both_paths(schedule):
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(10)
    steps = [rng.standard_normal(10) for _ in range(6)]
    out = []
    for fast in (True, False):
        w = w0.copy()
        opt = fo.optimizers.SGD(learning_rate=schedule, momentum=0.5)
        calls = counted(opt)
        with fast_path(fast):
            for g in steps:
                opt.apply_gradients([(g, w)])
        assert len(calls) == (1 if fast else 6)
        out.append(w)
    np.testing.assert_array_equal(*out)


def declining_cases(rng):
    """Arguments the fast path leaves to the thorough path (the results must not differ)."""
    base = rng.standard_normal((4, 6))
    return {
        "F-order variable": lambda: (np.asfortranarray(base.copy()), rng.standard_normal((4, 6))),
        "strided variable": lambda: (base.copy()[:, ::2], rng.standard_normal((4, 3))),
        "byte-swapped variable": lambda: (base.astype(">f8"), rng.standard_normal((4, 6))),
        "float32 gradient": lambda: (base.copy(), rng.standard_normal((4, 6)).astype(np.float32)),
        "list gradient": lambda: (base.copy(), rng.standard_normal((4, 6)).tolist()),
        "strided gradient": lambda: (base.copy(), rng.standard_normal((4, 12))[:, ::2]),
        "subclass variable": lambda: (base.copy().view(type("Sub", (np.ndarray,), {})),
                                      rng.standard_normal((4, 6))),
        "unaligned variable": lambda: (unaligned(base), rng.standard_normal((4, 6))),
    }


@pytest.mark.parametrize("case", list(declining_cases(np.random.default_rng(0))))
def test_arguments_that_need_conversion_take_the_thorough_path(case):
    results = []
    for fast in (True, False):
        rng = np.random.default_rng(5)
        var, grad = declining_cases(rng)[case]()
        opt = fo.optimizers.Adam(0.1, amsgrad=True)
        calls = counted(opt)
        with fast_path(fast):
            for _ in range(3):
                opt.apply_gradients([(grad, var)])
        assert len(calls) == 3
        results.append((np.array(var, dtype=np.float64), opt.get_state([var])))
    np.testing.assert_array_equal(results[0][0], results[1][0])


BAD = {
    "shape": lambda w: [(np.ones(4), w)],
    "int gradient": lambda w: [(np.ones(6, np.int64), w)],
    "read-only variable": lambda w: [(np.ones(6), _ro(w.copy()))],
    "same variable twice": lambda w: [(np.ones(6), w), (np.ones(6), w)],
    "overlapping variables": lambda w: [(np.ones(3), w[:3]), (np.ones(4), w[2:])],
    "gradients alone": lambda w: [np.ones(6)],
    "no pairs": lambda w: 5,
    "no gradient": lambda w: [(None, w)],
    "self-overlapping variable": lambda w: [(np.ones((3, 2)), np.lib.stride_tricks.as_strided(w, (3, 2), (8, 8)))],
    "epsilon underflows float32": None,
}


def _ro(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("case", list(BAD))
def test_refusals_say_the_same_on_both_paths(case):
    messages = []
    for fast in (True, False):
        if BAD[case] is None:  # a hyperparameter float32 cannot hold
            w = np.linspace(-1, 1, 6).astype(np.float32)
            opt = fo.optimizers.Adam(0.1, epsilon=1e-46)
            pairs = [(np.ones(6, np.float32), w)]
        else:
            w = np.linspace(-1, 1, 6)
            opt = fo.optimizers.Adam(0.1)
            opt.apply_gradients([(np.ones(6), w)])  # w has state: the fast path would take it
            pairs = BAD[case](w)
        before = (w.copy(), opt.get_state(), opt.iterations)
        with fast_path(fast), pytest.raises((TypeError, ValueError)) as info:
            opt.apply_gradients(pairs)
        messages.append((type(info.value), str(info.value)))
        np.testing.assert_array_equal(w, before[0])
        assert opt.iterations == before[2]
        assert len(opt.get_state()["slots"]) == len(before[1]["slots"])
    assert messages[0] == messages[1]


def test_the_fast_path_counts_the_step_it_applies():
    w = np.zeros(10, np.float32)
    opt = fo.optimizers.Adam(0.01)
    calls = counted(opt)
    for k in range(1, 6):
        assert opt.apply_gradients([(np.ones(10, np.float32), w)]) == k
        assert int(opt._step[0]) == k
    assert len(calls) == 1


@pytest.mark.parametrize("fast", [True, False])
def test_divergence_warns_once_per_optimizer(fast):
    """Article 002's float32 run: the parameters overflow; one warning names the
    step and the learning rate, and suggests a smaller rate or float64."""
    w = np.array([3e38, 1.0], np.float32)
    opt = fo.optimizers.SGD(learning_rate=0.5)
    with fast_path(fast):
        opt.apply_gradients([(np.zeros(2, np.float32), w)])  # the first step (state) either way
        with pytest.warns(fo.DivergenceWarning) as record:
            opt.apply_gradients([(np.array([-1e38, 0.0], np.float32) * 3, w)])
            opt.apply_gradients([(np.ones(2, np.float32), w)])
    assert len(record) == 1
    message = str(record[0].message)
    assert "step 2" in message and "learning_rate=0.5" in message and "float64" in message
    assert issubclass(fo.DivergenceWarning, RuntimeWarning)
    assert record[0].filename == __file__  # points at the caller's line
    assert math.isinf(w[0])


def test_no_divergence_warning_while_finite(recwarn):
    w = np.ones(100)
    opt = fo.optimizers.Adam(0.1)
    for _ in range(20):
        opt.apply_gradients([(np.full(100, 1e3), w)])
    assert not [r for r in recwarn if issubclass(r.category, fo.DivergenceWarning)]


@pytest.mark.parametrize("case", [c for c in BAD if c not in ("no pairs", "epsilon underflows float32")])
def test_refusals_of_pairs_from_an_iterator_say_what_a_list_gets(case):
    """A zip or generator is read once in C (its tuples' items kept): the thorough
    path still gets every pair, in order, and says the same as for a list."""
    messages = []
    for make in (list, iter, lambda p: (q for q in p)):
        for fast in (True, False):
            w = np.linspace(-1, 1, 6)
            opt = fo.optimizers.Adam(0.1)
            opt.apply_gradients([(np.ones(6), w)])
            before = w.copy()
            with fast_path(fast), pytest.raises((TypeError, ValueError)) as info:
                opt.apply_gradients(make(BAD[case](w)))
            messages.append((type(info.value), str(info.value)))
            np.testing.assert_array_equal(w, before)
            assert opt.iterations == 1
    assert len(set(messages)) == 1, messages


@pytest.mark.parametrize("count", [1, 16, 17])
def test_pairs_from_a_zip_take_the_fast_path_up_to_its_variable_count(count):
    """Up to 16 variables from a zip step in C; 17 go through the thorough path,
    with the same bits."""
    rng = np.random.default_rng(count)
    grads = [rng.standard_normal(3) for _ in range(count)]
    results = []
    for fast in (True, False):
        variables = [np.linspace(-1, 1, 3) + i for i in range(count)]
        opt = fo.optimizers.Adam(0.1)
        calls = counted(opt)
        with fast_path(fast):
            for _ in range(3):
                opt.apply_gradients(zip(grads, variables))
        assert len(calls) == (1 if fast and count <= 16 else 3)  # the first step makes the state
        results.append(variables)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_an_iterator_that_fails_midway_changes_nothing():
    w = np.linspace(-1, 1, 6)
    opt = fo.optimizers.SGD(0.1)
    opt.apply_gradients([(np.ones(6), w)])
    before = w.copy()

    def pairs():
        yield np.ones(6), w
        raise RuntimeError("the data loader failed")
    for fast in (True, False):
        with fast_path(fast), pytest.raises(RuntimeError, match="data loader"):
            opt.apply_gradients(pairs())
    np.testing.assert_array_equal(w, before)
    assert opt.iterations == 1


class _HalvedInverseSqrt(fo.schedules.InverseSqrtDecay):
    """A schedule of the user's own (a subclass with its own __call__)."""

    def __call__(self, step):
        return super().__call__(step) / 2


@pytest.mark.parametrize("schedule", [fo.schedules.InverseSqrtDecay(0.1, 0.9),
                                      fo.schedules.ExponentialDecay(0.1, 3, 0.5),
                                      fo.schedules.CosineDecay(0.1, 5, alpha=0.1),
                                      _HalvedInverseSqrt(0.1, 0.9)],
                         ids=["inverse-sqrt", "exponential", "cosine", "user subclass"])
def test_the_fast_path_calls_built_in_schedules_itself(schedule):
    """A built-in schedule is called by C with the step (no trip through
    _scheduled); a schedule of the user's own still goes through _scheduled;
    the bits are the thorough path's either way."""
    rng = np.random.default_rng(3)
    steps = [rng.standard_normal(4) for _ in range(6)]
    out = []
    for fast in (True, False):
        w = np.linspace(-1, 1, 4)
        opt = fo.optimizers.SGD(learning_rate=schedule, momentum=0.5)
        scheduled, seen = opt._scheduled, []
        opt._scheduled = lambda step: seen.append(step) or scheduled(step)
        with fast_path(fast):
            for g in steps:
                opt.apply_gradients(zip([g], [w]))
        built_in = type(schedule) is not _HalvedInverseSqrt
        assert seen == ([0] if fast and built_in else list(range(6)))
        out.append(w)
    np.testing.assert_array_equal(*out)


@pytest.mark.parametrize("size", [10, 5000])
def test_the_fast_path_waits_for_a_thread_that_holds_the_lock(size):
    """A small step with a constant learning rate runs under the GIL without
    taking the optimizer's lock, but never while another thread holds it."""
    import threading
    w = np.zeros(size)
    opt = fo.optimizers.SGD(0.5)
    opt.apply_gradients([(np.ones(size), w)])  # state made: the next steps take the fast path
    calls = counted(opt)
    opt._lock.acquire()  # as another thread's step, with the GIL released, would
    stepped = threading.Event()
    worker = threading.Thread(target=lambda: (opt.apply_gradients(zip([np.ones(size)], [w])), stepped.set()))
    worker.start()
    try:
        assert not stepped.wait(0.2)
        assert opt.iterations == 1 and w[0] == -0.5
    finally:
        opt._lock.release()
    worker.join(10)
    assert stepped.is_set() and opt.iterations == 2 and w[0] == -1.0
    assert calls == []
    assert not opt._lock.locked()


def test_apply_gradients_takes_its_argument_by_name_and_refuses_others():
    w = np.ones(3)
    opt = fo.optimizers.Adam(0.1)
    assert opt.apply_gradients(grads_and_vars=[(np.ones(3), w)]) == 1
    before = w.copy()
    for call in (lambda: opt.apply_gradients(), lambda: opt.apply_gradients([(np.ones(3), w)], 1),
                 lambda: opt.apply_gradients(pairs=[(np.ones(3), w)])):
        with pytest.raises(TypeError, match="apply_gradients"):
            call()
    np.testing.assert_array_equal(w, before)
    assert opt.iterations == 1
