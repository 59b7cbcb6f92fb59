"""fastopt classification benchmark: softmax + sparse cross-entropy on scikit-learn's digits.

64 -> Dense(32, relu) -> Dense(10, softmax), Adam(lr=0.001), 50 epochs of
batch 32 (float32, shuffled), on the 1347 training digits of a 75/25 split of
``load_digits`` (pixels / 16).  Contenders, each in its own timing block:
fastopt ``fit`` (the loop in C), a torch eager loop (randperm + indexing,
default Adam; default threads and 1 thread) and scikit-learn's
``MLPClassifier(solver='adam')`` for the same epochs.  Every figure is a
ratio against fastopt measured in this run; test accuracy is reported for
each (goal: fastopt within 1 point of torch on the same split).

    PYTHONPATH=python python benchmarks/bench_classify.py [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from _common import finish, fo, table_row, torch
import bench_train as bt

try:
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
except ImportError:
    load_digits = None

LR = 1e-3


def digits():
    X, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = fo.train_test_split((X / 16.0).astype(np.float32), y, test_size=0.25,
                                                           random_state=42)
    return x_train, x_test, y_train.astype(np.int64), y_test.astype(np.int64)


def fastopt_fit(data, epochs: int) -> bt.Contender:
    x_train, x_test, y_train, y_test = data
    yf = y_train.astype(np.float32)
    state = {}

    def setup():
        m = fo.Sequential([fo.Dense(32, activation="relu", input_shape=(64,)), fo.Dense(10, activation="softmax")],
                          seed=0)
        m.compile(optimizer=fo.optimizers.Adam(learning_rate=LR), loss="sparse_categorical_crossentropy")
        state["m"] = m

    def run():
        m = state["m"]
        h = m.fit(x_train, yf, epochs=epochs, batch_size=32, verbose=0)
        acc = float(np.mean(m.predict(x_test).argmax(1) == y_test))
        return {"epochs": len(h.history["loss"]), "final_loss": h.history["loss"][-1], "test_accuracy": acc}
    return bt.Contender("fastopt `fit` (loop in C)", run, setup)


def torch_loop(data, epochs: int, threads: int) -> bt.Contender:
    x_train, x_test, y_train, y_test = data
    X, Y, XT = torch.from_numpy(x_train), torch.from_numpy(y_train), torch.from_numpy(x_test)
    n = X.shape[0]
    state = {}

    def setup():
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        state["model"], state["opt"] = model, torch.optim.Adam(model.parameters(), lr=LR)

    def run():
        model, opt = state["model"], state["opt"]
        total = None
        for _ in range(epochs):
            total = None
            perm = torch.randperm(n)
            for i in range(0, n, 32):
                idx = perm[i:i + 32]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(X[idx]), Y[idx])
                loss.backward()
                opt.step()
                part = loss.detach() * len(idx)
                total = part if total is None else total + part
        with torch.no_grad():
            acc = float((model(XT).argmax(1).numpy() == y_test).mean())
        return {"epochs": epochs, "final_loss": float(total) / n, "test_accuracy": acc}
    return bt.Contender(f"torch eager, randperm + indexing, Adam, {threads} thread{'s' if threads > 1 else ''}",
                        run, setup)


def sklearn_mlp(data, epochs: int) -> bt.Contender:
    x_train, x_test, y_train, y_test = data

    def run():
        est = MLPClassifier(hidden_layer_sizes=(32,), solver="adam", batch_size=32, max_iter=epochs, tol=0.0,
                            n_iter_no_change=epochs, alpha=0.0, learning_rate_init=LR, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
            est.fit(x_train, y_train)
        return {"epochs": est.n_iter_, "final_loss": est.loss_curve_[-1],
                "test_accuracy": float(est.score(x_test, y_test))}
    return bt.Contender("scikit-learn MLPClassifier(solver='adam')", run)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 epochs, few repeats (CI smoke run)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per contender")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    if args.quick:
        bt.PAUSE = 0.02
    facts = bt.machine_facts()
    bt.print_header("fastopt classification benchmark", facts, [
        "every figure is a ratio against a peer timed in this run (time / fastopt > 1: fastopt is faster); "
        "best of N after warm-up, contenders in blocks, twice over"])
    results: dict = {"machine": facts, "quick": args.quick}
    if load_digits is None:
        print("\nscikit-learn is not installed: the digits data set comes from it (pip install scikit-learn)")
        return finish(results, {}, t_start, args.json)
    epochs = 5 if args.quick else 50
    repeats = args.repeats or (2 if args.quick else 5)
    data = digits()
    n = data[0].shape[0]
    steps = epochs * -(-n // 32)
    rows = [fastopt_fit(data, epochs)]
    default_threads = torch.get_num_threads() if torch is not None else 1
    if torch is not None:
        for threads in [default_threads] + ([1] if default_threads != 1 else []):
            rows.append(torch_loop(data, epochs, threads))
    rows.append(sklearn_mlp(data, epochs))
    bt.time_blocks(rows, repeats, warmup=1)
    if torch is not None:
        torch.set_num_threads(default_threads)

    print(f"\n### digits: 64 -> Dense(32, relu) -> Dense(10, softmax), sparse cross-entropy, Adam(lr=0.001), "
          f"{epochs} epochs x {-(-n // 32)} steps of batch 32 ({n} samples, float32, shuffled)\n")
    print(f"Best of {repeats} runs after one warm-up; `time / fastopt` > 1 means fastopt is faster.\n")
    print("| contender | time / fastopt | ms per fit | µs per step | epochs run | final loss | test accuracy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    fast = rows[0].best

    def ran(r):
        res = r.result or {}
        return (f"| {r.name} | {bt.fmt_x(r.best / fast)} | {r.best * 1e3:.1f} | {r.best / steps * 1e6:.1f} | "
                f"{res.get('epochs', '?')} | {res.get('final_loss', float('nan')):.4f} | "
                f"{res.get('test_accuracy', float('nan')):.4f} |",
                dict(time_s=r.best, ratio=r.best / fast, us_per_step=r.best / steps * 1e6, all_times_s=r.times,
                     **res))
    recs = [table_row({"name": r.name}, r.error, 7, lambda: ran(r)) for r in rows]
    results["digits"] = {"epochs": epochs, "steps": steps, "repeats": repeats, "rows": recs}

    ok = [r for r in rows if not r.error]
    summary = {"epochs": epochs, "fastopt_ms": fast * 1e3,
               "fastopt_accuracy": (rows[0].result or {}).get("test_accuracy")}
    t_rows = [r for r in ok if r.name.startswith("torch")]
    if t_rows:
        idiom = t_rows[0]
        best = min(t_rows, key=lambda r: r.best)
        summary.update(torch_ratio=idiom.best / fast, torch_best_ratio=best.best / fast, torch_best_name=best.name,
                       torch_accuracy=idiom.result.get("test_accuracy"))
    s_rows = [r for r in ok if r.name.startswith("scikit")]
    if s_rows:
        summary.update(sklearn_ratio=s_rows[0].best / fast, sklearn_accuracy=s_rows[0].result.get("test_accuracy"))
    print("\n### Against the goals (benchmark figures, not pass/fail tests)\n")
    if "torch_ratio" in summary:
        print(f"- vs the torch eager loop (default threads): {summary['torch_ratio']:.1f}x; vs torch's fastest "
              f"here: {summary['torch_best_ratio']:.1f}x (goal >= 20x)")
        print(f"- test accuracy: fastopt {summary['fastopt_accuracy']:.4f}, torch {summary['torch_accuracy']:.4f} "
              f"(goal: within 0.01)")
    if "sklearn_ratio" in summary:
        print(f"- vs scikit-learn MLPClassifier: {summary['sklearn_ratio']:.1f}x (goal >= 10x)")
    return finish(results, summary, t_start, args.json)


if __name__ == "__main__":
    sys.exit(main())
