"""Classification through the model: every loss and activation gradient of the
C training loop against torch's autograd in float64 (compute_gradients), the
fused sigmoid/softmax cross-entropy, Dropout (rate 0, and the twin's masks),
fit step for step against a torch loop, large logits in float32, the fast
and the thorough path, targets and class weights refused before any change,
and saving with Dropout, Activation and the new losses."""
import copy
import functools
import pickle

import numpy as np
import pytest

import fastopt as fo
from fastopt import models as fo_models
import importlib

from optim_helpers import model_fast_path

ref = importlib.import_module("fastopt.reference.loss")

torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH_ACTS = {
    None: lambda z, p: z, "linear": lambda z, p: z, "relu": lambda z, p: torch.relu(z),
    "sigmoid": lambda z, p: torch.sigmoid(z), "tanh": lambda z, p: torch.tanh(z),
    "softmax": lambda z, p: torch.softmax(z, dim=1),
    "leaky_relu": lambda z, p: F.leaky_relu(z, p), "elu": lambda z, p: F.elu(z, p),
    "gelu": lambda z, p: F.gelu(z), "gelu_tanh": lambda z, p: F.gelu(z, approximate="tanh"),
    "silu": lambda z, p: F.silu(z), "softplus": lambda z, p: F.softplus(z),
    "softsign": lambda z, p: F.softsign(z), "hard_sigmoid": lambda z, p: F.relu6(z + 3) / 6,
    "exponential": lambda z, p: torch.exp(z),
}
NAMES = {code: name for name, code in fo.activations.CODES.items()}


def torch_loss(loss, z, a, y):
    """Keras' loss of the last layer (z: its pre-activation, a: its output) in torch."""
    kind = loss.kind
    if kind == "sparse_categorical_crossentropy":
        return F.cross_entropy(z if not loss.from_logits else a, y.long().reshape(-1))
    if kind == "categorical_crossentropy":
        return F.cross_entropy(z if not loss.from_logits else a, y, label_smoothing=loss.label_smoothing)
    if kind == "binary_crossentropy":
        t = y * (1 - loss.label_smoothing) + loss.label_smoothing / 2
        return F.binary_cross_entropy_with_logits(z if not loss.from_logits else a, t)
    e = a - y
    if kind == "mean_squared_error":
        return (e ** 2).mean()
    if kind == "mean_absolute_error":
        return e.abs().mean()
    if kind == "huber":
        return F.huber_loss(a, y, delta=loss.delta)
    if kind == "log_cosh":
        return torch.log(torch.cosh(e)).mean()
    raise AssertionError(kind)


class TorchTwin(torch.nn.Module):
    """The model's Dense layers in torch (weights copied), with its activations,
    their parameters and given dropout masks."""

    def __init__(self, model):
        super().__init__()
        spec = model.spec
        self.acts = [(NAMES[c], p) for c, p in zip(spec[1], spec[5])]
        self.linears = torch.nn.ModuleList()
        for layer in model._dense:
            lin = torch.nn.Linear(layer.kernel.shape[0], layer.units, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.kernel.T.copy()))
                lin.bias.copy_(torch.from_numpy(layer.bias.copy()))
            self.linears.append(lin)

    def forward(self, x, masks=None):
        z = None
        for l, (lin, (name, p)) in enumerate(zip(self.linears, self.acts)):
            z = lin(x)
            x = TORCH_ACTS[name](z, p)
            if masks is not None and masks[l] is not None:
                x = x * torch.from_numpy(masks[l])
        return z, x

    def grads(self):
        out = []
        for lin in self.linears:
            out += [lin.weight.grad.numpy().T, lin.bias.grad.numpy()]
        return out

    def weights(self):
        out = []
        for lin in self.linears:
            out += [lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy()]
        return out


def make(layers, loss, n_in=5, dtype="float64", seed=0, optimizer="sgd", metrics=None):
    layers = [copy.deepcopy(l) for l in layers]
    layers[0] = fo.Dense(layers[0].units, activation=layers[0].activation, input_shape=(n_in,))
    model = fo.Sequential(layers, dtype=dtype, seed=seed)
    model.compile(optimizer, loss, metrics)
    return model


