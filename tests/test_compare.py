"""fo.compare: every run is the fit a user would write by hand (same initial
weights, a fresh optimizer), the table's figures come from the histories, the
figures draw those data; the loss-surface kernel against its NumPy twin and
against model.evaluate; bad input refused before anything trains."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastopt as fo
from fastopt import _core
from fastopt import reference as ref
from fastopt.compare import Comparison, loss_surface, six_optimizers

from parallel_builds import build_line, build_small, data


@pytest.fixture(scope="module")
def line_data():
    """Article 004's problem: y = 0.5 x + 3 on 100 samples of one feature (plus a little noise)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 1))
    return x, 0.5 * x[:, 0] + 3 + 0.01 * rng.standard_normal(100)


def direct_fit(build, seed, weights, optimizer, x, y, **fit_args):
    """What compare's run should be: the model of ``seed`` with ``weights``, a fresh optimizer, fit."""
    model = build(seed)
    model.set_weights(weights)
    model.compile(optimizer=optimizer, loss="mean_squared_error")
    history = model.fit(x, y, verbose=0, **fit_args)
    return history.history, model.get_weights()


def same_run(a, b):
    return a.history == b.history and all(np.array_equal(u, v) for u, v in zip(a.weights, b.weights))


# -- the loss-surface kernel ---------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), n0=st.integers(1, 9), n1=st.integers(1, 9),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31),
       l1=st.tuples(st.floats(0, 2), st.floats(0, 2)), l2=st.tuples(st.floats(0, 2), st.floats(0, 2)))
def test_lsq2_surface_matches_its_twin(n, n0, n1, dtype, seed, l1, l2):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((n, 2)) * rng.uniform(0.1, 10, 2)).astype(dtype)
    if rng.random() < 0.3:
        a[:, 1] = 1  # a bias column, as in Dense(1) on one feature
    y = (a.astype(np.float64) @ rng.standard_normal(2) + rng.normal(0, rng.choice([0, 0.1, 3]), n)).astype(dtype)
    p0 = rng.uniform(-5, 5, n0)
    p1 = rng.uniform(-5, 5, n1)
    out = np.full((n1, n0), np.nan)
    _core.lsq2_surface(out, a, y, p0, p1, l1, l2)
    want = ref.lsq2_surface(a, y, p0, p1, l1, l2)
    # rounding of sums of n terms of the size of the loss at the grid point and at the origin
    scale = want + ref.lsq2_surface(a, y, [0.0], [0.0])[0, 0] + 1e-300
    assert np.all(np.abs(out - want) <= 1e-12 * n * scale), (out, want)


def test_lsq2_surface_at_an_exact_fit_is_zero_not_negative():
    x = np.linspace(-2, 2, 101)
    a = np.column_stack([x, np.ones_like(x)])
    out = np.empty((3, 3))
    _core.lsq2_surface(out, a, 0.5 * x + 3, np.array([0.4, 0.5, 0.6]), np.array([2.9, 3.0, 3.1]), (0, 0), (0, 0))
    assert out[1, 1] == 0 or 0 < out[1, 1] < 1e-28
    assert (out >= 0).all() and out[0, 0] > 0.01


def _surface_args():
    a = np.ones((5, 2))
    return [np.full((3, 4), 7.0), a, np.ones(5), np.zeros(4), np.zeros(3), (0.0, 0.0), (0.0, 0.0)]


@pytest.mark.parametrize("k, value, error, match", [
    (1, np.ones((5, 2), np.int64), TypeError, "a must be a float32 or float64"),
    (1, np.ones((5, 3)), ValueError, r"a must have shape \(n, 2\)"),
    (2, np.ones(4), ValueError, "y must have 5 elements"),
    (2, np.ones(5, np.float32), TypeError, "y must have dtype float64"),
    (3, np.zeros((2, 2)), ValueError, "p0 must be 1-d"),
    (4, np.array([0.0, np.nan, 1.0]), ValueError, "p1 contains NaN"),
    (0, np.full((4, 3), 7.0), ValueError, r"out must have shape \(3, 4\)"),
    (0, np.full((3, 4), 7.0, np.float32), TypeError, "out must have dtype float64"),
    (0, np.full((4, 3), 7.0).T, ValueError, "out must be C-contiguous"),
    (5, (-1.0, 0.0), ValueError, r"l1\[0\] must be finite and >= 0"),
    (6, (0.0, np.inf), ValueError, r"l2\[1\] must be finite and >= 0"),
    (1, np.array([[1.0, np.inf]] * 5), ValueError, "a or y contains NaN or inf"),
])
def test_lsq2_surface_bad_input_changes_nothing(k, value, error, match):
    args = _surface_args()
    args[k] = value
    out = args[0]
    before = out.copy()
    with pytest.raises(error, match=match):
        _core.lsq2_surface(*args)
    assert np.array_equal(out, before)


