"""fo.model_selection.grid_search: every combination trained and scored as a
direct fit would be; the best is the lowest finite score."""
import math

import numpy as np
import pytest

import fastopt as fo


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.01 * rng.standard_normal(n)
    return x, y


def _build(learning_rate=0.01, momentum=0.0):
    model = fo.Sequential([fo.Dense(1, input_shape=(3,))], dtype="float64", seed=3)
    model.compile(optimizer=fo.optimizers.SGD(learning_rate, momentum=momentum), loss="mse", metrics=["mae"])
    return model


def test_each_score_is_the_direct_fits_validation_loss():
    x, y = _data()
    grid = {"learning_rate": [0.001, 0.05], "batch_size": [8, 50]}
    search = fo.model_selection.grid_search(_build, grid, x, y, epochs=5, validation_split=0.25,
                                            random_state=1)
    assert [r["params"] for r in search.results] == [
        {"learning_rate": 0.001, "batch_size": 8}, {"learning_rate": 0.001, "batch_size": 50},
        {"learning_rate": 0.05, "batch_size": 8}, {"learning_rate": 0.05, "batch_size": 50}]
    x_tr, x_val, y_tr, y_val = fo.train_test_split(x, y, test_size=0.25, random_state=1)
    for r in search.results:
        model = _build(r["params"]["learning_rate"])
        model.fit(x_tr, y_tr, epochs=5, batch_size=r["params"]["batch_size"], verbose=0)
        assert r["score"] == pytest.approx(model.evaluate(x_val, y_val)[0], rel=1e-12)
    # more, larger steps fit this linear problem better within 5 epochs
    assert search.best_params == {"learning_rate": 0.05, "batch_size": 8}
    assert search.best_score == min(r["score"] for r in search.results)
    assert search.table().splitlines()[2].startswith("| 0.05 | 8 |")


def test_diverged_combinations_never_win():
    x, y = _data()
    with pytest.warns(fo.DivergenceWarning):
        search = fo.model_selection.grid_search(_build, {"learning_rate": [0.01, 50.0]}, x, y, epochs=20)
    assert not math.isfinite(search.results[1]["score"])
    assert search.best_params == {"learning_rate": 0.01}


def test_validation_data_and_another_monitor():
    x, y = _data()
    xv, yv = _data(50, seed=1)
    search = fo.model_selection.grid_search(_build, {"momentum": [0.0, 0.9]}, x, y, epochs=3,
                                            validation_data=(xv, yv), monitor="val_mae")
    for r in search.results:
        model = _build(momentum=r["params"]["momentum"])
        model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        assert r["score"] == pytest.approx(model.evaluate(xv, yv)[1], rel=1e-12)


@pytest.mark.parametrize("grid, match", [
    ({}, "param_grid"),
    ({"learning_rate": []}, "learning_rate"),
    ({"learning_rate": "0.1"}, "learning_rate"),
    ([("learning_rate", [0.1])], "param_grid"),
])
def test_bad_grids(grid, match):
    x, y = _data()
    with pytest.raises(ValueError, match=match):
        fo.model_selection.grid_search(_build, grid, x, y)


def test_unknown_monitor_and_split():
    x, y = _data()
    with pytest.raises(ValueError, match="monitor"):
        fo.model_selection.grid_search(_build, {"learning_rate": [0.01]}, x, y, epochs=1, monitor="val_acc")
    with pytest.raises(ValueError, match="validation_split"):
        fo.model_selection.grid_search(_build, {"learning_rate": [0.01]}, x, y, validation_split=0.0)


def _build_typed(dtype="float32", learning_rate=0.01):
    model = fo.Sequential([fo.Dense(4, activation="tanh", input_shape=(3,)), fo.Dense(1)], dtype=dtype, seed=3)
    model.compile(optimizer=fo.optimizers.Adam(learning_rate), loss="mse")
    return model


@pytest.mark.parametrize("executor", [None, "threads"])
def test_the_data_is_cast_once_per_model_dtype_and_trains_as_fit_would_cast_it(monkeypatch, executor):
    """float64 data, float32 and float64 models: each setting gets the data cast
    once for all settings of its dtype (not copied again by every fit and
    evaluate), with the very scores of fits given the float64 data."""
    from fastopt import model_selection
    casts = []
    cast = model_selection._cast
    monkeypatch.setattr(model_selection, "_cast", lambda a, dtype: casts.append(dtype) or cast(a, dtype))
    x, y = _data()
    grid = {"dtype": ["float32", "float64"], "learning_rate": [0.001, 0.01, 0.1]}
    search = fo.model_selection.grid_search(_build_typed, grid, x, y, epochs=3, batch_size=16, executor=executor)
    assert sorted(map(str, casts)) == ["float32"] * 4 + ["float64"] * 4  # x, y, x_val, y_val; once per dtype
    x_tr, x_val, y_tr, y_val = fo.train_test_split(x, y, test_size=0.2, random_state=0)
    for r in search.results:
        model = _build_typed(**r["params"])
        history = model.fit(x_tr, y_tr, epochs=3, batch_size=16, verbose=0)
        assert r["logs"]["loss"] == history.history["loss"][-1]
        assert r["score"] == model.evaluate(x_val, y_val)


def test_the_data_casts_pickle_empty():
    import pickle
    from fastopt.model_selection import _DataCasts
    casts = _DataCasts()
    x = np.arange(6.0).reshape(3, 2)
    (x32,) = casts(np.float32, (x,))
    assert x32.dtype == np.float32 and np.array_equal(x32, x)
    assert casts(np.float32, (x,))[0] is x32  # kept
    assert casts("float64", (x,))[0] is x  # already the model's dtype
    assert casts(object(), (x,))[0] is x and casts(None, (x,))[0] is x  # not a float dtype: left to fit
    copy = pickle.loads(pickle.dumps(casts))
    assert copy._done == {}
    assert copy(np.float32, (x,))[0] is not x32
