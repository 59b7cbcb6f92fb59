"""The model against PyTorch in float64: the same network built from
torch.nn.Linear (weight = kernel.T), its autograd gradients, and training
loops over the same mini-batches with torch.optim."""
import numpy as np
import pytest

import fastopt as fo

torch = pytest.importorskip("torch")

ARCH = [(12, "tanh"), (7, "sigmoid"), (5, "relu"), (2, None)]
N_IN = 6
TORCH_ACTS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, None: lambda z: z}


def make_model(arch=ARCH, n_in=N_IN, regs=None, seed=0, use_bias=None):
    layers = []
    for i, (units, act) in enumerate(arch):
        kw = dict(activation=act)
        if i == 0:
            kw["input_shape"] = (n_in,)
        if regs:
            kw["kernel_regularizer"] = regs[i]
        if use_bias is not None:
            kw["use_bias"] = use_bias[i]
        layers.append(fo.Dense(units, **kw))
    return fo.Sequential(layers, dtype="float64", seed=seed)


class TorchNet(torch.nn.Module):
    """The model's twin in torch, weights copied from it."""

    def __init__(self, model):
        super().__init__()
        self.acts = [TORCH_ACTS[l.activation] for l in model.layers]
        self.linears = torch.nn.ModuleList()
        for layer in model.layers:
            lin = torch.nn.Linear(layer.kernel.shape[0], layer.units, bias=layer.use_bias,
                                  dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.kernel.T.copy()))
                if layer.use_bias:
                    lin.bias.copy_(torch.from_numpy(layer.bias.copy()))
            self.linears.append(lin)
        self.regs = [l.kernel_regularizer for l in model.layers]

    def forward(self, x):
        for lin, act in zip(self.linears, self.acts):
            x = act(lin(x))
        return x

    def loss(self, x, y):
        loss = torch.nn.functional.mse_loss(self(x), y)
        for lin, r in zip(self.linears, self.regs):
            if r is not None:
                loss = loss + r.l1 * lin.weight.abs().sum() + r.l2 * (lin.weight ** 2).sum()
        return loss

    def keras_grads(self):
        out = []
        for lin in self.linears:
            out.append(lin.weight.grad.numpy().T)
            if lin.bias is not None:
                out.append(lin.bias.grad.numpy())
        return out

    def keras_weights(self):
        out = []
        for lin in self.linears:
            out.append(lin.weight.detach().numpy().T)
            if lin.bias is not None:
                out.append(lin.bias.detach().numpy())
        return out


def data(n, n_in=N_IN, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in))
    y = np.sin(x[:, :n_out] * 1.5) + 0.1 * rng.standard_normal((n, n_out))
    return x, y


def assert_close(fo_arrays, torch_arrays, rtol, atol):
    assert len(fo_arrays) == len(torch_arrays)
    for a, b in zip(fo_arrays, torch_arrays):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("regs", [None, [fo.regularizers.l2(0.01), fo.regularizers.l1(0.003),
                                         None, fo.regularizers.l1_l2(0.002, 0.02)]])
