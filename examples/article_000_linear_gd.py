"""Article 000: a linear model fitted by gradient descent, with fastopt.

The article writes ``linear_model``, ``mse_loss``, ``gradient`` and
``gradient_descent`` in NumPy; fastopt has the same four functions with the
same signatures, and ``gradient_descent`` runs its whole loop in one C call.

Two faults of the article's snippet are deliberately NOT reproduced:

1. its ``gradient`` returns the *negative* gradient (``y - pred`` where
   ``pred - y`` belongs), so its "descent" climbs the loss and diverges;
   ``fo.gradient`` returns the true gradient of ``mse_loss``;
2. its ``y`` has shape (100, 1) and ``np.dot(x, w)`` with ``w = np.zeros(1)``
   has shape (100,), so ``y - pred`` silently broadcasts to (100, 100);
   fastopt aligns the 100 samples one to one.

    python examples/article_000_linear_gd.py
"""
import numpy as np

import fastopt as fo


def main(seed=0):
    np.random.seed(seed)  # the article does not seed; we do, so a run can be checked

    # the article's data
    x = np.random.rand(100, 1)
    y = 3 * x + np.random.rand(100, 1)

    w0, b0 = np.zeros(1), 0
    mse_before = fo.mse_loss(y, fo.linear_model(x, w0, b0))

    # the article's call: 1000 steps of learning rate 0.01
    w, b = fo.gradient_descent(x, y, w0, b0, 0.01, 1000)

    mse_after = fo.mse_loss(y, fo.linear_model(x, w, b))
    print(f"w = {w}, b = {b}")
    print(f"mse before: {mse_before:.6f}, after: {mse_after:.6f}")
    return {"w": w, "b": b, "mse_before": mse_before, "mse_after": mse_after}


if __name__ == "__main__":
    main()
