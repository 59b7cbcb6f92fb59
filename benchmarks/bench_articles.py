"""The articles' own loops: fastopt against the NumPy (and PyTorch) code a
reader of the articles would write, measured in this one process run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python python benchmarks/bench_articles.py
    ... bench_articles.py --quick              # CI smoke run (fewer iterations and repeats)
    ... bench_articles.py --json articles.json # also write every figure as JSON

1. Article 000: linear regression by gradient descent on ``x = rand(100, 1)``,
   ``y = 3x + rand(100, 1)``, learning rate 0.01, 1000 iterations.
   * fastopt ``fo.gradient_descent(x, y, np.zeros(1), 0, 0.01, 1000)`` (the
     whole loop is one C call);
   * the article's NumPy snippet, its two faults fixed and nothing else
     changed: the gradient's sign (the article's ``y - pred`` climbs and
     diverges) and the sample alignment (``y`` of shape ``(100,)``; with the
     article's ``(100, 1)`` targets ``y - pred`` broadcasts to ``(100, 100)``);
     it still evaluates the model twice per iteration, as the article does;
   * a tidy NumPy loop (one residual per iteration, ``x.T @ err``), the best a
     NumPy user would do.
   Goal (issue 4): >= 100x faster than the article's NumPy.

   And one call of ``fo.gradient(x, y, w, b)`` on the same data against one
   call of the article's ``gradient`` (sign fixed): the per-step call of the
   article's own loop.  Goal (issue 11): <= 1.5 µs per call and >= 8x.
   Goal (issue 11) for the whole descent: >= 150x the article's NumPy on
   every x86-64 machine.

2. Article 004: ``Dense(1)`` on ``X = randn(100, 1)``, ``y = 0.5 X + 3``,
   1000 full-batch steps, plain gradient descent (SGD, lr 0.01) and Adam
   (lr 0.01), from the same initial weights:
   * fastopt ``fit(X, y, batch_size=len(X), epochs=1000, verbose=0)`` (one C call
     per epoch, Python between epochs);
   * fastopt in the article's GradientTape shape: a Python loop of
     ``loss, grads = model.compute_gradients(X, y)`` then
     ``opt.apply_gradients(zip(grads, model.trainable_variables))``;
   * a NumPy loop (forward, MSE gradient, the update with in-place ufuncs);
   * a PyTorch eager loop (``nn.Linear(1, 1)``, ``mse_loss``, ``backward``,
     ``opt.step()``), at torch's default thread count and at 1 thread.
   Goal (issue 11): the ``compute_gradients`` + ``apply_gradients`` loop
   >= 5x the NumPy loop.  And one ``train_on_batch(X, y)`` call (Adam) against
   one step of the NumPy loop: goal <= 1.5 µs per call (a "not run" row while
   ``Sequential`` has no ``train_on_batch``).

3. Article 002: ``y = x * theta`` on ``x = 1..5``, ``y = x``, 1000 full-batch
   epochs of gradient descent (lr 0.01, 1000 with --quick too): ``fit(x, y, batch_size=5,
   epochs=1000, shuffle=False)`` against the NumPy loop ``theta -= lr * 2 *
   mean((x * theta - y) * x)``.  Goal (issue 11): >= 30x.

Every figure is a ratio (time of the contender / time of fastopt's headline
row, > 1: fastopt is faster), measured in this run; absolute times are a
secondary column.  Timing: time.perf_counter, warm-up, best of N, contenders
in blocks (see ``bench_train.time_blocks``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import finish, fo, per_call, table_row, torch  # noqa: E402
from bench_train import Contender, fmt_x, machine_facts, print_header, time_blocks  # noqa: E402


# --------------------------------------------------------------------------
# article 000
# --------------------------------------------------------------------------

def article_linear_model(x, w, b):
    return np.dot(x, w) + b


def article_gradient(x, y, w, b):
    """The article's ``gradient``, verbatim except for the two fixes (marked)."""
    n = len(x)
    # fixed: pred - y (the article has y - pred, the negative gradient); x[:, 0] keeps the
    # samples aligned with y of shape (n,)
    dw = 2 * np.sum((article_linear_model(x, w, b) - y) * x[:, 0]) / n
    db = 2 * np.sum(article_linear_model(x, w, b) - y) / n
    return dw, db


def article_gradient_descent(x, y, w, b, learning_rate, num_iterations):
    """The article's ``gradient_descent``, verbatim."""
    for _ in range(num_iterations):
        dw, db = article_gradient(x, y, w, b)
        w = w - learning_rate * dw
        b = b - learning_rate * db
    return w, b


