"""What every bench_*.py shares: the imports of fastopt and (optional) torch,
torch's CPU capability for the machine facts, one row of a results table with
its JSON record, and the end of a run (total time, JSON file)."""
from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time
from typing import Callable, Optional

try:
    import fastopt as fo
except ImportError:  # run from a source checkout without PYTHONPATH=python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import fastopt as fo

try:
    import torch
except ImportError:
    torch = None

__all__ = ["fo", "torch", "with_torch_cpu_capability", "clone_facts", "clone_line", "per_call", "table_row",
           "finish"]


def with_torch_cpu_capability(facts: dict) -> dict:
    """``facts`` with torch's ATen CPU capability (e.g. AVX512) added, when torch can tell."""
    if torch is not None:
        try:
            facts["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        except Exception:
            pass
    return facts


def clone_facts() -> dict:
    """The CPU model, the features fastopt's clone resolver looks at, and the
    kernel clone that runs (``_core.kernel_clone``: the first of avx512f, avx2
    the CPU has, else default; or the clone forced at build time)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    feats = fo._core.cpu_features()
    clone = fo._core.kernel_clone()
    rule = ("avx512f" if feats.get("avx512f") else "avx2" if feats.get("avx2") else "default")
    return {"cpu_model": model, "cpu_features": feats, "kernel_clone": clone,
            "kernel_clone_forced": feats.get("avx512f") is not None and clone != rule}


def clone_line(facts: dict) -> str:
    """One header line: the CPU model, its vector features, the kernel clone that runs."""
    feats = [k for k, v in facts["cpu_features"].items() if v]
    forced = " (forced at build time with FASTOPT_FORCE_CLONE)" if facts.get("kernel_clone_forced") else ""
    return (f"CPU: {facts['cpu_model']} ({', '.join(feats) or 'no AVX'}); fastopt's vectorized kernels run "
            f"the **{facts['kernel_clone']}** clone{forced}")


def per_call(fn: Callable[[], object], repeats: int, target: float) -> float:
    """Seconds per call of a fast ``fn``: loops of calls sized to last about
    ``target`` seconds (calibrated as timeit.Timer.autorange), the best of
    ``repeats`` loops, the garbage collector off while timing."""
    for _ in range(3):
        fn()
    number = 1
    while True:
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


def table_row(rec: dict, error: Optional[str], columns: int,
              ran: Callable[[], tuple[str, dict]]) -> dict:
    """Print one row of a Markdown table of ``columns`` columns and fill its
    JSON record ``rec`` (which names the row in ``rec["name"]``); return ``rec``.

    A row that did not run (``error`` set) prints as
    ``| name | not run: error | | ... |`` and records ``error``; otherwise
    ``ran()`` returns the row's printed line and the figures to record."""
    if error:
        print(f"| {rec['name']} | not run: {error} |" + " |" * (columns - 2))
        rec["error"] = error
    else:
        line, figures = ran()
        print(line)
        rec.update(figures)
    return rec


def finish(results: dict, summary: dict, t_start: float, json_path: Optional[str]) -> int:
    """End a run: print the total time, add ``summary`` and ``elapsed_s`` to
    ``results`` and write them to ``json_path`` (if given); return exit code 0."""
    elapsed = time.perf_counter() - t_start
    print(f"- total benchmark time: {elapsed:.1f} s")
    results["summary"] = summary
    results["elapsed_s"] = elapsed
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=1, default=str)
        print(f"\n(results written to {json_path})")
    return 0
