"""Where OpenBLAS starts to beat fastopt's C loop: the crossover behind
``fo_blas_threshold`` (csrc/dense.c), measured on the matrix products the
training loop makes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python python benchmarks/bench_gemm.py
    ... bench_gemm.py --quick              # CI smoke run (fewer shapes, float32 only)
    ... bench_gemm.py --json gemm.json     # also write every timing as JSON

For a dense layer with batch B, IN inputs and OUT units, one training step
makes three products (row-major, as csrc/dense_impl.h calls ``fo_gemm``):

* forward ``NN``: z (B,OUT) = x (B,IN) @ kernel (IN,OUT)          M=B,  N=OUT, K=IN
* dW ``TN``:      dkernel (IN,OUT) = x^T (IN,B) @ dz (B,OUT)       M=IN, N=OUT, K=B
* dX ``NT``:      dx (B,IN) = dz (B,OUT) @ kernel^T (OUT,IN)       M=B,  N=IN,  K=OUT

Each is timed for B in {1, 8, 32, 64, 256}, IN and OUT in {1, 10, 13, 32, 64,
128, 256, 1024}, float32 and float64, through ``fastopt._core.gemm`` twice:
with the BLAS threshold (``fastopt._core.blas_threshold``) set to 0 (every
product to OpenBLAS) and set out of reach (the C loop: the path ``fo_gemm``
takes below the threshold, today the same loop as ``gemm(..., naive=True)``).
Both go through the same Python binding, so its
per-call cost (measured on a 1x1x1 product and shown in the header) is
subtracted before the two are compared.

Reported, per transpose case and dtype: the smallest M*N*K at which BLAS wins
at all, and the smallest M*N*K from which BLAS wins on every measured shape
at least that large.  Then a recommended threshold: the value of
``fo_blas_threshold`` (BLAS iff M*N*K >= threshold) whose choice of engine is
closest to the per-shape best, i.e. the smallest geometric-mean slowdown
against always picking the faster engine, over every shape, case and dtype;
its worst-case slowdown is shown too.  Finally the products of the articles'
network (13 -> 10 relu -> 1, batch 32) and its ``fit`` timed at several
thresholds, which shows where the threshold matters for it.

Timing: time.perf_counter; for each shape a warm-up, then loops of calls
sized to last ``--target`` seconds, the best of several loops; BLAS and the C
loop alternate block by block.  Every figure is a ratio (BLAS time / C-loop
time, < 1: BLAS is faster); absolute times are a secondary column in the JSON.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import finish, fo, per_call  # noqa: E402
from bench_train import machine_facts, print_header, threadpoolctl  # noqa: E402  (shared header)

CASES = {  # name: (ta, tb, description)
    "NN": (0, 0, "forward z = x @ W: M=B, N=OUT, K=IN"),
    "TN": (1, 0, "dW = x^T @ dz: M=IN, N=OUT, K=B"),
    "NT": (0, 1, "dX = dz @ W^T: M=B, N=IN, K=OUT"),
}
BATCHES = (1, 8, 32, 64, 256)
WIDTHS = (1, 10, 13, 32, 64, 128, 256, 1024)
QUICK_BATCHES = (1, 32, 256)
QUICK_WIDTHS = (1, 13, 64, 256)
NEVER = 2 ** 62  # a threshold no product reaches
FLOOR = 20e-9    # corrected times are floored here: below it the subtraction is noise


def fastopt_blas_limit(threads: int):
    """Limit fastopt's own OpenBLAS (scipy-openblas32) to ``threads``; 0: leave it."""
    import contextlib
    if threads <= 0 or threadpoolctl is None:
        return contextlib.nullcontext()
    ctl = threadpoolctl.ThreadpoolController()
    mine = [lib.filepath for lib in ctl.lib_controllers if "scipy_openblas32" in lib.filepath]
    if not mine:
        return contextlib.nullcontext()
    return ctl.select(filepath=mine).limit(limits=threads)


def mnk_of(case: str, B: int, IN: int, OUT: int) -> tuple[int, int, int]:
    return {"NN": (B, OUT, IN), "TN": (IN, OUT, B), "NT": (B, IN, OUT)}[case]


def operands(ta, tb, M, N, K, dtype, rng):
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    return a, b, np.empty((M, N), dtype)


