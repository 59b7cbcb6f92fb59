"""Optimizer state is keyed by the memory a variable covers, not by the Python
object: views of the same memory step with one state, a view of part of a
stepped array continues that part's state, the state goes with the array that
owns the memory, and pickling carries it to the unpickled arrays."""
import gc
import pickle

import numpy as np
import pytest

import fastopt as fo
from fastopt.reference import ReferenceOptimizer, adam_update
from optim_helpers import CLASSES, FULL, NAMES

# each: the array stepped at every step, as a function of w (2, 3) and the step
VIEWS = {
    "w[:]": lambda w, k: w[:],
    "w[...]": lambda w, k: w[...],
    "reshape": lambda w, k: w.reshape(6) if k % 2 else w,
    "reshape (3, 2)": lambda w, k: w.reshape(3, 2) if k % 2 else w.reshape(6),
    "transposed": lambda w, k: w.T if k % 2 else w,
    "np.asarray": lambda w, k: np.asarray(w),
    "view": lambda w, k: w.view(),
}


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("name", NAMES)
def test_fresh_views_of_the_same_memory_keep_the_state(name, view):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((2, 3))
    twin = w.copy()
    opt = CLASSES[name](**FULL[name], learning_rate=0.1)
    ref = ReferenceOptimizer(name, **FULL[name], learning_rate=0.1)
    for k in range(6):
        g = rng.standard_normal((2, 3))
        v = VIEWS[view](w, k)
        opt.apply_gradients([(g.reshape(v.shape) if v.shape != g.T.shape or view != "transposed" or k % 2 == 0
                              else g.T, v)])
        ref.apply_gradients([(g, twin)])
    np.testing.assert_allclose(w, twin, rtol=1e-12, atol=1e-14)
    assert opt.iterations == 6


def test_w_slice_keeps_adams_state_issue_example():
    """The notebook check of issue 7: ``w[:]`` keeps Adam's state."""
    w, twin = np.ones(4), np.ones(4)
    opt, ref = fo.optimizers.Adam(0.1), fo.optimizers.Adam(0.1)
    for _ in range(5):
        opt.apply_gradients([(np.full(4, 0.5), w[:])])  # a new view object every step
        ref.apply_gradients([(np.full(4, 0.5), twin)])
    np.testing.assert_array_equal(w, twin)
    assert len(opt.get_state()["slots"]) == 1


def test_part_of_a_stepped_array_continues_that_parts_state():
    rng = np.random.default_rng(2)
    w = rng.standard_normal(8)
    opt = fo.optimizers.Adam(0.1)
    g = rng.standard_normal(8)
    opt.apply_gradients([(g, w)])
    m, v = (s.copy() for s in opt.get_state([w])["slots"][0][:2])
    part = w[2:6].copy()
    g2 = rng.standard_normal(4)
    opt.apply_gradients([(g2, w[2:6])])
    adam_update(part, g2, m[2:6], v[2:6], None, learning_rate=0.1, beta_1=0.9, beta_2=0.999,
                epsilon=1e-7, iteration=1)
    np.testing.assert_allclose(w[2:6], part, rtol=1e-14)
    state = opt.get_state([w])["slots"][0]
    np.testing.assert_allclose(state[0][2:6], m[2:6], rtol=1e-14)
    np.testing.assert_array_equal(state[0][:2], opt.get_state([w[:2]])["slots"][0][0])
    # a strided view of the stepped memory too
    opt.apply_gradients([(np.ones(4), w[::2])])
    assert len(opt.get_state([w[::2]])["slots"]) == 1


