"""``python -m fastopt``: the five articles' examples, run live, each timed
against the way the article (or a newcomer) would do it: a NumPy loop doing
the same maths by hand, the PyTorch eager loop (if torch is installed) and,
for the Keras network, scikit-learn's ``MLPRegressor`` (if installed).

Every contender does the same work from the same starting weights.  A time
is the best of a few runs (``time.perf_counter``; a contender slower than
about a second gets fewer), a speed-up is the other's time over fastopt's,
measured in this run.  torch runs on one thread: these problems are far too
small for threads (two threads on a busy machine make torch many times
slower), and fastopt's loop is single-threaded too.

Where the article steps in a Python loop (000, 001, 002, 004), fastopt is
timed twice: the loop form, the article's own per-step Python loop written
with fastopt (000: ``fo.gradient`` each step; 001, 002, 004:
``compute_gradients`` + ``apply_gradients`` each step, as ``examples/`` write
it), and the whole-loop form, where the whole training is one call with its
loop in C (``fo.gradient_descent``, ``model.fit``).  The readable per-article
scripts are ``examples/article_00N_*.py``; the fastopt code here is the same
calls without the printing.
"""
from __future__ import annotations

import argparse
import math
import platform
import time
import warnings

import numpy as np

import fastopt as fo

PEERS = ("numpy", "torch", "sklearn")


def _import(name):
    """The module, or None when it is not installed (or fails to import)."""
    try:
        return __import__(name)
    except Exception:  # noqa: BLE001  a broken install counts as a missing one here
        return None


def _best(fn, repeats, budget=1.0):
    """(best seconds, result): ``repeats`` runs, fewer once ``budget`` seconds are spent."""
    best, spent, runs, out = math.inf, 0.0, 0, None
    while runs < repeats and (runs == 0 or spent < budget):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, spent, runs = min(best, dt), spent + dt, runs + 1
    if runs == 1 and best < 0.05:  # one cold run of a short job mostly times first-call costs
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---- the peers' optimizers: NumPy by hand (Keras' rules) and torch.optim --------------
def _np_step(name, lr, t, w, g, state):
    """Step ``t`` (0-based) of optimizer ``name`` on array ``w``, in place; ``state`` a dict."""
    if name == "sgd":
        w -= lr * g
    elif name == "adagrad":
        a = state.setdefault("a", np.full_like(w, 0.1))
        a += g * g
        w -= lr * g / np.sqrt(a + 1e-7)
    elif name == "rmsprop":
        v = state.setdefault("v", np.zeros_like(w))
        v *= 0.9
        v += 0.1 * g * g
        w -= lr * g / np.sqrt(v + 1e-7)
    else:  # adam
        m, v = state.setdefault("m", np.zeros_like(w)), state.setdefault("v", np.zeros_like(w))
        m += 0.1 * (g - m)
        v += 0.001 * (g * g - v)
        w -= lr * math.sqrt(1 - 0.999 ** (t + 1)) / (1 - 0.9 ** (t + 1)) * m / (np.sqrt(v) + 1e-7)


_FO_OPT = {"sgd": fo.optimizers.SGD, "adagrad": fo.optimizers.Adagrad, "rmsprop": fo.optimizers.RMSprop,
           "adam": fo.optimizers.Adam}


def _torch_opt(torch, name, params, lr):
    o = torch.optim
    return {"sgd": lambda: o.SGD(params, lr=lr),
            "adagrad": lambda: o.Adagrad(params, lr=lr, initial_accumulator_value=0.1, eps=1e-7),
            "rmsprop": lambda: o.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7),
            "adam": lambda: o.Adam(params, lr=lr, eps=1e-7)}[name]()


def _loop(model, optimizer, x, y, steps):
    """The articles' GradientTape loop, written with fastopt."""
    for _ in range(steps):
        loss, grads = model.compute_gradients(x, y)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return model


def _fit(model, optimizer, x, y, epochs, batch_size):
    """``model.fit`` with Keras' signature: ``batch_size=len(x)`` is full-batch gradient
    descent (then unshuffled: one batch in the data's order), smaller batches are shuffled."""
    model.compile(optimizer=optimizer, loss="mean_squared_error")
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=batch_size < len(x), verbose=0)
    return model


