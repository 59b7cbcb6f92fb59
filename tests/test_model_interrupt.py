"""Long C work is interruptible and leaves a consistent state: Ctrl-C (here
_thread.interrupt_main from a timer thread) during a fit, one huge epoch, one
compute_gradients or predict stops at a step or chunk boundary within a
fraction of a second, KeyboardInterrupt reaches the caller, and the weights,
optimizer state, iterations and shuffle state are those of exactly the steps
counted (a fresh model replaying that many steps gets the same bits).  Also:
steps from several threads on one model are serialized by the optimizer's
lock, and seeded results do not depend on the BLAS thread count."""
import _thread
import signal
import sys
import threading
import time

import numpy as np
import pytest

import fastopt as fo


def state(model):
    slots = [s.copy() for s in model._slots if s is not None]
    return [w.copy() for w in model.get_weights()], slots, model.optimizer.iterations, model._rng_state.copy()


def assert_same_state(a, b):
    assert a[2] == b[2]
    np.testing.assert_array_equal(a[3], b[3])
    for u, v in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(u, v)


def small_model(units=(3, 4, 1), dtype="float64"):
    model = fo.Sequential([fo.Dense(units[1], activation="tanh", input_shape=(units[0],)), fo.Dense(units[2])],
                          dtype=dtype, seed=0)
    model.compile(fo.optimizers.Adam(0.001), "mse")
    return model


def interrupted(call, after=0.3, how="interrupt_main"):
    """Run call() with a KeyboardInterrupt arriving `after` seconds in (Python's
    interrupt_main, or a real SIGINT); returns the seconds from the interrupt
    to the exception."""
    fired = []

    def fire():
        fired.append(time.monotonic())
        if how == "interrupt_main":
            _thread.interrupt_main()
        else:
            signal.raise_signal(signal.SIGINT)

    timer = threading.Timer(after, fire)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
    finally:
        timer.cancel()
        timer.join()
    assert fired, "the call ended before the interrupt"
    return time.monotonic() - fired[0]


def replay(model_fn, x, y, steps, batch_size):
    """A fresh model trained for exactly `steps` steps of shuffled epochs."""
    fresh = model_fn()
    per_epoch = -(-len(x) // batch_size)
    epochs, rest = divmod(steps, per_epoch)
    if epochs:
        fresh.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    if rest:
        fresh.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=rest, verbose=0)
    return fresh


