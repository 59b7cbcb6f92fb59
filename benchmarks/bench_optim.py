"""Optimizer-step benchmark: fastopt against NumPy, PyTorch CPU and the
machine's own memory floor, all measured in this one process run.

    PYTHONPATH=python python benchmarks/bench_optim.py            # full run, about a minute
    PYTHONPATH=python python benchmarks/bench_optim.py --quick    # CI smoke run
    PYTHONPATH=python python benchmarks/bench_optim.py --json results.json
    PYTHONPATH=python python benchmarks/bench_optim.py --force-clone avx2   # the AVX2 kernels

What it measures (DESIGN.md, "How we measure": every headline figure is a
ratio against a peer timed in the same run):

1. One optimizer step on N float32 parameters held in one flat array (the
   gradient is fixed random data):
   * fastopt: ``opt.apply_gradients([(g, w)])``;
   * the memory floor of that step: ``_core.stream``, a C loop that makes one
     pass over the same arrays (Adam: reads w, g, m, v and writes w, m, v;
     SGD with momentum, RMSprop and Adagrad: reads w, g, s and writes w, s)
     with next to no arithmetic, split over the same threads as the step
     (``FASTOPT_NUM_THREADS``, default the online CPUs up to 8, as csrc/optim.c
     splits a variable of 2**20 elements or more);
   * torch.optim with ``fused=True``, ``foreach=True`` and ``foreach=False``
     (each one that this torch build accepts; a refusal is reported), the same
     hyperparameters, first at torch's default thread count, then again with
     ``torch.set_num_threads(1)``;
   * NumPy doing the same step with in-place ufuncs (the articles' way);
   * the older yardsticks ``np.copyto(dst, src)`` (8 bytes per element,
     single-threaded) and the in-place ``np.add(a, b, out=a)`` (12 bytes).
   An optimizer step must move at least B bytes per parameter (Adam 28 B, the
   others 20 B).  For every row: time / fastopt's time, effective GB/s =
   B*N/t, and the fraction of the floor's bandwidth (floor time / time).
   Goal (issue 11): every step at >= 0.95 of its floor.
2. Per-call overhead on tiny arrays: ``apply_gradients`` on one 10-element
   float32 array and on a list of 10 such arrays, next to
   ``torch.optim.Adam.step()`` on the same (ratio).  Goal: <= 1 µs.

Timing (the pitfalls of DESIGN.md): time.perf_counter; each contender runs in
its own block (warm-up, then its repeats) after a short pause, all blocks in
turn, twice over; the best of each is compared with the best of the others.
torch's OpenMP threads keep spinning after a step, so strictly interleaved
calls charge that spin to whatever runs next (a false 0.83x was seen).

Which kernels run: the header names the CPU and the clone of fastopt's
vectorized kernels that runs on it (``_core.kernel_clone()``).  To measure on
an AVX-512 machine the kernels an AVX2-only machine runs, ``--force-clone
avx2`` builds the extension once more with ``FASTOPT_FORCE_CLONE=avx2`` (into
a scratch directory, nothing installed) and runs this benchmark on that build.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import finish, fo, per_call, table_row, torch  # noqa: E402
from bench_train import machine_facts, print_header, time_blocks  # noqa: E402  (shared header, timing)

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
        self.result = None

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
SLOTS = {"adam": 2, "sgd": 1, "rmsprop": 1, "adagrad": 1}  # state arrays of each step, as configured here
SPLIT_MIN = 1 << 20  # csrc/optim.c: variables of this many elements or more are split across threads
MAX_THREADS = 8      # csrc/optim.c: FO_MAX_THREADS


def step_threads(n: int) -> int:
    """The threads csrc/optim.c splits a variable of n elements over: 1 below
    2**20 elements, else FASTOPT_NUM_THREADS (default: the online CPUs), 1..8."""
    if n < SPLIT_MIN:
        return 1
    env = os.environ.get("FASTOPT_NUM_THREADS")
    try:
        v = int(env) if env is not None else (os.cpu_count() or 1)
    except ValueError:  # C's atoi reads a bad value as 0
        v = 0
    return max(1, min(MAX_THREADS, v))


def floor_contender(kind: str, n: int, threads: int) -> Contender:
    """The step's memory floor: one pass on the step's threads over arrays like
    the step's (the variable and its slots read and written, the gradient read)."""
    rng = np.random.default_rng(1)
    written = [rng.standard_normal(n, dtype=np.float32) for _ in range(1 + SLOTS[kind])]
    read = [rng.standard_normal(n, dtype=np.float32)]
    return Contender(f"memory floor: `_core.stream`, {threads} thread{'s' if threads > 1 else ''}",
                     lambda: fo._core.stream(read, written, threads), BYTES[kind])


