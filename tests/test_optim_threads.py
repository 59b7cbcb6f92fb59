"""Threads and interrupts.

Steps on one optimizer are serialized by its lock (``opt._lock``), the
first-step state is created under it, and a step is counted in the same C call
that applies it.  A step is all-or-nothing over all of its variables: an
interrupt (Ctrl-C) arrives before it (nothing changed) or after it (applied and
counted), never in between, so weights, state and ``iterations`` always agree
with a replay of ``iterations`` steps."""
import signal
import threading
import time

import numpy as np
import pytest

import fastopt as fo
from optim_helpers import CLASSES, FULL, NAMES, fast_path


def run_threads(n, target):
    errors = []
    barrier = threading.Barrier(n)

    def body(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("size", [10, 50_000])  # the step keeps the GIL / releases it
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_four_threads_on_the_same_arrays_lose_no_step(name, size, fast):
    """200 steps from 4 threads on the same arrays equal 200 sequential steps
    (the same gradient every step, so the order does not matter)."""
    rng = np.random.default_rng(size)
    w0 = [rng.standard_normal(size).astype(np.float32), rng.standard_normal(7)]
    grads = [rng.standard_normal(size).astype(np.float32), rng.standard_normal(7)]
    shared = [w.copy() for w in w0]
    opt = CLASSES[name](**FULL[name], learning_rate=0.01)

    def steps(i):
        for _ in range(50):
            opt.apply_gradients(zip(grads, shared))

    with fast_path(fast):
        run_threads(4, steps)
    sequential = [w.copy() for w in w0]
    ref = CLASSES[name](**FULL[name], learning_rate=0.01)
    for _ in range(200):
        ref.apply_gradients(zip(grads, sequential))
    assert opt.iterations == ref.iterations == 200
    for a, b in zip(shared, sequential):
        np.testing.assert_array_equal(a, b)
    for sa, sb in zip(opt.get_state(shared)["slots"], ref.get_state(sequential)["slots"]):
        for a, b in zip(sa, sb):
            if a is not None:
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_first_step_state_is_made_once(name):
    """Eight threads take the first step of a fresh optimizer at once: one state
    is made (under the lock) and every step counts."""
    for trial in range(5):
        w = np.linspace(-1, 1, 64)
        expected = w.copy()
        opt = CLASSES[name](**FULL[name], learning_rate=0.01)
        run_threads(8, lambda i: opt.apply_gradients([(np.ones(64), w)]))
        ref = CLASSES[name](**FULL[name], learning_rate=0.01)
        for _ in range(8):
            ref.apply_gradients([(np.ones(64), expected)])
        assert opt.iterations == 8
        np.testing.assert_array_equal(w, expected)
        assert len(opt.get_state()["slots"]) == 1


def test_different_optimizers_step_in_parallel():
    """The lock is per optimizer: two optimizers on their own arrays do not wait
    for each other (both hold their lock at once)."""
    a, b = fo.optimizers.SGD(0.1), fo.optimizers.SGD(0.1)
    entered = threading.Barrier(2, timeout=10)

    def hold(opt):
        with opt._lock:  # as a long C step would
            entered.wait()  # both are inside at the same time, or this times out

    run_threads(2, lambda i: hold([a, b][i]))


def replay(name, cfg, w0, grads, count):
    ws = [w.copy() for w in w0]
    opt = CLASSES[name](**cfg)
    for _ in range(count):
        opt.apply_gradients(zip(grads, ws))
    return opt, ws


@pytest.mark.parametrize("fast", [True, False])
def test_ctrl_c_leaves_weights_state_and_iterations_agreeing(fast):
    """SIGINT at random moments of a loop of two-variable steps: after the
    KeyboardInterrupt, the weights and state are exactly those of a replay of
    ``iterations`` steps (no step half applied, none applied and not counted)."""
    name, cfg = "adam", dict(learning_rate=1e-3, amsgrad=True)
    rng = np.random.default_rng(7)
    w0 = [rng.standard_normal(400_000).astype(np.float32), rng.standard_normal(300_000)]
    grads = [rng.standard_normal(400_000).astype(np.float32), rng.standard_normal(300_000)]
    main = threading.main_thread().ident
    counts = []
    for trial, delay in enumerate([0.0005, 0.002, 0.005, 0.011, 0.017]):
        ws = [w.copy() for w in w0]
        opt = CLASSES[name](**cfg)
        for _ in range(2):  # the first steps touch fresh memory: slow; interrupt later ones
            opt.apply_gradients(zip(grads, ws))
        timer = threading.Timer(delay, signal.pthread_kill, args=(main, signal.SIGINT))
        with fast_path(fast), pytest.raises(KeyboardInterrupt):
            timer.start()
            try:
                for _ in range(100_000):
                    opt.apply_gradients(zip(grads, ws))
            finally:
                timer.join()
        done = opt.iterations
        counts.append(done)
        ref, expected = replay(name, cfg, w0, grads, done)
        for a, b in zip(ws, expected):
            np.testing.assert_array_equal(a, b)
        for sa, sb in zip(opt.get_state(ws)["slots"], ref.get_state(expected)["slots"]):
            for a, b in zip(sa, sb):
                np.testing.assert_array_equal(a, b)
    assert max(counts) > 2  # interrupted within the loop, not before it


def test_interrupt_in_a_schedule_changes_nothing():
    """A KeyboardInterrupt raised while the learning rate is evaluated (Python
    code, under the optimizer's lock) leaves everything as it was."""
    raised = []

    def schedule(step):
        if step == 3 and not raised:
            raised.append(step)
            raise KeyboardInterrupt
        return 0.1

    w = np.ones(10)
    opt = fo.optimizers.Adam(learning_rate=schedule)
    for _ in range(3):
        opt.apply_gradients([(np.ones(10), w)])
    before = (w.copy(), opt.get_state([w]), opt.iterations)
    with pytest.raises(KeyboardInterrupt):
        opt.apply_gradients([(np.ones(10), w)])
    np.testing.assert_array_equal(w, before[0])
    assert opt.iterations == before[2] == 3
    np.testing.assert_array_equal(opt.get_state([w])["slots"][0][0], before[1]["slots"][0][0])
    assert not opt._lock.locked()
    opt.apply_gradients([(np.ones(10), w)])  # the same step again, now without interrupt
    assert opt.iterations == 4


def test_lock_is_released_after_every_refusal():
    opt = fo.optimizers.SGD(0.1)
    w = np.zeros(3)
    opt.apply_gradients([(np.ones(3), w)])
    for bad in ([(np.ones(2), w)], [(np.ones(3, int), w)], [(np.ones(3), w), (np.ones(3), w)]):
        with pytest.raises((TypeError, ValueError)):
            opt.apply_gradients(bad)
        assert not opt._lock.locked()


def test_waiting_for_the_lock_is_interruptible():
    """A thread blocked on another thread's step can be interrupted: nothing is
    stepped by it."""
    opt = fo.optimizers.SGD(0.1)
    w = np.zeros(3)
    opt.apply_gradients([(np.ones(3), w)])
    main = threading.main_thread().ident
    opt._lock.acquire()  # another step in progress
    try:
        timer = threading.Timer(0.05, signal.pthread_kill, args=(main, signal.SIGINT))
        timer.start()
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            opt.apply_gradients([(np.ones(3), w)])
        timer.join()
        assert time.perf_counter() - t0 < 5
    finally:
        opt._lock.release()
    assert opt.iterations == 1
    np.testing.assert_array_equal(w, np.full(3, -0.1))
