"""Optimizer-step benchmark: fastopt against NumPy, PyTorch CPU and the
machine's own copy bandwidth, all measured in this one process run.

    PYTHONPATH=python python benchmarks/bench_optim.py            # full run, < 60 s
    PYTHONPATH=python python benchmarks/bench_optim.py --quick    # CI smoke run
    PYTHONPATH=python python benchmarks/bench_optim.py --json results.json

What it measures (DESIGN.md, "How we measure": every headline figure is a
ratio against a peer timed in the same run):

1. One optimizer step on N float32 parameters held in one flat array (the
   gradient is fixed random data):
   * fastopt: ``opt.apply_gradients([(g, w)])``;
   * torch.optim with ``fused=True``, ``foreach=True`` and ``foreach=False``
     (each one that this torch build accepts; a refusal is reported), the same
     hyperparameters, first at torch's default thread count, then again with
     ``torch.set_num_threads(1)`` (fastopt's kernel is single-threaded);
   * NumPy doing the same step with in-place ufuncs (the articles' way);
   * the yardstick ``np.copyto(dst, src)`` of N float32 (8 bytes per element
     moved), and, as a second reference, the in-place ``np.add(a, b, out=a)``
     (12 bytes per element, and no write-allocate since ``a`` is read first).
   An optimizer step must move at least B bytes per parameter: Adam reads w,
   g, m, v and writes w, m, v (28 B); SGD with momentum, RMSprop and Adagrad
   read w, g, s and write w, s (20 B).  For every row: time / fastopt's time,
   effective GB/s = B*N/t and the fraction of the copy's bandwidth
   (B*N/t) / (8*N/t_copy).
2. Per-call overhead on tiny arrays: ``apply_gradients`` on one 10-element
   float32 array and on a list of 10 such arrays, next to
   ``torch.optim.Adam.step()`` on the same (ratio).

Timing: time.perf_counter, warm-up calls first, the best (minimum) of several
repeats.  The contenders of one table are timed round-robin (one call of each
per round), so a slow drift of the machine hits all of them alike.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import sys
import time
from typing import Callable, Optional

import numpy as np

from _common import finish, fo, table_row, torch, with_torch_cpu_capability

LR = 1e-3
BETA_1, BETA_2, EPS = 0.9, 0.999, 1e-7
MOMENTUM = 0.9
RHO = 0.9

ADAM_BYTES = 28   # read w, g, m, v; write w, m, v
STATE1_BYTES = 20  # read w, g, s; write w, s
COPY_BYTES = 8     # read src, write dst
ADD_BYTES = 12     # read a, b; write a


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------

class Contender:
    """One row of a table: a callable doing one step, and what it moves."""

    def __init__(self, name: str, fn: Optional[Callable[[], object]], nbytes: int,
                 error: Optional[str] = None, setup: Optional[Callable[[], None]] = None):
        self.name = name
        self.fn = fn
        self.nbytes = nbytes  # bytes per element the call must move
        self.error = error    # set when this variant could not run here
        self.setup = setup    # called before each call (e.g. torch.set_num_threads)
        self.times: list[float] = []

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")


class OtherLoad:
    """CPUs kept busy by everything but this process (other processes, the
    hypervisor's steal time) while a table was timed, from /proc/stat: on a
    shared machine a busy neighbour explains a noisy table.  None off Linux."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal
        t = os.times()
        return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system, time.perf_counter()

    def cpus(self) -> Optional[float]:
        end = self._sample()
        if self.start is None or end is None or end[2] - self.start[2] <= 0:
            return None
        other = (end[0] - self.start[0]) - (end[1] - self.start[1])
        return max(0.0, other / (end[2] - self.start[2]))


def time_round_robin(contenders: list[Contender], repeats: int, warmup: int) -> None:
    """Best-of-``repeats`` seconds per call for each runnable contender.

    A contender whose warm-up raises is marked with the error and skipped."""
    live = [c for c in contenders if c.error is None]
    for c in live:
        try:
            if c.setup:
                c.setup()
            for _ in range(warmup):
                c.fn()
        except Exception as e:  # a variant this build refuses at step time
            c.error = f"{type(e).__name__}: {str(e).splitlines()[0][:90]}"
    live = [c for c in live if c.error is None]
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for c in live:
                if c.setup:
                    c.setup()
                t0 = time.perf_counter()
                c.fn()
                c.times.append(time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()


def per_call(fn: Callable[[], object], repeats: int, target: float) -> float:
    """Seconds per call of a fast ``fn``: loops of calls sized to last about
    ``target`` seconds, the best of ``repeats`` loops."""
    for _ in range(3):
        fn()
    number = 1
    while True:  # calibrate as timeit.Timer.autorange
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= target / 5 or number >= 1 << 22:
            break
        number *= 2
    number = max(1, int(number * target / max(time.perf_counter() - t0, 1e-9)))
    best = float("inf")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return best


# --------------------------------------------------------------------------
# the contenders
# --------------------------------------------------------------------------

def numpy_adam(w, g, m, v, tmp):
    """The Adam step as the articles write it in NumPy, in place (Keras rule)."""
    state = {"t": 0}

    def step():
        state["t"] += 1
        t = state["t"]
        alpha = LR * math.sqrt(1 - BETA_2 ** t) / (1 - BETA_1 ** t)  # a Python float: float32 math
        np.multiply(m, BETA_1, out=m)
        np.multiply(g, 1 - BETA_1, out=tmp)
        np.add(m, tmp, out=m)                 # m = b1 m + (1-b1) g
        np.multiply(v, BETA_2, out=v)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, 1 - BETA_2, out=tmp)
        np.add(v, tmp, out=v)                 # v = b2 v + (1-b2) g^2
        np.sqrt(v, out=tmp)
        np.add(tmp, EPS, out=tmp)
        np.divide(m, tmp, out=tmp)
        np.multiply(tmp, alpha, out=tmp)
        np.subtract(w, tmp, out=w)            # w -= alpha m / (sqrt(v) + eps)
    return step


def numpy_sgd(w, g, mom, tmp):
    """SGD with momentum, Keras rule, in-place ufuncs."""
    def step():
        np.multiply(mom, MOMENTUM, out=mom)
        np.multiply(g, LR, out=tmp)
        np.subtract(mom, tmp, out=mom)        # m = mu m - lr g
        np.add(w, mom, out=w)                 # w += m
    return step


def torch_variants(kind: str):
    """(label, kwargs) of the torch.optim implementations to try."""
    if kind in ("adam", "sgd"):
        return [("fused=True", {"fused": True}), ("foreach=True", {"foreach": True}),
                ("foreach=False (for-loop)", {"foreach": False})]
    return [("foreach=True", {"foreach": True})]


def torch_optimizer(kind: str, params, kwargs):
    if kind == "adam":
        return torch.optim.Adam(params, lr=LR, betas=(BETA_1, BETA_2), eps=EPS, **kwargs)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, **kwargs)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=LR, alpha=RHO, eps=EPS, **kwargs)
    if kind == "adagrad":
        return torch.optim.Adagrad(params, lr=LR, eps=EPS, initial_accumulator_value=0.1, **kwargs)
    raise ValueError(kind)


