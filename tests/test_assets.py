"""tests/assets/ is what make_assets.py makes, and agrees with the course's own tensors.

The committed tensors were computed on one CPU; a test may run on any x86 or ARM CPU. Float results computed on
different machines are compared within a tolerance relative to the tensor's scale, `max|ours - saved| <= tol *
max|saved|`, stated per asset below with its reason. Exact equality is kept only where it holds by construction.
"""
from pathlib import Path

import pytest
import torch

from conftest import ASSETS, load_asset_maker

COURSE_ASSETS = Path(__file__).resolve().parents[2] / "shared" / "course-assets"

EPS32 = torch.finfo(torch.float32).eps
# An element-wise update (p -= lr * (dp + reg * p)): each element is rounded a few times, in the same order on any
# CPU; a fused multiply-add where the CPU has one saves a rounding, so allow a few units in the last place.
ELEMENTWISE = 4 * EPS32
# A stack of convolutions and matrix products: SIMD kernels sum in a different order on different CPUs (measured:
# an AMD EPYC reproduces the Intel-made tensors to 1.5e-6 of their scale, the float64 result is within 5.2e-7).
# 1e-5 leaves room for that and is still far below any wrong configuration (see the near misses below).
CONV_STACK = 1e-5
TOLERANCE = {"expected_vsgd.pt": ELEMENTWISE}


def tolerance(name):
    return TOLERANCE.get(name, CONV_STACK)


def scaled_error(actual, expected):
    "max|actual - expected| as a fraction of max|expected|; inf when the shapes differ."
    if actual.shape != expected.shape:
        return float("inf")
    return ((actual.double() - expected.double()).abs().max() / expected.double().abs().max()).item()


def saved(name):
    return torch.load(ASSETS / name)


def test_assets_are_regenerated_by_the_script(tmp_path):
    maker = load_asset_maker()
    maker.make_all(tmp_path)
    assert (tmp_path / "recipes.json").read_text() == (ASSETS / "recipes.json").read_text()
    for name in maker.RECIPES:
        err = scaled_error(torch.load(tmp_path / name), saved(name))
        assert err <= tolerance(name), f"{name}: regenerated tensor differs by {err:.2e} of its scale"


def float64_recompute(maker, name):
    "The asset's recipe evaluated in float64 from the same float32 weights and inputs: round-off of another order."
    if name == "expected_vsgd.pt":
        return maker.expected_vsgd(torch.float64)
    if name.startswith("expected_conv_out_"):
        return maker.expected_conv_out(int(name[-5:-3]), torch.float64)
    return maker.eval_out(*maker.RESIDUAL[name], dtype=torch.float64)


@pytest.mark.parametrize("name", list(load_asset_maker().RECIPES))
def test_tolerance_admits_round_off(name):
    # Another summation order must pass: float64 is the far end of it (no round-off at float32's scale at all).
    err = scaled_error(float64_recompute(load_asset_maker(), name), saved(name))
    assert err <= tolerance(name), f"{name}: float64 result differs by {err:.2e} of the tensor's scale"


def near_misses(maker):
    "Wrong configurations of the recipes, one detail each, that keep the output's shape; (label, asset, output)."
    def cnn(i, **change):
        torch.manual_seed(42)
        net = maker.CNN(**{**maker.CNN_PARAMS[i], **change})
        torch.manual_seed(42)
        with torch.no_grad():
            return net(torch.ones(1, 3, 100, 100))

    def resnet_with_scaled_first_conv(i):
        torch.manual_seed(42)
        net = maker.ResNet(**maker.RESNET_PARAMS[i])
        with torch.no_grad():
            first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
            first_conv.weight *= 1.01
            return net.eval()(torch.ones(1, 3, 100, 100))

    def vsgd(reg):
        torch.manual_seed(42)
        p = torch.randn(500, 10)
        dp = torch.randn(*p.shape) * 2
        maker.VanillaSGD([(p, dp)], learn_rate=0.5, reg=reg).step()
        return p

    p0 = maker.CNN_PARAMS[0]["conv_params"]
    p1 = maker.CNN_PARAMS[1]
    return [
        ("conv padding off by one", "expected_conv_out_00.pt", lambda: cnn(0, conv_params={**p0, "padding": 0})),
        ("leaky slope 1% off", "expected_conv_out_01.pt",
         lambda: cnn(1, activation_params={"negative_slope": 1.01 * p1["activation_params"]["negative_slope"]})),
        ("max instead of avg pooling", "expected_conv_out_01.pt", lambda: cnn(1, pooling_type="max")),
        ("first conv's weights 1% off", "expected_resnet_out_00.pt", lambda: resnet_with_scaled_first_conv(0)),
        ("L2 weight 0.1% off", "expected_vsgd.pt", lambda: vsgd(0.1001)),
    ]


@pytest.mark.parametrize("label", [m[0] for m in near_misses(load_asset_maker())])
def test_tolerance_still_fails_a_near_miss(label):
    _, name, compute = next(m for m in near_misses(load_asset_maker()) if m[0] == label)
    err = scaled_error(compute(), saved(name))
    assert err > 10 * tolerance(name), f"{label}: off by only {err:.2e} of the scale, too close to the tolerance"


@pytest.mark.skipif(not COURSE_ASSETS.exists(), reason=f"the course's own tensors are not at {COURSE_ASSETS}")
def test_vsgd_equals_the_course_copy():
    # both files were saved on some CPU: an element-wise update, so within a few roundings
    # (the course's arithmetic order is not known)
    err = scaled_error(saved("expected_vsgd.pt"), torch.load(COURSE_ASSETS / "expected_vsgd.pt"))
    assert err <= ELEMENTWISE, err


@pytest.mark.skipif(not COURSE_ASSETS.exists(), reason=f"the course's own tensors are not at {COURSE_ASSETS}")
@pytest.mark.parametrize("i", range(3))
def test_cnn_outputs_equal_the_course_copies(i):
    # saved on different CPUs and torch versions: float32 round-off of a convolution stack
    name = f"expected_conv_out_{i:02d}.pt"
    err = scaled_error(saved(name), torch.load(COURSE_ASSETS / name))
    assert err <= CONV_STACK, err
