"""Where many trainings run: one after another, on a thread pool, or on any
``concurrent.futures.Executor`` (a process pool, a Dask cluster).

One training is one task: a picklable task object (the build function by
reference, the settings, the initial weights) plus the shared data.  Every
task is a pure function of its inputs, so the results are the same bit for
bit wherever it runs:

* ``None``: in this thread, in order;
* ``"threads"``: a kept pool of one worker per usable CPU, each taking the
  next task in order.  ``fit`` runs its epochs in C without the GIL (and,
  outside the main thread, never takes it back to look for signals, which
  only the main thread handles), so the trainings really run at once.  While
  they run, BLAS is held at one thread (through threadpoolctl if installed,
  else scipy-openblas32's own ``set_num_threads``), so the workers do not
  each start a BLAS thread per core and fight over the cores.  The pool is
  made on first use and kept (starting and joining threads cost as much as a
  few hundred microseconds of a short search); it is made again in a forked
  child or when the usable CPUs change.  A task that itself asks for
  ``"threads"`` (a search inside a task) runs its tasks in its own thread:
  the pool's workers are busy already;
* an executor: one ``submit`` per task.  A ``ProcessPoolExecutor`` pickles
  each task with its data; a Dask ``distributed.Client(...).get_executor()``
  gets the data scattered to the workers once (``Client.scatter``), and the
  tasks refer to it.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import sys
import threading
from typing import Any, Callable, Iterator, Sequence, Union

__all__ = ["Executor", "check_executor", "map_tasks", "blas_threads", "usable_cpus"]

Executor = Union[None, str, cf.Executor]


def check_executor(executor: Any) -> None:
    """Refuse anything but None, ``"threads"`` and a ``concurrent.futures.Executor``."""
    if executor is None or isinstance(executor, cf.Executor):
        return
    if isinstance(executor, str):
        if executor != "threads":
            raise ValueError(f"executor must be None, 'threads' or a concurrent.futures.Executor, got {executor!r}")
        return
    raise TypeError("executor must be None, 'threads' or a concurrent.futures.Executor "
                    f"(a ProcessPoolExecutor, a Dask Client's get_executor()), got {type(executor).__name__}")


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Hold the BLAS libraries of this process at ``n`` threads inside the block.

    Through threadpoolctl when installed (every BLAS it finds: NumPy's and the
    scipy-openblas32 fastopt links), else through scipy-openblas32's
    ``scipy_openblas_set_num_threads``; without either, nothing is changed.
    """
    controller = _threadpool_controller()
    if controller is not None:
        blas = [c for c in controller.lib_controllers if c.user_api == "blas"]
        # each library's own get/set_num_threads: threadpoolctl's limit() first
        # reads every library's full info (versions, architectures), tens of
        # microseconds at the start and end of each threaded search
        old = [c.get_num_threads() for c in blas]
        changed = [(c, k) for c, k in zip(blas, old) if k != n]
        try:
            for c, _ in changed:
                c.set_num_threads(n)
            yield
        finally:
            for c, k in changed:
                c.set_num_threads(k)
        return
    lib = _openblas()
    if lib is None:
        yield
        return
    old = lib.scipy_openblas_get_num_threads()
    lib.scipy_openblas_set_num_threads(n)
    try:
        yield
    finally:
        lib.scipy_openblas_set_num_threads(old)


_controller: tuple = (None, None)  # (len(sys.modules) when made, threadpoolctl.ThreadpoolController)


def _threadpool_controller():
    """threadpoolctl's view of the thread pools of this process (None without
    threadpoolctl).  Making one scans every loaded library (milliseconds, as
    long as a short grid search takes), so it is kept, and made again only once
    more modules have been imported (one may have brought another BLAS)."""
    global _controller
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    modules, controller = _controller
    if controller is None or modules != len(sys.modules):
        controller = ThreadpoolController()
        _controller = (len(sys.modules), controller)
    return controller


def _openblas():
    """scipy-openblas32's library (ctypes), or None."""
    try:
        import scipy_openblas32 as ob
    except ImportError:
        return None
    lib = getattr(ob, "dll", None)
    if lib is None or not hasattr(lib, "scipy_openblas_set_num_threads"):
        return None
    return lib


