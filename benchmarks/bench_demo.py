"""``python -m fastopt``'s summary as a benchmark: every article's loop form
(its per-step Python loop written with fastopt) and whole-loop form (one
call, the loop in C) against the same work in NumPy (and torch, and
scikit-learn where installed), measured in this one process run.

    PYTHONPATH=python python benchmarks/bench_demo.py            # best of 3 runs per contender
    ... bench_demo.py --quick                                  # one run each (CI smoke run)
    ... bench_demo.py --json demo.json

Goal (issue 11): every article's loop form >= 4x NumPy's loop.  The demo's
own timing rules apply (``fastopt._demo``: best of a few runs, torch on one
thread, each contender timed on its own).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import finish  # noqa: E402
from bench_train import machine_facts, print_header  # noqa: E402  (shared header)

from fastopt import _demo  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one timed run per contender (CI smoke run)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per contender (default 3; quick 1)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    t_start = time.perf_counter()
    facts = machine_facts()
    print_header("python -m fastopt: the articles' loops", facts, [
        f"the demo's own timing: best of up to {repeats} run(s) per contender; speed-up = the peer's time / "
        "fastopt's time, same work, this run"])
    print("\n```")
    rows = _demo.run(repeats, out=print)
    print("```\n")
    recs = [{"article": num, "form": form, "what": what.strip(), "result": result, "fastopt_s": t,
             "speedup": speedups} for num, form, what, result, t, speedups in rows]
    loops = {r["article"]: r["speedup"]["numpy"] for r in recs if r["form"] == "loop" and "numpy" in r["speedup"]}
    wholes = {r["article"]: r["speedup"]["numpy"] for r in recs if r["form"] == "whole" and "numpy" in r["speedup"]}
    summary = {"loop_vs_numpy": loops, "whole_vs_numpy": wholes,
               "worst_loop_vs_numpy": min(loops.values()) if loops else None}
    print("### Against the goals (benchmark figures, not pass/fail tests)\n")
    for num, r in loops.items():
        print(f"- article {num}: loop form {r:.1f}x NumPy's loop (goal >= 4x); whole-loop form "
              f"{wholes.get(num, float('nan')):.1f}x")
    return finish({"machine": facts, "quick": args.quick, "repeats": repeats, "rows": recs}, summary,
                  t_start, args.json)


if __name__ == "__main__":
    sys.exit(main())