@pytest.mark.parametrize("use_bias", [None, [True, False, True, False]])
def test_compute_gradients_match_autograd(regs, use_bias):
    model = make_model(regs=regs, use_bias=use_bias)
    net = TorchNet(model)
    x, y = data(33)
    loss, grads = model.compute_gradients(x, y)
    tloss = net.loss(torch.from_numpy(x), torch.from_numpy(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12, abs=1e-14)
    assert_close(grads, net.keras_grads(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(model.predict(x), net(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-13)


# (fastopt optimizer, torch optimizer): hyperparameters where the two rules coincide
# (Keras' epsilon convention differs from torch's; with epsilon 1e-30 both vanish)
PAIRS = {
    "sgd": (lambda: fo.optimizers.SGD(0.05),
            lambda p: torch.optim.SGD(p, lr=0.05)),
    "sgd_momentum": (lambda: fo.optimizers.SGD(0.05, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "sgd_nesterov": (lambda: fo.optimizers.SGD(0.05, momentum=0.8, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (lambda: fo.optimizers.Adam(0.01, epsilon=1e-30),
             lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-30)),
    "adam_betas": (lambda: fo.optimizers.Adam(0.005, beta_1=0.8, beta_2=0.99, epsilon=1e-30),
                   lambda p: torch.optim.Adam(p, lr=0.005, betas=(0.8, 0.99), eps=1e-30)),
    "adamw": (lambda: fo.optimizers.AdamW(0.01, weight_decay=0.05, epsilon=1e-30),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05, eps=1e-30)),
    "rmsprop": (lambda: fo.optimizers.RMSprop(0.002, rho=0.9, epsilon=1e-30),
                lambda p: torch.optim.RMSprop(p, lr=0.002, alpha=0.9, eps=1e-30)),
    "rmsprop_momentum": (lambda: fo.optimizers.RMSprop(0.002, rho=0.95, momentum=0.5, epsilon=1e-30),
                         lambda p: torch.optim.RMSprop(p, lr=0.002, alpha=0.95, momentum=0.5, eps=1e-30)),
    "adagrad": (lambda: fo.optimizers.Adagrad(0.05, initial_accumulator_value=0.1, epsilon=1e-30),
                lambda p: torch.optim.Adagrad(p, lr=0.05, initial_accumulator_value=0.1, eps=1e-30)),
}


def torch_fit(net, opt, x, y, epochs, batch_size):
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(x), batch_size):
            xb, yb = xt[start:start + batch_size], yt[start:start + batch_size]
            opt.zero_grad()
            loss = net.loss(xb, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        losses.append(total / len(x))
    return losses


@pytest.mark.parametrize("batch_size", [10, 16])  # divides 80, and not
@pytest.mark.parametrize("pair", list(PAIRS))
def test_fit_matches_torch_loop(pair, batch_size):
    make_fo, make_torch = PAIRS[pair]
    regs = [fo.regularizers.l2(0.005), None, None, None]
    model = make_model(regs=regs, seed=1)
    net = TorchNet(model)
    model.compile(make_fo(), "mse")
    topt = make_torch(net.parameters())
    x, y = data(80, seed=2)
    h = model.fit(x, y, epochs=4, batch_size=batch_size, shuffle=False, verbose=0)
    tl = torch_fit(net, topt, x, y, 4, batch_size)
    np.testing.assert_allclose(h.history["loss"], tl, rtol=1e-9)
    assert_close(model.get_weights(), net.keras_weights(), rtol=1e-9, atol=1e-10)


def test_large_layer_uses_blas_and_matches_torch():
    """64 -> 300 relu -> 1 with batches of 256: the products go to BLAS."""
    from fastopt import _core

    assert 256 * 64 * 300 >= _core.blas_threshold()
    arch = [(300, "relu"), (1, None)]
    model = make_model(arch, n_in=64, seed=3)
    net = TorchNet(model)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 64))
    y = np.tanh(x[:, :1] + x[:, 1:2]) + 0.05 * rng.standard_normal((1000, 1))

    loss, grads = model.compute_gradients(x[:256], y[:256])
    tloss = net.loss(torch.from_numpy(x[:256]), torch.from_numpy(y[:256]))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    assert_close(grads, net.keras_grads(), rtol=1e-9, atol=1e-12)

    model.compile(fo.optimizers.Adam(0.002, epsilon=1e-30), "mse")
    topt = torch.optim.Adam(net.parameters(), lr=0.002, eps=1e-30)
    h = model.fit(x, y, epochs=3, batch_size=256, shuffle=False, verbose=0)  # 1000 = 3 * 256 + 232
    tl = torch_fit(net, topt, x, y, 3, 256)
    np.testing.assert_allclose(h.history["loss"], tl, rtol=1e-9)
    assert_close(model.get_weights(), net.keras_weights(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.predict(x), net(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-8, atol=1e-10)
