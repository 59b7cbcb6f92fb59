"""executor= for grid_search and compare: a thread pool, a process pool and a
real Dask LocalCluster give the sequential results bit for bit; the task
runner keeps order and passes errors on; BLAS is held at one thread while a
thread pool trains."""
import concurrent.futures as cf
import os
import signal
import sys
import threading
import time
import types
import warnings

import numpy as np
import pytest

import fastopt as fo
from fastopt import _executors
from fastopt.compare import six_optimizers

from parallel_builds import build_line, build_net, build_small, data

GRID = {"learning_rate": [0.003, 0.03], "units": [2, 5], "batch_size": [16, 50]}


def search(executor):
    x, y = data()
    return fo.model_selection.grid_search(build_net, GRID, x, y, epochs=4, executor=executor)


def comparison(executor):
    x, y = data()
    return fo.compare(build_small, {"adam": ("adam", 0.01), "sgd": {"optimizer": "sgd", "batch_size": 7},
                                    "rms": fo.optimizers.RMSprop(0.003)},
                      x, y, epochs=5, batch_size=16, seeds=(0, 3), validation_split=0.2,
                      record_path_every=2, executor=executor)


def assert_same_comparison(a, b):
    assert [(r.name, r.seed) for r in a.runs] == [(r.name, r.seed) for r in b.runs]
    for r, s in zip(a.runs, b.runs):
        assert r.history == s.history and r.initial == s.initial
        assert all(np.array_equal(u, v) for u, v in zip(r.weights, s.weights))
        assert np.array_equal(r.path, s.path) and np.array_equal(r.path_epochs, s.path_epochs)


@pytest.fixture(scope="module")
def sequential():
    return search(None), comparison(None)


@pytest.fixture(scope="module")
def process_pool():
    with cf.ProcessPoolExecutor(2) as pool:
        yield pool


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_grid_search_is_the_same_bit_for_bit(sequential, process_pool, executor):
    result = search(process_pool if executor == "processes" else executor)
    assert result.results == sequential[0].results  # params, score and every log value, exactly
    assert len(result.results) == 8


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_compare_is_the_same_bit_for_bit(sequential, process_pool, executor):
    assert_same_comparison(comparison(process_pool if executor == "processes" else executor), sequential[1])


def test_a_dask_local_cluster_gives_the_sequential_results(sequential):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        scattered = []
        scatter = client.scatter

        def spy(values, **kwargs):
            scattered.append([np.shape(v) for v in values])
            return scatter(values, **kwargs)

        client.scatter = spy
        executor = client.get_executor()
        assert search(executor).results == sequential[0].results
        # the same data again at once: new keys, no race with the release of the last call's
        assert search(executor).results == sequential[0].results
        assert_same_comparison(comparison(executor), sequential[1])
    # each call sent its data to the workers once (training and validation x and y), not per task
    assert scattered == [[(96, 3), (96,), (24, 3), (24,)]] * 3


def test_grid_search_logs_are_fits_last_epoch_with_validation_data():
    """Each setting trains without validation (all epochs in one C call) and is
    evaluated once: the logs are exactly fit(validation_data=...)'s last epoch."""
    x, y = data()
    xv, yv = data(40, seed=1)
    result = fo.model_selection.grid_search(build_net, {"learning_rate": [0.001, 0.05]}, x, y, epochs=7,
                                            batch_size=16, validation_data=(xv, yv))
    for r in result.results:
        history = build_net(**r["params"]).fit(x, y, epochs=7, batch_size=16, verbose=0, validation_data=(xv, yv))
        assert r["logs"] == {k: v[-1] for k, v in history.history.items()}
        assert r["score"] == history.history["val_loss"][-1]


def test_compare_of_the_six_optimizers_on_threads(sequential):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 1))
    y = 0.5 * x + 3
    a = fo.compare(build_line, six_optimizers(), x, y, epochs=20, batch_size="full")
    b = fo.compare(build_line, six_optimizers(), x, y, epochs=20, batch_size="full", executor="threads")
    assert_same_comparison(a, b)


