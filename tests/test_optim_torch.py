"""fastopt's optimizers against torch.optim, float64, same start and gradients.

Where the two libraries define a rule differently (Keras puts Adagrad's and
RMSprop's epsilon inside the square root, torch outside; Keras' Adam epsilon
is torch's times sqrt(1 - beta_2^t)), the comparison uses an epsilon too small
to matter in either."""
import math

import numpy as np
import pytest

import fastopt as fo

torch = pytest.importorskip("torch")

STEPS = 40
SHAPES = [(3, 4), (5,), (1,)]


def run(fast, make_torch, seed=0, steps=STEPS, grad_scale=1.0):
    """Step the same weights with the same gradients through both; return both."""
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * grad_scale for s in SHAPES] for _ in range(steps)]
    mine = [w.copy() for w in w0]
    params = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in w0]
    topt = make_torch(params)
    for gs in grads:
        fast.apply_gradients(zip(gs, mine))
        for p, g in zip(params, gs):
            p.grad = torch.from_numpy(g.copy())
        topt.step()
    theirs = [p.detach().numpy() for p in params]
    for w, w_start in zip(mine, w0):
        assert not np.allclose(w, w_start)
    return mine, theirs


def assert_close(mine, theirs, rtol=1e-12, atol=1e-13):
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
def test_sgd(momentum, nesterov):
    mine, theirs = run(fo.optimizers.SGD(learning_rate=0.05, momentum=momentum, nesterov=nesterov),
                       lambda p: torch.optim.SGD(p, lr=0.05, momentum=momentum, nesterov=nesterov))
    assert_close(mine, theirs)


@pytest.mark.parametrize("initial", [0.1, 1.0])
def test_adagrad(initial):
    # Keras: g / sqrt(a + eps); torch: g / (sqrt(a) + eps): eps -> 0 in both
    mine, theirs = run(
        fo.optimizers.Adagrad(learning_rate=0.1, initial_accumulator_value=initial, epsilon=1e-300),
        lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=initial, eps=0.0))
    assert_close(mine, theirs)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.8])
@pytest.mark.parametrize("rho", [0.9, 0.5])
def test_rmsprop(rho, momentum, centered):
    mine, theirs = run(
        fo.optimizers.RMSprop(learning_rate=0.01, rho=rho, momentum=momentum, centered=centered,
                              epsilon=1e-300),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=rho, momentum=momentum, centered=centered,
                                      eps=0.0))
    assert_close(mine, theirs, rtol=1e-11)


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
def test_adam(betas, amsgrad):
    # decreasing gradients, so AMSGrad's running max differs from v
    mine, theirs = run(
        fo.optimizers.Adam(learning_rate=0.01, beta_1=betas[0], beta_2=betas[1], epsilon=1e-30,
                           amsgrad=amsgrad),
        lambda p: torch.optim.Adam(p, lr=0.01, betas=betas, eps=1e-30, amsgrad=amsgrad))
    assert_close(mine, theirs)


def test_amsgrad_differs_from_adam():
    """The AMSGrad comparison above is not vacuous: the max changes the trajectory."""
    a, _ = run(fo.optimizers.Adam(learning_rate=0.01, epsilon=1e-30, beta_2=0.9),
               lambda p: torch.optim.Adam(p, lr=0.01))
    b, _ = run(fo.optimizers.Adam(learning_rate=0.01, epsilon=1e-30, beta_2=0.9, amsgrad=True),
               lambda p: torch.optim.Adam(p, lr=0.01))
    assert not all(np.allclose(x, y, rtol=1e-6) for x, y in zip(a, b))


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("weight_decay", [0.004, 0.1, 0.5])
def test_adamw(weight_decay, amsgrad):
    mine, theirs = run(
        fo.optimizers.AdamW(learning_rate=0.02, weight_decay=weight_decay, epsilon=1e-30,
                            amsgrad=amsgrad),
        lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=weight_decay, eps=1e-30,
                                    amsgrad=amsgrad))
    assert_close(mine, theirs)


def test_adam_weight_decay_is_decoupled():
    """Adam(weight_decay=x) is AdamW, not torch.optim.Adam's L2 weight_decay."""
    mine, theirs = run(fo.optimizers.Adam(learning_rate=0.02, weight_decay=0.1, epsilon=1e-30),
                       lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.1, eps=1e-30))
    assert_close(mine, theirs)
    mine_l2, theirs_l2 = run(fo.optimizers.Adam(learning_rate=0.02, weight_decay=0.1, epsilon=1e-30),
                             lambda p: torch.optim.Adam(p, lr=0.02, weight_decay=0.1, eps=1e-30))
    assert not all(np.allclose(a, b, rtol=1e-6) for a, b in zip(mine_l2, theirs_l2))


@pytest.mark.parametrize("beta_2", [0.999, 0.9])
def test_adam_default_epsilon_is_torch_epsilon_scaled(beta_2):
    """At step t Keras' epsilon is torch's times sqrt(1 - beta_2^t): for t = 1
    fastopt with epsilon=e equals torch with eps = e / sqrt(1 - beta_2).  Small
    gradients, so that epsilon matters."""
    e = 1e-7
    scaled = e / math.sqrt(1 - beta_2)
    mine, theirs = run(fo.optimizers.Adam(learning_rate=0.01, beta_2=beta_2, epsilon=e),
                       lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, beta_2), eps=scaled),
                       steps=1, grad_scale=1e-6)
    assert_close(mine, theirs, rtol=1e-12)
    same_eps, theirs_same = run(fo.optimizers.Adam(learning_rate=0.01, beta_2=beta_2, epsilon=e),
                                lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, beta_2), eps=e),
                                steps=1, grad_scale=1e-6)
    # with the same eps they differ by far more than round-off
    diffs = [np.max(np.abs(a - b) / np.abs(a)) for a, b in zip(same_eps, theirs_same)]
    assert max(diffs) > 1e-6


def test_sgd_momentum_with_a_constant_schedule():
    """A schedule that stays constant gives torch's trajectory (the SGD docstring:
    Keras' velocity carries the past learning rates, which only matters when they change)."""
    const = fo.schedules.PiecewiseConstantDecay([1000.0], [0.05, 0.05])
    mine, theirs = run(fo.optimizers.SGD(learning_rate=const, momentum=0.9),
                       lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9))
    assert_close(mine, theirs)
