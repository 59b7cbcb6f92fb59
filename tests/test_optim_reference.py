"""The optimizer kernels (fastopt.optimizers, one C call per step) against
their NumPy twin (fastopt.reference): random shapes, dtypes, layouts and
hyperparameters; gradients never written; aliasing; threads; clipping."""
import math
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastopt as fo
from fastopt import _core
from fastopt.reference import ReferenceOptimizer, clip_gradients
from optim_helpers import CLASSES, FULL, NAMES

DTYPES = [np.float32, np.float64]
SHAPES = [(0,), (1,), (), (7,), (3, 4), (2, 3, 5), (1, 0, 3)]
# every slot in use, so the state is exercised


def pair(name, **config):
    return CLASSES[name](**config), ReferenceOptimizer(name, **config)


def tol(dtype):
    return dict(rtol=1e-12, atol=1e-13) if np.dtype(dtype) == np.float64 else dict(rtol=1e-5, atol=1e-6)


def random_config(rng, name):
    cfg = {"learning_rate": float(10 ** rng.uniform(-3, -0.5))}
    if name == "adamw" or rng.random() < 0.4:
        cfg["weight_decay"] = float(rng.uniform(0, 0.2))
    clip = rng.choice(["none", "clipnorm", "clipvalue", "global_clipnorm"])
    if clip != "none":
        cfg[str(clip)] = float(rng.uniform(0.2, 3.0))
    if name == "sgd":
        cfg["momentum"] = float(rng.choice([0.0, rng.uniform(0, 0.99)]))
        cfg["nesterov"] = bool(rng.random() < 0.5)
    elif name == "adagrad":
        cfg["initial_accumulator_value"] = float(rng.uniform(0.01, 1.0))
        cfg["epsilon"] = float(10 ** rng.uniform(-8, -3))
    elif name == "rmsprop":
        cfg["rho"] = float(rng.uniform(0, 0.999))
        cfg["momentum"] = float(rng.choice([0.0, rng.uniform(0, 0.99)]))
        cfg["epsilon"] = float(10 ** rng.uniform(-7, -3))
        cfg["centered"] = bool(rng.random() < 0.5)
    else:
        cfg["beta_1"] = float(rng.uniform(0, 0.99))
        cfg["beta_2"] = float(rng.uniform(0.5, 0.9999))
        cfg["epsilon"] = float(10 ** rng.uniform(-8, -3))
        cfg["amsgrad"] = bool(rng.random() < 0.5)
    return cfg


def assert_state_matches(opt, ref, variables, ref_variables, dtype):
    state = opt.get_state(variables)["slots"]
    for mine, v in zip(state, ref_variables):
        theirs = ref.slots(v)
        assert [s is None for s in mine] == [s is None for s in theirs]
        for a, b in zip(mine, theirs):
            if a is not None:
                np.testing.assert_allclose(a, b, **tol(dtype))


def run_both(name, cfg, variables, grad_steps):
    """Step copies of ``variables`` through fastopt and the twin; return both."""
    opt, ref = pair(name, **cfg)
    mine = [v.copy() for v in variables]
    theirs = [v.copy() for v in variables]
    for grads in grad_steps:
        assert opt.apply_gradients(zip(grads, mine)) == ref.apply_gradients(zip(grads, theirs))
    return opt, ref, mine, theirs


# -- kernel vs twin -----------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_matches_reference(name, dtype, seed):
    rng = np.random.default_rng([seed, NAMES.index(name), np.dtype(dtype).itemsize])
    cfg = random_config(rng, name)
    variables = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    steps = [[rng.standard_normal(s).astype(dtype) * 2 for s in SHAPES] for _ in range(30)]
    opt, ref, mine, theirs = run_both(name, cfg, variables, steps)
    for a, b, v0 in zip(mine, theirs, variables):
        assert a.dtype == dtype and a.shape == v0.shape
        np.testing.assert_allclose(a, b, **tol(dtype))
    if any(v.size for v in variables):
        assert not all(np.array_equal(a, v0) for a, v0 in zip(mine, variables))
    assert opt.iterations == ref.iterations == 30
    assert_state_matches(opt, ref, mine, theirs, dtype)


