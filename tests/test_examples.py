"""examples/article_00N_*.py and ``python -m fastopt``, end to end.

Every example's ``main()`` runs once (module fixture, output captured); its
numbers are checked against an independent NumPy computation of the same
maths (and torch where installed).  The demo is run as a newcomer runs it,
``python -m fastopt --quick`` in a subprocess, and once in-process with torch
and scikit-learn hidden.
"""
import contextlib
import importlib.util
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastopt as fo
from fastopt import _demo

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NAMES = ["article_000_linear_gd", "article_001_adaptive", "article_002_lr_l2",
         "article_003_keras_regression", "article_004_gd_sgd_adam"]


def load(name):
    spec = importlib.util.spec_from_file_location(f"fastopt_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run():
    """name -> (module, main()'s result, printed text); each example runs once."""
    cache = {}

    def get(name):
        if name not in cache:
            module = load(name)
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                result = module.main()
            cache[name] = (module, result, buf.getvalue())
        return cache[name]
    return get


@pytest.fixture
def torch():
    """torch on one thread (these problems are tiny; two threads on a busy machine crawl)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def test_every_article_has_an_example():
    assert sorted(p.stem for p in EXAMPLES.glob("article_*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_example_runs_as_a_script(name):
    """Each file has a main() and runs under ``if __name__ == "__main__"``."""
    text = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    assert "def main(" in text and 'if __name__ == "__main__":' in text
    assert "_demo" not in text  # the examples stand alone


# ---- independent NumPy references (float64) ----------------------------------------------
def keras_update(name, lr, t, w, g, state):
    """Keras 3's update rules; t is the 0-based step."""
    if name == "sgd":
        return w - lr * g
    if name == "adagrad":
        state["a"] = state.get("a", np.full_like(w, 0.1)) + g ** 2
        return w - lr * g / np.sqrt(state["a"] + 1e-7)
    if name == "rmsprop":
        state["v"] = 0.9 * state.get("v", np.zeros_like(w)) + 0.1 * g ** 2
        return w - lr * g / np.sqrt(state["v"] + 1e-7)
    m = state["m"] = 0.9 * state.get("m", np.zeros_like(w)) + 0.1 * g
    v = state["v"] = 0.999 * state.get("v", np.zeros_like(w)) + 0.001 * g ** 2
    m_hat, v_hat = m / (1 - 0.9 ** (t + 1)), v / (1 - 0.999 ** (t + 1))
    return w - lr * m_hat / (np.sqrt(v_hat) + 1e-7 / math.sqrt(1 - 0.999 ** (t + 1)))


# ---- 000 -----------------------------------------------------------------------------------
def test_000_matches_numpy_true_gradient(run):
    _, r, text = run("article_000_linear_gd")
    np.random.seed(0)
    x = np.random.rand(100, 1)
    y = 3 * x + np.random.rand(100, 1)
    w, b = np.zeros(1), 0.0
    for _ in range(1000):
        e = x[:, 0] * w[0] + b - y[:, 0]
        w, b = w - 0.01 * 2 * np.array([e @ x[:, 0]]) / 100, b - 0.01 * 2 * e.sum() / 100
    assert abs(r["w"][0] - w[0]) < 1e-10 and abs(r["b"] - b) < 1e-10
    assert r["mse_before"] == pytest.approx(np.mean(y ** 2), rel=1e-12)
    assert r["mse_after"] == pytest.approx(np.mean((x[:, 0] * w[0] + b - y[:, 0]) ** 2), rel=1e-9)
    assert r["mse_after"] < r["mse_before"] / 10
    assert f"{r['mse_after']:.6f}" in text and "w = " in text


# ---- 001 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Adam", "Adagrad", "RMSprop"])
def test_001_matches_numpy(run, name):
    module, results, text = run("article_001_adaptive")
    r = results[name]
    x, y = np.ones((4, 2)), np.full((4, 2), 2.0)
    W = module.make_model().get_weights()[0].astype(np.float64)
    state, losses = {}, []
    for t in range(1000):
        e = x @ W - y
        if t % 100 == 0:
            losses.append(np.mean(e ** 2))
        W = keras_update(name.lower(), 0.001, t, W, 2 * x.T @ e / e.size, state)
    np.testing.assert_allclose(r["losses"], losses, rtol=1e-4)
    np.testing.assert_allclose(r["W"], W, atol=1e-4)
    assert r["final_loss"] == pytest.approx(np.mean((x @ W - y) ** 2), rel=1e-4)
    assert r["final_loss"] < losses[0]
    assert text.count("Epoch ") == 30 and "Epoch 900, Loss: " in text


def test_001_matches_torch(run, torch):
    module, results, _ = run("article_001_adaptive")
    x, y = torch.ones(4, 2, dtype=torch.float64), torch.full((4, 2), 2.0, dtype=torch.float64)
    W0 = module.make_model().get_weights()[0].astype(np.float64)
    makers = {"Adam": lambda p: torch.optim.Adam(p, lr=0.001, eps=1e-7),
              "Adagrad": lambda p: torch.optim.Adagrad(p, lr=0.001, initial_accumulator_value=0.1, eps=1e-7),
              "RMSprop": lambda p: torch.optim.RMSprop(p, lr=0.001, alpha=0.9, eps=1e-7)}
    for name, make in makers.items():
        W = torch.tensor(W0, requires_grad=True)
        opt = make([W])
        for _ in range(1000):
            opt.zero_grad()
            ((x @ W - y) ** 2).mean().backward()
            opt.step()
        np.testing.assert_allclose(results[name]["W"], W.detach().numpy(), atol=1e-4, err_msg=name)


# ---- 002 -----------------------------------------------------------------------------------
def ref_002(theta, lr, l2=0.0, steps=1000):
    x = y = np.arange(1.0, 6.0)
    peak = abs(theta)
    for t in range(steps):
        g = 2 * np.mean((x * theta - y) * x)
        theta = theta - lr(t) * (g + l2 * theta)
        peak = max(peak, abs(theta))
    return theta, peak


def test_002_matches_numpy(run):
    module, r, text = run("article_002_lr_l2")
    theta0 = float(module.train(fo.optimizers.SGD(0.0), steps=0)[0][0])
    cases = {"gd": (lambda t: 0.01, 0.0), "inverse_sqrt": (lambda t: 1 / math.sqrt(1 + 0.9 * t), 0.0),
             "inverse_sqrt_0.01": (lambda t: 0.01 / math.sqrt(1 + 0.9 * t), 0.0), "l2": (lambda t: 0.01, 0.01)}
    assert set(r) == set(cases) | {"inverse_sqrt_float32"}
    for key, (lr, l2) in cases.items():
        theta, peak = ref_002(theta0, lr, l2)
        assert r[key]["theta"] == pytest.approx(theta, rel=1e-12, abs=1e-12), key
        assert r[key]["peak"] == pytest.approx(peak, rel=1e-9), key
    # the article's L2 update has the fixed point 22 theta - 22 + 0.01 theta = 0
    assert r["l2"]["theta"] == pytest.approx(22 / 22.01, rel=1e-9)
    # the as-written schedule is unstable for ~133 steps: theta swells past 1e40, then comes back
    assert r["inverse_sqrt"]["peak"] > 1e40 and r["inverse_sqrt"]["theta"] == pytest.approx(1.0, abs=1e-12)
    # ... which float32 cannot hold: inf, then nan (NumPy float32 does the same)
    assert math.isinf(r["inverse_sqrt_float32"]["peak"]) and math.isnan(r["inverse_sqrt_float32"]["theta"])
    theta = np.float32(theta0)
    with np.errstate(all="ignore"):
        for t in range(1000):
            g = np.float32(2) * np.mean((np.arange(1, 6, dtype=np.float32) * theta
                                         - np.arange(1, 6, dtype=np.float32)) * np.arange(1, 6, dtype=np.float32))
            theta = theta - np.float32(1 / math.sqrt(1 + 0.9 * t)) * g
    assert np.isnan(theta)
    assert text.count("最优参数值：") == 5


def test_002_l2_regularizer_is_the_same_update():
    """kernel_regularizer=l2(lambda / 2) steps exactly as weight_decay=lambda on plain SGD."""
    x = y = np.arange(1.0, 6.0)
    thetas = []
    for reg, wd in ((fo.regularizers.l2(0.005), None), (None, 0.01)):
        model = fo.Sequential([fo.Dense(1, use_bias=False, input_shape=(1,), kernel_regularizer=reg)],
                              dtype="float64", seed=0)
        opt = fo.optimizers.SGD(0.01, weight_decay=wd)
        for _ in range(1000):
            _, grads = model.compute_gradients(x, y)
            opt.apply_gradients(zip(grads, model.trainable_variables))
        thetas.append(model.get_weights()[0].item())
    assert thetas[0] == pytest.approx(thetas[1], rel=1e-13)


# ---- 003 -----------------------------------------------------------------------------------
def test_003_learns(run):
    module, r, text = run("article_003_keras_regression")
    X, y = module.load_boston_like()
    assert X.shape == (506, 13) and y.shape == (506,)
    assert math.isfinite(r["mse"])
    assert r["mse"] < 0.3 * r["baseline_mse"]  # far better than predicting the mean
    y_train, y_test = fo.train_test_split(y, test_size=0.2, random_state=42)
    assert r["baseline_mse"] == pytest.approx(np.mean((y_test - y_train.mean()) ** 2), rel=1e-9)
    assert f"Mean squared error: {r['mse']}" in text
    assert len(r["train_loss"]) == 100 and r["train_loss"][-1] < r["train_loss"][0] / 3


def test_003_torch_reaches_a_similar_mse(run, torch):
    case = _demo.article_003(torch)
    mse = case["torch"][1]()
    _, r, _ = run("article_003_keras_regression")
    assert 0.5 < mse / r["mse"] < 2


# ---- 004 -----------------------------------------------------------------------------------
def test_004_matches_numpy(run):
    module, r, text = run("article_004_gd_sgd_adam")
    assert set(r) == {"GD (full batch)", "SGD (batch 10)", "Adam"}
    X, y = module.X[:, 0].astype(np.float64), module.y[:, 0].astype(np.float64)
    k0, b0 = module.make_model().get_weights()
    for key, name in (("GD (full batch)", "sgd"), ("Adam", "adam")):
        wb, state, losses = np.array([k0[0, 0], b0[0]], np.float64), {}, []
        for t in range(1000):
            e = X * wb[0] + wb[1] - y
            if t % 100 == 0:
                losses.append(np.mean(e ** 2))
            wb = keras_update(name, 0.01, t, wb, np.array([2 * e @ X, 2 * e.sum()]) / len(X), state)
        ours = np.array(r[key]["losses"])
        big = np.array(losses) > 1e-6  # below that, float32 round-off dominates
        np.testing.assert_allclose(ours[big], np.array(losses)[big], rtol=2e-3, err_msg=key)
        assert r[key]["w"] == pytest.approx(wb[0], abs=1e-4) and r[key]["b"] == pytest.approx(wb[1], abs=1e-4)
    sgd = r["SGD (batch 10)"]
    assert sgd["final_loss"] < 1e-8
    assert sgd["w"] == pytest.approx(0.5, abs=1e-4) and sgd["b"] == pytest.approx(3.0, abs=1e-4)
    assert r["GD (full batch)"]["final_loss"] < 1e-8 and r["Adam"]["final_loss"] < 1e-4
    assert text.count("Epoch: ") == 30 and "final loss" in text


def test_004_adam_matches_torch(run, torch):
    module, r, _ = run("article_004_gd_sgd_adam")
    k0, b0 = module.make_model().get_weights()
    lin = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        lin.weight.fill_(float(k0[0, 0]))
        lin.bias.fill_(float(b0[0]))
    opt = torch.optim.Adam(lin.parameters(), lr=0.01, eps=1e-7)
    X, y = torch.from_numpy(module.X), torch.from_numpy(module.y)
    for _ in range(1000):
        opt.zero_grad()
        ((lin(X) - y) ** 2).mean().backward()
        opt.step()
    assert r["Adam"]["w"] == pytest.approx(lin.weight.item(), abs=1e-4)
    assert r["Adam"]["b"] == pytest.approx(lin.bias.item(), abs=1e-4)


# ---- the demo: same calls as the examples, same work as its peers --------------------------
def test_demo_fastopt_runs_are_the_examples(run):
    """The demo times the examples' calls: the same numbers come out."""
    r1 = run("article_001_adaptive")[1]
    for tag, _, fn in _demo.article_001(None)["fastopt"]:
        np.testing.assert_allclose(fn(), [r1[n]["final_loss"] for n in ("Adam", "Adagrad", "RMSprop")],
                                   rtol=1e-5, err_msg=tag)
    r2 = run("article_002_lr_l2")[1]
    for tag, _, fn in _demo.article_002(None)["fastopt"]:
        thetas = [r2[k]["theta"] for k in ("gd", "inverse_sqrt", "inverse_sqrt_0.01", "l2")]
        np.testing.assert_allclose(fn(), thetas, rtol=1e-12, err_msg=tag)
    r3 = run("article_003_keras_regression")[1]
    assert _demo.article_003(None)["fastopt"][0][2]() == r3["mse"]
    r4 = run("article_004_gd_sgd_adam")[1]
    loop = _demo.article_004(None)["fastopt"][0][2]()
    np.testing.assert_allclose(loop, [r4[k]["final_loss"] for k in ("GD (full batch)", "SGD (batch 10)", "Adam")],
                               rtol=1e-6)


@pytest.mark.parametrize("num", ["000", "001", "002", "004"])
def test_demo_numpy_baseline_does_the_same_work(num):
    case = dict(_demo.ARTICLES)[num](None)
    ours = [fn() for _, _, fn in case["fastopt"]]
    theirs = case["numpy"][1]()
    if num == "000":  # the loop form and the whole-loop form
        for w, b in ours:
            np.testing.assert_allclose(w, theirs[0], rtol=1e-12)
            assert b == pytest.approx(theirs[1], rel=1e-12)
        return
    for r in ours:
        if num == "004":  # GD and Adam: the same trajectory; mini-batch SGD: another shuffle, same optimum
            np.testing.assert_allclose([r[0], r[2]], [theirs[0], theirs[2]], rtol=0.05)
            assert r[1] < 1e-9 and theirs[1] < 1e-9
        else:
            np.testing.assert_allclose(r, theirs, rtol=1e-4)


def test_demo_torch_baseline_does_the_same_work(torch):
    case = _demo.article_000(torch)
    w, b = case["torch"][1]()
    rw, rb = case["fastopt"][1][2]()
    np.testing.assert_allclose(w, rw, rtol=1e-10)
    assert b == pytest.approx(rb, rel=1e-10)
    for num in ("001", "002"):
        case = dict(_demo.ARTICLES)[num](torch)
        np.testing.assert_allclose(case["torch"][1](), case["fastopt"][0][2](), rtol=1e-4, err_msg=num)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(fo.__file__).resolve().parents[1])]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def test_python_m_fastopt_quick():
    proc = subprocess.run([sys.executable, "-m", "fastopt", "--quick"], capture_output=True, text=True,
                          env=_env(), cwd=str(ROOT), timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Summary" in out and "failed" not in out
    header = next(line for line in out.splitlines() if line.startswith("article |"))
    assert [c.strip() for c in header.split("|")] == [
        "article", "what", "fastopt result", "fastopt", "vs NumPy", "vs torch", "vs scikit-learn"]
    rows = [line.split("|") for line in out.splitlines() if line[:3] in ("000", "001", "002", "003", "004")]
    assert [r[0].strip() for r in rows] == ["000", "000", "001", "001", "002", "002", "003", "004", "004"]
    for r in rows:
        assert r[3].strip().endswith("ms")
    assert rows[0][4].strip().endswith("x") and rows[1][4].strip().endswith("x")  # 000 vs NumPy
    have_torch = importlib.util.find_spec("torch") is not None
    have_sklearn = importlib.util.find_spec("sklearn") is not None
    assert rows[2][5].strip().endswith("x") == have_torch
    assert rows[6][6].strip().endswith("x") == have_sklearn
    loops = next(line for line in out.splitlines() if line.startswith("Loop forms against NumPy's loop:"))
    assert [part.split()[0] for part in loops.split(":", 1)[1].split(",")] == ["000", "001", "002", "004"]
    assert proc.stderr.strip() == "" or "Warning" not in proc.stderr, proc.stderr


def test_demo_without_torch_and_sklearn(monkeypatch):
    """Missing peers are skipped, never a crash."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    monkeypatch.setitem(sys.modules, "sklearn", None)
    lines = []
    rows = _demo.run(repeats=1, out=lines.append)
    text = "\n".join(lines)
    assert "torch not installed" in text and "sklearn not installed" in text
    assert "skipped: torch is not installed" in text
    assert len(rows) == 9
    assert [(num, form) for num, form, *_ in rows] == [
        ("000", "loop"), ("000", "whole"), ("001", "loop"), ("001", "whole"), ("002", "loop"),
        ("002", "whole"), ("003", "whole"), ("004", "loop"), ("004", "whole")]
    for *_, t, speedups in rows:
        assert set(speedups) <= {"numpy"} and t > 0
    assert "Summary" in text


def test_main_rejects_bad_repeats(capsys):
    with pytest.raises(SystemExit):
        _demo.main(["--repeats", "0"])