# -- the task runner -------------------------------------------------------------------------------

def _square_plus(task, offset):
    if task == "boom":
        raise KeyError("boom")
    return task * task + offset


@pytest.mark.parametrize("executor", [None, "threads", "pool"])
def test_map_tasks_keeps_order_and_passes_errors_on(executor):
    with cf.ThreadPoolExecutor(3) as pool:
        ex = pool if executor == "pool" else executor
        assert _executors.map_tasks(_square_plus, range(20), (1,), ex) == [t * t + 1 for t in range(20)]
        assert _executors.map_tasks(_square_plus, [], (1,), ex) == []
        with pytest.raises(KeyError, match="boom"):
            _executors.map_tasks(_square_plus, [1, "boom", 3], (0,), ex)


@pytest.mark.parametrize("executor, error", [("processes", ValueError), (2, TypeError), (object(), TypeError)])
def test_unknown_executors_are_refused_before_any_training(executor, error):
    calls = []

    def build(**params):
        calls.append(params)
        return build_net(**params)

    x, y = data()
    with pytest.raises(error, match="executor must be None, 'threads' or a concurrent.futures.Executor"):
        fo.model_selection.grid_search(build, {"learning_rate": [0.1]}, x, y, executor=executor)
    assert calls == []


def _blas_thread_counts():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_blas_is_held_at_one_thread_while_a_thread_pool_trains():
    before = _blas_thread_counts()
    seen = []

    def build(seed):
        seen.append(_blas_thread_counts())
        return build_line(seed)

    x = np.linspace(-1, 1, 20)
    fo.compare(build, {"a": "sgd", "b": "adam"}, x, 2 * x, epochs=2, batch_size=5, executor="threads")
    assert seen[0] == before  # the initial weights are built before the pool starts
    assert seen[1:] and all(counts and set(counts) == {1} for counts in seen[1:])
    assert _blas_thread_counts() == before


def test_blas_threads_without_threadpoolctl_uses_openblas_itself(monkeypatch):
    lib = _executors._openblas()
    if lib is None:
        pytest.skip("fastopt is built without scipy-openblas32")
    old = lib.scipy_openblas_get_num_threads()
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    with _executors.blas_threads(1):
        assert lib.scipy_openblas_get_num_threads() == 1
    assert lib.scipy_openblas_get_num_threads() == old


def _unaligned(a):
    """A copy of ``a`` in a buffer one byte off alignment, as arrays unpickled from
    a byte stream (a Dask worker's data) can be."""
    a = np.ascontiguousarray(a)
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unaligned_data_and_weights_train_as_aligned_ones(dtype):
    x, y = data()
    x, y = x.astype(dtype), y.astype(dtype)
    runs = []
    for prepare in (np.ascontiguousarray, _unaligned):
        model = build_small(0)
        model.set_weights([prepare(w) for w in build_small(1).get_weights()])
        model.compile(optimizer="adam", loss="mse")
        history = model.fit(prepare(x), prepare(y), epochs=3, batch_size=16, verbose=0,
                            validation_data=(prepare(x[:10]), prepare(y[:10])))
        runs.append((history.history, model.predict(prepare(x)), model.evaluate(prepare(x), prepare(y))))
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1]) and runs[0][2] == runs[1][2]


def test_blas_threads_keeps_threadpoolctls_scan_until_more_modules_are_imported(monkeypatch):
    """Scanning the loaded libraries costs milliseconds: it is done once, and
    again after an import (which may have loaded another BLAS)."""
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(_executors, "_controller", (None, None))
    with _executors.blas_threads(1):
        assert set(_blas_thread_counts()) == {1}
    first = _executors._controller[1]
    with _executors.blas_threads(1):
        pass
    assert _executors._controller[1] is first
    monkeypatch.setitem(sys.modules, "fastopt_test_new_module", types.ModuleType("fastopt_test_new_module"))
    with _executors.blas_threads(1):
        pass
    assert _executors._controller[1] is not first