def step_table(kind: str, w0: np.ndarray, g: np.ndarray, torch_threads: Optional[int],
               with_numpy: bool, with_yardsticks: bool, copy_src: np.ndarray, copy_dst: np.ndarray,
               add_a: np.ndarray, repeats: int, warmup: int, pause: float) -> list[Contender]:
    nbytes = BYTES[kind]
    rows: list[Contender] = []

    w = w0.copy()
    opt = fastopt_optimizer(kind)
    pair = [(g, w)]
    rows.append(Contender("fastopt apply_gradients", lambda: opt.apply_gradients(pair), nbytes))
    if with_yardsticks:
        rows.append(floor_contender(kind, w0.size, step_threads(w0.size)))

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
    # the copy yardstick is timed in every table
    rows.append(Contender("np.copyto(dst, src) [yardstick, 1 thread]",
                          lambda: np.copyto(copy_dst, copy_src), COPY_BYTES))
    if with_yardsticks and kind == "adam":
        rows.append(Contender("np.add(a, b, out=a) [in-place stream, 1 thread]",
                              lambda: np.add(add_a, copy_src, out=add_a), ADD_BYTES))
    load = OtherLoad()
    time_blocks(rows, repeats, warmup, pause=pause)
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
    floor = next((r for r in rows if r.name.startswith("memory floor") and not r.error), None)
    floor_bw = floor.nbytes * n / floor.best if floor else None
    print(f"\n### {title}\n")
    print("| contender | time / fastopt | GB/s (B x N / t) | fraction of the floor's BW | "
          "fraction of copy BW | time (ms) |")
    print("|---|---:|---:|---:|---:|---:|")

    def ran(r):
        t = r.best
        gbps = r.nbytes * n / t / 1e9
        frac = (r.nbytes * n / t) / copy_bw
        of_floor = (r.nbytes * n / t) / floor_bw if floor_bw else None
        return (f"| {r.name} ({r.nbytes} B/elem) | {fmt_ratio(t / fast)} | {gbps:.1f} | "
                f"{'-' if of_floor is None else f'{of_floor:.2f}'} | {frac:.0%} | {t * 1e3:.2f} |",
                dict(time_s=t, ratio_vs_fastopt=t / fast, gbps=gbps, fraction_of_copy_bw=frac,
                     fraction_of_floor=of_floor, all_times_s=r.times))
    out = [table_row({"table": title, "name": r.name, "bytes_per_element": r.nbytes}, r.error, 6,
                     lambda: ran(r)) for r in rows]
    other = getattr(rows[0], "other_load", None)
    if other is not None:
        note = "  <- a busy neighbour: this table is noisy" if other > 0.25 else ""
        print(f"\nother processes/steal kept {other:.2f} CPUs busy while this table ran{note}")
        for rec in out:
            rec["other_load_cpus"] = other
    return out


# --------------------------------------------------------------------------
# the AVX2 path on an AVX-512 machine
# --------------------------------------------------------------------------