def fastopt_optimizer(kind: str):
    if kind == "adam":
        return fo.optimizers.Adam(learning_rate=LR, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPS)
    if kind == "sgd":
        return fo.optimizers.SGD(learning_rate=LR, momentum=MOMENTUM)
    if kind == "rmsprop":
        return fo.optimizers.RMSprop(learning_rate=LR, rho=RHO, epsilon=EPS)
    if kind == "adagrad":
        return fo.optimizers.Adagrad(learning_rate=LR, epsilon=EPS)
    raise ValueError(kind)


TITLES = {"adam": "Adam", "sgd": "SGD(momentum=0.9)", "rmsprop": "RMSprop", "adagrad": "Adagrad"}
BYTES = {"adam": ADAM_BYTES, "sgd": STATE1_BYTES, "rmsprop": STATE1_BYTES, "adagrad": STATE1_BYTES}


def step_table(kind: str, w0: np.ndarray, g: np.ndarray, torch_threads: Optional[int],
               with_numpy: bool, with_yardsticks: bool, copy_src: np.ndarray, copy_dst: np.ndarray,
               add_a: np.ndarray, repeats: int, warmup: int) -> list[Contender]:
    nbytes = BYTES[kind]
    rows: list[Contender] = []

    w = w0.copy()
    opt = fastopt_optimizer(kind)
    pair = [(g, w)]
    rows.append(Contender("fastopt apply_gradients", lambda: opt.apply_gradients(pair), nbytes))

    if torch is not None:
        threads = torch_threads or torch.get_num_threads()
        set_threads = (lambda: torch.set_num_threads(threads))
        tg = torch.from_numpy(g)  # shares g's memory: read only
        for label, kw in torch_variants(kind):
            name = f"torch {label}, {threads} thread{'s' if threads > 1 else ''}"
            try:
                p = torch.nn.Parameter(torch.from_numpy(w0.copy()))
                p.grad = tg
                topt = torch_optimizer(kind, [p], kw)
                rows.append(Contender(name, topt.step, nbytes, setup=set_threads))
            except Exception as e:  # refused at construction
                rows.append(Contender(name, None, nbytes,
                                      error=f"{type(e).__name__}: {str(e).splitlines()[0][:90]}"))
    if with_numpy and kind in ("adam", "sgd"):
        wn, tmp = w0.copy(), np.empty_like(w0)
        if kind == "adam":
            fn = numpy_adam(wn, g, np.zeros_like(w0), np.zeros_like(w0), tmp)
        else:
            fn = numpy_sgd(wn, g, np.zeros_like(w0), tmp)
        rows.append(Contender("NumPy in-place ufuncs", fn, nbytes))
    # the yardstick is timed in every table, in the same rounds
    rows.append(Contender("np.copyto(dst, src) [yardstick]",
                          lambda: np.copyto(copy_dst, copy_src), COPY_BYTES))
    if with_yardsticks:
        rows.append(Contender("np.add(a, b, out=a) [in-place stream]",
                              lambda: np.add(add_a, copy_src, out=add_a), ADD_BYTES))
    load = OtherLoad()
    time_round_robin(rows, repeats, warmup)
    rows[0].other_load = load.cpus()
    return rows


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------