@pytest.mark.parametrize("how", ["interrupt_main", "SIGINT"])
def test_interrupted_bulk_fit_stops_at_a_step_with_everything_counted(how):
    if how == "SIGINT" and not hasattr(signal, "raise_signal"):
        pytest.skip("no signal.raise_signal")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = x[:, :1] - x[:, 1:2]
    model = small_model()
    latency = interrupted(lambda: model.fit(x, y, batch_size=8, epochs=10 ** 7, verbose=0), how=how)
    assert latency < 1.0
    steps = model.optimizer.iterations
    assert 0 < steps < 8 * 10 ** 7
    # History holds the epochs completed before the interrupt
    assert model.history.epoch == list(range(steps // 8))
    assert len(model.history.history.get("loss", [])) == steps // 8
    assert_same_state(state(model), state(replay(small_model, x, y, steps, 8)))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # and it trains on


def test_one_huge_epoch_is_interrupted_between_batches():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((10 ** 6, 2)).astype(np.float32)
    y = x[:, :1] * 2
    make = lambda: small_model((2, 64, 1), "float32")  # noqa: E731
    model = make()
    latency = interrupted(lambda: model.fit(x, y, batch_size=4, epochs=1, verbose=0), after=0.2)
    assert latency < 1.0
    steps = model.optimizer.iterations
    assert 0 < steps < 250000
    assert model.history.epoch == []
    assert_same_state(state(model), state(replay(make, x, y, steps, 4)))


@pytest.mark.parametrize("call", ["compute_gradients", "predict", "evaluate", "fit"])
def test_one_huge_batch_is_interrupted_between_row_chunks(call):
    rng = np.random.default_rng(2)
    model = fo.Sequential([fo.Dense(256, activation="tanh", input_shape=(32,)), fo.Dense(256, activation="tanh"),
                           fo.Dense(1)], seed=0)
    model.compile(fo.optimizers.SGD(0.01), "mse")
    n = 20 * model._net.chunk_rows * 4
    x = rng.standard_normal((n, 32)).astype(np.float32)
    y = rng.standard_normal((n, 1)).astype(np.float32)
    before = state(model)
    run = {"compute_gradients": lambda: model.compute_gradients(x, y), "predict": lambda: model.predict(x),
           "evaluate": lambda: model.evaluate(x, y),
           "fit": lambda: model.fit(x, y, batch_size=n, epochs=1, verbose=0)}[call]
    latency = interrupted(run, after=0.15)
    assert latency < 1.0
    assert_same_state(state(model), before)  # the one step was not taken, nothing counted


def test_steps_from_two_threads_are_serialized():
    """The optimizer's lock: each step is applied whole, and counted, one at a time."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 32))
    y = x[:, :1]

    def make():
        model = fo.Sequential([fo.Dense(64, activation="tanh", input_shape=(32,)), fo.Dense(1)], dtype="float64",
                              seed=0)
        model.compile(fo.optimizers.Adam(0.001), "mse")
        return model

    shared, alone = make(), make()
    errors = []

    def work():
        try:
            for _ in range(40):
                shared.train_on_batch(x, y)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for _ in range(80):
        alone.train_on_batch(x, y)
    # every step sees the same x, y: serialized steps in any order give the same trajectory
    assert_same_state(state(shared), state(alone))


@pytest.mark.parametrize("shape", [(32, 300, 1, 5000), (13, 10, 1, 404), (64, 256, 1, 2048)])
def test_seeded_fit_does_not_depend_on_the_blas_thread_count(shape):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    n_in, units, n_out, n = shape
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, n_in)).astype(np.float32)
    y = rng.standard_normal((n, n_out)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads, user_api="blas"):
            model = fo.Sequential([fo.Dense(units, activation="relu", input_shape=(n_in,)), fo.Dense(n_out)], seed=1)
            model.compile(fo.optimizers.Adam(0.001), "mse")
            model.fit(x, y, batch_size=min(n, 1024), epochs=2, verbose=0)
            loss, grads = model.compute_gradients(x, y)
            runs.append((state(model), loss, [g.copy() for g in grads], model.predict(x)))
    assert_same_state(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    for g, h in zip(runs[0][2], runs[1][2]):
        np.testing.assert_array_equal(g, h)
    np.testing.assert_array_equal(runs[0][3], runs[1][3])


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("shape", [(64, 1100, 40), (1100, 64, 40), (300, 300, 300)])
def test_partitioned_products_match_numpy_for_any_thread_count(ta, tb, shape):
    """Products OpenBLAS might thread run in blocks fixed by the shape (along N or M),
    each on one BLAS thread: right, and the same bits whatever the thread count."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastopt import _core
    M, N, K = shape
    rng = np.random.default_rng(5)
    a = rng.standard_normal((K, M) if ta else (M, K))
    b = rng.standard_normal((N, K) if tb else (K, N))
    c0 = rng.standard_normal((M, N))
    want = 1.5 * ((a.T if ta else a) @ (b.T if tb else b)) + 0.5 * c0
    outs = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads, user_api="blas"):
            c = c0.copy()
            _core.gemm(ta, tb, 1.5, a, b, 0.5, c)
            outs.append(c)
    np.testing.assert_allclose(outs[0], want, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_a_fit_outside_the_main_thread_never_takes_the_gil_back():
    """Only the main thread runs signal handlers, so a fit in another thread has
    nothing to poll for: it trains to its last step without the GIL even while
    the main thread holds the GIL all along.  (Its polls used to take the GIL
    back, and waited there for whatever Python the main thread ran: a worker of
    a threaded grid search stalled on the other worker's model building.)"""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((512, 16)).astype(np.float32)
    y = x[:, :1] - x[:, 1:2]
    model = small_model((16, 32, 1), "float32")
    epochs, steps = 400, 400 * 16  # a few hundred ms: many polls' worth (one per 2**20 multiply-adds, 50 ms)
    params0 = model._params.copy()
    errors = []

    def train():
        try:
            model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)  # this thread is never asked to hand the GIL over while it spins
    worker = threading.Thread(target=train)
    try:
        worker.start()
        deadline = time.monotonic() + 10
        while np.array_equal(model._params, params0) and time.monotonic() < deadline:
            time.sleep(1e-4)  # (the GIL is free here) until the worker's C loop has begun
        while model.optimizer.iterations < steps and time.monotonic() < deadline:
            pass  # pure Python: the GIL stays with this thread
        done_while_held = model.optimizer.iterations
    finally:
        sys.setswitchinterval(interval)
        worker.join()
    assert not errors
    assert done_while_held == steps, "the worker's fit waited for the GIL the main thread held"
    assert model.optimizer.iterations == steps
