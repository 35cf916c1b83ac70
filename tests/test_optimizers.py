"""The reference optimizers against torch.optim where the rules coincide, and the formula elsewhere."""
import pytest
import torch
import torch.nn as nn

from dlcourse.optimizers import MomentumSGD, RMSProp, VanillaSGD


def train_pair(ours_cls, ours_kw, torch_cls, torch_kw, steps=20):
    torch.manual_seed(0)
    model, ref = nn.Linear(8, 4), nn.Linear(8, 4)
    ref.load_state_dict(model.state_dict())
    ours, theirs = ours_cls(model.parameters(), **ours_kw), torch_cls(ref.parameters(), **torch_kw)
    for _ in range(steps):
        x = torch.randn(16, 8)
        for m, opt in ((model, ours), (ref, theirs)):
            opt.zero_grad()
            (m(x) ** 2).mean().backward()
            opt.step()
    return list(model.parameters()), list(ref.parameters())


@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_vanilla_sgd_is_torch_sgd_with_weight_decay(reg):
    ours, theirs = train_pair(VanillaSGD, dict(learn_rate=0.1, reg=reg), torch.optim.SGD, dict(lr=0.1, weight_decay=reg))
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("momentum,reg", [(0.9, 0.01), (0.5, 0.0)])
def test_momentum_sgd_is_torch_sgd_with_momentum(momentum, reg):
    ours, theirs = train_pair(MomentumSGD, dict(learn_rate=0.05, reg=reg, momentum=momentum),
                              torch.optim.SGD, dict(lr=0.05, momentum=momentum, weight_decay=reg))
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-5)


def test_rmsprop_follows_its_formula_with_eps_inside_the_root():
    torch.manual_seed(1)
    p = torch.randn(10, 3, dtype=torch.float64)
    dp = torch.zeros_like(p)
    expected, r = p.clone(), torch.zeros_like(p)
    opt = RMSProp([(p, dp)], learn_rate=0.01, reg=0.1, decay=0.9, eps=1e-2)
    for _ in range(5):
        g = torch.randn_like(p)
        dp.copy_(g)
        opt.step()
        g = g + 0.1 * expected
        r = 0.9 * r + 0.1 * g ** 2
        expected = expected - 0.01 / torch.sqrt(r + 1e-2) * g
    assert torch.allclose(p, expected, atol=1e-12)


def test_parameters_without_gradients_are_skipped_and_gradients_cleared():
    w = nn.Parameter(torch.ones(3))
    opt = MomentumSGD([w], learn_rate=1.0)
    opt.step()  # no gradient yet
    assert torch.equal(w.detach(), torch.ones(3))
    w.grad = torch.ones(3)
    opt.zero_grad()
    assert torch.equal(w.grad, torch.zeros(3))


def test_bad_params_are_refused():
    with pytest.raises(TypeError, match="pairs"):
        VanillaSGD([1.0, 2.0])
