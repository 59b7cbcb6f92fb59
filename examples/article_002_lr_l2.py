"""Article 002: gradient descent, the "回归调整" learning rate and L2
regularization on ``y = x * theta``, with fastopt.

The article's three TensorFlow snippets share one model, ``y_pred = x * theta``
on ``x = y = [1, 2, 3, 4, 5]``, and one loop of 1000 steps; they differ in the
update.  With fastopt the model is ``Dense(1, use_bias=False)`` (its 1x1
kernel is theta), the GradientTape step is ``model.compute_gradients`` and the
update is an optimizer:

====================================  ==================================================
article's ``update_parameters``        fastopt
====================================  ==================================================
``theta - lr * g``                    ``SGD(learning_rate=0.01)``
``lr = 1 / sqrt(1 + beta * t)``       ``SGD(learning_rate=InverseSqrtDecay(1.0, beta=0.9))``
``theta - lr * (g + lambda * theta)`` ``SGD(learning_rate=0.01, weight_decay=0.01)``
====================================  ==================================================

(For plain SGD, decoupled weight decay ``theta -= lr * lambda * theta`` plus
the step ``theta -= lr * g`` is exactly ``theta - lr * (g + lambda * theta)``;
``kernel_regularizer=fo.regularizers.l2(lambda / 2)`` gives the same update.)

About "回归调整", honestly:

* Here ``g = 22 * (theta - 1)``, and gradient descent is stable only while
  ``lr < 2 / 22 = 0.091``.  ``1 / sqrt(1 + 0.9 t)`` starts at 1 and drops below
  0.091 only after step 133: for 133 steps every update multiplies the error
  by up to -21, and theta swells to ~1e44.  In float32 (TensorFlow's and
  fastopt's default) that overflows to inf, then nan (shown below); in
  float64, used for the other runs, it stays finite and the decaying rate
  then pulls theta back to 1.  We print the peak so you can see it.  ``InverseSqrtDecay(0.01, 0.9)`` (the article's
  unused ``learning_rate = 0.01`` as the starting rate) converges smoothly.
* The article's code does not compute that schedule at all: it reads
  ``tf.train.get_or_create_global_step()``, which nothing increments (and
  which TensorFlow 2 only has under ``tf.compat.v1``), so its ``t`` is 0 at
  every step and its rate is a constant 1: the error is multiplied by -21
  each step, and theta is inf after ~30 steps (float32).  The schedule here
  advances with the optimizer's step count, as the formula says.
* In all three snippets ``parameters = update_parameters(...)`` replaces the
  ``tf.Variable`` by a plain tensor that the next GradientTape does not watch
  (its gradient is then None); fastopt updates theta in place.

    python examples/article_002_lr_l2.py
"""
import numpy as np

import fastopt as fo

# 训练数据
x_train = np.array([1, 2, 3, 4, 5], dtype=np.float64)
y_train = np.array([1, 2, 3, 4, 5], dtype=np.float64)

# 初始化学习率
learning_rate = 0.01
beta = 0.9
lambda_ = 0.01


def train(optimizer, seed=0, steps=1000, dtype="float64"):
    # 初始化参数: theta ~ N(0, 1), as tf.random.normal([1])
    model = fo.Sequential([fo.Dense(1, use_bias=False, input_shape=(1,),
                                    kernel_initializer=fo.initializers.RandomNormal(stddev=1.0))],
                          dtype=dtype, seed=seed)
    parameters = model.trainable_variables[0]  # theta, shape (1, 1), updated in place
    peak = abs(float(parameters[0, 0]))
    # 训练模型
    for i in range(steps):
        loss, gradients = model.compute_gradients(x_train, y_train)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        peak = max(peak, abs(float(parameters[0, 0])))
    return parameters.ravel().copy(), peak


def main():
    runs = [
        ("gd", "梯度下降 (lr = 0.01)", fo.optimizers.SGD(learning_rate=learning_rate), "float64"),
        ("inverse_sqrt", "回归调整 (lr = 1/sqrt(1 + 0.9 t))",
         fo.optimizers.SGD(learning_rate=fo.schedules.InverseSqrtDecay(1.0, beta)), "float64"),
        ("inverse_sqrt_float32", "回归调整 (lr = 1/sqrt(1 + 0.9 t)) in float32, as TensorFlow runs it",
         fo.optimizers.SGD(learning_rate=fo.schedules.InverseSqrtDecay(1.0, beta)), "float32"),
        ("inverse_sqrt_0.01", "回归调整 (lr = 0.01/sqrt(1 + 0.9 t))",
         fo.optimizers.SGD(learning_rate=fo.schedules.InverseSqrtDecay(learning_rate, beta)), "float64"),
        ("l2", "正则化 (lr = 0.01, lambda = 0.01)",
         fo.optimizers.SGD(learning_rate=learning_rate, weight_decay=lambda_), "float64"),
    ]
    results = {}
    for key, name, optimizer, dtype in runs:
        parameters, peak = train(optimizer, dtype=dtype)
        print(f"{name}\n最优参数值： {parameters}   (largest |theta| on the way: {peak:.3g})")
        results[key] = {"theta": float(parameters[0]), "peak": peak}
    return results


if __name__ == "__main__":
    main()
