"""Where many trainings run: one after another, on a thread pool, or on any
``concurrent.futures.Executor`` (a process pool, a Dask cluster).

One training is one task: a picklable task object (the build function by
reference, the settings, the initial weights) plus the shared data.  Every
task is a pure function of its inputs, so the results are the same bit for
bit wherever it runs:

* ``None``: in this thread, in order;
* ``"threads"``: a thread pool with one worker per usable CPU.  ``fit`` runs
  its epochs in C without the GIL, so the trainings really run at once.
  While the pool runs, BLAS is held at one thread (through threadpoolctl if
  installed, else scipy-openblas32's own ``set_num_threads``), so the workers
  do not each start a BLAS thread per core and fight over the cores;
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
        with controller.limit(limits=n, user_api="blas"):
            yield
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


def map_tasks(fn: Callable[..., Any], tasks: Sequence, shared: Sequence, executor: Executor) -> list:
    """``[fn(task, *shared) for task in tasks]``, run where ``executor`` says,
    results in task order.  The first task that raises stops the others that
    have not started, and its exception propagates."""
    check_executor(executor)
    tasks = list(tasks)
    if executor is None or not tasks:
        return [fn(task, *shared) for task in tasks]
    if isinstance(executor, str):  # "threads"
        workers = min(len(tasks), usable_cpus())
        with blas_threads(1), cf.ThreadPoolExecutor(workers, thread_name_prefix="fastopt") as pool:
            return _collect([pool.submit(fn, task, *shared) for task in tasks])
    shared = _scatter(executor, shared)
    return _collect([executor.submit(fn, task, *shared) for task in tasks])


def _collect(futures: list) -> list:
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise
