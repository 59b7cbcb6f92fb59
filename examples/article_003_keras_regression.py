"""Article 003: the Keras regression network, with fastopt.

The article trains ``Sequential([Dense(10, 'relu'), Dense(1)])`` with Adam on
the Boston housing data, imported from scikit-learn.  Two changes:

* **The data.**  ``sklearn.datasets.load_boston`` was removed from
  scikit-learn (1.2), and fastopt does not depend on scikit-learn.  We
  generate synthetic data of Boston's shape instead -- 506 samples x 13
  features of assorted scales, a nonlinear target with Boston's mean (~22.5)
  and spread, from a fixed seed (:func:`load_boston_like`).  It is NOT the
  Boston data, and its MSE is not comparable with published Boston figures.
* **Standardized features and target.**  The article feeds raw numbers to
  the network.  Any real user standardizes the features (their scales run
  from 0.1 to 400); and with the article's settings -- Adam's default
  ``learning_rate=0.001``, 100 epochs of 13 batches, so 1300 steps of about
  0.001 each -- the output, which starts near 0, cannot climb to a target
  whose mean is ~22.5: unscaled, the test MSE stays about that of predicting
  the mean (Keras and torch do the same; we checked torch).  So the target is
  standardized too (as scikit-learn's ``TransformedTargetRegressor`` does)
  and the predictions are scaled back.  All statistics come from the training
  split only.

``train_test_split`` and ``mean_squared_error`` come from fastopt (the same
split and value scikit-learn gives); the model calls are the article's.

    python examples/article_003_keras_regression.py
"""
import numpy as np

import fastopt as fo
from fastopt import train_test_split
from fastopt.metrics import mean_squared_error


def load_boston_like(seed=0):
    """(X, y): 506 x 13 features and a nonlinear target, Boston-sized, synthetic."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((506, 13))
    scale = np.array([8.6, 23.3, 6.9, 0.25, 0.12, 0.70, 28.1, 2.1, 8.7, 168.5, 2.2, 91.3, 7.1])
    offset = np.array([3.6, 11.4, 11.1, 0.07, 0.55, 6.28, 68.6, 3.8, 9.5, 408.2, 18.5, 356.7, 12.7])
    X = z * scale + offset
    y = (22.5 + 4.0 * z[:, 5] - 3.0 * z[:, 12] + 2.5 * np.tanh(2 * z[:, 0]) - 1.5 * z[:, 10]
         + 1.5 * z[:, 4] * z[:, 7] + 2.0 * np.maximum(z[:, 2], 0) + rng.normal(0, 1.5, 506))
    return X, y


def fit_and_score(X, y, seed=0):
    """The article's network and calls on (X, y): split, standardize, train, score
    on the test split.  Returns (test MSE, MSE of predicting the mean, history)."""
    # 划分训练集和测试集
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)

    # standardize features and target with the training split's statistics
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    y_mean, y_std = y_train.mean(), y_train.std()

    # 定义神经网络模型 (seed: reproducible initial weights and shuffling; not in Keras' signature)
    model = fo.Sequential([
        fo.Dense(10, activation='relu', input_shape=(X_train.shape[1],)),
        fo.Dense(1)
    ], seed=seed)

    # 编译模型
    model.compile(optimizer='adam', loss='mean_squared_error', metrics=['mean_squared_error'])

    # 训练模型
    history = model.fit(X_train, (y_train - y_mean) / y_std, epochs=100, batch_size=32, verbose=0)

    # 评估模型
    y_pred = model.predict(X_test) * y_std + y_mean
    mse = mean_squared_error(y_test, y_pred)
    baseline = mean_squared_error(y_test, np.full_like(y_test, y_mean))
    return mse, baseline, history


def main(seed=0):
    # 加载数据集
    X, y = load_boston_like()
    mse, baseline, history = fit_and_score(X, y, seed)
    print('Mean squared error:', mse)
    print(f'(predicting the training mean instead: {baseline})')
    return {"mse": mse, "baseline_mse": baseline, "train_loss": history.history["loss"]}


def diabetes(seed=0):
    """The same network and calls on real data: scikit-learn's ``load_diabetes``
    (442 patients x 10 features, shipped with scikit-learn, no download), the
    target standardized on the training split as above.  Needs scikit-learn."""
    from sklearn.datasets import load_diabetes

    mse, baseline, history = fit_and_score(*load_diabetes(return_X_y=True), seed)
    print('load_diabetes: mean squared error:', mse, f'(predicting the mean: {baseline})')
    return {"mse": mse, "baseline_mse": baseline, "train_loss": history.history["loss"]}


if __name__ == "__main__":
    main()
    try:
        diabetes()
    except ImportError:
        print('load_diabetes: scikit-learn is not installed (pip install scikit-learn)')