def time_pair(ta, tb, M, N, K, dtype, rng, target, repeats) -> tuple[float, float]:
    """(C loop, BLAS) seconds per ``_core.gemm`` call.

    The C loop is ``fo_gemm`` with the threshold set out of reach: exactly the
    code the training loop runs below the threshold (today the same function
    as ``gemm(..., naive=True)``; if a tuned small-product kernel is added,
    this measures that kernel).  BLAS is ``fo_gemm`` with the threshold at 0."""
    a, b, c = operands(ta, tb, M, N, K, dtype, rng)
    gemm, thr = fo._core.gemm, fo._core.blas_threshold
    call = lambda: gemm(ta, tb, 1.0, a, b, 0.0, c)  # noqa: E731
    # alternate engines block by block, twice, so a drift hits both
    tn = tb_ = math.inf
    for _ in range(2):
        thr(0)
        tb_ = min(tb_, per_call(call, repeats, target / 2))
        thr(NEVER)
        tn = min(tn, per_call(call, repeats, target / 2))
        if min(tn, tb_) > 5 * target:  # large products: one round is plenty (the ratio is far from 1)
            break
    return tn, tb_


def shapes(quick: bool):
    bs, ws = (QUICK_BATCHES, QUICK_WIDTHS) if quick else (BATCHES, WIDTHS)
    for B in bs:
        for IN in ws:
            for OUT in ws:
                yield B, IN, OUT


def policy_time(r: dict, threshold: int) -> float:
    return r["blas_s"] if r["mnk"] >= threshold else r["naive_s"]


def evaluate_threshold(rows: list[dict], threshold: int) -> tuple[float, float, float]:
    """(geometric-mean, 95th-percentile and worst slowdown) of the rule 'BLAS iff
    M*N*K >= threshold' against the per-shape best, on overhead-corrected times."""
    slow = sorted((r["blas_c"] if r["mnk"] >= threshold else r["naive_c"]) / min(r["naive_c"], r["blas_c"])
                  for r in rows)
    gm = math.exp(sum(math.log(x) for x in slow) / len(slow))
    return gm, slow[min(len(slow) - 1, int(0.95 * len(slow)))], slow[-1]