@pytest.mark.parametrize("clip", [{}, {"global_clipnorm": 3.0}, {"clipnorm": 0.7}])
@pytest.mark.parametrize("name", NAMES)
def test_many_variables_in_one_step(name, clip):
    """More variables than the binding keeps on its stack (it then allocates)."""
    rng = np.random.default_rng(99)
    shapes = [tuple(rng.integers(0, 5, size=rng.integers(0, 4))) for _ in range(25)]
    variables = [rng.standard_normal(s) for s in shapes]
    steps = [[rng.standard_normal(s) for s in shapes] for _ in range(10)]
    _, _, mine, theirs = run_both(name, {**FULL[name], **clip, "learning_rate": 0.05}, variables, steps)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, **tol(np.float64))


@pytest.mark.parametrize("name", NAMES)
def test_mixed_dtypes_in_one_step(name):
    """float32 and float64 variables in one apply_gradients (one C call), with a
    global norm clip over both."""
    rng = np.random.default_rng(7)
    cfg = {**FULL[name], "learning_rate": 0.05, "global_clipnorm": 1.0}
    variables = [rng.standard_normal(5).astype(np.float32), rng.standard_normal((2, 3))]
    steps = [[rng.standard_normal(5).astype(np.float32), rng.standard_normal((2, 3))]
             for _ in range(20)]
    _, _, mine, theirs = run_both(name, cfg, variables, steps)
    np.testing.assert_allclose(mine[0], theirs[0], **tol(np.float32))
    np.testing.assert_allclose(mine[1], theirs[1], **tol(np.float64))


@st.composite
def hyper(draw, name):
    unit = st.floats(0.0, 0.99)
    cfg = {"learning_rate": draw(st.floats(1e-4, 0.5))}
    if name == "adamw" or draw(st.booleans()):
        cfg["weight_decay"] = draw(st.floats(0.0, 0.5))
    clip = draw(st.sampled_from([None, "clipnorm", "clipvalue", "global_clipnorm"]))
    if clip:
        cfg[clip] = draw(st.floats(0.05, 5.0))
    if name == "sgd":
        cfg.update(momentum=draw(st.sampled_from([0.0, 0.5]) | unit), nesterov=draw(st.booleans()))
    elif name == "adagrad":
        cfg.update(initial_accumulator_value=draw(st.floats(0.0, 1.0)),
                   epsilon=draw(st.floats(1e-8, 1e-2)))
    elif name == "rmsprop":
        cfg.update(rho=draw(unit), momentum=draw(st.just(0.0) | unit),
                   epsilon=draw(st.floats(1e-6, 1e-2)), centered=draw(st.booleans()))
    else:
        cfg.update(beta_1=draw(unit), beta_2=draw(st.floats(0.0, 0.9999)),
                   epsilon=draw(st.floats(1e-8, 1e-2)), amsgrad=draw(st.booleans()))
    return cfg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(NAMES), dtype=st.sampled_from(DTYPES),
       shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
                       min_size=1, max_size=3),
       steps=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_matches_reference_hypothesis(data, name, dtype, shapes, steps, seed):
    cfg = data.draw(hyper(name))
    rng = np.random.default_rng(seed)
    variables = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grad_steps = [[(rng.standard_normal(s) * 3).astype(dtype) for s in shapes] for _ in range(steps)]
    opt, ref, mine, theirs = run_both(name, cfg, variables, grad_steps)
    for a, b in zip(mine, theirs):
        # hypothesis reaches regimes that amplify round-off (centered RMSprop with
        # rho ~ 0 divides by v - a^2 + eps, a difference of near-equal squares):
        # the absolute tolerance scales with the largest element of the variable
        t = tol(dtype)
        scale = float(np.max(np.abs(b), initial=1.0))
        np.testing.assert_allclose(a, b, rtol=t["rtol"], atol=t["atol"] * max(scale, 1.0) * 10)
    assert_state_matches(opt, ref, mine, theirs, dtype)


