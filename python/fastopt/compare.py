"""``fo.compare``: the same model trained by several optimizers from the same
initial weights, side by side -- the comparison articles 001 and 004 make by
hand::

    def build(seed):
        return fo.Sequential([fo.Dense(1, input_shape=(1,))], seed=seed)

    result = fo.compare(build, {"GD": ("sgd", 0.01), "Adam": ("adam", 0.01)}, x, y,
                        epochs=1000, batch_size="full", record_path_every=10)
    print(result.table())        # final and best loss, epochs to 1% of the initial loss, time
    result.plot()                # convergence curves (a band over the seeds)
    result.plot_paths()          # each optimizer's (w, b) path over the loss contours

Every run is one ``fit`` (its epochs run in C).  For each seed the model is
built once, and every optimizer's run starts from those weights
(``get_weights`` / ``set_weights``); the seed also drives the run's
shuffling, so ``seeds=(0, 1, 2)`` shows the spread that initialization and
sampling give.  ``executor=`` runs the runs at once (see
``fastopt.model_selection``): one run is one task, and the results are the
same bit for bit whatever runs them.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from . import _core
from . import callbacks as _callbacks
from . import optimizers as _optimizers
from ._checks import check_int, check_real
from ._executors import Executor, check_executor, map_tasks

__all__ = ["compare", "Comparison", "Run", "ComparisonTable", "loss_surface", "six_optimizers",
           "FULL_BATCH"]

FULL_BATCH = "full"  # batch_size="full": the whole training set in every step (gradient descent)

# the keys of a run given as a dict (besides "optimizer"): fit arguments of that run only
_RUN_FIT_KEYS = ("batch_size", "shuffle")

OptimizerSpec = Union[_optimizers.Optimizer, str, tuple, Mapping]


# ---- the optimizers argument -----------------------------------------------------------------

def _optimizer_config(spec: Any) -> dict:
    """The ``optimizers.serialize`` config of a fresh optimizer, from one accepted form."""
    if isinstance(spec, _optimizers.Optimizer):
        return _optimizers.serialize(spec)
    if isinstance(spec, str):
        return _optimizers.serialize(_optimizers.get(spec))
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        name, learning_rate = spec
        return _optimizers.serialize(
            _optimizers.deserialize({"class_name": name, "config": {"learning_rate": learning_rate}}))
    if isinstance(spec, Mapping) and "class_name" in spec:
        return _optimizers.serialize(_optimizers.deserialize(dict(spec)))
    raise TypeError("expected an optimizer, a name ('adam'), a (name, learning_rate) pair, a config "
                    "dict as optimizers.serialize gives, or a dict with an 'optimizer' key; got "
                    f"{type(spec).__name__}")


def _check_batch_size(value: Any, name: str) -> Union[int, str]:
    if isinstance(value, str):
        if value == FULL_BATCH:
            return value
        raise ValueError(f"{name} must be a positive integer or {FULL_BATCH!r}, got {value!r}")
    return check_int(value, name, low=1)


def _parse_runs(optimizers: Any) -> dict[str, tuple[dict, dict]]:
    """name -> (optimizer config, that run's own fit arguments); every entry checked."""
    if not isinstance(optimizers, Mapping) or not optimizers:
        raise TypeError("optimizers must be a non-empty dict of name -> optimizer")
    runs = {}
    for name, spec in optimizers.items():
        if not isinstance(name, str):
            raise TypeError(f"optimizers: names must be strings, got {name!r}")
        where = f"optimizers[{name!r}]"
        fit_args: dict = {}
        if isinstance(spec, Mapping) and "optimizer" in spec:
            unknown = sorted(set(spec) - {"optimizer", *_RUN_FIT_KEYS})
            if unknown:
                raise ValueError(f"{where}: unknown keys {unknown}; a run takes 'optimizer' and "
                                 f"{', '.join(repr(k) for k in _RUN_FIT_KEYS)}")
            if "batch_size" in spec:
                fit_args["batch_size"] = _check_batch_size(spec["batch_size"], f"{where}['batch_size']")
            if "shuffle" in spec:
                if not isinstance(spec["shuffle"], (bool, np.bool_)):
                    raise TypeError(f"{where}['shuffle'] must be True or False")
                fit_args["shuffle"] = bool(spec["shuffle"])
            spec = spec["optimizer"]
        try:
            config = _optimizer_config(spec)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{where}: {e}") from None
        runs[name] = (config, fit_args)
    return runs


def six_optimizers(learning_rate: float = 0.01, minibatch: int = 10) -> dict[str, dict]:
    """The six optimizers articles 001 and 004 set side by side, as a mapping for
    :func:`compare`, all at one ``learning_rate``:

    ========  ====================================================
    GD        ``SGD(learning_rate)``, the full batch in every step
    SGD       ``SGD(learning_rate)`` on shuffled mini-batches of ``minibatch``
    momentum  ``SGD(learning_rate, momentum=0.9)``, full batch
    Adagrad   ``Adagrad(learning_rate)``, full batch
    RMSprop   ``RMSprop(learning_rate)``, full batch
    Adam      ``Adam(learning_rate)``, full batch
    ========  ====================================================
    """
    lr = check_real(learning_rate, "learning_rate", low=0, low_open=True)
    minibatch = check_int(minibatch, "minibatch", low=1)
    full = {"batch_size": FULL_BATCH}
    return {
        "GD": {"optimizer": ("sgd", lr), **full},
        "SGD": {"optimizer": ("sgd", lr), "batch_size": minibatch},
        "momentum": {"optimizer": {"class_name": "SGD", "config": {"learning_rate": lr, "momentum": 0.9}},
                     **full},
        "Adagrad": {"optimizer": ("adagrad", lr), **full},
        "RMSprop": {"optimizer": ("rmsprop", lr), **full},
        "Adam": {"optimizer": ("adam", lr), **full},
    }


# ---- one run, wherever it runs ------------------------------------------------------------------

def _takes_seed(build_model: Callable) -> bool:
    """Whether ``build_model`` takes a positional argument (the seed)."""
    try:
        params = inspect.signature(build_model).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: assume it takes the seed
        return True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.VAR_POSITIONAL)
    return any(p.kind in kinds for p in params)