def run_forced_clone(clone: str, argv: list[str]) -> int:
    """Build the extension with FASTOPT_FORCE_CLONE=clone into a scratch
    directory (nothing installed, the source tree untouched) and run this
    benchmark on that build, in a child process."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix=f"fastopt-{clone}-") as tmp:
        env = dict(os.environ, FASTOPT_FORCE_CLONE=clone)
        print(f"building fastopt with FASTOPT_FORCE_CLONE={clone} in {tmp} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", tmp,
                        "--build-temp", os.path.join(tmp, "build")], cwd=root, env=env, check=True)
        pkg = os.path.join(tmp, "fastopt")
        src = os.path.join(root, "python", "fastopt")
        for name in os.listdir(src):
            path = os.path.join(src, name)
            if name.endswith(".py"):
                shutil.copy(path, pkg)
            elif os.path.isdir(path) and name != "__pycache__":
                shutil.copytree(path, os.path.join(pkg, name), ignore=shutil.ignore_patterns("__pycache__"))
        env["PYTHONPATH"] = tmp
        return subprocess.run([sys.executable, os.path.abspath(__file__)] + argv, env=env).returncode


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N, few repeats (CI smoke run)")
    ap.add_argument("--n", type=int, default=None, help="parameters per step (default 10,000,000; quick 2,000,000)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per contender (default 12; quick 4)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    ap.add_argument("--kinds", nargs="+", choices=list(TITLES), default=list(TITLES),
                    help="optimizers to time (default: all four)")
    ap.add_argument("--force-clone", choices=["avx2", "avx512f"],
                    help="build fastopt with only this clone of its kernels (in a scratch directory) and run "
                         "the benchmark on that build")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    if args.force_clone:
        i = argv.index("--force-clone") if "--force-clone" in argv else -1
        rest = [a for k, a in enumerate(argv) if k not in (i, i + 1) and not a.startswith("--force-clone=")]
        return run_forced_clone(args.force_clone, rest)

    # --quick stays above 2**20 elements, so the step is split over threads as at full size
    n = args.n or (2_000_000 if args.quick else 10_000_000)
    repeats = args.repeats or (4 if args.quick else 12)
    warmup = 1 if args.quick else 2
    pause = 0.02 if args.quick else 0.2
    call_repeats, call_target = (3, 0.01) if args.quick else (7, 0.1)
    t_start = time.perf_counter()

    facts = machine_facts()
    facts["step_threads"] = step_threads(n)
    print_header("fastopt optimizer-step benchmark", facts, [
        f"N = {n:,} float32 parameters in one flat array, split over {facts['step_threads']} thread(s) by the "
        f"step and by the memory floor; best of {repeats} repeats after {warmup} warm-up call(s); each "
        f"contender in its own block after a {pause:g} s pause, best against best",
        "time / fastopt > 1: fastopt is faster.  GB/s counts the minimum traffic: Adam 28 B/param, "
        "SGD-momentum/RMSprop/Adagrad 20 B/param, copy 8 B/elem"])

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
    for kind in args.kinds:
        for k, threads in enumerate(thread_sets):
            first = k == 0
            rows = step_table(kind, w0, g, threads, with_numpy=first, with_yardsticks=first,
                              copy_src=copy_src, copy_dst=copy_dst, add_a=add_a,
                              repeats=repeats, warmup=warmup, pause=pause)
            title = f"{TITLES[kind]}, N = {n:,} float32"
            if torch is not None:
                title += f", torch threads = {threads}" + (" (default)" if first else "")
            results["tables"].extend(report_table(title, rows, n))
            fast = rows[0]
            copy = next(r for r in rows if "copyto" in r.name)
            torch_rows = [r for r in rows if r.name.startswith("torch") and not r.error]
            s = summary.setdefault(kind, {})
            s[f"fraction_of_copy_bw_t{threads}"] = (BYTES[kind] / fast.best) / (COPY_BYTES / copy.best)
            floor = [r for r in rows if r.name.startswith("memory floor") and not r.error]
            if floor:
                s["fraction_of_floor"] = floor[0].best / fast.best
                s["floor_gbps"] = BYTES[kind] * n / floor[0].best / 1e9
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
    print(f"- kernel clone: {facts['kernel_clone']}" + (" (forced at build time)" if facts["kernel_clone_forced"] else ""))
    for kind in args.kinds:
        f = summary[kind].get("fraction_of_floor")
        if f is not None:
            print(f"- {TITLES[kind]} step at {f:.2f} of its memory floor ({summary[kind]['floor_gbps']:.1f} GB/s on "
                  f"{facts['step_threads']} thread(s); goal >= 0.95)")
    a = summary.get("adam", {})
    if a:
        print(f"- fastopt Adam moves {a[f'fraction_of_copy_bw_t{default_threads}']:.0%} of the single-threaded "
              "copy's bandwidth")
    for threads in thread_sets:
        key = f"best_torch_t{threads}"
        if key in a:
            nm, r = a[key]
            verdict = "faster" if r > 1 else "slower"
            print(f"- vs torch's best CPU Adam at {threads} thread(s) ({nm}): fastopt is "
                  f"{max(r, 1 / r):.2f}x {verdict} (goal: faster)")
    print(f"- apply_gradients per-call overhead: {summary['per_call_us']:.2f} µs (goal <= 1 µs)")
    return finish(results, summary, t_start, args.json)


if __name__ == "__main__":
    sys.exit(main())