@pytest.mark.parametrize("name", NAMES)
def test_nan_gradient_stays_in_its_element(name):
    """A NaN gradient element poisons its own element only (as Keras and the twin)."""
    rng = np.random.default_rng(3)
    g = rng.standard_normal(6)
    g[2] = np.nan
    _, _, mine, theirs = run_both(name, {**FULL[name], "learning_rate": 0.1},
                                  [rng.standard_normal(6)], [[g]] * 3)
    assert np.isnan(mine[0][2]) and np.isfinite(np.delete(mine[0], 2)).all()
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-12, equal_nan=True)


# -- layouts: updated through the view ---------------------------------------

LAYOUTS = {
    "C": lambda b: b,
    "F": None,  # an F-ordered array of its own, below
    "strided": lambda b: b[:, ::2],
    "transposed": lambda b: b.T,
    "reversed": lambda b: b[::-1, ::-3],
    "row": lambda b: b[2],
    "column": lambda b: b[:, 3],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_views_updated_in_place(name, dtype, layout):
    rng = np.random.default_rng(11)
    if layout == "F":
        base = np.asfortranarray(rng.standard_normal((5, 6)).astype(dtype))
        view = base
    else:
        base = rng.standard_normal((5, 6)).astype(dtype)
        view = LAYOUTS[layout](base)
    before = base.copy()
    expected = view.copy()
    opt, ref = pair(name, **FULL[name], learning_rate=0.1)
    grads = [rng.standard_normal(view.shape).astype(dtype) for _ in range(5)]
    for g in grads:
        opt.apply_gradients([(g, view)])  # the same view object at every step
        ref.apply_gradients([(g, expected)])
    assert np.shares_memory(view, base)
    np.testing.assert_allclose(view, expected, **tol(dtype))
    untouched = np.ones(base.shape, bool)
    (untouched if layout == "F" else LAYOUTS[layout](untouched))[...] = False
    np.testing.assert_array_equal(base[untouched], before[untouched])
    assert not np.array_equal(base, before)


@pytest.mark.parametrize("name", NAMES)
def test_interleaved_views_are_separate_variables(name):
    """w[::2] and w[1::2] share bounds but no element: both are updated."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal(10)
    a, b = w[::2], w[1::2]
    ea, eb = a.copy(), b.copy()
    opt, ref = pair(name, **FULL[name], learning_rate=0.1)
    for _ in range(4):
        ga, gb = rng.standard_normal(5), rng.standard_normal(5)
        opt.apply_gradients([(ga, a), (gb, b)])
        ref.apply_gradients([(ga, ea), (gb, eb)])
    np.testing.assert_allclose(w[::2], ea, rtol=1e-12)
    np.testing.assert_allclose(w[1::2], eb, rtol=1e-12)


@pytest.mark.parametrize("byteorder", [">", "<"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_byteswapped_variable_and_gradient(name, dtype, byteorder):
    rng = np.random.default_rng(13)
    native = rng.standard_normal((3, 4)).astype(dtype)
    swapped_dtype = np.dtype(dtype).newbyteorder(byteorder)
    w = native.astype(swapped_dtype)
    opt, ref = pair(name, **FULL[name], learning_rate=0.1, clipnorm=2.0)
    for _ in range(5):
        g = rng.standard_normal((3, 4)).astype(dtype)
        opt.apply_gradients([(g.astype(g.dtype.newbyteorder(">")), w)])
        ref.apply_gradients([(g, native)])
    assert w.dtype == swapped_dtype
    np.testing.assert_allclose(w.astype(dtype), native, **tol(dtype))


# -- gradients: read only, aliasing, casting ---------------------------------

@pytest.mark.parametrize("clip", [{}, {"clipnorm": 0.5}, {"clipvalue": 0.1}, {"global_clipnorm": 0.5}])
@pytest.mark.parametrize("name", NAMES)
def test_gradients_never_written(name, clip):
    rng = np.random.default_rng(17)
    variables = [rng.standard_normal((4, 5)), rng.standard_normal((4, 5)).astype(np.float32),
                 rng.standard_normal(6), rng.standard_normal((3, 3)), rng.standard_normal(4)]
    grads = [rng.standard_normal((4, 5)) * 10,                              # C, float64
             np.asfortranarray(rng.standard_normal((4, 5)).astype(np.float32) * 10),
             (rng.standard_normal(12) * 10)[::2],                           # strided
             (rng.standard_normal((3, 3)) * 10).astype(">f8"),              # byte-swapped
             (rng.standard_normal(4) * 10).astype(np.float32)]              # cast to float64
    copies = [(g.copy(), g.dtype, g.strides) for g in grads]
    opt = CLASSES[name](**FULL[name], **clip)
    for _ in range(3):
        opt.apply_gradients(zip(grads, variables))
    for g, (c, dtype, strides) in zip(grads, copies):
        assert g.dtype == dtype and g.strides == strides
        np.testing.assert_array_equal(g, c)


@pytest.mark.parametrize("clip", [{}, {"clipnorm": 0.5}, {"global_clipnorm": 0.5}])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_aliasing_its_variable(name, clip):
    rng = np.random.default_rng(19)
    w = rng.standard_normal((3, 4))
    w2 = w.copy()
    opt_a = CLASSES[name](**FULL[name], **clip, learning_rate=0.1)
    opt_b = CLASSES[name](**FULL[name], **clip, learning_rate=0.1)
    for _ in range(4):
        opt_a.apply_gradients([(w, w)])
        opt_b.apply_gradients([(w2.copy(), w2)])
    np.testing.assert_array_equal(w, w2)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_aliasing_other_variables(name):
    """grads[0] is variables[1] and grads[1] a reversed view of variables[0]: each
    gradient is read as it was before the step."""
    rng = np.random.default_rng(23)
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    a2, b2 = a.copy(), b.copy()
    opt_a = CLASSES[name](**FULL[name], learning_rate=0.1)
    opt_b = CLASSES[name](**FULL[name], learning_rate=0.1)
    for _ in range(4):
        opt_a.apply_gradients([(b, a), (a[::-1], b)])
        opt_b.apply_gradients([(b2.copy(), a2), (a2[::-1].copy(), b2)])
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_is_an_earlier_variable(name):
    """grads[1] is variables[0], which the step writes first."""
    rng = np.random.default_rng(24)
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    g = rng.standard_normal(6)
    a2, b2 = a.copy(), b.copy()
    opt_a = CLASSES[name](**FULL[name], learning_rate=0.1)
    opt_b = CLASSES[name](**FULL[name], learning_rate=0.1)
    for _ in range(3):
        opt_a.apply_gradients([(g, a), (a, b)])
        opt_b.apply_gradients([(g, a2), (a2.copy(), b2)])
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_overlapping_its_variable_shifted(name):
    """The variable is base[1:] and its gradient base[:-1]: element i + 1 of the
    variable is element i + 1 of the gradient's memory."""
    rng = np.random.default_rng(25)
    base = rng.standard_normal(9)
    base2 = base.copy()
    opt_a = CLASSES[name](**FULL[name], learning_rate=0.1)
    opt_b = CLASSES[name](**FULL[name], learning_rate=0.1)
    wa, wb = base[1:], base2[1:]
    for _ in range(3):
        opt_a.apply_gradients([(base[:-1], wa)])
        opt_b.apply_gradients([(base2[:-1].copy(), wb)])
    np.testing.assert_array_equal(base, base2)


@pytest.mark.parametrize("low", [np.float32, np.float16])
@pytest.mark.parametrize("name", NAMES)
def test_lower_precision_gradient_cast_exactly(name, low):
    rng = np.random.default_rng(29)
    target = np.float64 if low is np.float32 else np.float32
    w = rng.standard_normal((4, 3)).astype(target)
    w2 = w.copy()
    opt_a = CLASSES[name](**FULL[name], learning_rate=0.1, clipnorm=1.0)
    opt_b = CLASSES[name](**FULL[name], learning_rate=0.1, clipnorm=1.0)
    for _ in range(5):
        g = rng.standard_normal((4, 3)).astype(low)
        opt_a.apply_gradients([(g, w)])
        opt_b.apply_gradients([(g.astype(target), w2)])
    assert w.dtype == target
    np.testing.assert_array_equal(w, w2)


# -- threads -------------------------------------------------------------------

def test_threads_bit_identical_to_sequential():
    n_threads, size, n_steps = 8, 200_000, 8
    rng = np.random.default_rng(31)
    w0 = [rng.standard_normal(size) for _ in range(n_threads)]
    grads = [[rng.standard_normal(size) for _ in range(2)] for _ in range(n_threads)]

    def make(i):
        name = NAMES[i % len(NAMES)]
        return CLASSES[name](**FULL[name], learning_rate=0.01, global_clipnorm=100.0)

    def run(i, w, barrier=None):
        opt = make(i)
        if barrier is not None:
            barrier.wait()
        for k in range(n_steps):
            opt.apply_gradients([(grads[i][k % 2], w)])

    sequential = [w.copy() for w in w0]
    for i in range(n_threads):
        run(i, sequential[i])
    threaded = [w.copy() for w in w0]
    barrier = threading.Barrier(n_threads)
    errors = []

    def target(i):
        try:
            run(i, threaded[i], barrier)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for s, t, w in zip(sequential, threaded, w0):
        assert not np.array_equal(s, w)
        np.testing.assert_array_equal(s, t)


# -- clipping against a direct NumPy computation -------------------------------

def clipped(grads, **clip):
    """The gradients as the optimizer sees them: SGD with lr=1 from w=0 gives w = -g."""
    opt = fo.optimizers.SGD(learning_rate=1.0, **clip)
    ws = [np.zeros(np.shape(g), dtype=np.asarray(g).dtype) for g in grads]
    opt.apply_gradients(zip(grads, ws))
    return [-w for w in ws]


def test_clipnorm_per_variable():
    rng = np.random.default_rng(37)
    big = rng.standard_normal((4, 5))
    big *= 5.0 / np.linalg.norm(big)             # norm 5 > 1: scaled to norm 1
    small = rng.standard_normal(7)
    small *= 0.5 / np.linalg.norm(small)         # norm 0.5 <= 1: untouched
    exact = np.array([0.6, 0.8])                 # norm exactly 1: untouched
    zero = np.zeros(3)
    out = clipped([big, small, exact, zero], clipnorm=1.0)
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(out[0], big * 1.0 / np.sqrt(np.sum(big * big)), rtol=1e-15)
    np.testing.assert_array_equal(out[1], small)
    np.testing.assert_array_equal(out[2], exact)
    np.testing.assert_array_equal(out[3], zero)


def test_global_clipnorm_over_all_variables():
    rng = np.random.default_rng(41)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal(()),
             np.zeros((0,))]
    total = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    c = total / 3                                 # every gradient scaled by the same 1/3
    out = clipped(grads, global_clipnorm=c)
    for g, o in zip(grads, out):
        np.testing.assert_allclose(o, g * c / max(total, c), rtol=1e-15)
    assert math.sqrt(sum(float(np.sum(o * o)) for o in out)) == pytest.approx(c, rel=1e-14)
    # each gradient alone is below c: a per-variable clip would leave them be
    assert all(np.linalg.norm(g) < c * 3 for g in grads)
    for g, o in zip(grads, clipped(grads, global_clipnorm=total * 1.01)):
        np.testing.assert_array_equal(o, g)