def _build(build_model: Callable, seed: int, takes_seed: bool, n_features: int):
    model = build_model(seed) if takes_seed else build_model()
    if not model.built:
        model.build((None, n_features))
    return model


@dataclass(frozen=True)
class _Task:
    """Everything one run needs besides the data; picklable when ``build_model``
    is a module-level function."""

    build_model: Callable
    takes_seed: bool
    seed: int
    n_features: int
    weights: list
    optimizer: dict
    fit_args: dict
    loss: Any
    metrics: Optional[list]
    record_every: Optional[int]


class _PathRecorder(_callbacks.Callback):
    """The model's trainable scalars (flattened, in ``get_weights`` order) before
    training and after every ``every``-th epoch and the last one."""

    def __init__(self, every: int, epochs: int):
        self.every, self.epochs = every, epochs
        self.points: list[np.ndarray] = []
        self.at: list[int] = []

    def _add(self, epoch: int) -> None:
        self.points.append(np.concatenate([np.ravel(w) for w in self.model.get_weights()]).astype(np.float64))
        self.at.append(epoch)

    def on_train_begin(self, logs=None):
        self._add(0)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every == 0 or done == self.epochs:
            self._add(done)


def _train_run(task: _Task, x, y, x_val, y_val) -> dict:
    """One run (a task of ``map_tasks``): build, set the seed's initial weights,
    compile with a fresh optimizer, fit; the history, fit's wall time, the final
    weights and the recorded path."""
    model = _build(task.build_model, task.seed, task.takes_seed, task.n_features)
    model.set_weights(task.weights)
    model.compile(optimizer=_optimizers.deserialize(task.optimizer), loss=task.loss, metrics=task.metrics)
    recorder = None if task.record_every is None else _PathRecorder(task.record_every, task.fit_args["epochs"])
    validation = None if x_val is None else (x_val, y_val)
    t0 = time.perf_counter()
    history = model.fit(x, y, validation_data=validation, verbose=0,
                        callbacks=None if recorder is None else [recorder], **task.fit_args)
    seconds = time.perf_counter() - t0
    out = {"history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
           "time": seconds, "weights": model.get_weights(), "path": None, "path_epochs": None}
    if recorder is not None:
        out["path"] = np.stack(recorder.points)
        out["path_epochs"] = np.asarray(recorder.at)
    return out