def fmt_ratio(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.2f}x"


def report_table(title: str, rows: list[Contender], n: int) -> list[dict]:
    fast = rows[0].best
    copy = next(r for r in rows if r.nbytes == COPY_BYTES and "copyto" in r.name).best
    copy_bw = COPY_BYTES * n / copy
    print(f"\n### {title}\n")
    print("| contender | time / fastopt | GB/s (B x N / t) | fraction of copy BW | time (ms) |")
    print("|---|---:|---:|---:|---:|")

    def ran(r):
        t = r.best
        gbps = r.nbytes * n / t / 1e9
        frac = (r.nbytes * n / t) / copy_bw
        return (f"| {r.name} ({r.nbytes} B/elem) | {fmt_ratio(t / fast)} | {gbps:.1f} | "
                f"{frac:.0%} | {t * 1e3:.2f} |",
                dict(time_s=t, ratio_vs_fastopt=t / fast, gbps=gbps, fraction_of_copy_bw=frac,
                     all_times_s=r.times))
    out = [table_row({"table": title, "name": r.name, "bytes_per_element": r.nbytes}, r.error, 5,
                     lambda: ran(r)) for r in rows]
    other = getattr(rows[0], "other_load", None)
    if other is not None:
        note = "  <- a busy neighbour: this table is noisy" if other > 0.25 else ""
        print(f"\nother processes/steal kept {other:.2f} CPUs busy while this table ran{note}")
        for rec in out:
            rec["other_load_cpus"] = other
    return out