def fmt_int(n: int) -> str:
    return "never" if n >= NEVER else f"{n:,}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer shapes, float32 only (CI smoke run)")
    ap.add_argument("--target", type=float, default=None,
                    help="seconds per timing loop (default 0.004; quick 0.001)")
    ap.add_argument("--repeats", type=int, default=None, help="timing loops per engine (default 3; quick 2)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="threads of fastopt's OpenBLAS during the run (default 1; 0: its default). "
                         "The crossover lies where OpenBLAS runs one thread anyway (it splits work only "
                         "from M*N*K ~ 262,144); its multi-threaded calls stall for whole scheduler ticks "
                         "(4 ms) when another process holds a core")
    ap.add_argument("--json", metavar="PATH", help="also write every timing to this JSON file")
    args = ap.parse_args(argv)
    target = args.target or (0.001 if args.quick else 0.004)
    repeats = args.repeats or (2 if args.quick else 3)
    dtypes = (np.float32,) if args.quick else (np.float32, np.float64)
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)

    facts = machine_facts()
    old_threshold = fo._core.blas_threshold()
    gemm = fo._core.gemm
    a1, b1, c1 = (np.ones((1, 1), np.float32) for _ in range(3))
    fo._core.blas_threshold(NEVER)
    overhead = min(per_call(lambda: gemm(0, 0, 1.0, a1, b1, 0.0, c1), 5, 0.02) for _ in range(2))
    fo._core.blas_threshold(old_threshold)
    print_header("fastopt GEMM crossover: OpenBLAS vs the C loop", facts, [
        f"per-call cost of `_core.gemm` (a 1x1x1 product): {overhead * 1e6:.2f} µs, subtracted from both "
        "engines' times before they are compared",
        f"B in {QUICK_BATCHES if args.quick else BATCHES}, IN/OUT in {QUICK_WIDTHS if args.quick else WIDTHS}, "
        f"{', '.join(np.dtype(d).name for d in dtypes)}; loops of ~{target * 1e3:.0f} ms, best of {repeats}, "
        "engines alternating",
        f"fastopt's OpenBLAS limited to {args.blas_threads} thread(s) for this run (--blas-threads)"
        if args.blas_threads > 0 else "fastopt's OpenBLAS at its default threads"])
    limiter = fastopt_blas_limit(args.blas_threads)
    limiter.__enter__()

    rows: list[dict] = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        seen = set()
        for dtype in dtypes:
            for case, (ta, tb, _) in CASES.items():
                for B, IN, OUT in shapes(args.quick):
                    M, N, K = mnk_of(case, B, IN, OUT)
                    key = (np.dtype(dtype).name, case, M, N, K)
                    if key in seen:  # e.g. NN and NT share shapes when IN == OUT
                        continue
                    seen.add(key)
                    tn, tbl = time_pair(ta, tb, M, N, K, dtype, rng, target, repeats)
                    rows.append({"dtype": np.dtype(dtype).name, "case": case, "B": B, "IN": IN, "OUT": OUT,
                                 "M": M, "N": N, "K": K, "mnk": M * N * K, "naive_s": tn, "blas_s": tbl,
                                 "naive_c": max(tn - overhead, FLOOR), "blas_c": max(tbl - overhead, FLOOR)})
    finally:
        fo._core.blas_threshold(old_threshold)
        if gc_was:
            gc.enable()

    # ------------------------------------------------------------ crossover per case
    print("\n### Crossover per transpose case (ratio = BLAS time / C-loop time, per-call cost subtracted)\n")
    print("| dtype | case | product | shapes | first M*N*K where BLAS wins | BLAS wins on every shape from M*N*K | "
          "ratio at M*N*K ~ 4k / 32k / 262k | BLAS wins below 32,768 / C loop wins at or above |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    summary = {"overhead_s": overhead, "cases": {}}
    for dtype in dtypes:
        dn = np.dtype(dtype).name
        for case, (_, _, desc) in CASES.items():
            rs = sorted((r for r in rows if r["dtype"] == dn and r["case"] == case), key=lambda r: r["mnk"])
            wins = [r for r in rs if r["blas_c"] < r["naive_c"]]
            first_win = wins[0]["mnk"] if wins else NEVER
            # smallest m such that BLAS wins for every shape with mnk >= m
            always_from = NEVER
            for r in reversed(rs):
                if r["blas_c"] < r["naive_c"]:
                    always_from = r["mnk"]
                else:
                    break

            def ratio_near(v):
                near = [r for r in rs if v / 2 <= r["mnk"] <= v * 2]
                if not near:
                    return "-"
                g = math.exp(sum(math.log(r["blas_c"] / r["naive_c"]) for r in near) / len(near))
                return f"{g:.2f}"
            below = sum(1 for r in rs if r["mnk"] < old_threshold and r["blas_c"] < r["naive_c"])
            above = sum(1 for r in rs if r["mnk"] >= old_threshold and r["blas_c"] >= r["naive_c"])
            print(f"| {dn} | {case} | {desc} | {len(rs)} | {fmt_int(first_win)} | {fmt_int(always_from)} | "
                  f"{ratio_near(4096)} / {ratio_near(32768)} / {ratio_near(262144)} | {below} / {above} |")
            summary["cases"][f"{dn} {case}"] = {"first_win": first_win, "always_from": always_from}

    # ------------------------------------------------------------ recommended threshold
    candidates = sorted({r["mnk"] for r in rows} | {2 ** k for k in range(0, 25)} | {old_threshold})
    scored = []
    for t in candidates:
        gm, p95, _ = evaluate_threshold(rows, t)
        scored.append((gm, p95, t))
    best_gm = min(s[0] for s in scored)
    # among thresholds within 1% of the best geometric mean (closer than the noise), a round
    # one (a power of two) first, then the smallest 95th-percentile slowdown
    is_pow2 = lambda t: t > 0 and t & (t - 1) == 0  # noqa: E731
    near = [s for s in scored if s[0] <= best_gm * 1.01]
    near.sort(key=lambda s: (0 if is_pow2(s[2]) else 1, round(s[1], 2), s[2]))
    rec = near[0][2]
    pow2 = [s for s in near if is_pow2(s[2])]
    print("\n### Choosing `fo_blas_threshold` (BLAS iff M*N*K >= threshold), all cases and dtypes\n")
    print("Slowdown = time of the rule's engine / time of the faster engine, per shape (per-call cost "
          "subtracted); 1.00 is the oracle.\n")
    print("| threshold | geometric-mean slowdown | 95th percentile | worst | worst shape |")
    print("|---:|---:|---:|---:|---|")
    show = sorted({0, 4096, 8192, 16384, old_threshold, 65536, 131072, 262144, 1 << 20, NEVER, rec}
                  | ({pow2[0][2]} if pow2 else set()))
    table = []
    for t in show:
        gm, p95, worst = evaluate_threshold(rows, t)
        wr = max(rows, key=lambda r: policy_time(
            {"mnk": r["mnk"], "blas_s": r["blas_c"], "naive_s": r["naive_c"]}, t) / min(r["blas_c"], r["naive_c"]))
        shape = f"{wr['dtype']} {wr['case']} M={wr['M']} N={wr['N']} K={wr['K']}"
        tag = " (current default)" if t == old_threshold else " (recommended)" if t == rec else ""
        print(f"| {fmt_int(t)}{tag} | {gm:.3f} | {p95:.2f} | {worst:.2f} | {shape} |")
        table.append({"threshold": t, "geomean_slowdown": gm, "p95_slowdown": p95, "worst_slowdown": worst,
                      "worst_shape": shape})
    per_dtype = {}
    for dtype in dtypes:
        dn = np.dtype(dtype).name
        sub = [r for r in rows if r["dtype"] == dn]
        per_dtype[dn] = min(candidates, key=lambda t: evaluate_threshold(sub, t)[0])
    gm_cur, p_cur, _ = evaluate_threshold(rows, old_threshold)
    gm_rec, p_rec, _ = evaluate_threshold(rows, rec)
    print(f"\nRecommendation: `fo_blas_threshold = {rec}` (geometric-mean slowdown {gm_rec:.3f}, 95th percentile "
          f"{p_rec:.2f}) against the current {old_threshold} ({gm_cur:.3f}, {p_cur:.2f}); best "
          + ", ".join(f"{k} alone: {v:,}" for k, v in per_dtype.items()) + ".")
    summary.update(recommended=rec, current=old_threshold, per_dtype_best=per_dtype,
                   geomean_current=gm_cur, geomean_recommended=gm_rec)

    # ------------------------------------------------------------ the articles' network
    print("\n### The articles' network (13 -> Dense(10, relu) -> Dense(1), batch 32; last batch 20)\n")
    print("| product | M x N x K | M*N*K | engine at the current threshold | C loop µs | BLAS µs |")
    print("|---|---|---:|---|---:|---:|")
    art = [("L1 forward NN", 0, 0, 32, 10, 13), ("L1 dW TN", 1, 0, 13, 10, 32),
           ("L2 forward NN", 0, 0, 32, 1, 10), ("L2 dW TN", 1, 0, 10, 1, 32), ("L2 dX NT", 0, 1, 32, 10, 1)]
    art_rows = []
    try:
        for label, ta, tb, M, N, K in art:
            tn, tbl = time_pair(ta, tb, M, N, K, np.float32, rng, target, repeats)
            eng = "BLAS" if M * N * K >= old_threshold else "C loop"
            print(f"| {label} | {M} x {N} x {K} | {M * N * K:,} | {eng} | {(tn - overhead) * 1e6:.2f} | "
                  f"{(tbl - overhead) * 1e6:.2f} |")
            art_rows.append({"product": label, "M": M, "N": N, "K": K, "naive_s": tn, "blas_s": tbl})
    finally:
        fo._core.blas_threshold(old_threshold)
    fits = []
    x = rng.standard_normal((404, 13)).astype(np.float32)
    y = rng.standard_normal(404).astype(np.float32)
    epochs = 10 if args.quick else 100
    thresholds = [(0, "0 (every product to BLAS)"), (4160, "4,160 (the layer-1 products to BLAS)"),
                  (old_threshold, f"{old_threshold:,} (current default)"), (NEVER, "never (C loop only)")]
    if rec not in (0, 4160, old_threshold):
        thresholds.insert(3, (rec, f"{rec:,} (recommended)"))
    for t, label in thresholds:
        fo._core.blas_threshold(t)
        try:
            m = fo.Sequential([fo.Dense(10, activation="relu", input_shape=(13,)), fo.Dense(1)], seed=0)
            m.compile(optimizer="adam", loss="mse")
            m.fit(x, y, epochs=2, verbose=0)
            best = math.inf
            for _ in range(3 if args.quick else 7):
                t0 = time.perf_counter()
                m.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
                best = min(best, time.perf_counter() - t0)
        finally:
            fo._core.blas_threshold(old_threshold)
        fits.append((label, best))
    base = next(b for l, b in fits if "current" in l)
    print(f"\n`fit(epochs={epochs}, batch_size=32)` on 404 x 13 float32 at several thresholds:\n")
    print("| threshold | time / current default | ms per fit | µs per step |")
    print("|---|---:|---:|---:|")
    for label, b in fits:
        print(f"| {label} | {b / base:.2f}x | {b * 1e3:.2f} | {b / (epochs * 13) * 1e6:.2f} |")
    summary["articles_fit"] = {label: b for label, b in fits}
    limiter.__exit__(None, None, None)
    print()
    return finish({"machine": facts, "quick": args.quick, "overhead_s": overhead, "rows": rows,
                   "thresholds": table, "articles_products": art_rows}, summary, t_start, args.json)


if __name__ == "__main__":
    sys.exit(main())
