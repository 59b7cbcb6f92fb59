"""Bad input to the model API and to the raw kernels: a TypeError/ValueError
naming the argument, and nothing changed - not the weights, not the optimizer
state or iterations, not the shuffle generator."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastopt as fo
from fastopt import _core

def make_model(dtype="float32", seed=0):
    model = fo.Sequential([fo.Dense(5, activation="tanh", input_shape=(4,)), fo.Dense(1)],
                          dtype=dtype, seed=seed)
    model.compile(fo.optimizers.Adam(0.01), "mse", metrics=["mae"])
    return model


def data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = np.sin(x[:, :1]) + 0.1 * rng.standard_normal((n, 1))
    return x, y


@pytest.fixture(params=["float32", "float64"])
def pair(request):
    """Two models in the same state (weights, optimizer slots, iterations, shuffle
    generator): one gets the bad call, the other is the control."""
    x, y = data()
    models = []
    for _ in range(2):
        m = make_model(request.param, seed=3)
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)  # shuffled: the generator has moved
        models.append(m)
    return models


def assert_same_state(model, control):
    for a, b in zip(model.get_weights(), control.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == control.optimizer.iterations
    sa = model.optimizer.get_state(model.trainable_variables)
    sb = control.optimizer.get_state(control.trainable_variables)
    assert sa["iterations"] == sb["iterations"]
    for va, vb in zip(sa["slots"], sb["slots"]):
        for a, b in zip(va, vb):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
    # the shuffle generator too: one more shuffled epoch must agree bit for bit
    x, y = data(seed=1)
    ha = model.fit(x, y, epochs=1, batch_size=7, verbose=0).history
    hb = control.fit(x, y, epochs=1, batch_size=7, verbose=0).history
    assert ha == hb
    for a, b in zip(model.get_weights(), control.get_weights()):
        np.testing.assert_array_equal(a, b)


X, Y = data()
NAN_X = X.copy()
NAN_X[3, 2] = np.nan
INF_Y = Y.copy()
INF_Y[5, 0] = -np.inf

# (call on the model, exception, words the message must hold)
BAD_CALLS = {
    "fit: wrong feature count": (lambda m: m.fit(X[:, :3], Y, verbose=0), ValueError, ["x", "features"]),
    "fit: x/y lengths differ": (lambda m: m.fit(X, Y[:-1], verbose=0), ValueError, ["y", "samples"]),
    "fit: y too wide": (lambda m: m.fit(X, np.hstack([Y, Y]), verbose=0), ValueError, ["y", "shape"]),
    "fit: y 3-d": (lambda m: m.fit(X, Y[:, :, None], verbose=0), ValueError, ["y"]),
    "fit: x 1-d": (lambda m: m.fit(X[:, 0], Y, verbose=0), ValueError, ["x"]),
    "fit: NaN in x": (lambda m: m.fit(NAN_X, Y, verbose=0), ValueError, ["x", "nan"]),
    "fit: inf in y": (lambda m: m.fit(X, INF_Y, verbose=0), ValueError, ["y", "inf"]),
    "fit: NaN in validation x": (lambda m: m.fit(X, Y, validation_data=(NAN_X, Y), verbose=0),
                                 ValueError, ["validation_data", "nan"]),
    "fit: inf in validation y": (lambda m: m.fit(X, Y, validation_data=(X, INF_Y), verbose=0),
                                 ValueError, ["validation_data", "inf"]),
    "fit: validation width": (lambda m: m.fit(X, Y, validation_data=(X[:, :2], Y), verbose=0),
                              ValueError, ["validation_data"]),
    "fit: validation lengths": (lambda m: m.fit(X, Y, validation_data=(X, Y[:4]), verbose=0),
                                ValueError, ["validation_data"]),
    "fit: validation triple": (lambda m: m.fit(X, Y, validation_data=(X, Y, Y), verbose=0),
                               ValueError, ["validation_data"]),
    "fit: strings": (lambda m: m.fit(X.astype(str), Y, verbose=0), TypeError, ["x"]),
    "fit: objects": (lambda m: m.fit(X.astype(object), Y, verbose=0), TypeError, ["x"]),
    "fit: complex y": (lambda m: m.fit(X, Y + 1j, verbose=0), TypeError, ["y"]),
    "fit: None x": (lambda m: m.fit(None, Y, verbose=0), TypeError, ["x"]),
    "fit: batch_size 0": (lambda m: m.fit(X, Y, batch_size=0, verbose=0), ValueError, ["batch_size"]),
    "fit: batch_size -1": (lambda m: m.fit(X, Y, batch_size=-1, verbose=0), ValueError, ["batch_size"]),
    "fit: batch_size 1.5": (lambda m: m.fit(X, Y, batch_size=1.5, verbose=0), TypeError, ["batch_size"]),
    "fit: batch_size True": (lambda m: m.fit(X, Y, batch_size=True, verbose=0), TypeError, ["batch_size"]),
    "fit: epochs -1": (lambda m: m.fit(X, Y, epochs=-1, verbose=0), ValueError, ["epochs"]),
    "fit: epochs 2.0": (lambda m: m.fit(X, Y, epochs=2.0, verbose=0), TypeError, ["epochs"]),
    "fit: initial_epoch -1": (lambda m: m.fit(X, Y, initial_epoch=-1, verbose=0), ValueError, ["initial_epoch"]),
    "fit: validation_split 1": (lambda m: m.fit(X, Y, validation_split=1.0, verbose=0),
                                ValueError, ["validation_split"]),
    "fit: validation_split -0.1": (lambda m: m.fit(X, Y, validation_split=-0.1, verbose=0),
                                   ValueError, ["validation_split"]),
    "fit: no samples": (lambda m: m.fit(X[:0], Y[:0], verbose=0), ValueError, ["x"]),
    "predict: wrong feature count": (lambda m: m.predict(X[:, :3]), ValueError, ["x", "features"]),
    "predict: NaN": (lambda m: m.predict(NAN_X), ValueError, ["x"]),
    "predict: strings": (lambda m: m.predict(X.astype(str)), TypeError, ["x"]),
    "predict: batch_size 0": (lambda m: m.predict(X, batch_size=0), ValueError, ["batch_size"]),
    "evaluate: lengths differ": (lambda m: m.evaluate(X, Y[:-2]), ValueError, ["y"]),
    "evaluate: y too wide": (lambda m: m.evaluate(X, np.hstack([Y, Y])), ValueError, ["y"]),
    "evaluate: inf in y": (lambda m: m.evaluate(X, INF_Y), ValueError, ["y"]),
    "evaluate: complex x": (lambda m: m.evaluate(X + 0j, Y), TypeError, ["x"]),
    "evaluate: batch_size -1": (lambda m: m.evaluate(X, Y, batch_size=-1), ValueError, ["batch_size"]),
    "compute_gradients: features": (lambda m: m.compute_gradients(X[:, :2], Y), ValueError, ["x"]),
    "compute_gradients: lengths": (lambda m: m.compute_gradients(X, Y[:3]), ValueError, ["y"]),
    "compute_gradients: NaN": (lambda m: m.compute_gradients(NAN_X, Y), ValueError, ["x"]),
    "compute_gradients: objects": (lambda m: m.compute_gradients(X, Y.astype(object)), TypeError, ["y"]),
    "compute_gradients: empty": (lambda m: m.compute_gradients(X[:0], Y[:0]), ValueError, ["x"]),
    "set_weights: count": (lambda m: m.set_weights(m.get_weights()[:-1]), ValueError, ["weights"]),
    "set_weights: shape": (lambda m: m.set_weights([w.T for w in m.get_weights()]), ValueError, ["weights"]),
    "set_weights: strings": (lambda m: m.set_weights([w.astype(str) for w in m.get_weights()]),
                             TypeError, ["weights"]),
    "compile: unknown optimizer": (lambda m: m.compile("nadam", "mse"), ValueError, ["nadam", "adam", "sgd"]),
    "compile: unknown loss": (lambda m: m.compile("adam", "hinge"), ValueError, ["hinge", "mean_squared_error"]),
    "compile: unknown metric": (lambda m: m.compile("adam", "mse", metrics=["auc"]),
                                ValueError, ["auc", "accuracy", "mse"]),
    "compile: reduction none": (lambda m: m.compile("adam", fo.losses.MeanSquaredError(reduction=None)),
                                ValueError, ["reduction"]),
    "compile: optimizer type": (lambda m: m.compile(3.0, "mse"), TypeError, ["optimizer"]),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_call_raises_and_changes_nothing(pair, case):
    model, control = pair
    call, exc, words = BAD_CALLS[case]
    opt, loss, metrics = model.optimizer, model.loss, list(model.metrics_names)
    with pytest.raises(exc) as info:
        call(model)
    message = str(info.value).lower()
    for w in words:
        assert w.lower() in message, (case, str(info.value))
    assert model.optimizer is opt and model.loss == loss and model.metrics_names == metrics
    assert_same_state(model, control)


def test_caller_arrays_are_not_written():
    model = make_model()
    x, y = data()
    x0, y0 = x.copy(), y.copy()
    model.fit(x, y, epochs=2, batch_size=8, validation_split=0.2, verbose=0)
    model.predict(x)
    model.evaluate(x, y)
    model.compute_gradients(x, y)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("kind", ["int", "float64", "list", "bool", "big-endian", "strided", "fortran"])
def test_other_numeric_inputs_are_converted(kind):
    """Integer, float64, nested-list, bool, byte-swapped, strided and Fortran-order
    data train a float32 model as their float32 conversion does."""
    rng = np.random.default_rng(0)
    xi = rng.integers(-3, 4, size=(24, 4))
    yi = rng.integers(-2, 3, size=(24, 1))
    if kind == "bool":
        xi, yi = xi > 0, yi > 0
    conv = {"int": lambda a: a, "float64": lambda a: a.astype(np.float64), "list": lambda a: a.tolist(),
            "bool": lambda a: a, "big-endian": lambda a: a.astype(">f8"),
            "strided": lambda a: np.repeat(a.astype(np.float32), 2, axis=1)[:, ::2],
            "fortran": lambda a: np.asfortranarray(a.astype(np.float64))}[kind]
    a, b = make_model(seed=1), make_model(seed=1)
    ha = a.fit(conv(xi), conv(yi), epochs=2, batch_size=8, verbose=0)
    hb = b.fit(xi.astype(np.float32), yi.astype(np.float32), epochs=2, batch_size=8, verbose=0)
    assert ha.history == hb.history
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.predict(conv(xi)), b.predict(xi.astype(np.float32)))
    assert a.evaluate(conv(xi), conv(yi)) == b.evaluate(xi.astype(np.float32), yi.astype(np.float32))


# -- construction ----------------------------------------------------------------------

@pytest.mark.parametrize("make,exc,words", [
    (lambda: fo.Dense(3, activation="softmin"), ValueError, ["softmin", "softmax", "relu", "sigmoid", "tanh", "linear"]),
    (lambda: fo.Dense(3, kernel_initializer="orthogonal"), ValueError,
     ["orthogonal", "glorot_uniform", "he_normal", "zeros"]),
    (lambda: fo.Dense(3, bias_initializer="nope"), ValueError, ["nope", "zeros"]),
    (lambda: fo.Dense(3, kernel_regularizer="l3"), ValueError, ["l3", "l1", "l2"]),
    (lambda: fo.Dense(0), ValueError, ["units"]),
    (lambda: fo.Dense(2.5), TypeError, ["units"]),
    (lambda: fo.Dense(3, input_shape=(2, 2)), ValueError, ["input_shape"]),
    (lambda: fo.Sequential([fo.Dense(1, input_shape=(2,))], dtype="int32"), ValueError, ["dtype", "int32"]),
    (lambda: fo.Sequential([fo.Dense(1, input_shape=(2,))], dtype="float16"), ValueError, ["dtype"]),
    (lambda: fo.Sequential(["dense"]), TypeError, ["dense"]),
    (lambda: fo.regularizers.l2(-1.0), ValueError, ["l2"]),
])
def test_bad_construction(make, exc, words):
    with pytest.raises(exc) as info:
        make()
    message = str(info.value).lower()
    for w in words:
        assert w.lower() in message, str(info.value)


def test_fit_before_compile():
    model = fo.Sequential([fo.Dense(1, input_shape=(4,))])
    w = model.get_weights()
    with pytest.raises(ValueError, match="compile"):
        model.fit(X, Y, verbose=0)
    with pytest.raises(ValueError, match="compile"):
        model.evaluate(X, Y)
    for a, b in zip(w, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- the raw kernels ------------------------------------------------------------------------

def _ro(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _bad_kernel_calls():
    a, b, c = np.ones((3, 4)), np.ones((4, 5)), np.zeros((3, 5))
    sq = np.ones((4, 4))
    buf = np.zeros(40)
    x, k, bias, out = np.ones((5, 3)), np.ones((3, 2)), np.ones(2), np.zeros((5, 2))
    dout, dk, dx, db = np.ones((5, 2)), np.zeros((3, 2)), np.zeros((5, 3)), np.zeros(2)
    spec = ((3, 4, 1), (_core.TANH, _core.LINEAR), (True, True), (0.0, 0.0), (0.0, 0.0))
    n, wn = _core.net_sizes(spec, 5)
    p, g, work, y = np.ones(n), np.zeros(n), np.zeros(wn), np.ones((5, 1))
    rng_state, perm = np.zeros(4, np.uint64), np.arange(5, dtype=np.int64)
    hyper = (0.0, 0.0, 0.0, 0.0, 0.0, False, 0.0, False, 0.9, 0.999, 1e-7, False)
    no_slots = (None, None, None)
    lr = np.array([0.1])

    def te_args(**kw):
        args = dict(params=p, grads=g, slots=no_slots, kind=_core.SGD, hyper=hyper, lr=lr, iteration=0,
                    x=x, y=y, batch=2, spec=spec, perm=perm, rng=rng_state, shuffle=True, work=work)
        args.update(kw)
        return list(args.values())

    def te(**kw):
        args = te_args(**kw)
        return lambda: _core.train_epoch(*args)


    return {
        "gemm: mixed dtypes": (lambda: _core.gemm(False, False, 1.0, a.astype(np.float32), b, 0.0, c), TypeError, "a"),
        "gemm: int c": (lambda: _core.gemm(False, False, 1.0, a, b, 0.0, c.astype(int)), TypeError, "c"),
        "gemm: byte-swapped": (lambda: _core.gemm(False, False, 1.0, a.astype(">f8"), b, 0.0, c), TypeError, "a"),
        "gemm: list": (lambda: _core.gemm(False, False, 1.0, a.tolist(), b, 0.0, c), TypeError, "a"),
        "gemm: strided": (lambda: _core.gemm(False, False, 1.0, np.ones((3, 8))[:, ::2], b, 0.0, c),
                          ValueError, "a"),
        "gemm: F-order": (lambda: _core.gemm(False, False, 1.0, np.asfortranarray(a), b, 0.0, c), ValueError, "a"),
        "gemm: read-only c": (lambda: _core.gemm(False, False, 1.0, a, b, 0.0, _ro(c)), ValueError, "c"),
        "gemm: shapes": (lambda: _core.gemm(False, False, 1.0, a, b.T.copy(), 0.0, c), ValueError, "shape"),
        "gemm: 1-d": (lambda: _core.gemm(False, False, 1.0, np.ones(4), b, 0.0, c), ValueError, "a"),
        "gemm: c is a": (lambda: _core.gemm(False, False, 1.0, sq, np.ones((4, 4)), 1.0, sq), ValueError, "c"),
        "gemm: c overlaps b": (lambda: _core.gemm(False, False, 1.0, np.ones((4, 4)), buf[:16].reshape(4, 4), 0.0,
                                                  buf[8:24].reshape(4, 4)), ValueError, "shares memory"),
        "dense_forward: activation": (lambda: _core.dense_forward(out, x, k, bias, 99), ValueError, "activation"),
        "dense_forward: x dtype": (lambda: _core.dense_forward(out, x.astype(np.float32), k, bias, 0), TypeError, "x"),
        "dense_forward: bias dtype": (lambda: _core.dense_forward(out, x, k, bias.astype(np.float32), 0),
                                      TypeError, "bias"),
        "dense_forward: kernel int": (lambda: _core.dense_forward(out, x, k.astype(int), bias, 0), TypeError, "kernel"),
        "dense_forward: bias size": (lambda: _core.dense_forward(out, x, k, np.ones(3), 0), ValueError, "bias"),
        "dense_forward: out shape": (lambda: _core.dense_forward(np.zeros((5, 3)), x, k, bias, 0), ValueError, "out"),
        "dense_forward: x width": (lambda: _core.dense_forward(out, np.ones((5, 4)), k, bias, 0), ValueError, "x"),
        "dense_forward: read-only out": (lambda: _core.dense_forward(_ro(out), x, k, bias, 0), ValueError, "out"),
        "dense_forward: strided x": (lambda: _core.dense_forward(out, np.ones((5, 6))[:, ::2], k, bias, 0),
                                     ValueError, "x"),
        "dense_forward: out is x": (lambda: _core.dense_forward(sq, sq, np.ones((4, 4)), None, 0),
                                    ValueError, "shares memory"),
        "dense_forward: out overlaps x": (lambda: _core.dense_forward(buf[:10].reshape(5, 2), buf[:15].reshape(5, 3),
                                                                      k, bias, 0), ValueError, "shares memory"),
        "dense_forward: out is kernel": (lambda: _core.dense_forward(sq, np.ones((4, 4)), sq, None, 0),
                                         ValueError, "shares memory"),
        "dense_backward: dout is out": (lambda: _core.dense_backward(dx, dk, db, out, x, k, out, 1),
                                        ValueError, "shares memory"),
        "dense_backward: dx is x": (lambda: _core.dense_backward(x, dk, db, dout.copy(), x, k, out, 1),
                                    ValueError, "shares memory"),
        "dense_backward: dkernel is kernel": (lambda: _core.dense_backward(dx, k, db, dout.copy(), x, k, out, 1),
                                              ValueError, "shares memory"),
        "dense_backward: dbias in dx": (lambda: _core.dense_backward(dx, dk, dx.reshape(-1)[:2], dout.copy(), x, k,
                                                                     out, 1), ValueError, "shares memory"),
        "dense_backward: dkernel shape": (lambda: _core.dense_backward(dx, np.zeros((2, 3)), db, dout.copy(), x, k,
                                                                       out, 1), ValueError, "dkernel"),
        "dense_backward: read-only dout": (lambda: _core.dense_backward(dx, dk, db, _ro(dout), x, k, out, 1),
                                           ValueError, "dout"),
        "dense_backward: dx dtype": (lambda: _core.dense_backward(dx.astype(np.float32), dk, db, dout.copy(), x, k,
                                                                  out, 1), TypeError, "dx"),
        "mse: sizes": (lambda: _core.mse(np.ones(10), np.zeros(9)), ValueError, "y"),
        "mse: dtypes": (lambda: _core.mse(np.ones(10), np.zeros(10, np.float32)), TypeError, "y"),
        "mse: dpred is pred": (lambda: (lambda q: _core.mse(q, np.zeros(10), q, 1.0))(np.ones(10)),
                               ValueError, "shares memory"),
        "mse: read-only dpred": (lambda: _core.mse(np.ones(10), np.zeros(10), _ro(np.zeros(10)), 1.0),
                                 ValueError, "dpred"),
        "net_forward: out in work": (lambda: _core.net_forward(work[:5].reshape(5, 1), x, p, spec, work),
                                     ValueError, "shares memory"),
        "net_forward: out in params": (lambda: _core.net_forward(p[:5].reshape(5, 1), x, p, spec, work),
                                       ValueError, "shares memory"),
        "net_forward: params size": (lambda: _core.net_forward(np.zeros((5, 1)), x, p[:-1], spec, work),
                                     ValueError, "params"),
        "net_forward: small work": (lambda: _core.net_forward(np.zeros((5, 1)), x, p, spec, work[:3]),
                                    ValueError, "work"),
        "net_forward: bad activation": (lambda: _core.net_forward(np.zeros((5, 1)), x, p, (spec[0], (99, 0)) + spec[2:],
                                                                  work), ValueError, "activation"),
        "net_forward: zero units": (lambda: _core.net_forward(np.zeros((5, 1)), x, p, ((3, 0, 1),) + spec[1:], work),
                                    ValueError, "units"),
        "net_forward: negative l2": (lambda: _core.net_forward(np.zeros((5, 1)), x, p, spec[:4] + ((0.0, -1.0),),
                                                               work), ValueError, "regularization"),
        "net_gradients: grads is params": (lambda: _core.net_gradients(p, x, y, p, spec, work),
                                           ValueError, "shares memory"),
        "net_gradients: read-only grads": (lambda: _core.net_gradients(_ro(g), x, y, p, spec, work),
                                           ValueError, "grads"),
        "net_gradients: y rows": (lambda: _core.net_gradients(g, x, y[:4], p, spec, work), ValueError, "y"),
        "net_gradients: y dtype": (lambda: _core.net_gradients(g, x, y.astype(np.float32), p, spec, work),
                                   TypeError, "y"),
        "net_gradients: no rows": (lambda: _core.net_gradients(g, x[:0], y[:0], p, spec, work), ValueError, "x"),
        "train_epoch: read-only params": (te(params=_ro(p)), ValueError, "params"),
        "train_epoch: grads is params": (te(grads=p), ValueError, "shares memory"),
        "train_epoch: x in params": (te(x=p[:15].reshape(5, 3)), ValueError, "shares memory"),
        "train_epoch: y in grads": (te(y=g[:5].reshape(5, 1)), ValueError, "shares memory"),
        "train_epoch: x in work": (te(x=work[:15].reshape(5, 3)), ValueError, "shares memory"),
        "train_epoch: one slot twice": (te(kind=_core.ADAM, slots=(work[:n], work[:n], None)), ValueError,
                                        "shares memory"),
        "train_epoch: missing slot": (te(kind=_core.ADAM), TypeError, "slots[0]"),
        "train_epoch: slot dtype": (te(kind=_core.ADAM, slots=(np.zeros(n, np.float32), np.zeros(n), None)),
                                    TypeError, "slots[0]"),
        "train_epoch: batch 0": (te(batch=0), ValueError, "batch_size"),
        "train_epoch: NaN lr": (te(lr=np.array([np.nan])), ValueError, "lr"),
        "train_epoch: lr count": (te(lr=np.array([0.1, 0.1])), ValueError, "lr"),
        "train_epoch: kind": (te(kind=9), ValueError, "kind"),
        "train_epoch: perm dtype": (te(perm=perm.astype(np.int32)), TypeError, "perm"),
        "train_epoch: rng size": (te(rng=np.zeros(3, np.uint64)), ValueError, "rng_state"),
        "train_epoch: small work": (te(batch=5, work=work[:10]), ValueError, "work"),
        "train_epoch: epochs 0": (lambda: _core.train_epoch(*te_args(), 0, np.zeros((1, 4))),
                                  ValueError, "epochs"),
        "train_epoch: 2 epochs, no stats": (lambda: _core.train_epoch(*te_args(), 2), ValueError,
                                            "stats"),
        "train_epoch: stats shape": (lambda: _core.train_epoch(*te_args(), 2, np.zeros((3, 4))),
                                     ValueError, "stats"),
        "train_epoch: stats dtype": (lambda: _core.train_epoch(*te_args(), 1, np.zeros((1, 4), np.float32)),
                                     TypeError, "stats"),
        "train_epoch: lr per step, 2 epochs": (
            lambda: _core.train_epoch(*te_args(lr=np.full(3, 0.1)), 2, np.zeros((2, 4))),
            ValueError, "lr"),
        "all_finite: int": (lambda: _core.all_finite(np.ones(3, int)), TypeError, "a"),
        "all_finite: strided": (lambda: _core.all_finite(np.ones(6)[::2]), ValueError, "a"),
        "all_finite: list": (lambda: _core.all_finite([1.0]), TypeError, "a"),
    }


BAD_KERNEL_CALLS = _bad_kernel_calls()


@pytest.mark.parametrize("case", list(BAD_KERNEL_CALLS))
def test_raw_kernels_refuse_bad_arrays(case):
    call, exc, word = BAD_KERNEL_CALLS[case]
    with pytest.raises(exc) as info:
        call()
    assert word.lower() in str(info.value).lower(), str(info.value)


def test_raw_kernels_write_nothing_on_refusal():
    spec = ((3, 4, 1), (_core.TANH, _core.LINEAR), (True, True), (0.0, 0.0), (0.0, 0.0))
    n, wn = _core.net_sizes(spec, 5)
    p = np.random.default_rng(0).standard_normal(n)
    g = np.full(n, 7.0)
    slots = (np.full(n, 1.0), np.full(n, 2.0), None)
    rng_state = np.arange(4, dtype=np.uint64)
    saved = [p.copy(), g.copy(), slots[0].copy(), slots[1].copy(), rng_state.copy()]
    hyper = (0.0, 0.0, 0.0, 0.0, 0.0, False, 0.0, False, 0.9, 0.999, 1e-7, False)
    x, y = np.ones((5, 3)), np.ones((5, 1))
    with pytest.raises(ValueError):  # the lr is checked last, after every array
        _core.train_epoch(p, g, slots, _core.ADAM, hyper, np.array([-1.0]), 0, x, y, 2, spec,
                          np.arange(5, dtype=np.int64), rng_state, True, np.zeros(wn))
    for a, b in zip([p, g, slots[0], slots[1], rng_state], saved):
        np.testing.assert_array_equal(a, b)


def _run_isolated(code):
    """Run code in a fresh interpreter (a crash must not take pytest down)."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(fo.__file__))
    env["PYTHONPATH"] = os.path.dirname(here) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=60)


def test_raw_network_with_overflowing_sizes_is_refused():
    r = _run_isolated("""
        import numpy as np
        import fastopt
        from fastopt import _core
        spec = ((1, 2**62, 1), (0, 0), (False, False), (0.0, 0.0), (0.0, 0.0))
        try:
            _core.net_forward(np.zeros((1, 1)), np.ones((1, 1)), np.zeros(3), spec, np.zeros(100))
        except (ValueError, OverflowError, MemoryError) as e:
            print("refused:", e)
    """)
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
    assert "refused" in r.stdout