def tidy_numpy_gd(x, y, w, b, learning_rate, num_iterations):
    """One residual per iteration, x.T @ err: what a careful NumPy user writes."""
    n = len(x)
    w = np.array(w, dtype=float)
    for _ in range(num_iterations):
        err = x @ w + b - y
        w -= learning_rate * 2.0 / n * (x.T @ err)
        b -= learning_rate * 2.0 * err.mean()
    return w, b


def bench_000(args, results) -> dict:
    iters = 100 if args.quick else 1000
    repeats = args.repeats or (3 if args.quick else 15)
    rng = np.random.default_rng(0)
    x = rng.random((100, 1))
    y2 = 3 * x + rng.random((100, 1))
    y = y2.ravel()
    rows = [
        Contender("fastopt `fo.gradient_descent(x, y, np.zeros(1), 0, 0.01, iters)`",
                  lambda: fo.gradient_descent(x, y2, np.zeros(1), 0, 0.01, iters)),
        Contender("NumPy: the article's snippet (sign fixed, y as (100,))",
                  lambda: article_gradient_descent(x, y, np.zeros(1), 0, 0.01, iters)),
        Contender("NumPy: tidy loop (one residual, x.T @ err)",
                  lambda: tidy_numpy_gd(x, y, np.zeros(1), 0.0, 0.01, iters)),
    ]
    time_blocks(rows, repeats, warmup=2, pause=0.05)
    print(f"\n### Article 000: gradient descent on a linear model, x (100, 1) float64, {iters} iterations, "
          "lr 0.01\n")
    print(f"Best of {repeats} after warm-up.  `time / fastopt` > 1: fastopt is faster.\n")
    print("| contender | time / fastopt | µs per call | µs per iteration | w | b |")
    print("|---|---:|---:|---:|---:|---:|")
    fast = rows[0].best

    def ran(r):
        w, b = r.result
        w, b = float(np.ravel(w)[0]), float(np.ravel(b)[0])
        return (f"| {r.name} | {fmt_x(r.best / fast)} | {r.best * 1e6:.1f} | {r.best / iters * 1e6:.3f} | "
                f"{w:.5f} | {b:.5f} |",
                dict(time_s=r.best, ratio=r.best / fast, w=w, b=b, all_times_s=r.times))
    recs = [table_row({"table": "article000", "name": r.name}, r.error, 6, lambda: ran(r)) for r in rows]
    results["article000"] = {"iterations": iters, "repeats": repeats, "rows": recs}
    ok = [r for r in rows if not r.error]
    return {"ratio_article_numpy": ok[1].best / fast if len(ok) > 1 else float("nan"),
            "ratio_tidy_numpy": ok[2].best / fast if len(ok) > 2 else float("nan"), "fastopt_us": fast * 1e6}


def time_calls(rows: list, repeats: int, target: float, pause: float) -> None:
    """Seconds per call of each (name, fn) row, fastest of two rounds of
    ``per_call`` loops, each contender in its own block after a pause."""
    for _ in range(2):
        for r in rows:
            if r.error is not None:
                continue
            time.sleep(pause)
            try:
                r.times.append(per_call(r.fn, repeats, target))
            except Exception as e:  # a call this build refuses
                r.error = f"{type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}"


def per_call_table(title: str, note: str, rows: list, base: int, base_label: str, name: str,
                   results: dict, quick: bool) -> list[dict]:
    """Time the rows per call and print their table, ratios against rows[base]."""
    repeats, target = (3, 0.02) if quick else (7, 0.1)
    time_calls(rows, repeats, target, pause=0.05)
    print(f"\n### {title}\n")
    print(f"{note}Best of 2 x {repeats} loops of calls, each contender in its own block.\n")
    print(f"| call | time / {base_label} | µs per call |")
    print("|---|---:|---:|")
    ref = rows[base].best

    def ran(r):
        return (f"| {r.name} | {fmt_x(r.best / ref)} | {r.best * 1e6:.3f} |",
                dict(time_s=r.best, ratio=r.best / ref))
    recs = [table_row({"table": name, "name": r.name}, r.error, 3, lambda: ran(r)) for r in rows]
    results[name] = {"rows": recs}
    return recs