def test_lsq2_surface_refuses_read_only_empty_and_overlapping():
    args = _surface_args()
    args[0].flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        _core.lsq2_surface(*args)
    args = _surface_args()
    args[1], args[2] = np.ones((0, 2)), np.ones(0)
    with pytest.raises(ValueError, match="a has no rows"):
        _core.lsq2_surface(*args)
    buf = np.zeros(12 + 10)
    args = _surface_args()
    args[0], args[1] = buf[:12].reshape(3, 4), buf[2:12].reshape(5, 2)
    with pytest.raises(ValueError, match="out shares memory with a"):
        _core.lsq2_surface(*args)


# -- loss_surface of a model ----------------------------------------------------------------------

@pytest.mark.parametrize("layer, features", [
    (lambda reg: fo.Dense(1, kernel_regularizer=reg, input_shape=(1,)), 1),                   # w, b
    (lambda reg: fo.Dense(1, use_bias=False, kernel_regularizer=reg, input_shape=(2,)), 2),   # w1, w2
    (lambda reg: fo.Dense(2, use_bias=False, kernel_regularizer=reg, input_shape=(1,)), 1),   # 2 outputs
])
@pytest.mark.parametrize("reg", [None, fo.regularizers.l1_l2(0.05, 0.2)])
def test_loss_surface_is_evaluate_at_each_grid_point(layer, features, reg):
    rng = np.random.default_rng(1)
    model = fo.Sequential([layer(reg)], dtype="float64", seed=0)
    model.compile(optimizer="sgd", loss="mse")
    units = model.get_weights()[0].shape[1]
    x = rng.standard_normal((40, features))
    y = rng.standard_normal((40, units)) + 2 if units > 1 else x[:, 0] * 0.7 - 1 + rng.standard_normal(40)
    before = model.get_weights()
    p0, p1 = np.linspace(-2, 2, 5), np.linspace(-1, 3, 4)
    z = loss_surface(model, x, y, p0, p1)
    assert z.shape == (4, 5)
    for i, j in [(0, 0), (4, 3), (2, 1), (1, 2)]:
        flat = np.array([p0[i], p1[j]])
        probe = fo.Sequential([layer(reg)], dtype="float64")
        probe.compile(optimizer="sgd", loss="mse")
        shapes = [w.shape for w in probe.get_weights()]
        parts = np.split(flat, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
        probe.set_weights([part.reshape(s) for part, s in zip(parts, shapes)])
        assert z[j, i] == pytest.approx(probe.evaluate(x, y), rel=1e-12, abs=1e-14)
    assert all(np.array_equal(u, v) for u, v in zip(model.get_weights(), before))


@pytest.mark.parametrize("layers, match", [
    ([fo.Dense(2, input_shape=(1,))], "exactly 2 trainable scalars; this one has 4"),
    ([fo.Dense(1, activation="relu", input_shape=(1,))], "linear in its two parameters"),
    ([fo.Dense(1, use_bias=False, input_shape=(1,)), fo.Dense(1, use_bias=False)], "linear in its two"),
])
def test_loss_surface_refuses_other_models(layers, match):
    model = fo.Sequential(layers)
    with pytest.raises(ValueError, match=match):
        loss_surface(model, np.zeros((3, 1)), np.zeros(3), [0.0], [0.0])


def test_loss_surface_checks_data_shapes():
    model = build_line(0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1\)"):
        loss_surface(model, np.zeros((3, 2)), np.zeros(3), [0.0], [0.0])
    with pytest.raises(ValueError, match=r"y must have shape \(3, 1\) or \(3,\)"):
        loss_surface(model, np.zeros((3, 1)), np.zeros(4), [0.0], [0.0])
    with pytest.raises(ValueError, match="p0 and p1 must be 1-d"):
        loss_surface(model, np.zeros((3, 1)), np.zeros(3), [[0.0]], [0.0])


# -- compare's runs -------------------------------------------------------------------------------

def test_every_run_is_the_direct_fit_from_the_same_weights(line_data):
    x, y = line_data
    template = fo.optimizers.SGD(0.05, momentum=0.9)
    optimizers = {"momentum": template, "adam": ("adam", 0.02), "rms": "rmsprop",
                  "cfg": {"class_name": "Adagrad", "config": {"learning_rate": 0.1}},
                  "minibatch": {"optimizer": ("sgd", 0.02), "batch_size": 10, "shuffle": False}}
    result = fo.compare(build_line, optimizers, x, y, epochs=30, batch_size="full", seeds=(0, 5))
    assert isinstance(result, Comparison) and result.names == list(optimizers) and result.seeds == (0, 5)
    assert template.iterations == 0  # the object is a template, never stepped
    fresh = {"momentum": lambda: fo.optimizers.SGD(0.05, momentum=0.9), "adam": lambda: fo.optimizers.Adam(0.02),
             "rms": fo.optimizers.RMSprop, "cfg": lambda: fo.optimizers.Adagrad(0.1),
             "minibatch": lambda: fo.optimizers.SGD(0.02)}
    for seed in (0, 5):
        weights = build_line(seed).get_weights()
        for name in optimizers:
            run = result.run(name, seed)
            fit_args = {"batch_size": 10, "shuffle": False} if name == "minibatch" else {"batch_size": 100}
            history, final = direct_fit(build_line, seed, weights, fresh[name](), x, y, epochs=30, **fit_args)
            assert run.history == history
            assert all(np.array_equal(u, v) for u, v in zip(run.weights, final))
            assert run.time > 0
            assert run.initial["loss"] == pytest.approx(np.mean((x[:, 0] * weights[0][0, 0] + weights[1][0] - y) ** 2),
                                                        rel=1e-12)
    assert result.run("adam", 0).initial != result.run("adam", 5).initial  # seeds start apart


def test_builder_without_a_seed_and_an_unbuilt_model():
    x, y = data()
    result = fo.compare(lambda: fo.Sequential([fo.Dense(1)], seed=2), {"sgd": ("sgd", 0.1)}, x, y,
                        epochs=3, batch_size=16)
    assert result.run("sgd").weights[0].shape == (3, 1)


def test_path_recording_changes_no_bit(line_data):
    x, y = line_data
    opts = six_optimizers(0.05)
    plain = fo.compare(build_line, opts, x, y, epochs=25, batch_size="full")
    traced = fo.compare(build_line, opts, x, y, epochs=25, batch_size="full", record_path_every=4)
    for a, b in zip(plain.runs, traced.runs):
        assert same_run(a, b)
        assert a.path is None
        assert list(b.path_epochs) == [0, 4, 8, 12, 16, 20, 24, 25]
        assert b.path.shape == (8, 2)
        assert np.array_equal(b.path[-1], np.concatenate([w.ravel() for w in b.weights]))
    start = traced.runs[0].path[0]
    assert all(np.array_equal(r.path[0], start) for r in traced.runs)


def test_validation_split_takes_the_last_samples(line_data):
    x, y = line_data
    result = fo.compare(build_line, {"gd": ("sgd", 0.1)}, x, y, epochs=5, batch_size=20, validation_split=0.25)
    w0 = build_line(0).get_weights()
    model = build_line(0)
    model.set_weights(w0)
    model.compile(optimizer=fo.optimizers.SGD(0.1), loss="mse")
    history = model.fit(x[:75], y[:75], epochs=5, batch_size=20, validation_data=(x[75:], y[75:]), verbose=0)
    assert result.run("gd").history == history.history
    assert set(result.run("gd").initial) == {"loss", "val_loss"}
    table = result.table(metric="val_loss")
    assert table.rows[0]["final"] == history.history["val_loss"][-1]


def test_table_figures_come_from_the_histories(line_data):
    x, y = line_data
    result = fo.compare(build_line, six_optimizers(0.05), x, y, epochs=60, batch_size="full", seeds=(0, 1, 2))
    table = result.table()
    assert len(table.rows) == 18
    for row in table.rows:
        run = result.run(row["optimizer"], row["seed"])
        loss = np.array(run.history["loss"])
        assert row["final"] == loss[-1] and row["best"] == loss.min() == loss[row["best_epoch"] - 1]
        assert row["threshold"] == pytest.approx(0.01 * run.initial["loss"])
        hit = np.flatnonzero(loss <= row["threshold"])
        assert row["epochs_to_threshold"] == (hit[0] + 1 if hit.size else None)
    fixed = result.table(threshold=1.0)
    assert all(r["threshold"] == 1.0 for r in fixed.rows)
    summary = {s["optimizer"]: s for s in table.summary()}
    gd = [r for r in table.rows if r["optimizer"] == "GD"]
    assert summary["GD"]["final"] == pytest.approx(np.mean([r["final"] for r in gd]))
    assert summary["GD"]["runs"] == 3
    text = str(table)
    assert [c.strip() for c in text.splitlines()[0].split("|")[1:-1]] == [
        "optimizer", "final loss", "best loss", "epochs to 1% of initial loss", "time"]
    assert [line.split("|")[1].strip() for line in text.splitlines()[2:]] == list(six_optimizers())
    # gradient descent with momentum reaches 1% of the initial loss; Adagrad at this rate does not
    assert summary["momentum"]["reached"] == 3 and summary["Adagrad"]["reached"] == 0
    assert "never" in text.splitlines()[2 + result.names.index("Adagrad")]
    with pytest.raises(ValueError, match="metric 'val_loss' is not among the logs"):
        result.table(metric="val_loss")


def test_metrics_reach_the_histories():
    x, y = data()
    result = fo.compare(build_small, {"adam": ("adam", 0.01)}, x, y, epochs=3, batch_size=32, metrics=["mae"])
    assert set(result.run("adam").history) == {"loss", "mae"}
    assert result.curves("adam", "mae").shape == (1, 3)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"optimizers": {}}, TypeError, "non-empty dict"),
    ({"optimizers": [("sgd", 0.1)]}, TypeError, "non-empty dict"),
    ({"optimizers": {"a": "nadam"}}, ValueError, r"optimizers\['a'\]: unknown optimizer 'nadam'"),
    ({"optimizers": {"a": ("sgd", -1.0)}}, ValueError, r"optimizers\['a'\]: learning_rate must be >= 0"),
    ({"optimizers": {"a": 0.1}}, TypeError, r"optimizers\['a'\]: expected an optimizer"),
    ({"optimizers": {"a": {"optimizer": "sgd", "epochs": 3}}}, ValueError, r"unknown keys \['epochs'\]"),
    ({"optimizers": {"a": {"optimizer": "sgd", "batch_size": 0}}}, ValueError, r"batch_size'\] must be >= 1"),
    ({"batch_size": "half"}, ValueError, "batch_size must be a positive integer or 'full'"),
    ({"epochs": 0}, ValueError, "epochs must be >= 1"),
    ({"seeds": 3}, TypeError, "seeds must be a sequence"),
    ({"seeds": (1, 1)}, ValueError, "seeds must be distinct"),
    ({"seeds": (-1,)}, ValueError, "seeds"),
    ({"record_path_every": 0}, ValueError, "record_path_every must be >= 1"),
    ({"executor": "processes"}, ValueError, "executor must be None, 'threads'"),
    ({"executor": 4}, TypeError, "executor must be None, 'threads'"),
    ({"validation_split": 1.0}, ValueError, "validation_split"),
    ({"validation_split": 0.5, "x": np.zeros((1, 1)), "y": np.zeros(1)}, ValueError,
     "leaves no training or validation samples"),
    ({"validation_data": (np.zeros((3, 1)),)}, ValueError, r"validation_data must be \(x_val, y_val\)"),
    ({"y": np.zeros(7)}, ValueError, "x and y must hold the same samples"),
])
def test_bad_arguments_are_refused_before_anything_trains(line_data, kwargs, error, match):
    x, y = line_data
    built = []

    def build(seed):
        built.append(seed)
        return build_line(seed)

    args = {"optimizers": {"gd": ("sgd", 0.1)}, "x": x, "y": y, "epochs": 2, "batch_size": 10, **kwargs}
    with pytest.raises(error, match=match):
        fo.compare(build, args.pop("optimizers"), args.pop("x"), args.pop("y"), **args)
    assert built == []