# ---- article 000: linear model, gradient descent -----------------------------------------
def article_000(torch):
    rng = np.random.RandomState(0)
    x = rng.rand(100, 1)
    y = 3 * x + rng.rand(100, 1)

    def fastopt_loop():  # the article's gradient_descent, written with fo.gradient
        w, b = np.zeros(1), 0
        for _ in range(1000):
            dw, db = fo.gradient(x, y, w, b)
            w = w - 0.01 * dw
            b = b - 0.01 * db
        return w, b

    def fastopt():
        return fo.gradient_descent(x, y, np.zeros(1), 0, 0.01, 1000)

    def numpy():  # the article's functions, with the gradient's sign fixed and y aligned as (100,)
        def linear_model(x, w, b):
            return np.dot(x, w) + b

        def gradient(x, y, w, b):
            n = len(x)
            dw = 2 * np.dot(x.T, linear_model(x, w, b) - y) / n
            db = 2 * np.sum(linear_model(x, w, b) - y) / n
            return dw, db

        w, b, y1 = np.zeros(1), 0, y[:, 0]
        for _ in range(1000):
            dw, db = gradient(x, y1, w, b)
            w = w - 0.01 * dw
            b = b - 0.01 * db
        return w, b

    def torch_():  # the same loop with autograd
        xt, yt = torch.from_numpy(x[:, 0]), torch.from_numpy(y[:, 0])
        w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        for _ in range(1000):
            loss = ((xt * w + b - yt) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                w -= 0.01 * w.grad
                b -= 0.01 * b.grad
            w.grad = b.grad = None
        return w.detach().numpy().copy(), b.item()

    def fmt(r):
        return f"w={r[0][0]:.4f} b={float(r[1]):.4f} mse={fo.mse_loss(y, fo.linear_model(x, *r)):.4f}"

    return {"title": "linear model y = x w + b by gradient descent: x 100x1, lr 0.01, 1000 steps",
            "fastopt": [("loop", "fo.gradient in a Python loop, 1000 steps", fastopt_loop),
                        ("C loop", "  gradient_descent: the loop in C", fastopt)],
            "numpy": ("the article's functions, true gradient", numpy),
            "torch": ("autograd, the article's update", torch_), "fmt": fmt}


# ---- article 001: Adam, Adagrad, RMSprop on y = x @ W ------------------------------------
_OPTS_001 = (("Adam", "adam"), ("Adagrad", "adagrad"), ("RMSprop", "rmsprop"))


def article_001(torch):
    x = np.ones((4, 2), np.float32)
    y = np.full((4, 2), 2.0, np.float32)

    def model():
        return fo.Sequential([fo.Dense(2, use_bias=False, input_shape=(2,))], seed=0)

    def opt(name):
        return _FO_OPT[name](learning_rate=0.001, epsilon=1e-7)

    def mse(m):
        return fo.losses.mean_squared_error(y, m(x))

    W0 = model().get_weights()[0]

    def fastopt_loop():
        return [mse(_loop(model(), opt(name), x, y, 1000)) for _, name in _OPTS_001]

    def fastopt_fit():
        return [mse(_fit(model(), opt(name), x, y, 1000, len(x))) for _, name in _OPTS_001]

    def numpy():
        out = []
        for _, name in _OPTS_001:
            W, state = W0.copy(), {}
            for t in range(1000):
                g = x.T @ (x @ W - y) * np.float32(2 / y.size)
                _np_step(name, 0.001, t, W, g, state)
            out.append(float(np.mean((x @ W - y) ** 2)))
        return out

    def torch_():
        xt, yt, out = torch.from_numpy(x), torch.from_numpy(y), []
        for _, name in _OPTS_001:
            W = torch.tensor(W0, requires_grad=True)
            optimizer = _torch_opt(torch, name, [W], 0.001)
            for _ in range(1000):
                optimizer.zero_grad()
                loss = ((xt @ W - yt) ** 2).mean()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                out.append(((xt @ W - yt) ** 2).mean().item())
        return out

    return {"title": "Adam, Adagrad, RMSprop (lr 0.001) on y = x @ W, W 2x2: 1000 steps each",
            "fastopt": [("loop", "Adam/Adagrad/RMSprop 3x1000 steps", fastopt_loop),
                        ("fit", "  the same, by model.fit", fastopt_fit)],
            "numpy": ("the same maths by hand", numpy), "torch": ("autograd + torch.optim", torch_),
            "fmt": lambda r: ", ".join(f"{n} {v:.3g}" for (n, _), v in zip(_OPTS_001, r))}


# ---- article 002: GD, the inverse-sqrt learning rate, L2 on y = x * theta ---------------
_LR_002 = {"GD": lambda t: 0.01, "1/sqrt(1+.9t)": lambda t: 1 / math.sqrt(1 + 0.9 * t),
           ".01/sqrt(1+.9t)": lambda t: 0.01 / math.sqrt(1 + 0.9 * t), "L2": lambda t: 0.01}


def article_002(torch):
    x = np.arange(1.0, 6.0)
    y = x.copy()

    def model():  # theta ~ N(0, 1), as the article's tf.random.normal([1])
        init = fo.initializers.RandomNormal(stddev=1.0)
        return fo.Sequential([fo.Dense(1, use_bias=False, input_shape=(1,), kernel_initializer=init)],
                             dtype="float64", seed=0)

    def optimizers():
        S, decay = fo.optimizers.SGD, fo.schedules.InverseSqrtDecay
        return S(0.01), S(decay(1.0, 0.9)), S(decay(0.01, 0.9)), S(0.01, weight_decay=0.01)

    theta0 = float(model().get_weights()[0][0, 0])

    def fastopt_loop():
        return [_loop(model(), o, x, y, 1000).get_weights()[0].item() for o in optimizers()]

    def fastopt_fit():
        with warnings.catch_warnings():  # the article's 1/sqrt(1 + 0.9t) rate diverges, as its result shows
            warnings.simplefilter("ignore", fo.DivergenceWarning)
            return [_fit(model(), o, x, y, 1000, len(x)).get_weights()[0].item() for o in optimizers()]

    def numpy():
        out = []
        for name, lr in _LR_002.items():
            theta = theta0
            for t in range(1000):
                g = 2 * np.mean((x * theta - y) * x)
                theta = theta - lr(t) * (g + (0.01 * theta if name == "L2" else 0))
            out.append(theta)
        return out

    def torch_():
        xt, yt, out = torch.from_numpy(x), torch.from_numpy(y), []
        for name, lr in _LR_002.items():
            theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
            for t in range(1000):
                loss = ((xt * theta - yt) ** 2).mean()
                loss.backward()
                with torch.no_grad():
                    theta -= lr(t) * (theta.grad + (0.01 * theta if name == "L2" else 0))
                theta.grad = None
            out.append(theta.item())
        return out

    return {"title": "y = x * theta, x = 1..5: GD, lr 1/sqrt(1 + 0.9t), lr .01/sqrt(1 + 0.9t), L2; 1000 steps",
            "fastopt": [("loop", "GD, 2 inverse-sqrt rates, L2: 4x1000 steps", fastopt_loop),
                        ("fit", "  the same, by model.fit", fastopt_fit)],
            "numpy": ("the same maths by hand", numpy), "torch": ("autograd, the article's update", torch_),
            "fmt": lambda r: "theta " + " ".join(f"{t:.6g}" for t in r)}


# ---- article 003: the Keras regression network ----------------------------------------
def _boston_like(seed=0):
    """Synthetic data of Boston's shape, as examples/article_003_keras_regression.py makes it."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((506, 13))
    scale = np.array([8.6, 23.3, 6.9, 0.25, 0.12, 0.70, 28.1, 2.1, 8.7, 168.5, 2.2, 91.3, 7.1])
    offset = np.array([3.6, 11.4, 11.1, 0.07, 0.55, 6.28, 68.6, 3.8, 9.5, 408.2, 18.5, 356.7, 12.7])
    y = (22.5 + 4.0 * z[:, 5] - 3.0 * z[:, 12] + 2.5 * np.tanh(2 * z[:, 0]) - 1.5 * z[:, 10]
         + 1.5 * z[:, 4] * z[:, 7] + 2.0 * np.maximum(z[:, 2], 0) + rng.normal(0, 1.5, 506))
    return z * scale + offset, y


def article_003(torch):
    X, y = _boston_like()
    X_train, X_test, y_train, y_test = fo.train_test_split(X, y, test_size=0.2, random_state=42)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    y_mean, y_std = y_train.mean(), y_train.std()
    ys = (y_train - y_mean) / y_std

    def layers():
        return [fo.Dense(10, activation="relu", input_shape=(13,)), fo.Dense(1)]

    def mse(pred):  # in the target's units
        return fo.metrics.mean_squared_error(y_test, np.ravel(pred) * y_std + y_mean)

    weights0 = fo.Sequential(layers(), seed=0).get_weights()

    def fastopt():
        model = fo.Sequential(layers(), seed=0)
        model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mean_squared_error"])
        model.fit(X_train, ys, epochs=100, batch_size=32, verbose=0)
        return mse(model.predict(X_test))

    def torch_():
        nn = torch.nn
        net = nn.Sequential(nn.Linear(13, 10), nn.ReLU(), nn.Linear(10, 1))
        with torch.no_grad():  # the same start; torch's weight is the transposed Keras kernel
            for p, w in zip(net.parameters(), weights0):
                p.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
        optimizer = torch.optim.Adam(net.parameters(), lr=0.001, eps=1e-7)
        xt, yt = torch.tensor(X_train, dtype=torch.float32), torch.tensor(ys, dtype=torch.float32)[:, None]
        gen = torch.Generator().manual_seed(0)
        for _ in range(100):
            for idx in torch.randperm(len(xt), generator=gen).split(32):
                optimizer.zero_grad()
                loss = ((net(xt[idx]) - yt[idx]) ** 2).mean()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return mse(net(torch.tensor(X_test, dtype=torch.float32)).numpy())

    def sklearn():
        from sklearn.neural_network import MLPRegressor
        reg = MLPRegressor(hidden_layer_sizes=(10,), solver="adam", batch_size=32, max_iter=100, tol=0.0,
                           n_iter_no_change=100, early_stopping=False, alpha=0.0, learning_rate_init=0.001,
                           epsilon=1e-7, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
            reg.fit(X_train, ys)
        return mse(reg.predict(X_test))

    base = fo.metrics.mean_squared_error(y_test, np.full_like(y_test, y_mean))
    return {"title": f"Sequential([Dense(10, 'relu'), Dense(1)]), Adam, 100 epochs of batch 32; synthetic "
                     f"Boston-shaped data, 404 train x 13 (predicting the mean: test MSE {base:.1f})",
            "fastopt": [("fit", "Dense(10,relu)+Dense(1), Adam, 100 epochs", fastopt)],
            "torch": ("eager loop, same net and batches", torch_),
            "sklearn": ("MLPRegressor((10,), adam, batch 32)", sklearn),
            "fmt": lambda r: f"test MSE {r:.2f}"}


# ---- article 004: GD vs mini-batch SGD vs Adam on Dense(1) --------------------------------
# (label, optimizer, batch size; None: the whole set each step, fit(batch_size=len(X)))
_KINDS_004 = (("GD", "sgd", None), ("SGD", "sgd", 10), ("Adam", "adam", None))


def article_004(torch):
    rng = np.random.RandomState(0)
    X = rng.randn(100, 1)
    y = X * 0.5 + 3

    def model():
        return fo.Sequential([fo.Dense(1, input_shape=(1,))], seed=0)

    def opt(name):
        return _FO_OPT[name](learning_rate=0.01)

    def mse(m):
        return fo.losses.mean_squared_error(y, m(X))

    k0, b0 = model().get_weights()

    # the data in the model's dtype (float32), made once, as the NumPy and torch loops
    # below use it: a float64 array would be converted again at every step
    Xf, yf = X.astype(np.float32), y.astype(np.float32)
    x1, y1 = Xf[:, 0], yf[:, 0]

    def fastopt_loop():  # as the example: the article's loop, and mini-batch SGD by fit
        return [mse(_fit(model(), opt(name), Xf, yf, 1000, batch) if batch
                    else _loop(model(), opt(name), Xf, yf, 1000)) for _, name, batch in _KINDS_004]

    def fastopt_fit():
        return [mse(_fit(model(), opt(name), Xf, yf, 1000, batch or len(Xf))) for _, name, batch in _KINDS_004]

    def numpy():
        out, shuffle = [], np.random.default_rng(0)
        for _, name, batch in _KINDS_004:
            wb, state, t = np.concatenate([k0.ravel(), b0]), {}, 0  # [w, b], float32
            for _ in range(1000):
                if batch:
                    perm = shuffle.permutation(100)
                    batches = [(x1[idx], y1[idx]) for idx in np.split(perm, 100 // batch)]
                else:
                    batches = [(x1, y1)]
                for xb, yb in batches:
                    e = (xb * wb[0] + wb[1] - yb) * np.float32(2 / len(xb))
                    _np_step(name, 0.01, t, wb, np.array([e @ xb, e.sum()], np.float32), state)
                    t += 1
            out.append(float(np.mean((x1 * wb[0] + wb[1] - y1) ** 2)))
        return out

    def torch_():
        xt, yt, out = torch.from_numpy(Xf), torch.from_numpy(yf), []
        gen = torch.Generator().manual_seed(0)
        for _, name, batch in _KINDS_004:
            lin = torch.nn.Linear(1, 1)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(k0.T.copy()))
                lin.bias.copy_(torch.from_numpy(b0))
            optimizer = _torch_opt(torch, name, lin.parameters(), 0.01)
            for _ in range(1000):
                for idx in torch.randperm(100, generator=gen).split(batch) if batch else (slice(None),):
                    optimizer.zero_grad()
                    loss = ((lin(xt[idx]) - yt[idx]) ** 2).mean()
                    loss.backward()
                    optimizer.step()
            with torch.no_grad():
                out.append(((lin(xt) - yt) ** 2).mean().item())
        return out

    return {"title": "Dense(1) on y = 0.5x + 3, x 100x1: full-batch GD, mini-batch SGD (batch 10), Adam; "
                     "lr 0.01, 1000 epochs each",
            "fastopt": [("loop", "GD/SGD(batch 10)/Adam, 3x1000 epochs", fastopt_loop),
                        ("fit", "  the same, by model.fit", fastopt_fit)],
            "numpy": ("the same maths by hand", numpy), "torch": ("autograd + torch.optim", torch_),
            "fmt": lambda r: "final loss " + " ".join(f"{n} {v:.1e}" for (n, _, _), v in zip(_KINDS_004, r))}


ARTICLES = (("000", article_000), ("001", article_001), ("002", article_002), ("003", article_003),
            ("004", article_004))


def _x(ratio):
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def run(repeats=3, out=print):
    """Run every article's case, print the details and the summary table; returns the rows
    ``(article, form, what, fastopt result, fastopt seconds, {peer: speed-up})``, form
    ``"loop"`` (the article's per-step Python loop) or ``"whole"`` (one call, the loop in C)."""
    mods = {"torch": _import("torch"), "sklearn": _import("sklearn")}
    out(f"fastopt {fo.__version__}, Python {platform.python_version()} on {platform.machine()}; "
        f"numpy {np.__version__}, "
        + ", ".join(f"{n} {m.__version__}" if m else f"{n} not installed (skipped)" for n, m in mods.items()))
    runs = "one run" if repeats == 1 else f"best of up to {repeats} runs"
    out(f"times: {runs}; speed-up = the other's time / fastopt's time, same work, this run\n")
    torch = mods["torch"]
    threads = torch.get_num_threads() if torch else None
    rows = []
    try:
        if torch:
            torch.set_num_threads(1)
        for num, article in ARTICLES:
            case = article(torch)
            fmt = case["fmt"]
            out(f"[{num}] {case['title']}")
            timed = []
            for tag, what, fn in case["fastopt"]:
                t, r = _best(fn, repeats)
                timed.append((tag, what, t, r))
                out(f"  {'fastopt':<8} {what.strip():<42} {t * 1e3:9.2f} ms   {fmt(r)}")
            speedups = [{} for _ in timed]
            for peer in PEERS:
                if peer not in case:
                    continue
                label, fn = case[peer]
                if peer != "numpy" and mods[peer] is None:
                    out(f"  {peer:<8} {label:<42}   skipped: {peer} is not installed")
                    continue
                try:
                    t, r = _best(fn, repeats)
                except Exception as exc:  # noqa: BLE001  a peer's failure must not stop the demo
                    out(f"  {peer:<8} {label:<42}   failed: {type(exc).__name__}: {exc}")
                    continue
                for s, (_, _, t_fo, _) in zip(speedups, timed):
                    s[peer] = t / t_fo
                ratios = ", ".join(f"{tag} {_x(t / t_fo)}" for tag, _, t_fo, _ in timed)
                out(f"  {peer:<8} {label:<42} {t * 1e3:9.2f} ms   {fmt(r)}   (speed-up of fastopt: {ratios})")
            out("")
            rows += [(num, "loop" if tag == "loop" else "whole", what, fmt(r), t, s)
                     for (tag, what, t, r), s in zip(timed, speedups)]
    finally:
        if torch:
            torch.set_num_threads(threads)
    _table(rows, out)
    compare_optimizers(out)
    return rows


def compare_optimizers(out=print):
    """``fo.compare``'s table on article 004's problem: the six optimizers of
    articles 001 and 004, 1000 epochs each, from the same initial weights."""
    from .compare import six_optimizers

    rng = np.random.RandomState(0)
    x = rng.randn(100, 1)
    y = x * 0.5 + 3
    t0 = time.perf_counter()
    result = fo.compare(lambda seed: fo.Sequential([fo.Dense(1, input_shape=(1,))], seed=seed),
                        six_optimizers(learning_rate=0.01), x, y, epochs=1000, batch_size="full")
    seconds = time.perf_counter() - t0
    out(f"\nfo.compare on article 004's problem: Dense(1), y = 0.5 x + 3, learning rate 0.01, 1000 epochs "
        f"each (SGD: batches of 10), all in {seconds * 1e3:.0f} ms")
    out(str(result.table()))
    return result


def _table(rows, out):
    head = ("article", "what", "fastopt result", "fastopt", "vs NumPy", "vs torch", "vs scikit-learn")
    cells = [head] + [(num, what, result, f"{t * 1e3:.2f} ms", *(_x(s[p]) if p in s else "-" for p in PEERS))
                      for num, _, what, result, t, s in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]

    def line(c):
        return " | ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))

    out("Summary: speed-up of fastopt over each way of running the article's code (higher is better)")
    out(line(cells[0]))
    out("-+-".join("-" * w for w in widths))
    for c in cells[1:]:
        out(line(c))
    out("(000, 001, 002, 004: first the loop form, the article's per-step Python loop written with fastopt,\n"
        " 000: fo.gradient each step, the others: compute_gradients + apply_gradients; then the whole-loop\n"
        " form, one call whose loop runs in C: gradient_descent, model.fit)")
    loops = [(num, s["numpy"]) for num, form, *_, s in rows if form == "loop" and "numpy" in s]
    if loops:
        out("Loop forms against NumPy's loop: " + ", ".join(f"{num} {_x(r)}" for num, r in loops))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastopt",
                                     description="Run the articles' examples with fastopt and time them "
                                                 "against NumPy, PyTorch and scikit-learn.")
    parser.add_argument("--quick", action="store_true", help="one timed run per contender (a smoke test)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per contender, the best is kept (default 3, --quick 1)")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    t0 = time.perf_counter()
    run(repeats)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return 0
