"""Optimizer-step benchmark: fastopt against its memory floor, PyTorch CPU and
NumPy, all measured in this one process run.

    PYTHONPATH=python python benchmarks/bench_optim.py            # full run, about a minute and a half
    PYTHONPATH=python python benchmarks/bench_optim.py --quick    # CI smoke run
    PYTHONPATH=python python benchmarks/bench_optim.py --json results.json
    PYTHONPATH=python python benchmarks/bench_optim.py --force-clone avx2   # the AVX2 kernels
    FASTOPT_NUM_THREADS=1 PYTHONPATH=python python benchmarks/bench_optim.py --kinds adagrad  # one thread

What it measures (DESIGN.md, "How we measure": every headline figure is a
ratio against a peer timed in the same run), for one optimizer step on N
float32 parameters in one flat array (the gradient is fixed random data):

1. The step against its memory floor (goal, issue 11: >= 0.95 of the floor
   for Adam, SGD with momentum, RMSprop and Adagrad, on every clone).
   * the step: ``opt.apply_gradients([(g, w)])``;
   * the floor: ``_core.stream([g], [w, *slots], threads)``, a C loop making
     one pass over *the step's own arrays* (the gradient read; the variable
     and the optimizer's state arrays read and written, ``x += 0 * g``, which
     leaves every value as it is) on the step's threads (``FASTOPT_NUM_THREADS``,
     default the online CPUs up to 8, as csrc/optim.c splits a variable of
     2**20 elements or more), with next to no arithmetic.  The same pages, the
     same alignment, the same bytes per parameter: Adam 28 B (reads w, g, m,
     v; writes w, m, v), SGD with momentum, RMSprop and Adagrad 20 B (reads w,
     g, s; writes w, s).
   * Method: after a warm-up, ``blocks`` blocks of ``pairs`` pairs; a pair is
     one step and one floor pass back to back (the order alternating, ABBA),
     so both see the same state of the machine within a few milliseconds (a
     2-core virtual machine shared with other work swings by 2x between
     seconds, and between processes).  Per block: the median over its pairs
     of floor time / step time.  Reported: the median over blocks (the
     headline), their range (the spread of the method on this machine), the
     best step against the best floor, and how many CPUs other processes kept
     busy during each block (a block with > 0.25 busy CPUs is noisy).
     fastopt's threads are started per call and joined, nothing spins, so
     strict interleaving is fair here (it is not for torch, below).
   * Arithmetic: the same step and floor on L3-resident arrays (2**17
     elements, one thread), interleaved the same way, and the step's time per
     element there against the floor's time per element per thread in
     memory.  Adagrad, RMSprop and Adam need one square root and one division
     per element, which one divider unit per core computes (on a Zen 4 core
     about 0.27 ns per float32 element, whatever the vector width); where
     that takes most of the time memory does, no overlap hides all of it, and
     this share tells the CPU's divider apart from a slow kernel.
2. The step against PyTorch and NumPy: torch.optim with ``fused=True``,
   ``foreach=True`` and ``foreach=False`` (each one that this torch build
   accepts; a refusal is reported), the same hyperparameters, at torch's
   default thread count, then with ``torch.set_num_threads(1)``; NumPy with
   in-place ufuncs (the articles' way); the yardsticks ``np.copyto(dst, src)``
   (8 bytes per element, one thread) and ``np.add(a, b, out=a)`` (12 bytes).
   torch's OpenMP threads keep spinning after a step and slow whatever runs
   next (strictly interleaved pairs once showed a false 0.83x), so here every
   contender runs in its own block (warm-up, then repeats) after a pause, the
   blocks of all contenders in turn (the order reversed every other round),
   over several rounds.  Per round: each contender's best call / fastopt's
   best call in the same round.  Reported: the median over rounds, their
   range, and best against best over the whole run.
3. Per-call overhead on tiny arrays: ``apply_gradients`` on one 10-element
   float32 array and on a list of 10 such arrays, next to
   ``torch.optim.Adam.step()`` on the same (ratio).  Goal: <= 1 µs.

Which kernels run: the header names the CPU and the clone of fastopt's
vectorized kernels that runs on it (``_core.kernel_clone()``).  To measure on
an AVX-512 machine the kernels an AVX2-only machine runs, ``--force-clone
avx2`` builds the extension once more with ``FASTOPT_FORCE_CLONE=avx2`` (into
a scratch directory, nothing installed) and runs this benchmark on that build.
On a shared machine run it under a lock and repeat it: the ranges show how far
one run can be trusted.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import finish, fo, per_call, table_row, torch  # noqa: E402
from bench_train import _err, machine_facts, print_header, time_blocks  # noqa: E402  (shared header, timing)

LR = 1e-3
BETA_1, BETA_2, EPS = 0.9, 0.999, 1e-7
MOMENTUM = 0.9
RHO = 0.9

ADAM_BYTES = 28   # read w, g, m, v; write w, m, v
STATE1_BYTES = 20  # read w, g, s; write w, s
COPY_BYTES = 8     # read src, write dst
ADD_BYTES = 12     # read a, b; write a
NOISY = 0.25       # other processes keeping more CPUs busy than this make a block noisy
CACHE_N = 1 << 17  # the arithmetic check: arrays of this many elements stay in L3, one thread


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
        self.blocks: list[list[float]] = []  # the timed calls of each round's block (time_blocks)
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


def per_round(row: Contender, base: Contender) -> list[float]:
    """row's best call / base's best call, round by round (> 1: base is faster)."""
    return [min(a) / min(b) for a, b in zip(row.blocks, base.blocks) if a and b]


def paired(step: Callable[[], object], floor: Callable[[], object], blocks: int, pairs: int,
           warmup: int, pause: float) -> dict:
    """The step against its floor in interleaved pairs: ``blocks`` blocks of
    ``pairs`` back-to-back (step, floor) pairs, the order alternating (ABBA).
    Per block: the median over its pairs of floor time / step time, the median
    step and floor times, and the other processes' load.  Nothing spins after
    either call (fastopt starts its threads per call and joins them), so
    interleaving call by call is fair."""
    for _ in range(warmup):
        step()
        floor()
    out = []
    gc_was = gc.isenabled()
    try:
        for _ in range(blocks):
            time.sleep(pause)
            gc.collect()
            gc.disable()
            load = OtherLoad()
            ts, tf = [], []
            for k in range(pairs):
                for is_step in ((True, False) if k % 2 == 0 else (False, True)):
                    t0 = time.perf_counter()
                    (step if is_step else floor)()
                    (ts if is_step else tf).append(time.perf_counter() - t0)
            if gc_was:
                gc.enable()
            out.append({"ratio": statistics.median(f / s for s, f in zip(ts, tf)),
                        "step_s": statistics.median(ts), "floor_s": statistics.median(tf),
                        "step_best_s": min(ts), "floor_best_s": min(tf), "other_load_cpus": load.cpus()})
    finally:
        if gc_was:
            gc.enable()
    ratios = [b["ratio"] for b in out]
    return {"fraction": statistics.median(ratios), "low": min(ratios), "high": max(ratios),
            "best_vs_best": min(b["floor_best_s"] for b in out) / min(b["step_best_s"] for b in out),
            "step_s": statistics.median(b["step_s"] for b in out),
            "floor_s": statistics.median(b["floor_s"] for b in out),
            "noisy_blocks": sum(1 for b in out if (b["other_load_cpus"] or 0) > NOISY),
            "blocks": out}


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


def state_arrays(opt, w: np.ndarray, count: int) -> Optional[list]:
    """The optimizer's own state arrays of ``w`` (m and v, the accumulator...),
    created by a first step; None if this fastopt cannot hand them out."""
    try:
        slots = opt._lookup(w, 0, "bench_optim")  # the live arrays, not get_state's copies
    except Exception:
        return None
    own = [s for s in slots[:3] if s is not None]  # the rule's slots come first
    ok = len(own) == count and all(isinstance(a, np.ndarray) and a.shape == w.shape and a.dtype == w.dtype
                                   and a.flags.c_contiguous and a.flags.writeable for a in own)
    return own if ok else None


def step_and_floor(kind: str, w0: np.ndarray, g: np.ndarray, threads: int):
    """A fastopt step on a copy of w0 and the floor over the same arrays:
    (step, floor, whether the floor runs on the step's own arrays)."""
    w = w0.copy()
    opt = fastopt_optimizer(kind)
    pair = [(g, w)]
    opt.apply_gradients(pair)  # creates the state
    slots = state_arrays(opt, w, SLOTS[kind])
    own = slots is not None
    if not own:  # arrays like the step's, elsewhere in memory
        slots = [np.random.default_rng(k).standard_normal(w.size, dtype=w.dtype) for k in range(SLOTS[kind])]
    written = [w] + slots

    def floor():  # x += 0 * g: every value stays as it is
        fo._core.stream([g], written, threads)
    return (lambda: opt.apply_gradients(pair)), floor, own


def floor_check(kind: str, w0: np.ndarray, g: np.ndarray, threads: int, blocks: int, pairs: int,
                warmup: int, pause: float) -> dict:
    """The step against its floor in memory (N elements, the step's threads)
    and on L3-resident arrays (CACHE_N elements, one thread)."""
    n = w0.size
    step, floor, own = step_and_floor(kind, w0, g, threads)
    res = paired(step, floor, blocks, pairs, warmup, pause)
    res["own_arrays"] = own
    res["threads"] = threads
    res["floor_gbps"] = BYTES[kind] * n / res["floor_s"] / 1e9
    del step, floor
    # the arithmetic: the same on arrays that stay in L3, a few calls per timing
    nc = min(CACHE_N, n)
    calls = 16
    cstep, cfloor, _ = step_and_floor(kind, w0[:nc].copy(), g[:nc].copy(), 1)
    cache = paired(lambda: [cstep() for _ in range(calls)], lambda: [cfloor() for _ in range(calls)],
                   max(3, blocks // 2), pairs, warmup, pause / 4)
    step_ns = cache["step_s"] / (calls * nc) * 1e9
    floor_ns = res["floor_s"] / (n / threads) * 1e9  # the floor's time per element per thread, in memory
    res["cache"] = {"n": nc, "fraction": cache["fraction"], "low": cache["low"], "high": cache["high"],
                    "step_ns_per_element": step_ns, "floor_ns_per_element_per_thread": floor_ns,
                    "arithmetic_share": step_ns / floor_ns}
    gc.collect()
    return res


def report_floor(kind: str, res: dict, n: int) -> None:
    c = res["cache"]
    threads = res["threads"]
    print(f"\nThe step against its memory floor ({BYTES[kind]} B/param, {threads} thread"
          f"{'s' if threads > 1 else ''}; {len(res['blocks'])} blocks of interleaved pairs; the floor streams "
          + ("the step's own arrays" if res["own_arrays"] else "**fresh arrays like the step's** (this fastopt "
             "does not hand out its state arrays)") + "):\n")
    print("| floor time / step time | median of blocks | range of blocks | best vs best | step (ms) | floor (ms) "
          "| floor GB/s | noisy blocks |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| N = {n:,}, in memory | **{res['fraction']:.2f}** | {res['low']:.2f}-{res['high']:.2f} | "
          f"{res['best_vs_best']:.2f} | {res['step_s'] * 1e3:.2f} | {res['floor_s'] * 1e3:.2f} | "
          f"{res['floor_gbps']:.1f} | {res['noisy_blocks']} of {len(res['blocks'])} |")
    print(f"| N = {c['n']:,}, L3-resident, 1 thread | {c['fraction']:.2f} | {c['low']:.2f}-{c['high']:.2f} | "
          f"| | | | |")
    loads = [b["other_load_cpus"] for b in res["blocks"] if b["other_load_cpus"] is not None]
    if loads:
        print(f"\nother processes kept {min(loads):.2f}-{max(loads):.2f} CPUs busy during the blocks"
              + ("  <- a busy neighbour: these figures are noisy" if max(loads) > NOISY else ""))
    print(f"with its arrays in L3 the step takes {c['step_ns_per_element']:.3f} ns per element per thread: "
          f"{c['arithmetic_share']:.2f} of the {c['floor_ns_per_element_per_thread']:.3f} ns the floor takes in "
          "memory" + ("  <- close to 1: the arithmetic (a square root and a division per element), not memory, "
                      "limits the step on this CPU" if c["arithmetic_share"] > 0.85 else ""))


def peer_table(kind: str, w0: np.ndarray, g: np.ndarray, torch_threads: Optional[int],
               with_numpy: bool, with_yardsticks: bool, copy_src: np.ndarray, copy_dst: np.ndarray,
               add_a: np.ndarray, rounds: int, repeats: int, warmup: int, pause: float) -> list[Contender]:
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
                rows.append(Contender(name, None, nbytes, error=_err(e)))
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
    # each contender in its own block after a pause, the order reversed every other round
    time_blocks(rows, repeats * rounds, warmup, rounds=rounds, pause=pause, alternate=True)
    rows[0].other_load = load.cpus()
    return rows


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------

def fmt_ratio(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.2f}x"


def report_table(title: str, rows: list[Contender], n: int) -> list[dict]:
    fast = rows[0]
    copy = next(r for r in rows if r.nbytes == COPY_BYTES and "copyto" in r.name).best
    copy_bw = COPY_BYTES * n / copy
    print(f"\n### {title}\n")
    print("| contender | time / fastopt (median of rounds) | range of rounds | best vs best | GB/s (B x N / t) "
          "| fraction of copy BW | time (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|")

    def ran(r):
        t = r.best
        rr = per_round(r, fast)
        med = statistics.median(rr) if rr else float("nan")
        gbps = r.nbytes * n / t / 1e9
        frac = (r.nbytes * n / t) / copy_bw
        span = f"{min(rr):.2f}-{max(rr):.2f}" if rr else "-"
        return (f"| {r.name} ({r.nbytes} B/elem) | {fmt_ratio(med)} | {span} | {fmt_ratio(t / fast.best)} | "
                f"{gbps:.1f} | {frac:.0%} | {t * 1e3:.2f} |",
                dict(time_s=t, ratio_vs_fastopt=med, ratio_vs_fastopt_rounds=rr,
                     ratio_vs_fastopt_best=t / fast.best, gbps=gbps, fraction_of_copy_bw=frac,
                     all_times_s=r.blocks))
    out = [table_row({"table": title, "name": r.name, "bytes_per_element": r.nbytes}, r.error, 7,
                     lambda: ran(r)) for r in rows]
    other = getattr(rows[0], "other_load", None)
    if other is not None:
        note = "  <- a busy neighbour: this table is noisy" if other > NOISY else ""
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
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed calls per contender block against torch and NumPy (default 3; quick 2)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds of blocks against torch and NumPy (default 4; quick 2)")
    ap.add_argument("--blocks", type=int, default=None,
                    help="blocks of interleaved step/floor pairs (default 7; quick 3)")
    ap.add_argument("--pairs", type=int, default=None, help="step/floor pairs per block (default 10; quick 4)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    ap.add_argument("--kinds", nargs="+", choices=list(TITLES), default=list(TITLES),
                    help="optimizers to time (default: all four)")
    ap.add_argument("--no-peers", action="store_true", help="only the floor check (no torch, NumPy or per-call)")
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
    repeats = args.repeats or (2 if args.quick else 3)
    rounds = args.rounds or (2 if args.quick else 4)
    blocks = args.blocks or (3 if args.quick else 7)
    pairs = args.pairs or (4 if args.quick else 10)
    warmup = 1 if args.quick else 2
    pause = 0.02 if args.quick else 0.2
    call_repeats, call_target = (3, 0.01) if args.quick else (7, 0.1)
    t_start = time.perf_counter()

    facts = machine_facts()
    threads = facts["step_threads"] = step_threads(n)
    print_header("fastopt optimizer-step benchmark", facts, [
        f"N = {n:,} float32 parameters in one flat array, split over {threads} thread(s) by the step and by the "
        "memory floor",
        f"against the floor: {blocks} blocks of {pairs} interleaved (step, floor) pairs on the same arrays; per "
        "block the median of floor time / step time; the median of blocks and their range",
        f"against torch and NumPy: each contender in its own block ({warmup} warm-up + {repeats} timed calls) "
        f"after a {pause:g} s pause, {rounds} rounds; per round best / fastopt's best; the median of rounds, "
        "their range, and best vs best",
        "time / fastopt > 1: fastopt is faster.  GB/s counts the minimum traffic: Adam 28 B/param, "
        "SGD-momentum/RMSprop/Adagrad 20 B/param, copy 8 B/elem"])

    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(n, dtype=np.float32)
    g = (rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2))
    copy_src = rng.standard_normal(n, dtype=np.float32)
    copy_dst = np.empty_like(copy_src)
    add_a = np.zeros_like(copy_src)

    results: dict = {"machine": facts, "n": n, "method": {
        "floor": {"blocks": blocks, "pairs": pairs, "warmup": warmup},
        "peers": {"rounds": rounds, "repeats": repeats, "warmup": warmup, "pause_s": pause}},
        "floor": {}, "tables": [], "per_call": []}
    default_threads = torch.get_num_threads() if torch is not None else None
    thread_sets = [default_threads]
    if torch is not None and default_threads != 1:
        thread_sets.append(1)
    summary = {}
    for kind in args.kinds:
        print(f"\n## {TITLES[kind]}, N = {n:,} float32")
        time.sleep(pause)  # the previous table's torch threads go quiet
        res = floor_check(kind, w0, g, threads, blocks, pairs, warmup, pause / 2)
        report_floor(kind, res, n)
        results["floor"][kind] = res
        s = summary.setdefault(kind, {})
        s["fraction_of_floor"] = res["fraction"]
        s["fraction_of_floor_range"] = [res["low"], res["high"]]
        s["fraction_of_floor_best"] = res["best_vs_best"]
        s["floor_blocks"] = len(res["blocks"])
        s["floor_noisy_blocks"] = res["noisy_blocks"]
        s["floor_on_own_arrays"] = res["own_arrays"]
        s["floor_gbps"] = res["floor_gbps"]
        s["arithmetic_share_of_floor"] = res["cache"]["arithmetic_share"]
        s["fraction_of_floor_l3"] = res["cache"]["fraction"]
        if args.no_peers:
            continue
        for k, tt in enumerate(thread_sets):
            first = k == 0
            rows = peer_table(kind, w0, g, tt, with_numpy=first, with_yardsticks=first,
                              copy_src=copy_src, copy_dst=copy_dst, add_a=add_a,
                              rounds=rounds, repeats=repeats, warmup=warmup, pause=pause)
            title = f"{TITLES[kind]}, N = {n:,} float32"
            if torch is not None:
                title += f", torch threads = {tt}" + (" (default)" if first else "")
            results["tables"].extend(report_table(title, rows, n))
            fast = rows[0]
            copy = next(r for r in rows if "copyto" in r.name)
            torch_rows = [r for r in rows if r.name.startswith("torch") and not r.error and per_round(r, fast)]
            s[f"fraction_of_copy_bw_t{tt}"] = (BYTES[kind] / fast.best) / (COPY_BYTES / copy.best)
            add = [r for r in rows if "np.add" in r.name and not r.error]
            if add:
                s["fraction_of_inplace_stream_bw"] = (BYTES[kind] / fast.best) / (ADD_BYTES / add[0].best)
            if torch_rows:
                # torch's fastest variant by its median over rounds; (name, median, [low, high], best vs best)
                bt = min(torch_rows, key=lambda r: statistics.median(per_round(r, fast)))
                rr = per_round(bt, fast)
                s[f"best_torch_t{tt}"] = (bt.name, statistics.median(rr))
                s[f"best_torch_range_t{tt}"] = [min(rr), max(rr)]
                s[f"best_torch_best_t{tt}"] = bt.best / fast.best
            del rows
            gc.collect()
        if torch is not None:
            torch.set_num_threads(default_threads)

    if not args.no_peers:
        per_call_table(rng, results, summary, call_repeats, call_target)
    verdict(args.kinds, facts, summary, thread_sets)
    return finish(results, summary, t_start, args.json)


def per_call_table(rng, results: dict, summary: dict, call_repeats: int, call_target: float) -> None:
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


def verdict(kinds: list[str], facts: dict, summary: dict, thread_sets: list) -> None:
    print("\n### Against the goals (benchmark figures, not pass/fail tests)\n")
    print(f"- kernel clone: {facts['kernel_clone']}" + (" (forced at build time)" if facts["kernel_clone_forced"] else ""))
    for kind in kinds:
        k = summary[kind]
        lo, hi = k["fraction_of_floor_range"]
        print(f"- {TITLES[kind]} step at {k['fraction_of_floor']:.2f} of its memory floor (blocks {lo:.2f}-{hi:.2f}, "
              f"best vs best {k['fraction_of_floor_best']:.2f}; floor {k['floor_gbps']:.1f} GB/s on "
              f"{facts['step_threads']} thread(s); goal >= 0.95); with its arrays in L3 it needs "
              f"{k['arithmetic_share_of_floor']:.2f} of the floor's time"
              + (f"; {k['floor_noisy_blocks']} noisy block(s)" if k["floor_noisy_blocks"] else ""))
    a = summary.get("adam", {})
    key = f"fraction_of_copy_bw_t{thread_sets[0]}"
    if key in a:
        print(f"- fastopt Adam moves {a[key]:.0%} of the single-threaded copy's bandwidth")
    for kind in kinds:
        for tt in thread_sets:
            k = summary[kind]
            if f"best_torch_t{tt}" not in k:
                continue
            nm, r = k[f"best_torch_t{tt}"]
            lo, hi = k[f"best_torch_range_t{tt}"]
            verdict = "faster" if r > 1 else "slower"
            print(f"- vs torch's best CPU {TITLES[kind]} at {tt} thread(s) ({nm}): fastopt is {max(r, 1 / r):.2f}x "
                  f"{verdict} (median of rounds; rounds {lo:.2f}-{hi:.2f}x, best vs best "
                  f"{k[f'best_torch_best_t{tt}']:.2f}x; goal: faster)")
    if "per_call_us" in summary:
        print(f"- apply_gradients per-call overhead: {summary['per_call_us']:.2f} µs (goal <= 1 µs)")


if __name__ == "__main__":
    sys.exit(main())