# ---- the result ---------------------------------------------------------------------------------

@dataclass
class Run:
    """One optimizer's training from one seed's initial weights.

    ``history``: ``fit``'s per-epoch logs (``loss``, metrics, ``val_*``);
    ``initial``: the same logs at the initial weights; ``time``: seconds of
    ``fit``; ``weights``: the final ``get_weights()``; ``path``: with
    ``record_path_every=k``, the trainable scalars (flattened, ``get_weights``
    order) at epochs ``path_epochs`` = 0, k, 2k, ..., epochs."""

    name: str
    seed: int
    history: dict
    time: float
    initial: dict
    weights: list
    path: Optional[np.ndarray] = None
    path_epochs: Optional[np.ndarray] = None

    def epochs_to(self, threshold: float, metric: str = "loss") -> Optional[int]:
        """The first epoch (1-based) whose ``metric`` is at most ``threshold``, or None."""
        values = np.asarray(self.history[metric])
        hit = np.flatnonzero(values <= threshold)
        return int(hit[0]) + 1 if hit.size else None


@dataclass
class ComparisonTable:
    """``str(table)``: one line per optimizer, a Markdown table (mean over seeds,
    ``±`` their standard deviation when there are several); ``rows``: one dict
    per run with the raw figures (``optimizer``, ``seed``, ``final``, ``best``,
    ``best_epoch``, ``threshold``, ``epochs_to_threshold``, ``time``)."""

    metric: str
    threshold_label: str
    rows: list = field(default_factory=list)

    def summary(self) -> list[dict]:
        """One dict per optimizer, over its seeds: ``final``/``best`` (mean and
        ``*_std``), ``epochs_to_threshold`` (the median over the seeds that got
        there, None if none did), ``reached`` and ``runs`` (counts), ``time`` (mean s)."""
        out = []
        for name in dict.fromkeys(r["optimizer"] for r in self.rows):
            rows = [r for r in self.rows if r["optimizer"] == name]
            reached = [r["epochs_to_threshold"] for r in rows if r["epochs_to_threshold"] is not None]
            final = np.array([r["final"] for r in rows])
            best = np.array([r["best"] for r in rows])
            out.append({"optimizer": name, "final": float(final.mean()), "final_std": float(final.std()),
                        "best": float(best.mean()), "best_std": float(best.std()),
                        "epochs_to_threshold": float(np.median(reached)) if reached else None,
                        "reached": len(reached), "runs": len(rows),
                        "time": float(np.mean([r["time"] for r in rows]))})
        return out

    def __str__(self) -> str:
        head = ["optimizer", f"final {self.metric}", f"best {self.metric}",
                f"epochs to {self.threshold_label}", "time"]

        def num(mean, std, runs):
            return f"{mean:.3e}" + (f" ± {std:.1e}" if runs > 1 else "")

        cells = [head]
        for s in self.summary():
            if s["reached"] == 0:
                epochs = "never"
            else:
                epochs = f"{s['epochs_to_threshold']:g}"
                if s["reached"] < s["runs"]:
                    epochs += f" ({s['reached']}/{s['runs']} seeds)"
            cells.append([s["optimizer"], num(s["final"], s["final_std"], s["runs"]),
                          num(s["best"], s["best_std"], s["runs"]), epochs, f"{s['time'] * 1e3:.2f} ms"])
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        lines = ["| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in
                                   enumerate(zip(c, widths))) + " |" for c in cells]
        lines.insert(1, "|" + "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2))
                                       for i, w in enumerate(widths)) + "|")
        return "\n".join(lines)

    __repr__ = __str__