def _scatter(executor: cf.Executor, shared: Sequence) -> list:
    """``shared`` with each array replaced by a Dask future of it when
    ``executor`` is a Dask ``ClientExecutor`` (the data go to the workers once,
    and every task refers to them); otherwise unchanged."""
    client = getattr(executor, "_client", None)  # distributed.cfexecutor.ClientExecutor
    if client is None or not hasattr(client, "scatter"):
        return list(shared)
    present = [i for i, v in enumerate(shared) if v is not None]
    # hash=False: fresh keys.  With content-hashed keys, scattering the same data
    # again right after the previous call released it races with the release
    # (the workers drop the keys the new tasks wait for, which get cancelled).
    futures = client.scatter([shared[i] for i in present], broadcast=True, hash=False)
    out = list(shared)
    for i, f in zip(present, futures):
        out[i] = f
    return out


_pool_lock = threading.Lock()
_pool: tuple = (None, None)  # ((pid, workers) it was made for, the kept ThreadPoolExecutor)
_worker = threading.local()  # .active: this thread is one of the kept pool's workers


def _mark_worker() -> None:
    _worker.active = True


def _thread_pool() -> cf.ThreadPoolExecutor:
    """The kept pool of one worker per usable CPU, made on first use; again in
    a forked child, whose copy has no threads, or when the usable CPUs
    changed.  Its idle workers wait on the pool's queue and exit with the
    interpreter."""
    global _pool
    key = (os.getpid(), usable_cpus())
    made, pool = _pool
    if made == key:
        return pool
    with _pool_lock:
        made, pool = _pool
        if made != key:
            old = pool if made is not None and made[0] == key[0] else None
            pool = cf.ThreadPoolExecutor(key[1], thread_name_prefix="fastopt", initializer=_mark_worker)
            _pool = (key, pool)
            if old is not None:  # the CPUs changed: its workers leave once idle
                old.shutdown(wait=False)
    return pool


def map_tasks(fn: Callable[..., Any], tasks: Sequence, shared: Sequence, executor: Executor) -> list:
    """``[fn(task, *shared) for task in tasks]``, run where ``executor`` says,
    results in task order.  The first task (in task order) that raises stops
    the others that have not started, and its exception propagates."""
    check_executor(executor)
    tasks = list(tasks)
    if executor is None or not tasks:
        return [fn(task, *shared) for task in tasks]
    if isinstance(executor, str):  # "threads"
        if getattr(_worker, "active", False):  # called from a task on the pool: its workers are taken
            return [fn(task, *shared) for task in tasks]
        with blas_threads(1):
            return _on_threads(fn, tasks, shared)
    shared = _scatter(executor, shared)
    return _collect([executor.submit(fn, task, *shared) for task in tasks])


def _on_threads(fn: Callable[..., Any], tasks: list, shared: Sequence) -> list:
    """``map_tasks`` on the kept pool: one job per worker, each taking the next
    task in order until none is left or one has failed, while the calling
    thread sleeps until all jobs are done (it handles Ctrl-C at once; its own
    fits would take the GIL back to look for signals).  A future per task
    would cost a submit, a return to the pool's queue and a wake-up of the
    caller each.  On a failure, or an interrupt while the caller waits, no
    further task starts, the running ones finish, and the exception of the
    first failed task (in task order), or the interrupt, propagates."""
    n = len(tasks)
    results: list = [None] * n
    failed: list = []  # (task index, exception)
    lock = threading.Lock()
    taken = [0]  # tasks handed out; n once none may start

    def job() -> None:
        while True:
            with lock:
                i = taken[0]
                if i >= n:
                    return
                taken[0] = i + 1
            try:
                results[i] = fn(tasks[i], *shared)
            except BaseException as e:
                with lock:
                    failed.append((i, e))
                    taken[0] = n
                return

    jobs = [_thread_pool().submit(job) for _ in range(min(n, usable_cpus()))]
    try:
        cf.wait(jobs)
    except BaseException:  # interrupted: start nothing more, let the running tasks end
        with lock:
            taken[0] = n
        cf.wait(jobs)
        raise
    for f in jobs:
        f.result()  # a job itself failed (it cannot, short of a broken pool)
    if failed:
        raise min(failed, key=lambda f: f[0])[1]
    return results


def _collect(futures: list) -> list:
    """The futures' results in order.  The first failure (in task order)
    cancels the tasks not started, and its exception propagates."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise
