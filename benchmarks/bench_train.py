"""Training benchmark: fastopt's fit (the training loop in C) against a PyTorch
eager loop and scikit-learn's MLPRegressor, measured in this one process run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python python benchmarks/bench_train.py
    ... bench_train.py --quick              # CI smoke run (10 epochs, few repeats)
    ... bench_train.py --json train.json    # also write every figure as JSON

What it measures (DESIGN.md "How we measure": every figure is a ratio against
a peer timed in the same run; absolute times are a secondary column):

1. The articles' network (article 003): 13 -> Dense(10, relu) -> Dense(1),
   Adam(lr=0.001), MSE, 100 epochs of batch 32 over 404 samples (13 steps per
   epoch, the last batch 20 rows), float32, shuffled every epoch.
   * fastopt ``model.fit(x, y, epochs=100, batch_size=32, verbose=0)``;
   * PyTorch eager, the notebook loop: ``nn.Sequential(Linear, ReLU, Linear)``,
     ``torch.optim.Adam``, per epoch ``perm = torch.randperm(n)`` and batches
     ``x[perm[i:i+32]]``; with torch's default Adam (for-loop on CPU) and with
     ``fused=True`` (its fastest CPU Adam), each at torch's default thread
     count and at ``torch.set_num_threads(1)`` (small nets often run faster on
     one thread);
   * the same with ``DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)``;
   * scikit-learn ``MLPRegressor(hidden_layer_sizes=(10,), solver='adam',
     batch_size=32, max_iter=100, tol=0.0, n_iter_no_change=100,
     early_stopping=False, shuffle=True, alpha=0.0)`` (``alpha=0`` switches off
     its default L2 penalty, which the other two do not have); ``n_iter_`` is
     checked to be 100, i.e. every epoch really ran.  Once with BLAS at its
     default threads, once limited to 1 thread (threadpoolctl).
   Goals (issue 3): >= 20x faster than torch, >= 10x faster than scikit-learn.

2. One training step of a large network: batch 256, 1024 -> 1024 relu ->
   1024 relu -> 1, Adam, float32.  fastopt through ``fit(epochs=1,
   batch_size=256)`` over exactly 256 samples (the headline: the step runs in
   C) and through ``compute_gradients`` + ``apply_gradients``; torch forward,
   MSE, backward and Adam step.  Goal: at least as fast as torch.  Next to it
   the GEMM FLOP rate: the step's matrix products (forward x@W, dW = x^T dz,
   dX = dz W^T; the first layer needs no dX) count 2*M*N*K flops each; the
   fit's effective rate is those flops over the whole step's time, and the
   same products timed alone through fastopt's GEMM, NumPy's matmul and
   torch.mm give each engine's rate.

Timing: time.perf_counter, a warm-up run first, then the best (minimum) of N
repeats; the contenders of one table run in blocks (warm-up, then
repeats), all blocks in turn, twice over, with a short pause between blocks
(see ``time_blocks``: interleaving single calls of contenders that use
different thread pools makes them steal each other's cores).

OpenBLAS: run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (some images
set them for older OpenBLAS builds; they slow a current one).  The header shows
which kernel each OpenBLAS picked.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import warnings
from typing import Callable, Optional

import numpy as np

from _common import clone_facts, clone_line, finish, fo, table_row, torch, with_torch_cpu_capability

try:
    import sklearn
    from sklearn.neural_network import MLPRegressor
except ImportError:
    sklearn = None

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

LR = 1e-3
PAUSE = 0.2  # seconds between timing blocks (--quick: 0.02); see time_blocks


# --------------------------------------------------------------------------
# machine facts (the same header in every bench_*.py)
# --------------------------------------------------------------------------

def blas_libraries() -> list[dict]:
    """Every BLAS/OpenMP pool loaded in this process (threadpoolctl), with who owns it."""
    if threadpoolctl is None:
        return []
    out = []
    for info in threadpoolctl.threadpool_info():
        path = info.get("filepath", "")
        owner = ("fastopt (scipy-openblas32)" if "scipy_openblas32" in path else
                 "numpy" if "numpy.libs" in path or "/numpy/" in path else
                 "scipy" if "scipy.libs" in path else
                 "torch" if "/torch/" in path else
                 "scikit-learn" if "scikit_learn" in path or "sklearn" in path else "other")
        out.append({"owner": owner, "user_api": info.get("user_api"),
                    "internal_api": info.get("internal_api"),
                    "architecture": info.get("architecture"), "version": info.get("version"),
                    "num_threads": info.get("num_threads"), "filepath": path})
    return out


def cpu_busy(seconds: float = 0.5) -> Optional[float]:
    """Fraction of all cores busy (from /proc/stat) over ``seconds`` while this
    process sleeps: other processes' load right before the benchmark."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)  # total, idle + iowait
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
        return 1.0 - (i1 - i0) / max(t1 - t0, 1)
    except (OSError, ValueError, IndexError):
        return None


def machine_facts() -> dict:
    clone = clone_facts()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    facts = {
        **clone, "cpu": clone["cpu_model"], "simd": [k for k, v in clone["cpu_features"].items() if v],
        "cpu_count": os.cpu_count(), "cpus_usable": usable,
        "python": platform.python_version(), "numpy": np.__version__,
        "fastopt": getattr(fo, "__version__", "?"), "fastopt_path": os.path.dirname(fo.__file__),
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads_default": torch.get_num_threads() if torch is not None else None,
        "sklearn": sklearn.__version__ if sklearn is not None else None,
        "blas": blas_libraries(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "fastopt_blas_threshold": fo._core.blas_threshold(),
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cpu_busy_at_start": cpu_busy(),
    }
    return with_torch_cpu_capability(facts)


def print_header(title: str, facts: dict, extra: list[str]) -> None:
    print(f"# {title}\n")
    print(f"- {clone_line(facts)}; os.cpu_count() = {facts['cpu_count']}, usable = {facts['cpus_usable']}")
    print(f"- Python {facts['python']}, NumPy {facts['numpy']}, fastopt {facts['fastopt']}, "
          f"torch {facts['torch'] or 'not installed'}"
          + (f" (default threads {facts['torch_threads_default']}, ATen CPU capability "
             f"{facts.get('torch_cpu_capability', '?')})" if facts['torch'] else "")
          + f", scikit-learn {facts['sklearn'] or 'not installed'}")
    order = ["fastopt (scipy-openblas32)", "numpy", "scipy", "torch"]
    blas = sorted((b for b in facts["blas"] if b["user_api"] == "blas"),
                  key=lambda b: order.index(b["owner"]) if b["owner"] in order else len(order))
    if blas:
        for b in blas:
            print(f"- BLAS of {b['owner']}: {b['internal_api']} {b['version']}, kernel "
                  f"{b['architecture']}, {b['num_threads']} threads")
    else:
        print("- BLAS kernels: unknown (threadpoolctl not installed)")
    set_env = {k: v for k, v in facts["env"].items() if v is not None}
    print(f"- environment: {', '.join(f'{k}={v}' for k, v in set_env.items()) or 'no OPENBLAS_*/OMP_* overrides'}"
          + ("  **(OPENBLAS_CORETYPE/L2_SIZE set: OpenBLAS may run a slower kernel; "
             "rerun with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`)**"
             if set_env.keys() & {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} else ""))
    if facts.get("loadavg_at_start") or facts.get("cpu_busy_at_start") is not None:
        la, busy = facts.get("loadavg_at_start"), facts.get("cpu_busy_at_start")
        print("- other load at start:"
              + (f" {busy:.0%} of the cores busy over 0.5 s;" if busy is not None else "")
              + (f" load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}" if la else "")
              + ("  **(the machine is busy: multi-threaded figures (torch, OpenBLAS) suffer most)**"
                 if busy is not None and busy > 0.15 else ""))
    print(f"- fastopt BLAS threshold: products of >= {facts['fastopt_blas_threshold']:,} "
          "multiply-adds go to OpenBLAS")
    for line in extra:
        print(f"- {line}")


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------

class Contender:
    """One row of a table: a callable doing the whole timed job."""

    def __init__(self, name: str, fn: Optional[Callable[[], object]],
                 setup: Optional[Callable[[], None]] = None, error: Optional[str] = None,
                 note: str = ""):
        self.name, self.fn, self.setup, self.error, self.note = name, fn, setup, error, note
        self.times: list[float] = []
        self.result = None  # what the last call returned (checked for sanity)

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}"


def time_blocks(rows: list[Contender], repeats: int, warmup: int, rounds: int = 2,
                pause: Optional[float] = None, alternate: bool = False,
                settle: Optional[Callable[[], object]] = None) -> None:
    """Best-of-``repeats`` seconds per call; ``setup`` (untimed) runs before every call.

    Each contender runs in a block (warm-up, then its share of the repeats),
    the blocks of all contenders in turn, ``rounds`` times over, so a slow
    drift of the machine hits all of them alike.  Contenders are *not*
    interleaved call by call: on a 2-core machine the worker threads of one
    pool (OpenBLAS spins for a while after each call, so does torch's OpenMP)
    steal the cores of the next contender's pool; interleaving measured
    sgemm at 10 instead of 170 GFLOP/s.  ``pause`` seconds between blocks
    let the previous pool's threads go to sleep; ``settle()``, if given, is
    called after each pause (e.g. to wait until other processes leave the
    cores idle).  ``alternate`` reverses the order of the contenders every
    other round.  A contender with a ``blocks`` list also gets each block's
    times there, one list per round."""
    pause = PAUSE if pause is None else pause
    per_round = [repeats // rounds + (1 if k < repeats % rounds else 0) for k in range(rounds)]
    gc_was = gc.isenabled()
    try:
        for r, count in enumerate(per_round):
            for c in (rows[::-1] if alternate and r % 2 else rows):
                if c.error is not None or count == 0:
                    continue
                time.sleep(pause)
                if settle is not None:
                    settle()
                gc.collect()
                gc.disable()
                block = []
                try:
                    for k in range(warmup + count):
                        if c.setup:
                            c.setup()
                        t0 = time.perf_counter()
                        c.result = c.fn()
                        t = time.perf_counter() - t0
                        if k >= warmup:
                            block.append(t)
                except Exception as e:  # a variant this build refuses
                    c.error = _err(e)
                finally:
                    if gc_was:
                        gc.enable()
                c.times.extend(block)
                if hasattr(c, "blocks"):
                    c.blocks.append(block)
    finally:
        if gc_was:
            gc.enable()


def fmt_x(r: float) -> str:
    return "n/a" if not np.isfinite(r) else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


# --------------------------------------------------------------------------
# 1. the articles' network
# --------------------------------------------------------------------------

def articles_data(n: int = 404, d: int = 13, seed: int = 0):
    """Synthetic data with the shape of article 003's Boston-housing train split
    (404 x 13, standardized features, a nonlinear target)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal(d)
    y = (x @ w + 0.5 * np.maximum(x[:, 0] * x[:, 1], 0) + 0.1 * rng.standard_normal(n)).astype(np.float32)
    return x, y


def fastopt_small(x, y, epochs: int) -> Contender:
    state = {}

    def setup():
        m = fo.Sequential([fo.Dense(10, activation="relu", input_shape=(x.shape[1],)), fo.Dense(1)],
                          seed=0)
        m.compile(optimizer=fo.optimizers.Adam(learning_rate=LR), loss="mean_squared_error")
        state["m"] = m

    def run():
        h = state["m"].fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        return {"epochs": len(h.history["loss"]), "final_loss": h.history["loss"][-1]}
    return Contender("fastopt `fit` (loop in C)", run, setup)


def torch_small(x, y, epochs: int, threads: int, adam_kw: dict, label: str,
                dataloader: bool = False) -> Contender:
    X, Y = torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1)
    n = X.shape[0]
    state = {}

    def setup():
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 10), torch.nn.ReLU(),
                                    torch.nn.Linear(10, 1))
        state["model"] = model
        state["opt"] = torch.optim.Adam(model.parameters(), lr=LR, **adam_kw)
        if dataloader:
            g = torch.Generator().manual_seed(0)
            state["loader"] = torch.utils.data.DataLoader(
                torch.utils.data.TensorDataset(X, Y), batch_size=32, shuffle=True, generator=g)

    def run():
        model, opt, loss_fn = state["model"], state["opt"], torch.nn.functional.mse_loss
        last = None
        for _ in range(epochs):
            total = None
            if dataloader:
                batches = state["loader"]
            else:
                perm = torch.randperm(n)
                batches = ((X[idx], Y[idx]) for idx in (perm[i:i + 32] for i in range(0, n, 32)))
            for xb, yb in batches:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                # the epoch loss as Keras reports it, kept on the tensor side (no .item() per batch)
                total = loss.detach() * xb.shape[0] if total is None else total + loss.detach() * xb.shape[0]
            last = total
        return {"epochs": epochs, "final_loss": float(last) / n}

    name = (f"torch eager, {'DataLoader' if dataloader else 'randperm + indexing'}, Adam({label}), "
            f"{threads} thread{'s' if threads > 1 else ''}")
    return Contender(name, run, setup)


def sklearn_small(x, y, epochs: int, blas_threads: Optional[int]) -> Contender:
    def run():
        est = MLPRegressor(hidden_layer_sizes=(10,), solver="adam", batch_size=32, max_iter=epochs,
                           tol=0.0, n_iter_no_change=epochs, early_stopping=False, shuffle=True,
                           alpha=0.0, learning_rate_init=LR, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
            if blas_threads is not None and threadpoolctl is not None:
                with threadpoolctl.threadpool_limits(limits=blas_threads, user_api="blas"):
                    est.fit(x, y)
            else:
                est.fit(x, y)
        if est.n_iter_ != epochs:
            raise RuntimeError(f"MLPRegressor stopped after {est.n_iter_} of {epochs} epochs")
        # sklearn's loss_ is 1/2 MSE
        return {"epochs": est.n_iter_, "final_loss": 2 * est.loss_curve_[-1],
                "dtype": str(est.coefs_[0].dtype)}
    label = "BLAS default threads" if blas_threads is None else f"BLAS {blas_threads} thread"
    return Contender(f"scikit-learn MLPRegressor(solver='adam'), {label}", run)


def bench_small(args, results: dict) -> dict:
    epochs = 10 if args.quick else 100
    repeats = args.repeats or (2 if args.quick else 5)
    x, y = articles_data()
    n = x.shape[0]
    steps = epochs * -(-n // 32)
    rows = [fastopt_small(x, y, epochs)]
    default_threads = torch.get_num_threads() if torch is not None else 1
    thread_sets = [default_threads] + ([1] if default_threads != 1 else [])
    if torch is not None:
        for threads in thread_sets:
            rows.append(torch_small(x, y, epochs, threads, {}, "default = for-loop"))
            rows.append(torch_small(x, y, epochs, threads, {"fused": True}, "fused=True"))
            rows.append(torch_small(x, y, epochs, threads, {}, "default", dataloader=True))
    if sklearn is not None:
        rows.append(sklearn_small(x, y, epochs, None))
        rows.append(sklearn_small(x, y, epochs, 1))
    time_blocks(rows, repeats, warmup=1)
    if torch is not None:
        torch.set_num_threads(default_threads)

    title = (f"The articles' network: 13 -> Dense(10, relu) -> Dense(1), Adam(lr=0.001), {epochs} epochs x "
             f"{-(-n // 32)} steps of batch 32 ({n} samples, float32, shuffled)")
    print(f"\n### {title}\n")
    print(f"Best of {repeats} runs after one warm-up; `time / fastopt` > 1 means fastopt is faster.\n")
    print("| contender | time / fastopt | ms per fit | µs per step | epochs run | final epoch loss (MSE) |")
    print("|---|---:|---:|---:|---:|---:|")
    fast = rows[0].best

    def ran(r):
        res = r.result or {}
        return (f"| {r.name} | {fmt_x(r.best / fast)} | {r.best * 1e3:.1f} | {r.best / steps * 1e6:.1f} | "
                f"{res.get('epochs', '?')} | {res.get('final_loss', float('nan')):.4f} |",
                dict(time_s=r.best, ratio=r.best / fast, us_per_step=r.best / steps * 1e6,
                     all_times_s=r.times, **{k: v for k, v in res.items() if v is not None}))
    recs = [table_row({"table": "small", "name": r.name}, r.error, 6, lambda: ran(r)) for r in rows]
    results["small"] = {"epochs": epochs, "steps": steps, "repeats": repeats, "rows": recs}

    ok = [r for r in rows if not r.error]
    summary = {"fastopt_ms": fast * 1e3, "fastopt_us_per_step": fast / steps * 1e6}
    t_rows = [r for r in ok if r.name.startswith("torch")]
    if t_rows:
        best_t = min(t_rows, key=lambda r: r.best)
        idiom = next(r for r in t_rows if "randperm" in r.name and "for-loop" in r.name)
        summary["torch_idiomatic_ratio"] = idiom.best / fast
        summary["torch_best_ratio"] = best_t.best / fast
        summary["torch_best_name"] = best_t.name
    s_rows = [r for r in ok if r.name.startswith("scikit")]
    if s_rows:
        best_s = min(s_rows, key=lambda r: r.best)
        summary["sklearn_best_ratio"] = best_s.best / fast
        summary["sklearn_best_name"] = best_s.name
    return summary


# --------------------------------------------------------------------------
# 2. one step of a large network
# --------------------------------------------------------------------------

BIG_B, BIG_UNITS = 256, (1024, 1024, 1024, 1)


def big_gemms() -> list[tuple[str, int, int, int, int, int]]:
    """(label, ta, tb, M, N, K) of every matrix product one training step needs,
    row-major C (M,N) = op(A) (M,K) @ op(B) (K,N)."""
    out = []
    u = BIG_UNITS
    for l in range(len(u) - 1):
        IN, OUT = u[l], u[l + 1]
        out.append((f"L{l + 1} fwd x@W ({BIG_B}x{IN} @ {IN}x{OUT})", 0, 0, BIG_B, OUT, IN))
        out.append((f"L{l + 1} dW x^T@dz ({IN}x{BIG_B} @ {BIG_B}x{OUT})", 1, 0, IN, OUT, BIG_B))
        if l > 0:  # the first layer's input needs no gradient (torch skips it too)
            out.append((f"L{l + 1} dX dz@W^T ({BIG_B}x{OUT} @ {OUT}x{IN})", 0, 1, BIG_B, IN, OUT))
    return out


def big_flops() -> int:
    return sum(2 * M * N * K for _, _, _, M, N, K in big_gemms())


_BLAS_DEFAULT: dict = {}


def set_blas_threads(threads: Optional[int]) -> None:
    """Set every BLAS pool (fastopt's and NumPy's OpenBLAS) to ``threads``, or
    back to the count it had when first called (None).  Called in a
    contender's untimed setup, so every contender runs at its own count.

    (Not a ``threadpool_limits`` context manager kept around: that object
    applies its limit when it is *constructed* and restores on its first exit,
    so one built ahead of time silently changes the other contenders' runs.)"""
    if threadpoolctl is None:
        return
    ctl = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not _BLAS_DEFAULT:
        _BLAS_DEFAULT.update({c.filepath: c.num_threads for c in ctl.lib_controllers})
    for c in ctl.lib_controllers:
        c.set_num_threads(threads if threads is not None else _BLAS_DEFAULT.get(c.filepath, c.num_threads))


def fastopt_big(x, y, path: str, threads: Optional[int]) -> Contender:
    m = fo.Sequential([fo.Dense(BIG_UNITS[1], activation="relu", input_shape=(BIG_UNITS[0],)),
                       fo.Dense(BIG_UNITS[2], activation="relu"), fo.Dense(BIG_UNITS[3])], seed=0)
    opt = fo.optimizers.Adam(learning_rate=LR)
    m.compile(optimizer=opt, loss="mean_squared_error")
    if path == "fit":
        def run():
            m.fit(x, y, epochs=1, batch_size=BIG_B, shuffle=False, verbose=0)
        name = "fastopt `fit(epochs=1, batch_size=256)` (step in C)"
    else:
        def run():
            _, grads = m.compute_gradients(x, y)
            opt.apply_gradients(zip(grads, m.trainable_variables))
        name = "fastopt `compute_gradients` + `apply_gradients`"
    tlabel = "BLAS default threads" if threads is None else f"BLAS {threads} thread"
    return Contender(f"{name}, {tlabel}", run, setup=lambda: set_blas_threads(threads))


def torch_big(x, y, threads: int, adam_kw: dict, label: str) -> Contender:
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(BIG_UNITS[0], BIG_UNITS[1]), torch.nn.ReLU(),
                                torch.nn.Linear(BIG_UNITS[1], BIG_UNITS[2]), torch.nn.ReLU(),
                                torch.nn.Linear(BIG_UNITS[2], BIG_UNITS[3]))
    opt = torch.optim.Adam(model.parameters(), lr=LR, **adam_kw)

    def run():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), Y)
        loss.backward()
        opt.step()
    return Contender(f"torch eager step, Adam({label}), {threads} thread{'s' if threads > 1 else ''}",
                     run, setup=lambda: torch.set_num_threads(threads))


def gemm_operands(dtype, rng):
    ops = []
    for label, ta, tb, M, N, K in big_gemms():
        a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
        b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
        ops.append((label, ta, tb, a, b, np.empty((M, N), dtype)))
    return ops


def gemm_engines(ops, threads: Optional[int], torch_threads: Optional[int]) -> list[Contender]:
    """All of the step's products through one engine, as one timed call."""
    rows = []
    tl = "default threads" if threads is None else f"{threads} thread"

    def fo_all():
        for _, ta, tb, a, b, c in ops:
            fo._core.gemm(ta, tb, 1.0, a, b, 0.0, c)
    rows.append(Contender(f"fastopt `_core.gemm` (OpenBLAS sgemm), {tl}", fo_all,
                          setup=lambda: set_blas_threads(threads)))
    views = [((a.T if ta else a), (b.T if tb else b), c) for _, ta, tb, a, b, c in ops]

    def np_all():
        for a, b, c in views:
            np.matmul(a, b, out=c)
    rows.append(Contender(f"NumPy `np.matmul(a, b, out=c)`, {tl}", np_all,
                          setup=lambda: set_blas_threads(threads)))
    if torch is not None:
        tviews = [(torch.from_numpy(a).t() if ta else torch.from_numpy(a),
                   torch.from_numpy(b).t() if tb else torch.from_numpy(b), torch.from_numpy(c))
                  for _, ta, tb, a, b, c in ops]
        nt = torch_threads or torch.get_num_threads()

        def torch_all():
            for a, b, c in tviews:
                torch.mm(a, b, out=c)
        rows.append(Contender(f"torch `torch.mm(a, b, out=c)`, {nt} thread{'s' if nt > 1 else ''}",
                              torch_all, setup=lambda: torch.set_num_threads(nt)))
    return rows


