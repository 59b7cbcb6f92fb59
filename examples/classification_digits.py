"""Softmax classification with cross-entropy on scikit-learn's ``load_digits``.

1797 handwritten digits of 8x8 pixels (shipped with scikit-learn, no
download): a 64 -> 32 (relu) -> 10 (softmax) network trained with Adam on
``sparse_categorical_crossentropy`` (one class index per sample), with
accuracy reported by the same C pass.  The softmax and the cross-entropy run
fused, from the logits (log-sum-exp), as Keras and torch compute them.

    python examples/classification_digits.py
"""
import numpy as np

import fastopt as fo
from fastopt import train_test_split


def load(seed=42):
    """(x_train, x_test, y_train, y_test): pixels scaled to [0, 1], labels 0..9."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=seed)


def main(seed=0, epochs=50):
    x_train, x_test, y_train, y_test = load()
    model = fo.Sequential([
        fo.Dense(32, activation='relu', input_shape=(64,)),
        fo.Dense(10, activation='softmax'),
    ], seed=seed)
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test)
    proba = model.predict(x_test)               # (n, 10) probabilities, rows sum to 1
    predicted = proba.argmax(axis=1)
    print(f'test loss {loss:.4f}, test accuracy {accuracy:.4f}')
    return {"loss": loss, "accuracy": accuracy, "history": history.history,
            "proba": proba, "predicted": predicted, "y_test": y_test}


if __name__ == "__main__":
    main()
