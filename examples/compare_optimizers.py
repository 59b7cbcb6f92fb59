"""Articles 001 and 004 ask how GD, SGD, momentum, Adagrad, RMSprop and Adam
differ on the same problem.  ``fo.compare`` answers in one call: article 004's
``Dense(1)`` on ``y = 0.5 x + 3``, every optimizer at the article's learning
rate 0.01 for 1000 epochs, each run from the same initial weights, three
seeds (initial weights and shuffling) to show the spread.

It prints the table and saves two figures (matplotlib, ``pip install
'fastopt[plot]'``): the convergence curves (``compare_loss.png``) and each
optimizer's path in the (w, b) plane over the contour lines of the loss
(``compare_paths.png``), drawn for the first seed.

    python examples/compare_optimizers.py [output directory, default docs/]

What the figures show: mini-batch SGD takes 10 steps per epoch, so it gets
there first in epochs; among the full-batch methods, gradient descent with
momentum is fastest -- it overshoots and circles in -- and plain GD walks
straight down the valley; Adam, RMSprop and Adagrad first move both
parameters at about the same rate (their steps are about the learning rate
whatever the gradient's size), hence the bend in their paths; Adagrad's steps
shrink as its accumulator grows, and at this rate it stops far from the
minimum (its circle on the path figure).
"""
import os
import sys

import numpy as np

import fastopt as fo
from fastopt.compare import six_optimizers

# 生成一组随机数据 (article 004's data)
np.random.seed(0)
X = np.random.randn(100, 1)
y = X * 0.5 + 3


# 定义神经网络模型: one per run, all from the first one's weights (per seed)
def build(seed):
    return fo.Sequential([fo.Dense(1, input_shape=(1,))], seed=seed)


def main(outdir=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs"), epochs=1000):
    result = fo.compare(build, six_optimizers(learning_rate=0.01, minibatch=10), X, y,
                        epochs=epochs, batch_size="full", seeds=(0, 1, 2), record_path_every=5)
    print(f"Dense(1) on y = 0.5 x + 3, learning rate 0.01, {epochs} epochs, seeds {result.seeds} "
          "(GD and the others: the full batch per step; SGD: batches of 10)")
    print(result.table())
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no figures (pip install 'fastopt[plot]')")
        return result, []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)
    saved = []
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    result.plot(ax=ax)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("article 004: training loss (median and range over 3 seeds)")
    saved.append(_save(fig, outdir, "compare_loss.png"))
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    result.plot_paths(ax=ax)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("article 004: (w, b) every 5 epochs over the loss contours")
    saved.append(_save(fig, outdir, "compare_paths.png"))
    plt.close("all")
    for path in saved:
        print("saved", os.path.relpath(path))
    return result, saved


def _save(fig, outdir, name):
    path = os.path.join(outdir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    return path


if __name__ == "__main__":
    main(*sys.argv[1:2])