def bench_gradient_call(args, results) -> dict:
    """One fo.gradient call against one call of the article's gradient, 100x1 float64."""
    rng = np.random.default_rng(0)
    x = rng.random((100, 1))
    y2 = 3 * x + rng.random((100, 1))
    y, w = y2.ravel(), np.array([0.5])
    rows = [Contender("fastopt `fo.gradient(x, y, w, b)`", lambda: fo.gradient(x, y2, w, 0.25)),
            Contender("NumPy: the article's `gradient` (sign fixed, y as (100,))",
                      lambda: article_gradient(x, y, w, 0.25))]
    per_call_table("Article 000: one gradient call, x (100, 1) float64",
                   "The per-step call of the article's loop.  ", rows, 0, "fastopt", "gradient_call", results,
                   args.quick)
    fast = rows[0].best
    out = {"fastopt_us": fast * 1e6}
    if not rows[1].error:
        out["ratio_article_numpy"] = rows[1].best / fast
    return out


def bench_002_fit(args, results) -> dict:
    """Article 002's data, 1000 full-batch epochs of gradient descent: fit vs the NumPy loop."""
    epochs = 1000  # the goal's workload; fit's fixed cost would weigh 5x more in a shorter run
    repeats = args.repeats or (3 if args.quick else 9)
    x = np.arange(1.0, 6.0)
    y = x.copy()
    theta0 = 0.3

    state = {}

    def setup():
        m = fo.Sequential([fo.Dense(1, use_bias=False, input_shape=(1,))], dtype="float64", seed=0)
        m.set_weights([np.array([[theta0]])])
        m.compile(optimizer=fo.optimizers.SGD(learning_rate=LR), loss="mean_squared_error")
        state["m"] = m

    def fit():
        state["m"].fit(x, y, batch_size=len(x), epochs=epochs, verbose=0, shuffle=False)
        return float(state["m"].get_weights()[0][0, 0])

    def numpy():
        theta = theta0
        for _ in range(epochs):
            g = 2 * np.mean((x * theta - y) * x)
            theta = theta - LR * g
        return float(theta)

    rows = [Contender(f"fastopt `fit(x, y, batch_size=5, epochs={epochs})`", fit, setup),
            Contender("NumPy loop: `theta -= lr * 2 * mean((x * theta - y) * x)`", numpy)]
    time_blocks(rows, repeats, warmup=1, pause=0.05)
    print(f"\n### Article 002: y = x * theta on x = 1..5, {epochs} full-batch epochs of GD (lr {LR})\n")
    print(f"Best of {repeats} after warm-up; both start from theta = {theta0}.\n")
    print("| contender | time / fastopt fit | ms per run | theta |")
    print("|---|---:|---:|---:|")
    fast = rows[0].best

    def ran(r):
        return (f"| {r.name} | {fmt_x(r.best / fast)} | {r.best * 1e3:.3f} | {r.result:.12g} |",
                dict(time_s=r.best, ratio=r.best / fast, theta=r.result))
    recs = [table_row({"table": "article002", "name": r.name}, r.error, 4, lambda: ran(r)) for r in rows]
    results["article002"] = {"epochs": epochs, "repeats": repeats, "rows": recs}
    out = {"fit_ms": fast * 1e3}
    if not rows[1].error and not rows[0].error:
        out["numpy_vs_fit"] = rows[1].best / fast
    return out


# --------------------------------------------------------------------------
# article 004
# --------------------------------------------------------------------------

LR = 0.01
W0, B0 = 0.1, 0.0
BETA_1, BETA_2, EPS = 0.9, 0.999, 1e-7


def fo_model(opt_name: str):
    m = fo.Sequential([fo.Dense(1, input_shape=(1,))], dtype="float64", seed=0)
    m.set_weights([np.array([[W0]]), np.array([B0])])
    opt = (fo.optimizers.SGD(learning_rate=LR) if opt_name == "sgd"
           else fo.optimizers.Adam(learning_rate=LR, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPS))
    m.compile(optimizer=opt, loss="mean_squared_error")
    return m, opt


def fastopt_fit(X, y, steps, opt_name) -> Contender:
    state = {}

    def setup():
        state["m"], _ = fo_model(opt_name)

    def run():
        h = state["m"].fit(X, y, batch_size=len(X), epochs=steps, verbose=0, shuffle=False)
        return h.history["loss"][-1]
    return Contender(f"fastopt `fit(batch_size=len(X), epochs={steps})`", run, setup)


def fastopt_tape(X, y, steps, opt_name) -> Contender:
    state = {}

    def setup():
        state["m"], state["opt"] = fo_model(opt_name)

    def run():
        m, opt = state["m"], state["opt"]
        loss = None
        for _ in range(steps):
            loss, grads = m.compute_gradients(X, y)
            opt.apply_gradients(zip(grads, m.trainable_variables))
        return loss
    return Contender("fastopt loop: `compute_gradients` + `apply_gradients`", run, setup)