def bench_big(args, results: dict) -> dict:
    repeats = args.repeats or (3 if args.quick else 15)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BIG_B, BIG_UNITS[0])).astype(np.float32)
    y = rng.standard_normal((BIG_B, BIG_UNITS[-1])).astype(np.float32)
    flops = big_flops()
    default_threads = torch.get_num_threads() if torch is not None else 1

    rows = [fastopt_big(x, y, "fit", None), fastopt_big(x, y, "grads", None)]
    if torch is not None:
        rows.append(torch_big(x, y, default_threads, {}, "default = for-loop"))
        rows.append(torch_big(x, y, default_threads, {"fused": True}, "fused=True"))
    if default_threads != 1:
        rows.append(fastopt_big(x, y, "fit", 1))
        if torch is not None:
            rows.append(torch_big(x, y, 1, {}, "default = for-loop"))
            rows.append(torch_big(x, y, 1, {"fused": True}, "fused=True"))
    time_blocks(rows, repeats, warmup=2)

    ops = gemm_operands(np.float32, rng)
    groups = [gemm_engines(ops, None, default_threads)]
    if default_threads != 1:
        groups.append(gemm_engines(ops, 1, 1))
    for grp in groups:
        time_blocks(grp, repeats, warmup=2)
    set_blas_threads(None)
    if torch is not None:
        torch.set_num_threads(default_threads)

    n_params = sum(BIG_UNITS[i] * BIG_UNITS[i + 1] + BIG_UNITS[i + 1] for i in range(len(BIG_UNITS) - 1))
    print(f"\n### One training step: batch {BIG_B}, 1024 -> 1024 relu -> 1024 relu -> 1, Adam, float32 "
          f"({n_params:,} parameters)\n")
    print(f"Best of {repeats} steps after two warm-up steps.  GEMM GFLOP/s = the step's "
          f"{len(big_gemms())} matrix products ({flops / 1e9:.2f} GFLOP, 2*M*N*K each) over the whole "
          "step's time.\n")
    print("| contender | time / fastopt fit | ms per step | effective GEMM GFLOP/s |")
    print("|---|---:|---:|---:|")
    fast = rows[0].best

    def ran(r):
        return (f"| {r.name} | {fmt_x(r.best / fast)} | {r.best * 1e3:.2f} | {flops / r.best / 1e9:.0f} |",
                dict(time_s=r.best, ratio=r.best / fast, gflops=flops / r.best / 1e9, all_times_s=r.times))
    recs = [table_row({"table": "big_step", "name": r.name}, r.error, 4, lambda: ran(r)) for r in rows]

    print(f"\n### The same {len(big_gemms())} matrix products alone (float32), per engine\n")
    print("| engine | time / NumPy (same threads) | ms for all products | GFLOP/s |")
    print("|---|---:|---:|---:|")
    g_recs = []

    def ran_gemm(r, base):
        return (f"| {r.name} | {fmt_x(r.best / base.best)} | {r.best * 1e3:.2f} | "
                f"{flops / r.best / 1e9:.0f} |",
                dict(time_s=r.best, ratio_vs_numpy=r.best / base.best, gflops=flops / r.best / 1e9))
    for grp in groups:
        base = next(g for g in grp if g.name.startswith("NumPy"))
        g_recs += [table_row({"table": "gemm_rate", "name": r.name}, r.error, 4, lambda: ran_gemm(r, base))
                   for r in grp]
    print("\nPer product (fastopt `_core.gemm`, NumPy, torch at default threads; GFLOP/s):\n")
    print("| product | M*N*K | fastopt | NumPy | torch |")
    print("|---|---:|---:|---:|---:|")
    per = []
    for label, ta, tb, a, b, c in ops:
        M, N = c.shape
        K = a.shape[0] if ta else a.shape[1]
        fl = 2 * M * N * K
        av, bv = (a.T if ta else a), (b.T if tb else b)
        cand = [Contender("fo", lambda: fo._core.gemm(ta, tb, 1.0, a, b, 0.0, c)),
                Contender("np", lambda: np.matmul(av, bv, out=c))]
        if torch is not None:
            ta_ = torch.from_numpy(a).t() if ta else torch.from_numpy(a)
            tb_ = torch.from_numpy(b).t() if tb else torch.from_numpy(b)
            tc_ = torch.from_numpy(c)
            cand.append(Contender("torch", lambda: torch.mm(ta_, tb_, out=tc_)))
        time_blocks(cand, max(3, repeats), warmup=2, pause=PAUSE / 4)
        rates = [fl / cc.best / 1e9 for cc in cand]
        print(f"| {label} | {M * N * K:,} | " + " | ".join(f"{r:.0f}" for r in rates)
              + (" | n/a |" if torch is None else " |"))
        per.append({"product": label, "mnk": M * N * K, "gflops": dict(zip([c.name for c in cand], rates))})
    results["big_step"] = {"repeats": repeats, "gemm_flops": flops, "rows": recs, "gemm_rates": g_recs,
                           "per_product": per}

    summary = {"fastopt_fit_ms": fast * 1e3, "fastopt_fit_gflops": flops / fast / 1e9}
    t_all = [r for r in rows if r.name.startswith("torch") and not r.error]
    if t_all:  # torch's fastest step at any thread count, against fastopt's fit at its defaults
        bt = min(t_all, key=lambda r: r.best)
        summary["torch_best_ratio"] = bt.best / fast
        summary["torch_best_name"] = bt.name
    np_rates = [g["gflops"] for g in g_recs if g["name"].startswith("NumPy") and "gflops" in g]
    if np_rates:  # NumPy's best rate on these products (whichever thread count did better here)
        summary["numpy_gemm_gflops"] = max(np_rates)
    return summary


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 epochs, few repeats (CI smoke run)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per contender")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    ap.add_argument("--only", choices=["small", "big"], help="run one of the two sections")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    global PAUSE
    if args.quick:
        PAUSE = 0.02

    facts = machine_facts()
    print_header("fastopt training benchmark", facts, [
        "every figure is a ratio against a peer timed in this run (time / fastopt > 1: fastopt is faster); "
        "best of N after warm-up, contenders in blocks, twice over"])
    results: dict = {"machine": facts, "quick": args.quick}
    summary = {}
    if args.only in (None, "small"):
        summary["small"] = bench_small(args, results)
    if args.only in (None, "big"):
        summary["big"] = bench_big(args, results)

    print("\n### Against the goals (benchmark figures, not pass/fail tests)\n")
    s = summary.get("small")
    if s:
        print(f"- articles' network: fastopt {s['fastopt_ms']:.1f} ms per fit ({s['fastopt_us_per_step']:.1f} µs per step)")
        if "torch_idiomatic_ratio" in s:
            print(f"  - vs the idiomatic torch loop (default Adam, default threads): {s['torch_idiomatic_ratio']:.1f}x; "
                  f"vs torch's fastest variant here ({s['torch_best_name']}): {s['torch_best_ratio']:.1f}x (goal >= 20x)")
        if "sklearn_best_ratio" in s:
            print(f"  - vs scikit-learn's faster run ({s['sklearn_best_name']}): {s['sklearn_best_ratio']:.1f}x (goal >= 10x)")
    b = summary.get("big")
    if b:
        line = f"- large step: fastopt fit {b['fastopt_fit_ms']:.2f} ms ({b['fastopt_fit_gflops']:.0f} GEMM GFLOP/s effective"
        if "numpy_gemm_gflops" in b:
            line += f"; NumPy matmul alone on the same products, its best: {b['numpy_gemm_gflops']:.0f} GFLOP/s"
        print(line + ")")
        if "torch_best_ratio" in b:
            r = b["torch_best_ratio"]
            print(f"  - vs torch's fastest step ({b['torch_best_name']}): "
                  f"fastopt is {max(r, 1 / r):.2f}x {'faster' if r >= 1 else 'slower'} (goal: at least as fast)")
    return finish(results, summary, t_start, args.json)


if __name__ == "__main__":
    sys.exit(main())
