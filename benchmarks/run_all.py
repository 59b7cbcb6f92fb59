"""Run every fastopt benchmark and print one Markdown table for the README.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python python benchmarks/run_all.py
    ... run_all.py --quick            # CI smoke run: every script with --quick
    ... run_all.py --out results/     # also keep each script's full output and JSON there
    ... run_all.py --verbose          # echo each script's full output as it finishes
    ... run_all.py --markdown speed.md  # also write the README section alone to speed.md

Each ``bench_*.py`` runs in its own process (this interpreter, ``--quick``
passed through, ``--json`` into a scratch directory), one after the other so
they never compete for the cores.  The combined table takes its figures from
those JSON files: every figure is a ratio measured within one script's run
(peer time / fastopt time, > 1: fastopt is faster).  The table is only as good
as a quiet machine: run it with nothing else busy.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set by some images for older OpenBLAS
builds) slow a current OpenBLAS; the command above unsets them for the run.
This script does not touch the environment itself: it warns when they are set.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# the table's order (the README's)
TABLE_ORDER = ["bench_optim.py", "bench_train.py", "bench_gemm.py", "bench_articles.py", "bench_demo.py",
               "bench_compare.py", "bench_classify.py"]
# the order they run in: bench_optim last.  It keeps memory busy on every core
# for about 90 s, and in two full runs on a shared virtual machine the
# small-network fits timed right after it ran 1.5x slower than in a run on
# their own (torch's did not), while its own figures are medians of
# interleaved pairs that a slow phase does not bias.
SCRIPTS = [s for s in TABLE_ORDER if s != "bench_optim.py"] + ["bench_optim.py"]


def reproduce_command(args) -> str:
    cmd = ["env", "-u", "OPENBLAS_CORETYPE", "-u", "OPENBLAS_L2_SIZE", "PYTHONPATH=python",
           "python", "benchmarks/run_all.py"]
    if args.quick:
        cmd.append("--quick")
    return " ".join(cmd)


def run_script(name: str, args, outdir: str) -> dict:
    path = os.path.join(HERE, name)
    rec = {"script": name, "ok": False}
    if not os.path.exists(path):
        rec["error"] = "not found"
        return rec
    json_path = os.path.join(outdir, name.replace(".py", ".json"))
    cmd = [sys.executable, path, "--json", json_path] + (["--quick"] if args.quick else [])
    rec["command"] = " ".join(shlex.quote(c) for c in cmd)
    t0 = time.perf_counter()
    print(f"running {name}{' --quick' if args.quick else ''} ...", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        rec["error"] = f"timed out after {args.timeout} s"
        return rec
    rec["seconds"] = time.perf_counter() - t0
    rec["returncode"] = proc.returncode
    with open(os.path.join(outdir, name.replace(".py", ".md")), "w") as f:
        f.write(proc.stdout)
        if proc.stderr:
            f.write("\n<!-- stderr -->\n" + proc.stderr)
    if args.verbose:
        print(proc.stdout, flush=True)
    print(f"  {name}: exit {proc.returncode} after {rec['seconds']:.1f} s", file=sys.stderr, flush=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        rec["error"] = f"exit code {proc.returncode}: " + " / ".join(tail)
        return rec
    try:
        with open(json_path) as f:
            rec["data"] = json.load(f)
        rec["ok"] = True
    except (OSError, ValueError) as e:
        rec["error"] = f"no JSON results ({e})"
    return rec


# --------------------------------------------------------------------------
# the combined table: one row per headline figure
# --------------------------------------------------------------------------

def g(d, *keys, default=None):
    """d[k0][k1]... or default when any level is missing."""
    for k in keys:
        if isinstance(d, dict) and k in d:
            d = d[k]
        elif isinstance(d, (list, tuple)) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return default
    return d


def x(r) -> str:
    if r is None:
        return "n/a"
    return f"**{r:.0f}x**" if r >= 10 else f"**{r:.2f}x**"


def rows_optim(data) -> list[tuple]:
    out = []
    s = g(data, "summary", default={})
    n = g(data, "n")
    threads = g(data, "machine", "torch_threads_default")
    step_threads = g(data, "machine", "step_threads")
    for kind, label in (("adam", "Adam"), ("sgd", "SGD(momentum)"), ("rmsprop", "RMSprop"), ("adagrad", "Adagrad")):
        k = g(s, kind, default={})
        best = [v for key, v in k.items() if key.startswith("best_torch_t")] if isinstance(k, dict) else []
        if best:
            # the best torch variant over the thread counts tried (median of rounds, with their range)
            key, (name, ratio) = min(((key, v) for key, v in k.items() if key.startswith("best_torch_t")),
                                     key=lambda kv: kv[1][1])
            span = g(k, key.replace("best_torch_t", "best_torch_range_t"))
            out.append((f"{label} step, {n:,} float32 params", "torch.optim, its fastest variant "
                        f"({name})", x(ratio) + (f" ({span[0]:.2f}-{span[1]:.2f} over rounds)" if span else ""),
                        "faster"))
        floor = g(k, "fraction_of_floor")
        if floor is not None:
            span = g(k, "fraction_of_floor_range")
            out.append((f"{label} step, {n:,} float32 params",
                        f"memory floor: one C pass over the same arrays, {step_threads} thread(s)",
                        f"{floor:.2f} of the floor" + (f" ({span[0]:.2f}-{span[1]:.2f} over blocks)" if span else ""),
                        ">= 0.95"))
        frac = g(k, f"fraction_of_copy_bw_t{threads}")
        if frac is not None and kind == "adam":
            out.append((f"{label} step, {n:,} float32 params", "memory bandwidth (np.copyto, 1 thread)",
                        f"{frac:.0%} of copy bandwidth", ">= 80%"))
    us = g(s, "per_call_us")
    if us is not None:
        out.append(("`apply_gradients` on one 10-element array", "per-call overhead", f"{us:.2f} µs", "<= 1 µs"))
    return out


def rows_train(data) -> list[tuple]:
    out = []
    s = g(data, "summary", "small", default={})
    epochs = g(data, "small", "epochs")
    what = f"13-10-1 net, Adam, {epochs} epochs x 13 batches of 32 (`fit`)"
    if "torch_idiomatic_ratio" in s:
        out.append((what, "PyTorch eager loop (randperm, default Adam, default threads)",
                    x(s["torch_idiomatic_ratio"]), ">= 20x"))
        out.append((what, f"PyTorch, its fastest variant here ({s['torch_best_name'].replace('torch eager, ', '')})",
                    x(s["torch_best_ratio"]), ">= 20x"))
    if "sklearn_best_ratio" in s:
        out.append((what, "scikit-learn MLPRegressor (adam, same epochs)", x(s["sklearn_best_ratio"]), ">= 10x"))
    b = g(data, "summary", "big", default={})
    if "torch_best_ratio" in b:
        out.append(("1 step, batch 256, 1024-1024-1024-1, Adam (`fit`)",
                    f"PyTorch eager step, fastest variant ({b['torch_best_name'].replace('torch eager step, ', '')})",
                    x(b["torch_best_ratio"]), ">= 1x"))
    if "fastopt_fit_gflops" in b and "numpy_gemm_gflops" in b:
        out.append(("same step: GEMM FLOP rate over the whole step",
                    "NumPy matmul alone on the same products (its better thread setting)",
                    f"{b['fastopt_fit_gflops']:.0f} vs {b['numpy_gemm_gflops']:.0f} GFLOP/s", ""))
    return out


def rows_gemm(data) -> list[tuple]:
    s = g(data, "summary", default={})
    out = []
    if "recommended" in s:
        out.append(("small products: OpenBLAS vs the C loop",
                    f"threshold {s['current']:,} (current) vs {s['recommended']:,} (measured best)",
                    f"geo-mean slowdown {s['geomean_current']:.2f} vs {s['geomean_recommended']:.2f}",
                    "1.00 = per-shape best"))
    fits = g(s, "articles_fit", default={})
    cur = next((v for k, v in fits.items() if "current" in k), None)
    best = min(fits.values()) if fits else None
    if cur and best:
        label = next(k for k, v in fits.items() if v == best)
        out.append(("13-10-1 net `fit` at different BLAS thresholds", f"current threshold vs {label}",
                    x(cur / best), ""))
    return out


def rows_articles(data) -> list[tuple]:
    out = []
    s0 = g(data, "summary", "article000", default={})
    iters = g(data, "article000", "iterations")
    if s0:
        out.append((f"article 000 `fo.gradient_descent`, 100 samples, {iters} iterations",
                    "the article's NumPy (sign fixed)", x(s0.get("ratio_article_numpy")), ">= 150x"))
        out.append((f"article 000 `fo.gradient_descent`, 100 samples, {iters} iterations",
                    "a tidy NumPy loop", x(s0.get("ratio_tidy_numpy")), ""))
    sg = g(data, "summary", "gradient_call", default={})
    if sg:
        out.append(("`fo.gradient` on 100x1, one call", "per-call time", f"{sg['fastopt_us']:.2f} µs", "<= 1.5 µs"))
        out.append(("`fo.gradient` on 100x1, one call", "the article's NumPy `gradient` (sign fixed)",
                    x(sg.get("ratio_article_numpy")), ">= 8x"))
    steps = g(data, "article004", "steps")
    for opt in ("sgd", "adam"):
        s = g(data, "summary", "article004", opt, default={})
        if not s:
            continue
        what = f"article 004 Dense(1), {steps} full-batch {'GD' if opt == 'sgd' else 'Adam'} steps (`fit`)"
        if "numpy_vs_fit" in s:
            out.append((what, "NumPy loop", x(s["numpy_vs_fit"]), ""))
        if "torch_best_vs_fit" in s:
            out.append((what, "PyTorch eager loop (faster thread setting)", x(s["torch_best_vs_fit"]), ""))
        if "numpy_vs_tape" in s:
            out.append((f"same, as a `compute_gradients` + `apply_gradients` loop ({'SGD' if opt == 'sgd' else 'Adam'})",
                        "NumPy loop", x(s["numpy_vs_tape"]), ">= 5x"))
    st = g(data, "summary", "train_on_batch", default={})
    if st:
        what = "`train_on_batch` on Dense(1), 100 samples, Adam"
        if "error" in st:
            out.append((what, "per-call time", f"not run ({st['error']})", "<= 1.5 µs"))
        else:
            out.append((what, "per-call time", f"{st['fastopt_us']:.2f} µs", "<= 1.5 µs"))
    s2 = g(data, "summary", "article002", default={})
    if "numpy_vs_fit" in s2:
        out.append((f"article 002 `fit` (x = 1..5), {g(data, 'article002', 'epochs')} full-batch epochs",
                    "NumPy loop", x(s2["numpy_vs_fit"]), ">= 30x"))
    return out


def rows_demo(data) -> list[tuple]:
    out = []
    loops = g(data, "summary", "loop_vs_numpy", default={})
    wholes = g(data, "summary", "whole_vs_numpy", default={})
    for num, r in loops.items():
        out.append((f"`python -m fastopt`, article {num}: the article's loop written with fastopt",
                    "the same loop in NumPy", x(r), ">= 4x"))
    for num, r in wholes.items():
        out.append((f"`python -m fastopt`, article {num}: the whole loop in one call",
                    "the same loop in NumPy", x(r), ""))
    return out


def rows_compare(data) -> list[tuple]:
    out = []
    s = g(data, "summary", default={})
    epochs = g(data, "grid", "epochs")
    what = f"grid of 8 Adam learning rates, article 003's 13-10-1 net, {epochs} epochs (`grid_search`)"
    if s.get("threads_over_sequential") is not None:
        out.append((what + ', executor="threads"', "the same search, sequential",
                    x(s["threads_over_sequential"]), ">= 1.7x"))
    if s.get("sklearn_over_threads") is not None:
        out.append((what + ', executor="threads"', "scikit-learn GridSearchCV(MLPRegressor), n_jobs=2",
                    x(s["sklearn_over_threads"]), ">= 20x"))
    if "identical_scores" in s:
        out.append((what, "every executor's scores vs the sequential ones",
                    "identical" if s["identical_scores"] else "**differ**", "identical"))
    if "compare_s" in s:
        out.append((f"`fo.compare` of six optimizers, article 004's Dense(1), {g(data, 'compare', 'epochs')} epochs",
                    "wall time of the call", f"{s['compare_s'] * 1e3:.1f} ms", "< 100 ms"))
    return out


def rows_classify(data) -> list[tuple]:
    s = g(data, "summary", default={})
    what = f"digits 64-32-10 softmax, sparse CE, Adam, {s.get('epochs', '?')} epochs of batch 32 (`fit`)"
    out = []
    if "torch_ratio" in s:
        out.append((what, "PyTorch eager loop (randperm, default Adam, default threads)", x(s["torch_ratio"]),
                    ">= 20x"))
        out.append((what, "test accuracy vs torch's on the same split",
                    f"{s['fastopt_accuracy']:.3f} vs {s['torch_accuracy']:.3f}", "within 0.01"))
    if "sklearn_ratio" in s:
        out.append((what, "scikit-learn MLPClassifier (adam, same epochs)", x(s["sklearn_ratio"]), ">= 10x"))
    return out


BUILDERS = {"bench_optim.py": rows_optim, "bench_train.py": rows_train, "bench_gemm.py": rows_gemm,
            "bench_articles.py": rows_articles, "bench_demo.py": rows_demo, "bench_compare.py": rows_compare,
            "bench_classify.py": rows_classify}


def machine_line(results: list[dict]) -> list[str]:
    facts = [g(r, "data", "machine") for r in results if r.get("ok") and g(r, "data", "machine")]
    if not facts:
        return []
    m = next((f for f in facts if f.get("blas")), facts[0])  # bench_train's facts name the BLAS kernels
    feats = [k for k, v in (m.get("cpu_features") or {}).items() if v]
    clones = sorted({f.get("kernel_clone") for f in facts if f.get("kernel_clone")})
    lines = [f"- CPU: {m.get('cpu', '?')} ({', '.join(feats) or m.get('simd') or '?'}); fastopt's vectorized kernels: "
             f"the {' / '.join(clones) or '?'} clone"
             + (" (forced at build time)" if any(f.get("kernel_clone_forced") for f in facts) else ""),
             f"- {m.get('cpus_usable', m.get('cpu_count', '?'))} cores; Python {m.get('python')}, "
             f"NumPy {m.get('numpy')}, torch {m.get('torch')} ({m.get('torch_threads_default')} threads)"
             + (f", scikit-learn {m['sklearn']}" if m.get("sklearn") else "")]
    for b in m.get("blas", []) or []:
        if b.get("user_api") == "blas" and b.get("owner") in ("fastopt (scipy-openblas32)", "numpy"):
            lines.append(f"- OpenBLAS of {b['owner']}: {b.get('version')}, kernel {b.get('architecture')}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every script (CI smoke run)")
    ap.add_argument("--out", metavar="DIR", help="keep each script's Markdown output and JSON in DIR")
    ap.add_argument("--only", nargs="+", choices=SCRIPTS, help="run only these scripts")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per script")
    ap.add_argument("--verbose", action="store_true", help="echo each script's full output")
    ap.add_argument("--markdown", metavar="PATH", help="also write the Markdown section (header and table) "
                    "to PATH, to paste into the README")
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            print(f"warning: {var}={os.environ[var]} is set; OpenBLAS may pick a slower kernel. "
                  f"Reproduce with: {reproduce_command(args)}", file=sys.stderr)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fastopt-bench-") as tmp:
        outdir = args.out or tmp
        os.makedirs(outdir, exist_ok=True)
        results = [run_script(name, args, outdir) for name in (args.only or SCRIPTS)]
    results.sort(key=lambda r: TABLE_ORDER.index(r["script"]))

    lines = ["## Speed", "", "Reproduce (from the repository root, nothing else running):", "",
             f"```\n{reproduce_command(args)}\n```", ""]
    lines += machine_line(results)
    lines += [f"- every figure is a ratio measured within one run: peer time / fastopt time (> 1: fastopt is "
              f"faster){'; --quick (smoke run: smaller workloads, few repeats)' if args.quick else ''}", "",
              "| workload | compared with | fastopt speed-up | goal |", "|---|---|---:|---:|"]
    failed = []
    for r in results:
        if not r.get("ok"):
            failed.append(r)
            lines.append(f"| {r['script']} | not run | {r.get('error', '?')} | |")
            continue
        try:
            rows = BUILDERS[r["script"]](r["data"])
        except Exception as e:  # a script changed its JSON: say so, keep the rest
            rows = [(r["script"], "results not understood", f"{type(e).__name__}: {e}", "")]
        lines += [f"| {what} | {peer} | {fig} | {goal} |" for what, peer, fig, goal in rows]
    print("\n".join(lines))
    if args.markdown:  # the table alone, ready for the README
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")
    print(f"\n(total {time.perf_counter() - t0:.0f} s; each script's full tables: "
          f"{'in ' + args.out if args.out else 'run it alone, or pass --out DIR'}"
          f"{'; the table alone: ' + args.markdown if args.markdown else ''})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