def machine_facts() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    facts = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastopt": getattr(fo, "__version__", "?"),
        "fastopt_path": os.path.dirname(fo.__file__),
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads_default": torch.get_num_threads() if torch is not None else None,
    }
    return with_torch_cpu_capability(facts)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N, few repeats (CI smoke run)")
    ap.add_argument("--n", type=int, default=None, help="parameters per step (default 10,000,000; quick 1,000,000)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per contender (default 15; quick 3)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)

    n = args.n or (1_000_000 if args.quick else 10_000_000)
    repeats = args.repeats or (3 if args.quick else 15)
    warmup = 1 if args.quick else 2
    call_repeats, call_target = (3, 0.01) if args.quick else (7, 0.1)
    t_start = time.perf_counter()

    facts = machine_facts()
    print("# fastopt optimizer-step benchmark")
    print()
    print(f"- CPU: {facts['cpu']}; os.cpu_count() = {facts['cpu_count']}, usable = {facts['cpus_usable']}")
    print(f"- Python {facts['python']}, NumPy {facts['numpy']}, fastopt {facts['fastopt']} ({facts['fastopt_path']})")
    if torch is not None:
        print(f"- torch {facts['torch']}, default threads = {facts['torch_threads_default']}, "
              f"ATen CPU capability = {facts.get('torch_cpu_capability', '?')}")
    else:
        print("- torch: not installed, torch rows skipped")
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    facts["loadavg_1min"] = load
    if load is not None:
        busy = " (the machine is busy: figures will be noisy)" if load > 0.5 else ""
        print(f"- load average before the run: {load:.2f}{busy}")
    print(f"- N = {n:,} float32 parameters in one flat array; best of {repeats} repeats after "
          f"{warmup} warm-up call(s); contenders of a table timed round-robin")
    print("- time / fastopt > 1: fastopt is faster.  GB/s counts the minimum traffic: "
          "Adam 28 B/param, SGD-momentum/RMSprop/Adagrad 20 B/param, copy 8 B/elem")

    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(n, dtype=np.float32)
    g = (rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2))
    copy_src = rng.standard_normal(n, dtype=np.float32)
    copy_dst = np.empty_like(copy_src)
    add_a = np.zeros_like(copy_src)

    results: dict = {"machine": facts, "n": n, "repeats": repeats, "warmup": warmup, "tables": [],
                     "per_call": []}
    default_threads = torch.get_num_threads() if torch is not None else None
    thread_sets = [default_threads]
    if torch is not None and default_threads != 1:
        thread_sets.append(1)
    summary = {}
    for kind in ("adam", "sgd", "rmsprop", "adagrad"):
        for k, threads in enumerate(thread_sets):
            first = k == 0
            rows = step_table(kind, w0, g, threads, with_numpy=first,
                              with_yardsticks=first and kind == "adam",
                              copy_src=copy_src, copy_dst=copy_dst, add_a=add_a,
                              repeats=repeats, warmup=warmup)
            title = f"{TITLES[kind]}, N = {n:,} float32"
            if torch is not None:
                title += f", torch threads = {threads}" + (" (default)" if first else "")
            results["tables"].extend(report_table(title, rows, n))
            fast = rows[0]
            copy = next(r for r in rows if "copyto" in r.name)
            torch_rows = [r for r in rows if r.name.startswith("torch") and not r.error]
            s = summary.setdefault(kind, {})
            s[f"fraction_of_copy_bw_t{threads}"] = (BYTES[kind] / fast.best) / (COPY_BYTES / copy.best)
            add = [r for r in rows if "np.add" in r.name and not r.error]
            if add:
                s["fraction_of_inplace_stream_bw"] = (BYTES[kind] / fast.best) / (ADD_BYTES / add[0].best)
            if torch_rows:
                bt = min(torch_rows, key=lambda r: r.best)
                s[f"best_torch_t{threads}"] = (bt.name, bt.best / fast.best)
            del rows
            gc.collect()
        if torch is not None:
            torch.set_num_threads(default_threads)

    # ---------------------------------------------------------------- per call
    print("\n### Per-call overhead (10-element float32 arrays)\n")
    print("| call | time / fastopt one-array call | µs per call |")
    print("|---|---:|---:|")
    small_w = rng.standard_normal(10, dtype=np.float32)
    small_g = rng.standard_normal(10, dtype=np.float32)
    opt1 = fo.optimizers.Adam(learning_rate=LR)
    w1 = small_w.copy()
    calls = [("fastopt Adam apply_gradients([(g, w)]), 1 array",
              lambda: opt1.apply_gradients([(small_g, w1)]))]
    opt10 = fo.optimizers.Adam(learning_rate=LR)
    ws = [small_w.copy() for _ in range(10)]
    gs = [small_g.copy() for _ in range(10)]
    calls.append(("fastopt Adam apply_gradients(zip(grads, vars)), 10 arrays",
                  lambda: opt10.apply_gradients(zip(gs, ws))))
    if torch is not None:
        for label, kw in [("default", {}), ("fused=True", {"fused": True})]:
            for count in (1, 10):
                ps = []
                for _ in range(count):
                    p = torch.nn.Parameter(torch.from_numpy(small_w.copy()))
                    p.grad = torch.from_numpy(small_g.copy())
                    ps.append(p)
                name = f"torch Adam({label}).step(), {count} tensor{'s' if count > 1 else ''}"
                try:
                    o = torch_optimizer("adam", ps, kw)
                    o.step()
                    calls.append((name, o.step))
                except Exception as e:
                    calls.append((name, f"{type(e).__name__}: {str(e).splitlines()[0][:90]}"))
    base = None

    def ran(name, fn):
        nonlocal base
        t = per_call(fn, call_repeats, call_target)
        base = base or t
        return (f"| {name} | {fmt_ratio(t / base)} | {t * 1e6:.2f} |",
                dict(time_s=t, ratio_vs_fastopt_one_array=t / base))
    for name, fn in calls:
        results["per_call"].append(table_row({"name": name}, fn if isinstance(fn, str) else None, 3,
                                             lambda: ran(name, fn)))
    summary["per_call_us"] = base * 1e6

    # ---------------------------------------------------------------- verdict
    print("\n### Against the goals (benchmark figures, not pass/fail tests)\n")
    a = summary["adam"]
    frac = a[f"fraction_of_copy_bw_t{default_threads}"]
    print(f"- fastopt Adam moves {frac:.0%} of the copy's bandwidth (goal >= 80%)")
    if "fraction_of_inplace_stream_bw" in a:
        print(f"  ({a['fraction_of_inplace_stream_bw']:.0%} of the in-place np.add stream's, a read-modify-write "
              "pattern like the optimizer's, which pays no write-allocate)")
    for threads in thread_sets:
        key = f"best_torch_t{threads}"
        if key in a:
            nm, r = a[key]
            verdict = "faster" if r > 1 else "slower"
            print(f"- vs torch's best CPU Adam at {threads} thread(s) ({nm}): fastopt is "
                  f"{max(r, 1 / r):.2f}x {verdict} (goal: faster)")
    print(f"- apply_gradients per-call overhead: {summary['per_call_us']:.2f} µs (goal < 2 µs)")
    return finish(results, summary, t_start, args.json)


if __name__ == "__main__":
    sys.exit(main())