def numpy_loop(X, y, steps, opt_name) -> Contender:
    n = X.shape[0]
    x1 = X[:, 0]

    def run():
        w, b = np.array([W0]), np.array([B0])
        if opt_name == "adam":
            mw = np.zeros(1); vw = np.zeros(1); mb = np.zeros(1); vb = np.zeros(1)
        loss = None
        for t in range(1, steps + 1):
            err = x1 * w[0] + b[0] - y
            loss = float(err @ err) / n
            gw = np.array([2.0 / n * (x1 @ err)])
            gb = np.array([2.0 / n * err.sum()])
            if opt_name == "sgd":
                w -= LR * gw
                b -= LR * gb
            else:  # Keras' Adam
                alpha = LR * np.sqrt(1 - BETA_2 ** t) / (1 - BETA_1 ** t)
                for p, g, m_, v_ in ((w, gw, mw, vw), (b, gb, mb, vb)):
                    m_ += (g - m_) * (1 - BETA_1)
                    v_ += (g * g - v_) * (1 - BETA_2)
                    p -= alpha * m_ / (np.sqrt(v_) + EPS)
        return loss
    return Contender("NumPy loop (forward, gradient, update)", run)


def torch_loop(X, y, steps, opt_name, threads) -> Contender:
    Xt = torch.from_numpy(X)
    Yt = torch.from_numpy(y).reshape(-1, 1)
    state = {}

    def setup():
        torch.set_num_threads(threads)
        model = torch.nn.Linear(1, 1).double()
        with torch.no_grad():
            model.weight.fill_(W0)
            model.bias.fill_(B0)
        state["model"] = model
        state["opt"] = (torch.optim.SGD(model.parameters(), lr=LR) if opt_name == "sgd"
                        else torch.optim.Adam(model.parameters(), lr=LR, betas=(BETA_1, BETA_2), eps=EPS))

    def run():
        model, opt = state["model"], state["opt"]
        loss = None
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(Xt), Yt)
            loss.backward()
            opt.step()
        return float(loss.detach())
    return Contender(f"torch eager loop, {threads} thread{'s' if threads > 1 else ''}", run, setup)


def bench_004(args, results) -> dict:
    steps = 100 if args.quick else 1000
    repeats = args.repeats or (3 if args.quick else 9)
    rs = np.random.RandomState(0)          # the article's np.random.seed(0)
    X = rs.randn(100, 1)
    y = (X * 0.5 + 3).ravel()
    summary = {}
    results["article004"] = {"steps": steps, "repeats": repeats, "tables": {}}
    default_threads = torch.get_num_threads() if torch is not None else 1
    for opt_name, title in (("sgd", "gradient descent (SGD, lr 0.01)"), ("adam", "Adam (lr 0.01)")):
        rows = [fastopt_fit(X, y, steps, opt_name), fastopt_tape(X, y, steps, opt_name),
                numpy_loop(X, y, steps, opt_name)]
        if torch is not None:
            rows.append(torch_loop(X, y, steps, opt_name, default_threads))
            if default_threads != 1:
                rows.append(torch_loop(X, y, steps, opt_name, 1))
        time_blocks(rows, repeats, warmup=1, pause=0.05)
        if torch is not None:
            torch.set_num_threads(default_threads)
        print(f"\n### Article 004: Dense(1) on 100 samples, {steps} full-batch steps of {title}, float64\n")
        print(f"Best of {repeats} after warm-up; every contender starts from w = {W0}, b = {B0}.  "
              "`time / fastopt fit` > 1: fastopt's fit is faster.\n")
        print("| contender | time / fastopt fit | ms per run | µs per step | final loss |")
        print("|---|---:|---:|---:|---:|")
        fast = rows[0].best

        def ran(r):
            return (f"| {r.name} | {fmt_x(r.best / fast)} | {r.best * 1e3:.2f} | {r.best / steps * 1e6:.2f} | "
                    f"{float(r.result):.3e} |",
                    dict(time_s=r.best, ratio=r.best / fast, final_loss=float(r.result), all_times_s=r.times))
        recs = [table_row({"name": r.name}, r.error, 5, lambda: ran(r)) for r in rows]
        results["article004"]["tables"][opt_name] = recs
        ok = {r.name: r for r in rows if not r.error}
        tape = rows[1]
        s = {"fit_ms": fast * 1e3}
        if not tape.error:
            s["tape_vs_fit"] = tape.best / fast
            if not rows[2].error:
                s["numpy_vs_tape"] = rows[2].best / tape.best
        if not rows[2].error:
            s["numpy_vs_fit"] = rows[2].best / fast
        t_rows = [r for n, r in ok.items() if n.startswith("torch")]
        if t_rows:
            bt = min(t_rows, key=lambda r: r.best)
            s["torch_best_vs_fit"] = bt.best / fast
            if not tape.error:
                s["torch_best_vs_tape"] = bt.best / tape.best
        summary[opt_name] = s
    return summary


