"""The real-data examples (scikit-learn's shipped datasets): article 003 on
load_diabetes, softmax on load_digits, sigmoid on load_breast_cancer; each
learns, and the digits run reaches torch's accuracy on the same split."""
import contextlib
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name, fn="main", **kw):
    spec = importlib.util.spec_from_file_location(f"fastopt_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        result = getattr(module, fn)(**kw)
    return module, result, buf.getvalue()


def test_003_on_diabetes_learns():
    _, r, text = run("article_003_keras_regression", "diabetes")
    assert r["mse"] < 0.7 * r["baseline_mse"] and "load_diabetes" in text
    assert len(r["train_loss"]) == 100 and r["train_loss"][-1] < r["train_loss"][0]


def test_digits_learns_and_predicts_probabilities():
    _, r, text = run("classification_digits", epochs=20)
    assert r["accuracy"] > 0.93
    np.testing.assert_allclose(r["proba"].sum(axis=1), 1, rtol=1e-5)
    assert r["accuracy"] == pytest.approx(np.mean(r["predicted"] == r["y_test"]), abs=1e-6)
    assert r["history"]["accuracy"][-1] > r["history"]["accuracy"][0]
    assert "test accuracy" in text


def test_digits_accuracy_is_torchs():
    torch = pytest.importorskip("torch")
    module, r, _ = run("classification_digits", epochs=20)
    x_train, x_test, y_train, y_test = module.load()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt, yt = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        for idx in torch.randperm(len(xt), generator=g).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    acc = (net(torch.tensor(x_test, dtype=torch.float32)).argmax(1).numpy() == y_test).mean()
    assert abs(r["accuracy"] - acc) < 0.03


def test_breast_cancer_learns():
    _, r, text = run("classification_breast_cancer")
    assert r["accuracy"] > 0.93
    assert ((r["proba"] >= 0) & (r["proba"] <= 1)).all()
    assert r["accuracy"] == pytest.approx(np.mean((r["proba"] > 0.5) == r["y_test"]), abs=1e-6)