def labels(n, classes, seed=1):
    return np.random.default_rng(seed).integers(0, classes, n).astype(np.float64)


def inputs(n, n_in=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, n_in))


D = fo.Dense
CASES = {
    "softmax+sparse_ce": ([D(6, "gelu"), D(4, "softmax")], "sparse_categorical_crossentropy", "sparse"),
    "sigmoid+bce": ([D(6, "tanh"), D(1, "sigmoid")], "binary_crossentropy", "binary"),
    "sigmoid+bce 3 outputs ls": ([D(6, "silu"), D(3, "sigmoid")],
                                 fo.losses.BinaryCrossentropy(label_smoothing=0.1), "binary3"),
    "softmax+cce ls": ([D(6, "elu"), D(4, "softmax")],
                       fo.losses.CategoricalCrossentropy(label_smoothing=0.2), "onehot"),
    "logits cce": ([D(6, functools.partial(fo.activations.leaky_relu, negative_slope=0.1)), D(4)],
                   fo.losses.CategoricalCrossentropy(from_logits=True), "onehot"),
    "logits sparse": ([D(6, functools.partial(fo.activations.gelu, approximate=True)), D(4)],
                      fo.losses.SparseCategoricalCrossentropy(from_logits=True), "sparse"),
    "logits bce": ([D(6, "softsign"), D(1)], fo.losses.BinaryCrossentropy(from_logits=True), "binary"),
    "softmax+mse": ([D(6, "softplus"), D(3, "softmax")], "mse", "onehot3"),
    "tanh+mae": ([D(6, "hard_sigmoid"), D(2, "tanh")], "mae", "real2"),
    "huber": ([D(6, {"name": "elu", "alpha": 0.5}), D(2, "exponential")], fo.losses.Huber(delta=0.7), "real2"),
    "log_cosh": ([D(6, "relu"), D(2, "gelu")], "log_cosh", "real2"),
    "activation layer": ([D(6), fo.layers.Activation("gelu"), D(4), fo.layers.Activation("softmax")],
                         "sparse_categorical_crossentropy", "sparse"),
}


def targets(kind, n, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "sparse":
        return labels(n, 4, seed)
    if kind == "binary":
        return labels(n, 2, seed).reshape(-1, 1)
    if kind == "binary3":
        return rng.integers(0, 2, (n, 3)).astype(np.float64)
    if kind == "onehot":
        return np.eye(4)[rng.integers(0, 4, n)]
    if kind == "onehot3":
        return np.eye(3)[rng.integers(0, 3, n)]
    return 0.5 * rng.standard_normal((n, 2))


@pytest.mark.parametrize("case", list(CASES))
def test_compute_gradients_match_autograd(case):
    layers, loss, kind = CASES[case]
    model = make(layers, loss)
    x, y = inputs(17), targets(kind, 17)
    twin = TorchTwin(model)
    value, grads = model.compute_gradients(x, y)
    yt = torch.from_numpy(y.reshape(len(y), -1))
    z, a = twin(torch.from_numpy(x))
    tloss = torch_loss(model._loss_obj, z, a, yt)
    tloss.backward()
    assert value == pytest.approx(tloss.item(), rel=1e-12, abs=1e-14)
    for g, t in zip(grads, twin.grads()):
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-12)
    # predict returns the activated outputs (probabilities for softmax / sigmoid)
    np.testing.assert_allclose(model.predict(x), a.detach().numpy(), rtol=1e-12, atol=1e-14)
    # evaluate reads the same loss training does (the fused form too)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(value, rel=1e-13)