def bench_train_on_batch(args, results) -> dict:
    """One ``train_on_batch(X, y)`` call (Dense(1), 100 samples, Adam) against one
    step of the NumPy loop (forward, gradient, Adam update)."""
    rs = np.random.RandomState(0)
    X = rs.randn(100, 1)
    y = (X * 0.5 + 3).ravel()
    m, _ = fo_model("adam")
    tob = getattr(m, "train_on_batch", None)
    numpy_step = numpy_loop(X, y, 1, "adam").fn
    rows = [Contender("fastopt `model.train_on_batch(X, y)`", (lambda: tob(X, y)) if tob else None,
                      error=None if tob else "needs `Sequential.train_on_batch`"),
            Contender("NumPy: one step of the loop above (forward, gradient, Adam)", numpy_step)]
    per_call_table("Article 004: one training step, Dense(1), 100 samples, Adam, float64", "", rows, 1, "NumPy step",
                   "train_on_batch", results, args.quick)
    base = rows[1].best
    if rows[0].error:
        return {"error": rows[0].error}
    return {"fastopt_us": rows[0].best * 1e6, "numpy_step_vs_fastopt": base / rows[0].best}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 iterations/steps, few repeats (CI smoke run)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per contender")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    facts = machine_facts()
    print_header("fastopt article benchmark", facts, [
        "every figure is a ratio against a peer timed in this run (> 1: fastopt is faster); "
        "best of N after warm-up, contenders in blocks"])
    results: dict = {"machine": facts, "quick": args.quick}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a diverging loop would be a bug here
        s000 = bench_000(args, results)
        sgrad = bench_gradient_call(args, results)
        s004 = bench_004(args, results)
        stob = bench_train_on_batch(args, results)
        s002 = bench_002_fit(args, results)

    print("\n### Against the goals (benchmark figures, not pass/fail tests)\n")
    print(f"- article 000: fastopt {s000['fastopt_us']:.0f} µs; {s000['ratio_article_numpy']:.0f}x faster than "
          f"the article's NumPy (goal >= 150x), {s000['ratio_tidy_numpy']:.0f}x faster than a tidy NumPy loop")
    if "ratio_article_numpy" in sgrad:
        print(f"- `fo.gradient` on 100x1: {sgrad['fastopt_us']:.2f} µs per call (goal <= 1.5 µs), "
              f"{sgrad['ratio_article_numpy']:.1f}x the article's NumPy `gradient` (goal >= 8x)")
    for opt_name, s in s004.items():
        parts = [f"fit {s['fit_ms']:.2f} ms"]
        if "numpy_vs_fit" in s:
            parts.append(f"NumPy loop {s['numpy_vs_fit']:.1f}x slower than fit")
        if "torch_best_vs_fit" in s:
            parts.append(f"torch's faster loop {s['torch_best_vs_fit']:.1f}x slower than fit")
        if "tape_vs_fit" in s:
            parts.append(f"the compute_gradients + apply_gradients loop takes {s['tape_vs_fit']:.1f}x fit's time"
                         + (f" and runs at {s['numpy_vs_tape']:.2f}x the NumPy loop's speed (goal >= 5x)"
                            if "numpy_vs_tape" in s else ""))
        print(f"- article 004, {opt_name}: " + "; ".join(parts))
    if "error" in stob:
        print(f"- `train_on_batch`: not run ({stob['error']})")
    else:
        print(f"- `train_on_batch` (Adam, 100 samples): {stob['fastopt_us']:.2f} µs per call (goal <= 1.5 µs)")
    if "numpy_vs_fit" in s002:
        print(f"- article 002 `fit`, {results['article002']['epochs']} epochs: {s002['numpy_vs_fit']:.1f}x "
              "the NumPy loop (goal >= 30x)")
    return finish(results, {"article000": s000, "gradient_call": sgrad, "article004": s004,
                            "train_on_batch": stob, "article002": s002}, t_start, args.json)


if __name__ == "__main__":
    sys.exit(main())