def test_data_the_model_refuses_stop_before_training(line_data):
    x, y = line_data
    with pytest.raises(ValueError, match="contains NaN"):
        fo.compare(build_line, {"gd": "sgd"}, np.full_like(x, np.nan), y, epochs=2, batch_size=10)


# -- the figures: the data drawn, not the pixels ----------------------------------------------------

@pytest.fixture(scope="module")
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    yield plt
    plt.close("all")


@pytest.fixture(scope="module")
def traced(line_data):
    x, y = line_data
    return fo.compare(build_line, six_optimizers(0.05), x, y, epochs=80, batch_size="full", seeds=(0, 1, 2),
                      record_path_every=5)


def test_plot_draws_the_median_curve_and_the_band_over_seeds(plt, traced):
    _, ax = plt.subplots()
    assert traced.plot(ax=ax) is ax
    assert [line.get_label() for line in ax.lines] == traced.names
    epochs = np.arange(1, 81)
    for line, name in zip(ax.lines, traced.names):
        curves = traced.curves(name)
        assert np.array_equal(line.get_xdata(), epochs)
        assert np.array_equal(line.get_ydata(), np.median(curves, axis=0))
    bands = ax.collections
    assert len(bands) == 6
    for band, name in zip(bands, traced.names):
        curves = traced.curves(name)
        vertices = band.get_paths()[0].vertices
        assert vertices[:, 1].min() == pytest.approx(curves.min()) and vertices[:, 1].max() == pytest.approx(curves.max())
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    _, ax = plt.subplots()
    single = Comparison(traced.names, (0,), 80, [r for r in traced.runs if r.seed == 0], None, None, "mse")
    single.plot(ax=ax, log=False)
    assert len(ax.collections) == 0
    assert ax.get_yscale() == "linear"