# -- the kept thread pool --------------------------------------------------------------------------

def _where(task):
    return threading.current_thread().name


def _fails_in_order(task, started, done):
    started.append(task)
    if task == 1:
        time.sleep(0.05)  # fails after task 2 has failed
        raise KeyError("task 1")
    if task == 2:
        raise ValueError("task 2")
    time.sleep(0.01)
    done.append(task)
    return task


def test_the_thread_pool_is_kept_across_calls_and_failures():
    first = _executors.map_tasks(_where, range(6), (), "threads")
    pool = _executors._pool[1]
    assert all(name.startswith("fastopt") for name in first)  # on the pool's threads, not the caller's
    with pytest.raises(KeyError, match="boom"):
        _executors.map_tasks(_square_plus, [1, "boom", 3], (0,), "threads")
    again = _executors.map_tasks(_where, range(6), (), "threads")
    assert _executors._pool[1] is pool  # the same pool, its workers alive after a task raised
    assert set(again) <= {t.name for t in threading.enumerate()}
    assert _executors.map_tasks(_square_plus, range(9), (2,), "threads") == [t * t + 2 for t in range(9)]


def test_the_first_failed_task_in_order_propagates_and_no_task_starts_after_a_failure():
    started, done = [], []
    with pytest.raises(KeyError, match="task 1"):
        _executors.map_tasks(_fails_in_order, range(40), (started, done), "threads")
    # task 2 failed at once: besides the tasks running then, none started after it
    assert len(started) <= 2 + _executors.usable_cpus()
    assert sorted(done) == sorted(t for t in started if t not in (1, 2))  # the running ones finished


def test_the_thread_pool_is_made_again_when_the_usable_cpus_change(monkeypatch):
    _executors.map_tasks(_where, range(2), (), "threads")
    pool = _executors._pool[1]
    monkeypatch.setattr(_executors, "usable_cpus", lambda: 3)
    assert _executors.map_tasks(_square_plus, range(7), (0,), "threads") == [t * t for t in range(7)]
    assert _executors._pool[1] is not pool and _executors._pool[1]._max_workers == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_gets_a_thread_pool_of_its_own():
    _executors.map_tasks(_where, range(2), (), "threads")  # the parent's pool exists
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
        pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads
        code = 1
        try:
            out = _executors.map_tasks(_square_plus, range(5), (1,), "threads")
            code = 0 if out == [t * t + 1 for t in range(5)] else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    try:
        assert os.read(read, 1) == bytes([0])
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def _nested(task):
    inner = _executors.map_tasks(_where, range(task), (), "threads")
    return _executors.map_tasks(_square_plus, range(task), (0,), "threads"), threading.current_thread().name, inner


def test_a_threaded_map_inside_a_task_runs_in_the_tasks_thread():
    """(The pool's workers are all busy with the outer tasks: waiting for them would deadlock.)"""
    out = _executors.map_tasks(_nested, [3, 4, 5, 6], (), "threads")
    assert [r for r, _, _ in out] == [[t * t for t in range(k)] for k in (3, 4, 5, 6)]
    assert all(inner == [name] * len(inner) for _, name, inner in out)


def _sleepy(task, started, done):
    started.append(task)
    time.sleep(0.1)
    done.append(task)
    return task


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="no signal.pthread_kill")
def test_ctrl_c_while_waiting_stops_the_tasks_not_started_and_waits_for_the_running_ones():
    """A real SIGINT to the main thread (interrupt_main only flags it: a thread
    blocked on a lock sees it when the lock is released)."""
    started, done = [], []
    timer = threading.Timer(0.15, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _executors.map_tasks(_sleepy, range(50), (started, done), "threads")
        assert len(started) < 50
        assert sorted(done) == sorted(started)  # returned only once the running tasks were done
    finally:
        timer.cancel()
        timer.join()
    assert _executors.map_tasks(_square_plus, range(4), (0,), "threads") == [0, 1, 4, 9]