def test_clipvalue_elementwise():
    g = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, np.inf, -np.inf, np.nan])
    out = clipped([g], clipvalue=1.0)[0]
    np.testing.assert_array_equal(out, [-1.0, -0.5, 0.0, 0.25, 1.0, 1.0, -1.0, np.nan])


def test_clipnorm_float32_gradient():
    rng = np.random.default_rng(43)
    g = (rng.standard_normal(1000) * 10).astype(np.float32)
    out = clipped([g], clipnorm=2.0)[0]
    assert out.dtype == np.float32
    norm = np.sqrt(np.sum(g.astype(np.float64) ** 2))
    np.testing.assert_allclose(out, g.astype(np.float64) * 2.0 / norm, rtol=2e-7)


def _hyper(clipnorm=0.0, global_clipnorm=0.0, clipvalue=0.0):
    # the C step's constant hyperparameters (see Optimizer._set_hyper), plain SGD
    return (0.0, clipnorm, global_clipnorm, clipvalue, 0.0, False, 0.0, False, 0.0, 0.0, 0.0, False)


@pytest.mark.parametrize("clip", [dict(clipnorm=1.0, clipvalue=0.1),
                                  dict(global_clipnorm=1.0, clipvalue=0.1),
                                  dict(clipnorm=1.0, global_clipnorm=0.5),
                                  dict(clipnorm=1.0, global_clipnorm=0.5, clipvalue=0.1)])
