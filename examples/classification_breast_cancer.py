"""Binary classification with a sigmoid output and binary cross-entropy on
scikit-learn's ``load_breast_cancer`` (569 tumours x 30 features, shipped with
scikit-learn, no download).

Features are standardized with the training split's statistics; a
30 -> 16 (relu) -> Dropout(0.2) -> 1 (sigmoid) network trains with Adam, the
sigmoid and the cross-entropy fused from the logit.  ``class_weight`` weighs
the rarer class (malignant, label 0) up, as Keras' ``fit`` does.

    python examples/classification_breast_cancer.py
"""
import numpy as np

import fastopt as fo
from fastopt import train_test_split


def load(seed=42):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def main(seed=0, epochs=30):
    x_train, x_test, y_train, y_test = load()
    model = fo.Sequential([
        fo.Dense(16, activation='relu', input_shape=(30,)),
        fo.layers.Dropout(0.2),
        fo.Dense(1, activation='sigmoid'),
    ], seed=seed)
    model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
    counts = np.bincount(y_train.astype(int))
    class_weight = {c: len(y_train) / (2 * n) for c, n in enumerate(counts)}
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=32, class_weight=class_weight, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test)
    proba = model.predict(x_test)[:, 0]          # P(benign)
    print(f'test loss {loss:.4f}, test accuracy {accuracy:.4f}')
    return {"loss": loss, "accuracy": accuracy, "history": history.history, "proba": proba, "y_test": y_test}


if __name__ == "__main__":
    main()
