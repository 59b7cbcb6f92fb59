"""executor= for grid_search and compare: a thread pool, a process pool and a
real Dask LocalCluster give the sequential results bit for bit; the task
runner keeps order and passes errors on; BLAS is held at one thread while a
thread pool trains."""
import concurrent.futures as cf
import sys
import types

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