def test_finite_differences_of_a_fused_loss():
    model = make([D(4, "gelu"), D(3, "softmax")], "sparse_categorical_crossentropy")
    x, y = inputs(9), labels(9, 3)
    _, grads = model.compute_gradients(x, y)
    h = 1e-6
    for v, g in zip(model.trainable_variables, grads):
        flat = v.reshape(-1)
        for i in range(0, flat.size, max(1, flat.size // 5)):
            keep = flat[i]
            flat[i] = keep + h
            up = model.evaluate(x, y, verbose=0)
            flat[i] = keep - h
            down = model.evaluate(x, y, verbose=0)
            flat[i] = keep
            assert (up - down) / (2 * h) == pytest.approx(g.reshape(-1)[i], rel=1e-6, abs=1e-8)


def test_dropout_rate_zero_is_the_plain_network():
    layers = [D(6, "relu"), fo.layers.Dropout(0.0), D(4, "softmax")]
    model = make(layers, "sparse_categorical_crossentropy")
    x, y = inputs(12), labels(12, 4)
    state = model._rng_state.copy()
    value, grads = model.compute_gradients(x, y)
    assert (model._rng_state == state).all()  # rate 0 draws nothing
    twin = TorchTwin(model)
    z, a = twin(torch.from_numpy(x))
    tloss = F.cross_entropy(z, torch.from_numpy(y).long())
    tloss.backward()
    assert value == pytest.approx(tloss.item(), rel=1e-12)
    for g, t in zip(grads, twin.grads()):
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("noise", [None, (None, 1), (1, None)])
def test_dropout_uses_the_twins_masks_from_the_models_stream(noise):
    layers = [D(6, "tanh"), fo.layers.Dropout(0.4, noise_shape=noise), D(5, "gelu"), fo.layers.Dropout(0.25),
              D(3, "softmax")]
    model = make(layers, "sparse_categorical_crossentropy", seed=3)
    x, y = inputs(11), labels(11, 3)
    state = model._rng_state.copy()
    value, grads = model.compute_gradients(x, y)
    # the twin draws the same masks from a copy of the stream, layer by layer
    shapes = [(11, 6) if noise is None else ((11, 1) if noise == (None, 1) else (1, 6)), (11, 5), None]
    masks = []
    for shape, rate in zip(shapes, (0.4, 0.25, 0)):
        masks.append(None if shape is None else ref.dropout(np.ones(shape), shape, rate, state)[1])
    assert (model._rng_state == state).all()
    twin = TorchTwin(model)
    z, a = twin(torch.from_numpy(x), masks)
    tloss = F.cross_entropy(z, torch.from_numpy(y).long())
    tloss.backward()
    assert value == pytest.approx(tloss.item(), rel=1e-12)
    for g, t in zip(grads, twin.grads()):
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-12)
    # no dropout at inference: predict and evaluate see the plain network
    plain = TorchTwin(model)(torch.from_numpy(x))[1].detach().numpy()
    np.testing.assert_allclose(model.predict(x), plain, rtol=1e-12)
    before = model._rng_state.copy()
    model.evaluate(x, y, verbose=0)
    model.test_on_batch(x, y)
    assert (model._rng_state == before).all()


def test_dropout_training_is_reproducible_by_seed():
    x, y = inputs(40), labels(40, 3)
    runs = []
    for _ in range(2):
        model = make([D(8, "relu"), fo.layers.Dropout(0.5), D(3, "softmax")], "sparse_categorical_crossentropy",
                     seed=11, dtype="float32", optimizer="adam")
        h = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        runs.append((model.get_weights(), h.history["loss"]))
    assert runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][0], runs[1][0]):
        assert np.array_equal(a, b)


OPTS = {"sgd": (lambda: fo.optimizers.SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
        "adam": (lambda: fo.optimizers.Adam(0.01, epsilon=1e-30), lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-30))}