def test_plot_paths_draws_each_path_over_contours_of_the_loss(plt, traced, line_data):
    x, y = line_data
    _, ax = plt.subplots()
    assert traced.plot_paths(ax=ax, levels=7, seed=1) is ax
    by_label = {line.get_label(): line for line in ax.lines}
    assert np.array_equal(by_label["start"].get_xydata()[0], traced.run("GD", 1).path[0])
    for name in traced.names:
        assert np.array_equal(by_label[name].get_xydata(), traced.run(name, 1).path)
        assert np.array_equal(by_label["_end of " + name].get_xydata()[0], traced.run(name, 1).path[-1])
    assert len(ax.lines) == 1 + 2 * len(traced.names)
    (contours,) = [c for c in ax.collections if hasattr(c, "levels")]
    assert len(contours.levels) == 7 and np.all(np.diff(np.log(contours.levels)) > 0)
    assert np.allclose(np.diff(np.log(contours.levels)), np.log(contours.levels[1] / contours.levels[0]))
    # every vertex of a contour line lies where the loss (evaluated directly) is that level,
    # up to the linear interpolation within a grid cell (the loss's curvature is about 1 here)
    (w_lo, w_hi), (b_lo, b_hi) = ax.get_xlim(), ax.get_ylim()
    cell = ((w_hi - w_lo) / 100) ** 2 + ((b_hi - b_lo) / 100) ** 2
    model = build_line(0)
    model.compile(optimizer="sgd", loss="mse")
    checked = 0
    for level, segments in zip(contours.levels, contours.allsegs):
        for seg in segments:
            for w, b in seg[:: max(1, len(seg) // 5)]:
                model.set_weights([np.array([[w]]), np.array([b])])
                assert model.evaluate(x, y) == pytest.approx(level, rel=1e-3, abs=cell)
                checked += 1
    assert checked > 20
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("w", "b")


def test_plot_paths_given_levels_and_bounds(plt, traced):
    _, ax = plt.subplots()
    traced.plot_paths(ax=ax, levels=[0.1, 1.0, 5.0], bounds=((-1, 2), (-1, 4)))
    (contours,) = [c for c in ax.collections if hasattr(c, "levels")]
    assert list(contours.levels) == [0.1, 1.0, 5.0]
    assert ax.get_xlim() == (-1, 2) and ax.get_ylim() == (-1, 4)


def test_plot_paths_needs_paths_and_two_scalars(plt, line_data):
    x, y = line_data
    result = fo.compare(build_line, {"gd": "sgd"}, x, y, epochs=2, batch_size=10)
    with pytest.raises(ValueError, match="record_path_every"):
        result.plot_paths()
    xs, ys = data()
    result = fo.compare(build_small, {"gd": "sgd"}, xs, ys, epochs=2, batch_size=10, record_path_every=1)
    with pytest.raises(ValueError, match="exactly 2 trainable scalars; this one has 21"):
        result.plot_paths()


def test_fastopt_imports_no_plotting_library():
    import subprocess
    import sys
    code = ("import sys, fastopt, fastopt.compare; "
            "assert 'matplotlib' not in sys.modules and 'sklearn' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_example_prints_the_table_and_saves_both_figures(plt, tmp_path, capsys):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "compare_optimizers.py"
    spec = importlib.util.spec_from_file_location("fastopt_example_compare_optimizers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result, saved = module.main(str(tmp_path), epochs=40)
    printed = capsys.readouterr().out
    assert str(result.table()).splitlines()[0] in printed
    assert [line.split("|")[1].strip() for line in printed.splitlines() if line.startswith("| ")][1:] == \
        ["GD", "SGD", "momentum", "Adagrad", "RMSprop", "Adam"]
    assert [Path(p).name for p in saved] == ["compare_loss.png", "compare_paths.png"]
    for p in saved:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_python_m_fastopt_shows_compares_table():
    from fastopt import _demo
    lines = []
    result = _demo.compare_optimizers(out=lines.append)
    assert lines[0].startswith("\nfo.compare on article 004's problem") and lines[1] == str(result.table())
    assert result.names == list(six_optimizers()) and result.epochs == 1000