class Comparison:
    """What :func:`compare` returns: ``runs`` (a :class:`Run` per optimizer and
    seed), ``names`` (the optimizers, in the order given), ``seeds``, ``epochs``."""

    def __init__(self, names: list, seeds: tuple, epochs: int, runs: list, model, train_data: tuple,
                 loss: Any):
        self.names, self.seeds, self.epochs, self.runs = names, seeds, epochs, runs
        self._model, self._train_data, self._loss = model, train_data, loss

    def __repr__(self) -> str:
        return f"<Comparison of {self.names} over seeds {list(self.seeds)}, {self.epochs} epochs>"

    def run(self, name: str, seed: Optional[int] = None) -> Run:
        """The run of optimizer ``name`` from ``seed`` (default: the first seed)."""
        seed = self.seeds[0] if seed is None else seed
        for r in self.runs:
            if r.name == name and r.seed == seed:
                return r
        raise KeyError(f"no run of {name!r} with seed {seed!r}; optimizers {self.names}, seeds {list(self.seeds)}")

    def curves(self, name: str, metric: str = "loss") -> np.ndarray:
        """``metric`` per epoch of optimizer ``name``, shape ``(len(seeds), epochs)``."""
        runs = [self.run(name, s) for s in self.seeds]
        if metric not in runs[0].history:
            raise ValueError(f"metric {metric!r} is not among the logs: {sorted(runs[0].history)}")
        return np.array([r.history[metric] for r in runs], dtype=np.float64)

    def table(self, threshold: Optional[float] = None, metric: str = "loss") -> ComparisonTable:
        """Final and best ``metric``, epochs to reach ``threshold`` and time, per
        optimizer (``print`` it) and per run (``.rows``).

        ``threshold=None``: 1% of the run's ``metric`` at its initial weights
        (the same for every optimizer of a seed)."""
        if threshold is not None:
            threshold = check_real(threshold, "threshold")
        if metric not in self.runs[0].history:
            raise ValueError(f"metric {metric!r} is not among the logs: {sorted(self.runs[0].history)}")
        label = f"1% of initial {metric}" if threshold is None else f"{metric} <= {threshold:.3g}"
        table = ComparisonTable(metric=metric, threshold_label=label)
        for name in self.names:
            for seed in self.seeds:
                r = self.run(name, seed)
                values = np.asarray(r.history[metric], dtype=np.float64)
                limit = 0.01 * r.initial[metric] if threshold is None else threshold
                finite = np.where(np.isnan(values), np.inf, values)
                best_epoch = int(np.argmin(finite)) + 1
                table.rows.append({"optimizer": name, "seed": seed, "final": float(values[-1]),
                                   "best": float(values[best_epoch - 1]), "best_epoch": best_epoch,
                                   "threshold": float(limit), "epochs_to_threshold": r.epochs_to(limit, metric),
                                   "time": r.time})
        return table

    # -- figures ---------------------------------------------------------------------------------
    def plot(self, ax=None, metric: str = "loss", log: bool = True):
        """Convergence curves: per optimizer, ``metric`` against the epoch (the
        median over the seeds), with a band from the lowest to the highest seed
        when there are several.  Returns the matplotlib axes."""
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        epochs = np.arange(1, self.epochs + 1)
        for name in self.names:
            curves = self.curves(name, metric)
            (line,) = ax.plot(epochs, np.median(curves, axis=0), label=name)
            if len(self.seeds) > 1:
                ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=line.get_color(),
                                alpha=0.2, linewidth=0)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
        return ax

    def loss_surface(self, p0, p1) -> np.ndarray:
        """The training loss on the grid ``p0 x p1`` of the model's two trainable
        scalars (see :func:`loss_surface`), shape ``(len(p1), len(p0))``."""
        if not _is_mse(self._loss):
            raise ValueError(f"the loss surface is drawn for mean squared error, not {self._loss!r}")
        return loss_surface(self._model, *self._train_data, p0, p1)

    def plot_paths(self, ax=None, levels: Union[int, Sequence[float]] = 12, resolution: int = 101,
                   bounds: Optional[tuple] = None, seed: Optional[int] = None):
        """Each optimizer's path (a line through the recorded points, a circle at
        its end) over the contour lines of the training loss, for a model of
        exactly two trainable scalars (article 004's ``Dense(1)`` on one feature:
        ``w`` and ``b``).  Needs ``compare(..., record_path_every=k)``.

        ``levels``: contour levels, or their number (geometrically spaced between
        the lowest and highest loss on the grid); ``resolution``: grid points per
        axis; ``bounds``: ``((p0_min, p0_max), (p1_min, p1_max))``, by default the
        box around the paths with a margin; ``seed``: whose runs (the first seed).
        The surface is computed in C (:func:`loss_surface`).  Returns the axes."""
        seed = self.seeds[0] if seed is None else seed
        runs = [self.run(name, seed) for name in self.names]
        if runs[0].path is None:
            raise ValueError("no paths were recorded: pass record_path_every=k to compare")
        if runs[0].path.shape[1] != 2:
            raise ValueError(f"plot_paths needs a model of exactly 2 trainable scalars; this one has "
                             f"{runs[0].path.shape[1]}")
        resolution = check_int(resolution, "resolution", low=2)
        if bounds is None:
            points = np.concatenate([r.path for r in runs])
            points = points[np.isfinite(points).all(axis=1)]
            lo, hi = points.min(axis=0), points.max(axis=0)
            margin = 0.1 * (hi - lo) + 0.05 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-3
            bounds = tuple(zip(lo - margin, hi + margin))
        (a0, b0), (a1, b1) = bounds
        p0, p1 = np.linspace(a0, b0, resolution), np.linspace(a1, b1, resolution)
        z = self.loss_surface(p0, p1)
        if isinstance(levels, (int, np.integer)) and not isinstance(levels, bool):
            count = check_int(levels, "levels", low=1)
            top = float(z.max())
            bottom = max(float(z.min()), top * 1e-6, np.finfo(float).tiny)
            levels = np.geomspace(bottom, top, count + 2)[1:-1] if top > bottom else [top]
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        ax.contour(p0, p1, z, levels=np.asarray(levels, dtype=np.float64), colors="0.6", linewidths=0.8)
        ax.plot(*runs[0].path[0], "ko", label="start")
        for r in runs:
            (line,) = ax.plot(r.path[:, 0], r.path[:, 1], marker=".", markersize=3, linewidth=1.2, label=r.name)
            ax.plot(*r.path[-1], "o", markersize=7, markerfacecolor="none", color=line.get_color(),
                    label="_end of " + r.name)
        names = _parameter_names(self._model)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_xlim(a0, b0)
        ax.set_ylim(a1, b1)
        ax.legend()
        return ax


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'fastopt[plot]'") from None
    return plt


