"""Article 004: full-batch gradient descent vs mini-batch SGD vs Adam on
``Dense(1)``, ``y = 0.5 x + 3``, with fastopt -- and the comparison the
article announces but never prints.

The article's TensorFlow step::

    with tf.GradientTape() as tape:
        y_pred = model(X)
        loss = loss_fn(y, y_pred)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))

is, with fastopt::

    loss, gradients = model.compute_gradients(X, y)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))

Where this script differs from the article, and why:

* The article applies BOTH optimizers to the SAME model every step (an SGD
  step, then an Adam step with the same, now stale, gradients), so its loss
  curve belongs to neither algorithm.  Here each optimizer trains its own
  model, all three from the same initial weights.
* The article's "SGD" is full-batch gradient descent.  We run that, and also
  true mini-batch SGD (``batch_size=10``, reshuffled every epoch), which is
  ``model.fit``: its 1000 epochs run in C.  Its printed loss is the mean of
  the epoch's batch losses (as Keras prints it).
* Its Adam formula puts epsilon inside the square root; fastopt's Adam is
  the standard (Keras / torch) rule.

    python examples/article_004_gd_sgd_adam.py
"""
import numpy as np

import fastopt as fo

# 生成一组随机数据
np.random.seed(0)
X = np.random.randn(100, 1)
y = X * 0.5 + 3

# 定义损失函数
loss_fn = fo.losses.MeanSquaredError()


# 定义神经网络模型 (seed: every model starts from the same weights)
def make_model(seed=0):
    return fo.Sequential([fo.Dense(1, input_shape=(1,))], seed=seed)


def train(model, optimizer, epochs=1000):
    """The article's loop, with one optimizer."""
    losses = []
    for epoch in range(epochs):
        loss, gradients = model.compute_gradients(X, y)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        if epoch % 100 == 0:
            print(f"Epoch: {epoch}, Loss: {loss}")
            losses.append(loss)
    return losses


def train_minibatch(model, learning_rate=0.01, batch_size=10, epochs=1000):
    model.compile(optimizer=fo.optimizers.SGD(learning_rate=learning_rate), loss="mean_squared_error")
    history = model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0)
    losses = history.history["loss"][::100]
    for epoch, loss in zip(range(0, epochs, 100), losses):
        print(f"Epoch: {epoch}, Loss: {loss}")
    return losses


def main():
    kernel0, bias0 = make_model().get_weights()
    print(f"initial weights: w = {kernel0[0, 0]:.6f}, b = {bias0[0]:.6f}")
    # 定义梯度下降优化算法 / 定义Adam优化算法: one model each
    optimizer_sgd = fo.optimizers.SGD(learning_rate=0.01)
    optimizer_adam = fo.optimizers.Adam(learning_rate=0.01)
    runs = {}
    print("--- gradient descent (full batch, SGD learning_rate=0.01)")
    model = make_model()
    runs["GD (full batch)"] = (model, train(model, optimizer_sgd))
    print("--- mini-batch SGD (batch_size=10, learning_rate=0.01)")
    model = make_model()
    runs["SGD (batch 10)"] = (model, train_minibatch(model))
    print("--- Adam (learning_rate=0.01)")
    model = make_model()
    runs["Adam"] = (model, train(model, optimizer_adam))

    # 比较: final full-data loss and the learned line (the truth: w = 0.5, b = 3)
    print(f"\n{'optimizer':<16}{'final loss':>12}{'w':>12}{'b':>12}")
    results = {}
    for name, (model, losses) in runs.items():
        kernel, bias = model.get_weights()
        final = loss_fn(y, model(X))
        w, b = float(kernel[0, 0]), float(bias[0])
        print(f"{name:<16}{final:>12.3e}{w:>12.6f}{b:>12.6f}")
        results[name] = {"losses": losses, "final_loss": final, "w": w, "b": b}
    return results


if __name__ == "__main__":
    main()
