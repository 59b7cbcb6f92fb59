"""What every bench_*.py shares: the imports of fastopt and (optional) torch,
torch's CPU capability for the machine facts, one row of a results table with
its JSON record, and the end of a run (total time, JSON file)."""
from __future__ import annotations

import json
import os
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

__all__ = ["fo", "torch", "with_torch_cpu_capability", "table_row", "finish"]


def with_torch_cpu_capability(facts: dict) -> dict:
    """``facts`` with torch's ATen CPU capability (e.g. AVX512) added, when torch can tell."""
    if torch is not None:
        try:
            facts["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        except Exception:
            pass
    return facts


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