def _is_mse(loss: Any) -> bool:
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or loss
    return isinstance(name, str) and name.lower() in ("mse", "mean_squared_error")


# ---- the loss surface of a model linear in two parameters ----------------------------------------

def _linear_two(model) -> tuple[dict, list]:
    """The one Dense layer's config and the weights of a model whose output is
    linear in exactly two trainable scalars; ValueError otherwise."""
    weights = model.get_weights()
    count = sum(int(np.size(w)) for w in weights)
    if count != 2:
        raise ValueError(f"the loss surface needs a model of exactly 2 trainable scalars; this one has {count}")
    layers = model.get_config()["layers"]
    if len(layers) != 1 or layers[0].get("activation") not in (None, "linear"):
        raise ValueError("the loss surface is computed for a model linear in its two parameters: one "
                         "Dense layer without activation (article 004's Dense(1) on one feature)")
    return layers[0], weights


def _parameter_names(model) -> tuple[str, str]:
    layer, weights = _linear_two(model)
    d, u = weights[0].shape
    if (d, u) == (1, 1) and layer["use_bias"]:
        return "w", "b"
    names = [f"kernel[{k}, {o}]" for k in range(d) for o in range(u)]
    return tuple(names + [f"bias[{o}]" for o in range(u)] if layer["use_bias"] else names)


