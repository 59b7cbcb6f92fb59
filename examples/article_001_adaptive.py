"""Article 001: Adam (and Adagrad, RMSprop) in a gradient loop, with fastopt.

The article's TensorFlow step::

    with tf.GradientTape() as tape:
        y_pred = model(X_train)
        loss = loss_function(y_train, y_pred)
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables))

is, with fastopt (the forward and backward passes in one C call)::

    loss, grads = model.compute_gradients(X_train, y_train)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

Where this script differs from the article, and why:

* The article's model is ``inputs @ W`` with ``W`` a 2x2 *constant* of ones:
  ``tf.compat.v1.trainable_variables()`` is then empty and nothing is trained
  (and ones already fit ``y = 2`` exactly, loss 0).  Here ``W`` is the 2x2
  kernel of ``Dense(2, use_bias=False)`` -- ``model(inputs) = inputs @ W`` --
  trainable, with Keras' default random (Glorot) start.
* ``y_train`` is (4, 1) against a (4, 2) output; TensorFlow broadcasts it to
  (4, 2), so we write that (4, 2) target out.
* The article builds a new optimizer inside the loop, every iteration: that
  throws Adam's moments and step count away each step.  The optimizer is
  created once, before the loop.
* Adagrad and RMSprop run side by side, from the same start.  Their formulas
  in the article are not the standard algorithms; fastopt implements the
  standard (Keras) ones.

    python examples/article_001_adaptive.py
"""
import numpy as np

import fastopt as fo


# 定义损失函数
def loss_function(y_true, y_pred):
    return fo.losses.mean_squared_error(y_true, y_pred)


# 定义优化器 (the article's adam_optimizer, and its two neighbours)
def adam_optimizer(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
    return fo.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1, beta_2=beta2, epsilon=epsilon)


def adagrad_optimizer(learning_rate=0.001, epsilon=1e-7):
    return fo.optimizers.Adagrad(learning_rate=learning_rate, epsilon=epsilon)


def rmsprop_optimizer(learning_rate=0.001, rho=0.9, epsilon=1e-7):
    return fo.optimizers.RMSprop(learning_rate=learning_rate, rho=rho, epsilon=epsilon)


# 训练数据
X_train = np.ones((4, 2), dtype=np.float32)
y_train = np.full((4, 2), 2.0, dtype=np.float32)


# 定义模型: model(inputs) = inputs @ W, W of shape (2, 2) (seed: the same start for every optimizer)
def make_model(seed=0):
    return fo.Sequential([fo.Dense(2, use_bias=False, input_shape=(2,))], seed=seed)


def train(optimizer, steps=1000):
    model = make_model()
    losses = []
    # 优化过程
    for i in range(steps):
        loss, grads = model.compute_gradients(X_train, y_train)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        if i % 100 == 0:
            print(f"Epoch {i}, Loss: {loss}")
            losses.append(loss)
    final = loss_function(y_train, model(X_train))
    return losses, final, model.get_weights()[0]


def main():
    print("W at the start:", make_model().get_weights()[0].tolist())
    results = {}
    for name, make in [("Adam", adam_optimizer), ("Adagrad", adagrad_optimizer),
                       ("RMSprop", rmsprop_optimizer)]:
        print(f"--- {name}")
        optimizer = make(learning_rate=0.001)  # once, before the loop (the article re-creates it each step)
        losses, final, W = train(optimizer)
        results[name] = {"losses": losses, "final_loss": final, "W": W}
    print("\noptimizer  loss after 1000 steps")
    for name, r in results.items():
        print(f"{name:<9}  {r['final_loss']:.6g}")
    return results


if __name__ == "__main__":
    main()
