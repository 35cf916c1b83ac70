"""The reference layers: gradients against autograd, the seed's architecture and printouts."""
import pytest
import torch
import torch.nn.functional as F

from dlcourse.grad_compare import compare_layer_to_torch
from dlcourse.layers import (MLP, CrossEntropyLoss, Dropout, LeakyReLU, Linear, ReLU, Sequential, Sigmoid,
                             TanH)
from conftest import DEVICES

DTYPES = [torch.float32, torch.float64]


def layer_cases():
    "(name, layer factory, input factory, labels factory) for every layer, on the seed's shapes."
    n, d, c = 100, 200, 10
    return [
        ("lrelu", lambda: LeakyReLU(alpha=0.1), lambda: torch.randn(n, d), None),
        ("relu", ReLU, lambda: torch.randn(n, d), None),
        ("sigmoid", Sigmoid, lambda: torch.randn(n, d, 20), None),  # 3-D input
        ("tanh", TanH, lambda: torch.randn(n, d, 20), None),
        ("linear", lambda: Linear(d, 1000), lambda: torch.randn(n, d), None),
        ("cross_entropy", CrossEntropyLoss, lambda: torch.randn(n, c), lambda: torch.randint(0, c, (n,))),
        ("cross_entropy_large", CrossEntropyLoss, lambda: 1e4 * torch.randn(n, c), lambda: torch.randint(0, c, (n,))),
        ("sequential", lambda: Sequential(Linear(d, 100), ReLU(), Linear(100, 500), LeakyReLU(0.1),
                                          Linear(500, 1), Sigmoid()), lambda: torch.randn(n, d), None),
        ("dropout", lambda: Dropout(0.6), lambda: torch.randn(500, 50), None),
        ("mlp_loss", lambda: Sequential(MLP(d, c, [100, 50, 100], activation="sigmoid"), CrossEntropyLoss()),
         lambda: torch.randn(n, d), lambda: torch.randint(0, c, (n,))),
        ("mlp_dropout", lambda: MLP(d, c, [50] * 3, dropout=0.6), lambda: torch.randn(500, d), None),
    ]


CASES = {name: case for name, *case in layer_cases()}


def run_case(name, device, dtype, train=True):
    make_layer, make_x, make_y = CASES[name]
    torch.manual_seed(0)
    with torch.device(device):
        old = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            layer = make_layer()
            layer.train(train)
            x = make_x()
            y = make_y() if make_y else None
            return compare_layer_to_torch(layer, x, y, verbose=False)
        finally:
            torch.set_default_dtype(old)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n in CASES if n != "tanh"])
def test_gradients_equal_autograd_exactly_on_cpu(name, dtype, train):
    diffs = run_case(name, "cpu", dtype, train)
    assert diffs == [0.0] * len(diffs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_gradient_within_one_rounding_of_autograd(dtype):
    # autograd evaluates 1 - y*y with a fused multiply-add; the plain formula rounds once more
    diffs = run_case("tanh", "cpu", dtype)
    assert 0 <= diffs[0] <= 4 * torch.finfo(dtype).eps


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_gradients_match_autograd_on_every_device(name, device, dtype):
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert max(run_case(name, device, dtype)) <= tol


def test_a_wrong_backward_is_caught():
    class Doubler(LeakyReLU):
        def backward(self, dout):
            return 2 * super().backward(dout)
    assert compare_layer_to_torch(Doubler(0.1), torch.randn(10, 10), verbose=False)[0] > 0.5


def test_forward_values():
    x = torch.randn(30, 40)
    assert torch.equal(LeakyReLU(0.1)(x), F.leaky_relu(x, 0.1))
    assert torch.equal(ReLU()(x), torch.relu(x))
    fc = Linear(40, 7)
    fc.b += torch.randn(7)
    assert torch.allclose(fc(x), F.linear(x, fc.w, fc.b), atol=1e-6)
    labels = torch.randint(0, 40, (30,))
    for scores in (x, x * 1e4, x + 1e3):
        assert torch.allclose(CrossEntropyLoss()(scores, labels), F.cross_entropy(scores, labels), rtol=1e-5)


def test_linear_accumulates_gradients():
    fc, x, dout = Linear(6, 4), torch.randn(3, 6), torch.randn(3, 4)
    fc(x)
    fc.backward(dout)
    fc.backward(dout)
    assert torch.allclose(fc.dw, 2 * dout.T @ x) and torch.allclose(fc.db, 2 * dout.sum(0))


def test_linear_initialisation():
    fc = Linear(500, 400, wstd=0.5)
    assert fc.w.shape == (400, 500) and torch.equal(fc.b, torch.zeros(400))
    assert abs(fc.w.std().item() - 0.5) < 0.01


def test_dropout_is_inverted_and_reproducible():
    x = torch.rand(1000, 500) + 0.5
    d = Dropout(0.3)
    torch.manual_seed(3)
    z = d(x)
    kept = z != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    assert torch.allclose(z[kept], x[kept] / 0.7)
    torch.manual_seed(3)
    assert torch.equal(d(x), z)
    d.train(False)
    assert d(x) is x


def test_reprs_as_the_seed_prints_them():
    assert str(MLP(200, 10, hidden_features=[100, 50, 100])) == (
        "MLP, Sequential\n\t[0] Linear(200, 100)\n\t[1] ReLU\n\t[2] Linear(100, 50)\n\t[3] ReLU\n"
        "\t[4] Linear(50, 100)\n\t[5] ReLU\n\t[6] Linear(100, 10)\n")
    assert str(MLP(3072, 10, [50] * 3, dropout=0.6)).splitlines()[1:4] == [
        "\t[0] Linear(3072, 50)", "\t[1] ReLU", "\t[2] Dropout(p=0.6)"]
    assert [str(layer) for layer in (Sigmoid(), TanH(), CrossEntropyLoss(), LeakyReLU(0.1))] == [
        "Sigmoid", "TanH", "CrossEntropyLoss", "LeakyReLU(alpha=0.1)"]


def test_mlp_structure():
    mlp = MLP(10, 3, [8, 8], activation="tanh", dropout=0.2)
    assert [type(layer).__name__ for layer in mlp.sequence] == [
        "Linear", "TanH", "Dropout", "Linear", "TanH", "Dropout", "Linear"]
    assert len(mlp.params()) == 6
    mlp.train(False)
    assert not any(layer.training_mode for layer in mlp.sequence)


@pytest.mark.parametrize("make", [lambda: LeakyReLU(1.0), lambda: LeakyReLU(-0.1), lambda: Dropout(1.0),
                                  lambda: MLP(3, 2, [4], activation="gelu")])
def test_bad_arguments_are_refused_with_a_reason(make):
    with pytest.raises(ValueError, match="must be|unknown activation"):
        make()