def loss_surface(model, x, y, p0, p1) -> np.ndarray:
    """The mean squared error of ``model`` on ``x, y`` (plus its kernel
    regularizer's penalty) with its two trainable scalars set to each point of
    the grid ``p0 x p1``: ``out[j, i]`` is the loss at ``(p0[i], p1[j])``, the
    layout ``matplotlib``'s ``contour(p0, p1, out)`` takes.  The scalars are
    numbered in ``get_weights()`` order (for ``Dense(1)`` on one feature: ``w``
    then ``b``).  The model's own weights are not changed.

    The model must be linear in its two parameters (one ``Dense`` layer without
    activation).  Then the loss is a quadratic in them: one C pass over the
    data sums its coefficients in float64 about the least-squares point, and
    each grid point costs O(1) (``fastopt.reference.lsq2_surface`` is the
    direct sum it equals)."""
    layer, weights = _linear_two(model)
    dtype = weights[0].dtype
    d, u = weights[0].shape
    x = np.asarray(x, dtype=dtype)
    if x.ndim == 1 and d == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must have shape (n, {d}), got {x.shape}")
    n = x.shape[0]
    y = np.asarray(y, dtype=dtype)
    if y.shape not in ({(n, u), (n,)} if u == 1 else {(n, u)}):
        raise ValueError(f"y must have shape ({n}, {u})" + (f" or ({n},)" if u == 1 else "") + f", got {y.shape}")
    # one row per (sample, output): its coefficient on each of the two parameters
    a = np.zeros((n, u, 2), dtype)
    for o in range(u):
        for k in range(d):
            a[:, o, k * u + o] = x[:, k]
        if layer["use_bias"]:
            a[:, o, d * u + o] = 1
    reg = layer.get("kernel_regularizer") or {}
    in_kernel = [1.0 if i < d * u else 0.0 for i in range(2)]
    l1 = tuple(float(reg.get("l1", 0.0)) * m for m in in_kernel)
    l2 = tuple(float(reg.get("l2", 0.0)) * m for m in in_kernel)
    p0 = np.ascontiguousarray(p0, dtype=np.float64)
    p1 = np.ascontiguousarray(p1, dtype=np.float64)
    out = np.empty((p1.size, p0.size)) if p0.ndim == p1.ndim == 1 else None
    if out is None:
        raise ValueError(f"p0 and p1 must be 1-d, got shapes {p0.shape} and {p1.shape}")
    _core.lsq2_surface(out, a.reshape(n * u, 2), np.ascontiguousarray(y.reshape(n * u)), p0, p1, l1, l2)
    return out


# ---- compare --------------------------------------------------------------------------------------

