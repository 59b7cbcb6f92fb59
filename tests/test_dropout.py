"""The inverted-dropout kernel (csrc/dense_impl.h fo_dropout_forward/backward)
against its twin (fastopt.reference.dropout over a Python xoshiro256**),
bit for bit; its statistics; Keras' noise_shape; the Dropout layer; bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastopt as fo
from fastopt import _core
from fastopt import reference as ref


def seeded(seed: int) -> np.ndarray:
    state = np.zeros(4, np.uint64)
    _core.rng_seed(state, seed)
    return state


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 6), F=st.integers(1, 6), rows=st.booleans(), cols=st.booleans(),
       rate=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2 ** 63))
def test_kernel_matches_twin_bit_for_bit(B, F, rows, cols, rate, dtype, seed):
    x = np.random.default_rng(seed % 2 ** 32).standard_normal((B, F)).astype(dtype)
    shape = (B if rows else 1, F if cols else 1)
    state, twin_state = seeded(seed), seeded(seed)
    out, mask = np.empty_like(x), np.empty(shape, dtype)
    _core.dropout(out, mask, x, rate, state)
    want_out, want_mask = ref.dropout(x, shape, rate, twin_state)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(state, twin_state)
    dout = np.random.default_rng(1).standard_normal((B, F)).astype(dtype)
    dx = np.empty_like(dout)
    _core.dropout_backward(dx, dout, mask)
    np.testing.assert_array_equal(dx, ref.dropout_backward(dout, mask))


def test_rate_zero_draws_nothing_and_rate_one_drops_all():
    x = np.ones((3, 4))
    state = seeded(5)
    before = state.copy()
    out, mask = np.empty_like(x), np.empty_like(x)
    _core.dropout(out, mask, x, 0.0, state)
    np.testing.assert_array_equal(state, before)
    np.testing.assert_array_equal(out, x)
    _core.dropout(out, mask, x, 1.0, state)
    assert (out == 0).all() and (mask == 0).all()


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_keep_fraction_and_mean_are_unbiased(rate):
    x = np.ones((200, 100), np.float32)
    out, mask = np.empty_like(x), np.empty_like(x)
    _core.dropout(out, mask, x, rate, seeded(2))
    n = x.size
    kept = np.count_nonzero(mask) / n
    assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    assert set(np.unique(mask)) == {0.0, np.float32(1 / (1 - rate))}
    assert abs(out.mean() - 1) < 5 * np.sqrt(rate / (1 - rate) / n)


def test_in_place_and_backward_in_place():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5))
    out, mask = np.empty_like(x), np.empty((4, 1))
    _core.dropout(out, mask, x, 0.5, seeded(9))
    y, mask2 = x.copy(), np.empty((4, 1))
    _core.dropout(y, mask2, y, 0.5, seeded(9))
    np.testing.assert_array_equal(y, out)
    d = x.copy()
    _core.dropout_backward(d, d, mask)
    np.testing.assert_array_equal(d, x * mask)


def test_layer_training_only_and_reproducible():
    x = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    layer = fo.layers.Dropout(0.5, seed=42)
    np.testing.assert_array_equal(layer(x), x)  # inference: the input
    a = layer(x, training=True)
    b = layer(x, training=True)
    assert not np.array_equal(a, b)  # a fresh mask per call
    again = fo.layers.Dropout(0.5, seed=42)
    np.testing.assert_array_equal(again(x, training=True), a)
    np.testing.assert_array_equal(again(x, training=True), b)
    assert a.dtype == np.float32
    kept = a != 0
    np.testing.assert_allclose(a[kept], 2 * x[kept])
    rows = fo.layers.Dropout(0.5, noise_shape=(None, 1), seed=1)(x, training=True)
    assert all(((r == 0).all() or (r != 0).all()) for r in rows)
    cfg = fo.layers.Dropout(0.3, noise_shape=(None, 1), seed=7, name="drop").get_config()
    assert cfg == {"rate": 0.3, "noise_shape": (None, 1), "seed": 7, "name": "drop"}
    assert fo.layers.Dropout.from_config(cfg).get_config() == cfg
    assert fo.layers.Dropout(0.5).count_params() == 0
    v = fo.layers.Dropout(0.5, seed=3)(np.ones(10), training=True)
    assert v.shape == (10,)


def test_layer_refuses_bad_arguments():
    with pytest.raises(ValueError, match="rate"):
        fo.layers.Dropout(1.5)
    with pytest.raises(TypeError, match="rate"):
        fo.layers.Dropout("half")
    with pytest.raises(ValueError, match="seed"):
        fo.layers.Dropout(0.5, seed=-1)
    with pytest.raises(ValueError, match="noise_shape"):
        fo.layers.Dropout(0.5, noise_shape=(None, 3))(np.ones((2, 4)), training=True)
    with pytest.raises(ValueError, match="noise_shape"):
        fo.layers.Dropout(0.5, noise_shape=(None, 1, 1))(np.ones((2, 4)), training=True)


def test_kernel_bad_input_names_the_argument_and_changes_nothing():
    x = np.ones((3, 4))
    out, mask = np.full((3, 4), 7.0), np.full((3, 1), 7.0)
    state = seeded(1)
    start = state.copy()
    cases = [
        (lambda: _core.dropout(out, mask, x, 1.5, state), ValueError, "rate"),
        (lambda: _core.dropout(out, mask, x, float("nan"), state), ValueError, "rate"),
        (lambda: _core.dropout(out, mask, x, "0.5", state), TypeError, "rate"),
        (lambda: _core.dropout(out, np.full((2, 1), 7.0), x, 0.5, state), ValueError, "mask"),
        (lambda: _core.dropout(out, mask, x, 0.5, np.zeros(4, np.uint64)), ValueError, "rng_state"),
        (lambda: _core.dropout(out, mask, x, 0.5, state.astype(np.int64)), TypeError, "rng_state"),
        (lambda: _core.dropout(out.astype(np.float32), mask, x, 0.5, state), TypeError, "out"),
        (lambda: _core.dropout(out, out.reshape(-1)[:3].reshape(3, 1), x, 0.5, state), ValueError, "mask"),
        (lambda: _core.dropout(out, mask, x, 0.5, state[:3]), ValueError, "rng_state"),
        (lambda: _core.dropout(out.reshape(-1)[1:5].reshape(1, 4), np.ones((1, 4)), out.reshape(-1)[:4].reshape(1, 4),
                               0.5, state), ValueError, "overlaps"),
        (lambda: _core.dropout_backward(out, x, np.ones((1, 3))), ValueError, "mask"),
    ]
    for call, exc, word in cases:
        with pytest.raises(exc, match=word):
            call()
        assert (out == 7.0).all() and (mask == 7.0).all()
        np.testing.assert_array_equal(state, start)


def test_layers_serialize_and_sequential_folds_them_into_the_network():
    for layer in (fo.layers.Dropout(0.25, seed=3, name="d"), fo.layers.Activation("softmax", name="a")):
        again = fo.layers.deserialize(fo.layers.serialize(layer))
        assert type(again) is type(layer) and again.get_config() == layer.get_config()
    model = fo.Sequential([fo.Dense(4, input_shape=(3,)), fo.layers.Activation("tanh"),
                           fo.layers.Dropout(0.25), fo.Dense(2)])
    assert model.spec[1] == (fo.activations.CODES["tanh"], 0) and model.spec[6] == (0.25, 0.0)
    with pytest.raises(ValueError, match="Dropout cannot be the model's last layer"):
        fo.Sequential([fo.Dense(2, input_shape=(3,)), fo.layers.Dropout(0.5)])
    with pytest.raises(ValueError, match="must follow a Dense"):
        fo.Sequential([fo.layers.Dropout(0.5), fo.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="no activation of its own"):
        fo.Sequential([fo.Dense(2, activation="relu", input_shape=(3,)), fo.layers.Activation("tanh")])
    with pytest.raises(TypeError, match="noise"):
        fo.layers.Dropout(0.5, noize_shape=(None, 1))