@pytest.mark.parametrize("opt", list(OPTS))
@pytest.mark.parametrize("case", ["softmax+sparse_ce", "sigmoid+bce", "logits cce"])
def test_fit_matches_a_torch_loop_step_for_step(opt, case):
    layers, loss, kind = CASES[case]
    model = make(layers, loss, optimizer=OPTS[opt][0]())
    x, y = inputs(30), targets(kind, 30)
    twin = TorchTwin(model)
    topt = OPTS[opt][1](twin.parameters())
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.reshape(len(y), -1))
    epochs, batch = 3, 8
    expected = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, 30, batch):
            topt.zero_grad()
            z, a = twin(xt[start:start + batch])
            l = torch_loss(model._loss_obj, z, a, yt[start:start + batch])
            l.backward()
            topt.step()
            total += l.item() * len(z)
        expected.append(total / 30)
    h = model.fit(x, y, epochs=epochs, batch_size=batch, shuffle=False, verbose=0)
    np.testing.assert_allclose(h.history["loss"], expected, rtol=1e-10)
    for w, t in zip(model.get_weights(), twin.weights()):
        np.testing.assert_allclose(w, t, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("case", ["softmax+sparse_ce", "sigmoid+bce"])
def test_large_logits_give_no_nan_in_float32(case):
    layers, loss, kind = CASES[case]
    model = make(layers, loss, dtype="float32", optimizer="adam")
    last = model._dense[-1]
    last.kernel[...] = 0
    last.bias[...] = np.where(np.arange(last.units) % 2 == 0, 1e4, -1e4)
    x, y = inputs(16).astype(np.float32), targets(kind, 16)
    loss_value, grads = model.compute_gradients(x, y)
    assert np.isfinite(loss_value) and all(np.isfinite(g).all() for g in grads)
    h = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.parametrize("case", ["softmax+sparse_ce", "sigmoid+bce", "softmax+cce ls", "huber"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_and_thorough_paths_are_bit_identical(case, dtype):
    layers, loss, kind = CASES[case]
    layers = layers[:1] + [fo.layers.Dropout(0.3)] + layers[1:]
    x = inputs(20).astype(dtype)
    y = targets(kind, 20).astype(dtype)
    results = []
    for fast in (True, False):
        with model_fast_path(fast):
            model = make(layers, loss, dtype=dtype, seed=5, optimizer="adam", metrics=["accuracy", "mse"]
                         if kind != "sparse" else ["accuracy"])
            r = [model.train_on_batch(x, y, return_dict=True), model.test_on_batch(x, y, return_dict=True)]
            value, grads = model.compute_gradients(x, y)
            r += [value, [g.copy() for g in grads], model.predict(x), model.get_weights(),
                  model._rng_state.copy()]
        results.append(r)
    a, b = results
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    for u, v in zip(a[3] + [a[4]] + a[5] + [a[6]], b[3] + [b[4]] + b[5] + [b[6]]):
        assert np.array_equal(u, v)


def test_metrics_reach_history_and_evaluate():
    x, y = inputs(60), labels(60, 3)
    model = make([D(8, "relu"), D(3, "softmax")], "sparse_categorical_crossentropy", optimizer="adam",
                 metrics=["accuracy", fo.metrics.SparseCategoricalAccuracy(name="sca")])
    h = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "sca"} and len(h.history["accuracy"]) == 3
    assert h.history["accuracy"] == h.history["sca"]
    logs = model.evaluate(x, y, return_dict=True)
    pred = model.predict(x)
    assert logs["accuracy"] == pytest.approx(np.mean(pred.argmax(1) == y), abs=1e-15)
    # watched epochs (validation) give the same per-epoch values as the bulk run
    m2 = make([D(8, "relu"), D(3, "softmax")], "sparse_categorical_crossentropy", optimizer="adam",
              metrics=["accuracy", fo.metrics.SparseCategoricalAccuracy(name="sca")])
    h2 = m2.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_data=(x, y))
    assert h2.history["accuracy"] == h.history["accuracy"]
    assert h2.history["val_accuracy"][-1] == logs["accuracy"]
    binary = make([D(4, "tanh"), D(1, "sigmoid")], "binary_crossentropy", metrics=["accuracy"])
    yb = labels(60, 2)
    logs = binary.evaluate(x, yb, return_dict=True)
    assert logs["accuracy"] == pytest.approx(np.mean((binary.predict(x)[:, 0] > 0.5) == yb), abs=1e-15)


def test_class_weight_is_a_per_sample_weight_of_the_label():
    x, y = inputs(24), labels(24, 3)
    cw = {0: 0.5, 1: 2.0}
    sw = np.array([cw.get(int(c), 1.0) for c in y])
    a = make([D(5, "relu"), D(3, "softmax")], "sparse_categorical_crossentropy")
    b = make([D(5, "relu"), D(3, "softmax")], "sparse_categorical_crossentropy")
    assert a.train_on_batch(x, y, class_weight=cw) == b.train_on_batch(x, y, sample_weight=sw)
    yo = np.eye(3)[y.astype(int)]
    c = make([D(5, "relu"), D(3, "softmax")], "categorical_crossentropy")
    d = make([D(5, "relu"), D(3, "softmax")], "categorical_crossentropy")
    assert c.train_on_batch(x, yo, class_weight=cw) == d.train_on_batch(x, yo, sample_weight=sw)


def _state(model):
    return [model.get_weights(), model.optimizer.iterations, model._rng_state.copy(),
            [s.copy() for s in model._slots if s is not None]]


def _same(a, b):
    assert a[1] == b[1]
    for u, v in zip(a[0] + [a[2]] + a[3], b[0] + [b[2]] + b[3]):
        assert np.array_equal(u, v)


@pytest.mark.parametrize("fast", [True, False])
def test_bad_targets_and_class_weights_are_refused_before_any_change(fast, request):
    request.addfinalizer(functools.partial(fo_models.use_fast_path, fo_models.use_fast_path(fast)))
    x = inputs(10)
    sparse = make([D(4, "relu"), D(3, "softmax")], "sparse_categorical_crossentropy", optimizer="adam")
    sparse.fit(x, labels(10, 3), epochs=1, verbose=0)
    cce = make([D(4, "relu"), D(3, "softmax")], "categorical_crossentropy", optimizer="adam")
    bce = make([D(4, "relu"), D(1, "sigmoid")], "binary_crossentropy", optimizer="adam")
    bad_labels = labels(10, 3)
    bad_labels[4] = 3
    half = np.eye(3)[labels(10, 3).astype(int)]
    half[2] = [0.5, 0.2, 0.1]
    cases = [
        (sparse, lambda m: m.fit(x, bad_labels, epochs=1, verbose=0), "y"),
        (sparse, lambda m: m.train_on_batch(x, bad_labels), "y"),
        (sparse, lambda m: m.compute_gradients(x, bad_labels), "y"),
        (sparse, lambda m: m.evaluate(x, bad_labels, verbose=0), "y"),
        (sparse, lambda m: m.test_on_batch(x, bad_labels), "y"),
        (sparse, lambda m: m.train_on_batch(x, labels(10, 3) + 0.5), "y"),
        (sparse, lambda m: m.fit(x, labels(10, 3), class_weight={5: 2.0}, verbose=0), "class_weight"),
        (sparse, lambda m: m.fit(x, labels(10, 3), verbose=0, validation_data=(x, bad_labels)),
         "validation_data"),
        (cce, lambda m: m.fit(x, half, epochs=1, verbose=0), "y"),
        (cce, lambda m: m.train_on_batch(x, half), "y"),
        (bce, lambda m: m.train_on_batch(x, 2 * labels(10, 2)), "y"),
        (bce, lambda m: m.train_on_batch(x, labels(10, 2), class_weight={2: 1.0}), "class_weight"),
    ]
    for model, call, name in cases:
        before = _state(model)
        with pytest.raises(ValueError, match=name):
            call(model)
        _same(before, _state(model))


def test_save_load_and_pickle_resume_bit_for_bit(tmp_path):
    layers = [D(8, functools.partial(fo.activations.leaky_relu, negative_slope=0.1)), fo.layers.Dropout(0.3),
              D(6), fo.layers.Activation("gelu"), fo.layers.Dropout(0.2, noise_shape=(None, 1)), D(3, "softmax")]
    x, y = inputs(40), labels(40, 3)
    for loss, metrics in (("sparse_categorical_crossentropy", ["accuracy"]),
                          (fo.losses.SparseCategoricalCrossentropy(reduction="sum"),
                           [fo.metrics.SparseCategoricalAccuracy(name="acc2")])):
        model = make(layers, loss, seed=2, optimizer="adam", metrics=metrics)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        path = tmp_path / "m.npz"
        model.save(path)
        copies = [fo.models.load_model(path), pickle.loads(pickle.dumps(model))]
        assert [type(l).__name__ for l in copies[0].layers] == [type(l).__name__ for l in model.layers]
        h = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        for c in copies:
            assert c.metrics_names == model.metrics_names and c.loss == model.loss
            hc = c.fit(x, y, epochs=2, batch_size=8, verbose=0)
            assert hc.history == h.history
            for u, v in zip(c.get_weights(), model.get_weights()):
                assert np.array_equal(u, v)