def compare(build_model: Callable, optimizers: Mapping[str, OptimizerSpec], x, y, *, epochs: int,
            batch_size: Union[int, str], validation_split: float = 0.0,
            validation_data: Optional[tuple] = None, seeds: Sequence[int] = (0,),
            executor: Executor = None, loss: Any = "mean_squared_error",
            metrics: Optional[Sequence] = None, record_path_every: Optional[int] = None) -> Comparison:
    """Train the model of ``build_model`` once per optimizer (and seed), every run
    from the same initial weights, and return the :class:`Comparison`.

    ``build_model(seed)`` (or ``build_model()``) returns a new model; give its
    ``Sequential`` ``seed=seed`` so that its shuffling is reproducible too.  It
    is called once per seed for the initial weights, then once per run, whose
    model gets those weights (``set_weights``) and is compiled with the run's
    optimizer, ``loss`` and ``metrics``.

    ``optimizers`` maps a name (the label in tables and figures) to one of:

    * an optimizer object, e.g. ``fo.optimizers.SGD(0.01, momentum=0.9)``: its
      configuration (``get_config``), not its state -- every run gets a fresh
      copy, the object itself is never stepped;
    * a name, ``"adam"``: that optimizer with Keras' defaults;
    * a pair ``(name, learning_rate)``, ``("sgd", 0.1)``;
    * a config dict as ``fo.optimizers.serialize`` gives,
      ``{"class_name": "Adam", "config": {"learning_rate": 0.01}}``;
    * a dict ``{"optimizer": <one of the above>, "batch_size": 10, "shuffle": False}``:
      a run with its own fit arguments (either key may be left out).

    ``epochs`` and ``batch_size`` (an integer, or ``"full"`` for the whole
    training set in every step, i.e. gradient descent) go to every ``fit``.
    ``validation_data=(x_val, y_val)``, or ``validation_split``: the last
    fraction of the samples, unshuffled, as Keras' ``fit`` takes them; the
    histories then hold ``val_*`` too.  ``seeds``: one run per optimizer and
    seed.  ``record_path_every=k``: record the trainable scalars before
    training and every k epochs (for :meth:`Comparison.plot_paths`); fit then
    returns to Python once per epoch (a callback) instead of once per run, and
    its results are the same bit for bit.

    ``executor``: ``None`` (runs one after another), ``"threads"``, or a
    ``concurrent.futures.Executor`` (a process pool, a Dask cluster's
    ``Client.get_executor()``): one run is one task, and the results are the
    same bit for bit.  For processes and clusters ``build_model`` must be a
    module-level function (pickled by reference) and the optimizers'
    learning rates numbers or schedules.

    All arguments are checked before anything trains.
    """
    runs_spec = _parse_runs(optimizers)
    epochs = check_int(epochs, "epochs", low=1)
    batch_size = _check_batch_size(batch_size, "batch_size")
    if isinstance(seeds, (int, np.integer)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be a sequence of integers, got {seeds!r}")
    seeds = tuple(check_int(s, "seeds[]", low=0) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    if record_path_every is not None:
        record_path_every = check_int(record_path_every, "record_path_every", low=1)
    validation_split = check_real(validation_split, "validation_split", low=0, high=1, high_open=True)
    check_executor(executor)
    metrics = None if metrics is None else list(metrics)

    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"x and y must hold the same samples, got shapes {x.shape} and {y.shape}")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be (x_val, y_val)")
        x_val, y_val = np.asarray(validation_data[0]), np.asarray(validation_data[1])
    elif validation_split > 0:
        split = int(len(x) * (1 - validation_split))  # Keras: the last samples, unshuffled
        if split == 0 or split == len(x):
            raise ValueError(f"validation_split={validation_split} leaves no training or validation samples")
        x, x_val, y, y_val = x[:split], x[split:], y[:split], y[split:]
    else:
        x_val = y_val = None
    n_features = x.shape[1] if x.ndim == 2 else 1
    takes_seed = _takes_seed(build_model)

    # each seed's initial weights and logs, from one model built for it
    first_optimizer = next(iter(runs_spec.values()))[0]
    initial, template = {}, None
    for seed in seeds:
        model = _build(build_model, seed, takes_seed, n_features)
        model.compile(optimizer=_optimizers.deserialize(first_optimizer), loss=loss, metrics=metrics)
        logs = dict(model.evaluate(x, y, return_dict=True))
        if x_val is not None:
            logs.update({"val_" + k: v for k, v in model.evaluate(x_val, y_val, return_dict=True).items()})
        initial[seed] = (model.get_weights(), logs)
        if template is None:
            template = model

    tasks, labels = [], []
    for seed in seeds:
        for name, (config, own_fit_args) in runs_spec.items():
            fit_args = {"epochs": epochs, "batch_size": batch_size, **own_fit_args}
            if fit_args["batch_size"] == FULL_BATCH:
                fit_args["batch_size"] = len(x)
            tasks.append(_Task(build_model, takes_seed, seed, n_features, initial[seed][0], config, fit_args,
                               loss, metrics, record_path_every))
            labels.append((name, seed))
    results = map_tasks(_train_run, tasks, (x, y, x_val, y_val), executor)
    runs = [Run(name=name, seed=seed, initial=initial[seed][1], **result)
            for (name, seed), result in zip(labels, results)]
    return Comparison(list(runs_spec), seeds, epochs, runs, template, (x, y), loss)
