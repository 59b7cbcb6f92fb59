"""Hyperparameter search over learning rate, batch size and the like.

Every combination trains a fresh model with ``fit`` (whose epochs run in C),
so a grid of a few dozen settings of a small network takes about a second::

    def build(learning_rate):
        model = fo.Sequential([fo.Dense(10, activation="relu", input_shape=(13,)), fo.Dense(1)], seed=0)
        model.compile(optimizer=fo.optimizers.Adam(learning_rate), loss="mse")
        return model

    search = fo.model_selection.grid_search(
        build, {"learning_rate": [1e-3, 1e-2, 1e-1], "batch_size": [16, 32, 64]},
        x_train, y_train, epochs=50, validation_split=0.2)
    search.best_params, search.best_score

``executor=`` runs the settings at once: ``"threads"`` (one worker per CPU;
``fit`` releases the GIL), a ``concurrent.futures.ProcessPoolExecutor``, or a
Dask cluster's ``distributed.Client(...).get_executor()``.  One setting is one
task; the scores are the same bit for bit as in the sequential search.  For
processes and clusters ``build`` must be importable by reference (a
module-level function, not a lambda).
"""
from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ._executors import Executor, check_executor, map_tasks
from .data import train_test_split

__all__ = ["grid_search", "SearchResult", "FIT_PARAMS"]

# grid keys that go to fit(); every other key is an argument of build_model
FIT_PARAMS = frozenset({"batch_size", "epochs", "shuffle"})


@dataclass
class SearchResult:
    """``results``: one dict per combination (its parameters, ``score`` and the
    final epoch's logs), in grid order; ``best_params`` and ``best_score`` are
    those of the lowest score (NaN scores never win)."""

    monitor: str
    results: list = field(default_factory=list)

    @property
    def best(self) -> dict:
        finite = [r for r in self.results if math.isfinite(r["score"])]
        if not finite:
            raise ValueError(f"no combination gave a finite {self.monitor}")
        return min(finite, key=lambda r: r["score"])

    @property
    def best_params(self) -> dict:
        return dict(self.best["params"])

    @property
    def best_score(self) -> float:
        return self.best["score"]

    def table(self) -> str:
        """The results as a Markdown table, best first."""
        keys = list(self.results[0]["params"]) if self.results else []
        rows = sorted(self.results, key=lambda r: (not math.isfinite(r["score"]), r["score"]))
        lines = ["| " + " | ".join(keys + [self.monitor]) + " |", "|" + "---|" * (len(keys) + 1)]
        lines += ["| " + " | ".join([str(r["params"][k]) for k in keys] + [f"{r['score']:.6g}"]) + " |"
                  for r in rows]
        return "\n".join(lines)


def _grid(param_grid: Mapping[str, Sequence]) -> list[dict]:
    if not isinstance(param_grid, Mapping) or not param_grid:
        raise ValueError("param_grid must be a non-empty dict of name -> list of values")
    for name, values in param_grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"param_grid[{name!r}] must be a list of values, got {values!r}")
        if len(list(values)) == 0:
            raise ValueError(f"param_grid[{name!r}] is empty")
    names = list(param_grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(param_grid[n]) for n in names))]


def grid_search(build_model: Callable[..., Any], param_grid: Mapping[str, Sequence], x, y, *,
                epochs: int = 10, batch_size: Optional[int] = 32, validation_split: float = 0.2,
                validation_data: Optional[tuple] = None, monitor: str = "val_loss",
                random_state: Optional[int] = 0, executor: Executor = None) -> SearchResult:
    """Train one model per combination of ``param_grid`` and score it by ``monitor``
    at the last epoch (lower is better).

    ``build_model(**params)`` gets the combination's keys that are not fit
    arguments and returns a compiled model; ``batch_size``, ``epochs`` and
    ``shuffle`` in the grid go to ``fit`` (the keyword arguments are their
    defaults).  Without ``validation_data``, ``validation_split`` of the samples
    are held out once, with ``train_test_split(random_state=random_state)``, so
    every combination sees the same split.

    ``executor``: ``None`` (one setting after another), ``"threads"`` or a
    ``concurrent.futures.Executor``; see the module's docstring.
    """
    combos = _grid(param_grid)
    check_executor(executor)
    if validation_data is None:
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be in (0, 1) without validation_data, got {validation_split}")
        x, x_val, y, y_val = train_test_split(x, y, test_size=validation_split, random_state=random_state)
        validation_data = (x_val, y_val)
    if len(validation_data) != 2:
        raise ValueError("validation_data must be (x_val, y_val)")
    tasks = []
    casts = _DataCasts()
    for params in combos:
        fit_args = {"epochs": epochs, "batch_size": batch_size}
        fit_args.update({k: v for k, v in params.items() if k in FIT_PARAMS})
        tasks.append((build_model, {k: v for k, v in params.items() if k not in FIT_PARAMS}, fit_args, casts))
    search = SearchResult(monitor=monitor)
    for params, logs in zip(combos, map_tasks(_train_setting, tasks, (x, y, *validation_data), executor)):
        if monitor not in logs:
            raise ValueError(f"monitor {monitor!r} is not among the logs: {sorted(logs)}")
        search.results.append({"params": params, "score": float(logs[monitor]), "logs": logs})
    return search


class _DataCasts:
    """The search's data cast once to a model's float dtype, for every setting
    trained in this process; without it each setting's ``fit`` and ``evaluate``
    copied the data again (float64 data, float32 models), and NumPy lets go of
    the GIL during such a copy: in a threaded search the other worker's Python
    (building its model) then held this one up.  Only C-contiguous, aligned,
    native float arrays are cast (exactly as ``fit`` would cast them); anything
    else goes to ``fit`` as it is.  Pickled empty: each process casts its own."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done: dict = {}  # dtype -> (the arrays given, their casts)

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __call__(self, dtype, arrays: tuple) -> tuple:
        """``arrays`` cast to ``dtype`` (a model's; anything but float32 and
        float64 leaves them as they are)."""
        try:
            dtype = None if dtype is None else np.dtype(dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            return arrays
        with self._lock:
            done = self._done.get(dtype)
            if done is None or any(a is not b for a, b in zip(done[0], arrays)):
                done = (arrays, tuple(_cast(a, dtype) for a in arrays))
                self._done[dtype] = done
        return done[1]


def _cast(a, dtype: np.dtype):
    if (type(a) is np.ndarray and a.dtype.kind == "f" and a.dtype.isnative and a.dtype != dtype
            and a.flags.c_contiguous and a.flags.aligned):
        return a.astype(dtype)
    return a


def _train_setting(task: tuple, x, y, x_val, y_val) -> dict:
    """One setting of a grid (a task of ``map_tasks``): build, fit, the last epoch's
    logs.  The validation logs are those ``fit(validation_data=...)`` gives for
    its last epoch, from one ``evaluate`` after training: fit then runs all its
    epochs in C without the GIL, instead of returning to Python to evaluate
    after every epoch."""
    build_model, model_params, fit_args, casts = task
    model = build_model(**model_params)
    x, y, x_val, y_val = casts(getattr(model, "dtype", None), (x, y, x_val, y_val))
    history = model.fit(x, y, verbose=0, **fit_args)
    logs = {k: v[-1] for k, v in history.history.items() if v}
    logs.update({"val_" + k: v for k, v in model.evaluate(x_val, y_val, return_dict=True).items()})
    return logs