def test_a_larger_array_takes_over_the_state_of_its_parts():
    """w[:3] stepped first, then all of w: elements 0..2 continue their state,
    the others start fresh, at the optimizer's step count."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal(6)
    opt = fo.optimizers.Adam(0.1)
    g1, g2 = rng.standard_normal(3), rng.standard_normal(6)
    opt.apply_gradients([(g1, w[:3])])
    m, v = (np.concatenate([s, np.zeros(3)]) for s in opt.get_state([w[:3]])["slots"][0][:2])
    expected = w.copy()
    opt.apply_gradients([(g2, w)])
    adam_update(expected, g2, m, v, None, learning_rate=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                iteration=1)
    np.testing.assert_allclose(w, expected, rtol=1e-14)
    # and the part now reads its state from the whole
    np.testing.assert_array_equal(opt.get_state([w[:3]])["slots"][0][0], opt.get_state([w])["slots"][0][0][:3])


def test_state_goes_with_the_array_that_owns_the_memory():
    opt = fo.optimizers.Adam(0.1)
    base = np.zeros(10)
    view = base[2:6]
    opt.apply_gradients([(np.ones(4), view)])
    del view
    gc.collect()
    assert len(opt.get_state()["slots"]) == 1  # the owner lives: the state stays
    m = opt.get_state([base[2:6]])["slots"][0][0].copy()
    assert (m != 0).all()
    del base
    gc.collect()
    assert opt.get_state()["slots"] == []
    assert opt._state.bindings == {} and opt._state.owners == {}


def test_new_array_at_a_dead_arrays_address_starts_fresh():
    opt = fo.optimizers.Adam(0.1)
    for k in range(20):  # allocators reuse addresses: a stale entry would show here
        w = np.zeros(16)
        opt.apply_gradients([(np.ones(16), w)])
        expected, fresh = np.zeros(16), fo.optimizers.Adam(0.1)
        fresh.iterations = k  # fresh state, at the same step count
        fresh.apply_gradients([(np.ones(16), expected)])
        np.testing.assert_array_equal(w, expected)
        del w
    assert len(opt.get_state()["slots"]) == 0


def test_byte_order_and_dtype_views_are_separate_variables():
    w = np.arange(4.0)
    swapped = w.view(w.dtype.newbyteorder())
    opt = fo.optimizers.SGD(0.1, momentum=0.9)
    opt.apply_gradients([(np.ones(4), w)])
    with pytest.raises(ValueError, match="never"):
        opt.get_state([swapped])
    with pytest.raises(ValueError, match="never"):
        opt.get_state([w.view(np.float32)])


@pytest.mark.parametrize("name", NAMES)
def test_bind_flat_views_share_the_flat_slots(name):
    """A model's variables are views of one flat buffer: _bind_flat gives the
    flat slots, and apply_gradients on the views steps those same slots."""
    flat = np.linspace(-1, 1, 12)
    views = [flat[:8].reshape(2, 4), flat[8:]]
    opt = CLASSES[name](**FULL[name], learning_rate=0.1)
    # a view stepped before binding keeps its state
    opt.apply_gradients([(np.ones(4), views[1])])
    before = opt.get_state([views[1]])["slots"][0]
    slots = opt._bind_flat(flat, views)
    assert len(slots) == fo._core.MAX_SLOTS == 6
    for k, s in enumerate(before):
        if s is not None:
            np.testing.assert_array_equal(slots[k][8:], s)
    opt.apply_gradients([(np.ones((2, 4)), views[0]), (np.ones(4), views[1])])
    for k, s in enumerate(slots[:3]):
        if s is not None:
            np.testing.assert_array_equal(opt.get_state([views[0]])["slots"][0][k], s[:8].reshape(2, 4))
            assert np.shares_memory(opt._slots_for(views[1], fo.optimizers._Txn(opt._state))[k], s)
    assert opt._bind_flat(flat, views)[0] is slots[0] or slots[0] is None  # stable


# -- pickling --------------------------------------------------------------------------

CONFIGS = [
    ("sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True, use_ema=True, ema_overwrite_frequency=3)),
    ("adagrad", dict(learning_rate=0.1, initial_accumulator_value=0.3, weight_decay=0.01)),
    ("rmsprop", dict(learning_rate=0.01, momentum=0.5, centered=True, clipvalue=0.5,
                     gradient_accumulation_steps=2)),
    ("adam", dict(learning_rate=fo.schedules.ExponentialDecay(0.02, 5, 0.9), amsgrad=True,
                  loss_scale_factor=8.0)),
    ("adamw", dict(learning_rate=0.01, weight_decay=0.1, global_clipnorm=1.0)),
]


@pytest.mark.parametrize("name, config", CONFIGS, ids=[n for n, _ in CONFIGS])
def test_pickle_round_trip_continues_bit_for_bit(name, config):
    rng = np.random.default_rng(4)
    base = rng.standard_normal(20)
    variables = [rng.standard_normal((3, 4)).astype(np.float32), base[5:15]]
    opt = CLASSES[name](**config)
    if "weight_decay" in config:
        opt.exclude_from_weight_decay(var_list=[variables[0]])
    grads = [[rng.standard_normal(v.shape).astype(v.dtype) for v in variables] for _ in range(12)]
    for gs in grads[:5]:
        opt.apply_gradients(zip(gs, variables))
    blob = pickle.dumps((opt, variables[0], base))
    opt2, v0, base2 = pickle.loads(blob)
    assert v0 is not variables[0] and opt2._lock is not opt._lock and opt2._step is not opt._step
    assert opt2.get_config() == opt.get_config() or name == "adam"
    assert opt2.iterations == opt.iterations and int(opt2._step[0]) == int(opt._step[0])
    variables2 = [v0, base2[5:15]]
    for gs in grads[5:]:
        opt.apply_gradients(zip(gs, variables))
        opt2.apply_gradients(zip(gs, variables2))
    for a, b in zip(variables, variables2):
        np.testing.assert_array_equal(a, b)
    for sa, sb in zip(opt.get_state(variables)["slots"], opt2.get_state(variables2)["slots"]):
        for a, b in zip(sa, sb):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
    assert opt2.iterations == opt.iterations


def test_pickle_keeps_a_models_flat_slots_shared():
    flat = np.linspace(-1, 1, 10).copy()  # an array that owns its memory, as a model's
    views = [flat[:6].reshape(2, 3), flat[6:]]
    opt = fo.optimizers.Adam(0.1)
    slots = opt._bind_flat(flat, views)
    opt.apply_gradients([(np.ones((2, 3)), views[0]), (np.ones(4), views[1])])
    opt2, flat2, slots2 = pickle.loads(pickle.dumps((opt, flat, slots)))
    views2 = [flat2[:6].reshape(2, 3), flat2[6:]]
    again = opt2._bind_flat(flat2, views2)
    assert again[0] is slots2[0] and again[1] is slots2[1]  # the same arrays, by pickle's memo
    np.testing.assert_array_equal(slots2[0], slots[0])
    opt.apply_gradients([(np.ones((2, 3)), views[0]), (np.ones(4), views[1])])
    opt2.apply_gradients([(np.ones((2, 3)), views2[0]), (np.ones(4), views2[1])])
    np.testing.assert_array_equal(flat, flat2)
    np.testing.assert_array_equal(slots[1], again[1])


def test_pickled_alone_the_state_goes_with_its_arrays():
    w = np.ones(3)
    opt = fo.optimizers.SGD(0.1, momentum=0.9)
    opt.apply_gradients([(np.ones(3), w)])
    opt2 = pickle.loads(pickle.dumps(opt))
    gc.collect()
    assert opt2.iterations == 1 and opt2.get_state()["slots"] == []
    assert opt2.get_config() == opt.get_config()


def test_pickle_attaches_the_state_of_a_view_to_its_unpickled_copy():
    """NumPy unpickles a view as an array of its own: the state made for the view
    comes back on that array."""
    w = np.linspace(-1, 1, 8)[::-1]  # a view (of linspace's own base, reversed)
    assert w.base is not None
    opt = fo.optimizers.RMSprop(0.1, momentum=0.5)
    opt.apply_gradients([(np.ones(8), w)])
    opt2, w2 = pickle.loads(pickle.dumps((opt, w)))
    for _ in range(3):
        opt.apply_gradients([(np.ones(8), w)])
        opt2.apply_gradients([(np.ones(8), w2)])
    np.testing.assert_array_equal(w, w2)


def test_copy_has_its_own_state():
    import copy

    w = np.ones(4)
    opt = fo.optimizers.Adam(0.1)
    opt.apply_gradients([(np.ones(4), w)])
    twin = copy.copy(opt)
    w2 = w.copy()
    assert twin.iterations == 1
    np.testing.assert_array_equal(twin.get_state([w])["slots"][0][0], opt.get_state([w])["slots"][0][0])
    twin.apply_gradients([(np.ones(4), w)])  # steps w with the copy's state
    opt.apply_gradients([(np.ones(4), w2)])  # w2 is new to opt: its state starts fresh
    assert opt.get_state([w])["iterations"] == 2
    assert not np.array_equal(twin.get_state([w])["slots"][0][0], opt.get_state([w])["slots"][0][0])