def test_kernel_clip_precedence_is_keras(clip):
    """The Python layer allows one clip option; the C step still follows
    Keras' precedence (clipnorm, else global_clipnorm, else clipvalue)."""
    rng = np.random.default_rng(47)
    grads = [rng.standard_normal(6) * 3, rng.standard_normal((2, 2)) * 3]
    ws = [np.zeros(6), np.zeros((2, 2))]
    _core.optim_update(_core.SGD, ws, grads, [(None, None, None)] * 2, _hyper(**clip), 1.0, 0)
    for w, e in zip(ws, clip_gradients(grads, **clip)):
        np.testing.assert_allclose(-w, e, rtol=1e-15)


@pytest.mark.parametrize("grad, shape", [(0.1, ()), ([0.1, 0.1, 0.1], (3,))])
def test_python_numbers_take_the_variables_dtype(grad, shape):
    # Python floats carry no precision of their own (NumPy's weak scalars)
    w, expected = np.ones(shape, np.float32), np.ones(shape, np.float32)
    fo.optimizers.SGD(0.1).apply_gradients([(grad, w)])
    fo.optimizers.SGD(0.1).apply_gradients([(np.full(shape, 0.1, np.float32), expected)])
    np.testing.assert_array_equal(w, expected)


@pytest.mark.parametrize("clip", [{"clipnorm": 1.0}, {"global_clipnorm": 1.0}])
def test_nan_gradient_under_a_norm_clip_spreads_to_every_element(clip):
    # as Keras' clip_by_norm and torch's clip_grad_norm_: the norm is NaN, so is the scale
    w = np.zeros(4)
    fo.optimizers.SGD(0.1, **clip).apply_gradients([(np.array([1.0, np.nan, 2.0, 3.0]), w)])
    assert np.isnan(w).all()


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_variable_split_across_threads_matches_twin(name):
    # 1M+ elements are split across threads in C (FASTOPT_NUM_THREADS); an odd
    # length puts a ragged chunk at the end
    n = (1 << 20) + 12345
    rng = np.random.default_rng(7)
    config = {"sgd": {"momentum": 0.9}, "adam": {"amsgrad": True}, "rmsprop": {"centered": True}}[name]
    opt, ref = CLASSES[name](learning_rate=0.01, **config), ReferenceOptimizer(name, learning_rate=0.01, **config)
    w = rng.standard_normal(n)
    w_ref = w.copy()
    for _ in range(3):
        g = rng.standard_normal(n)
        opt.apply_gradients([(g, w)])
        ref.apply_gradients([(g, w_ref)])
    np.testing.assert_allclose(w, w_ref, rtol=1e-13, atol=1e-15)
