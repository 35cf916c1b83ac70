"""Regenerate the expected tensors in tests/assets/ from the reference implementation.

    python tests/assets/make_assets.py

Each tensor's recipe (seed, module, arguments) is written to recipes.json beside it.
"""
import json
from pathlib import Path

import torch

from dlcourse.cnn import CNN
from dlcourse.optimizers import VanillaSGD

HERE = Path(__file__).resolve().parent


def expected_vsgd():
    torch.manual_seed(42)
    p = torch.randn(500, 10)
    dp = torch.randn(*p.shape) * 2
    VanillaSGD([(p, dp)], learn_rate=0.5, reg=0.1).step()
    return p


CNN_PARAMS = [
    dict(in_size=(3, 100, 100), out_classes=10, channels=[32] * 4, pool_every=2, hidden_dims=[100] * 2,
         conv_params=dict(kernel_size=3, stride=1, padding=1), activation_type="relu", activation_params=dict(),
         pooling_type="max", pooling_params=dict(kernel_size=2)),
    dict(in_size=(3, 100, 100), out_classes=10, channels=[32] * 4, pool_every=2, hidden_dims=[100] * 2,
         conv_params=dict(kernel_size=5, stride=2, padding=3), activation_type="lrelu",
         activation_params=dict(negative_slope=0.05), pooling_type="avg", pooling_params=dict(kernel_size=3)),
    dict(in_size=(3, 100, 100), out_classes=3, channels=[16] * 5, pool_every=3, hidden_dims=[100] * 1,
         conv_params=dict(kernel_size=2, stride=2, padding=2), activation_type="lrelu",
         activation_params=dict(negative_slope=0.1), pooling_type="max", pooling_params=dict(kernel_size=2)),
]


def expected_conv_out(i):
    torch.manual_seed(42)
    net = CNN(**CNN_PARAMS[i])
    torch.manual_seed(42)
    with torch.no_grad():
        return net(torch.ones(1, 3, 100, 100))


RECIPES = {
    "expected_vsgd.pt": (expected_vsgd, "torch.manual_seed(42); p = randn(500, 10); dp = randn(500, 10) * 2; "
                                        "VanillaSGD([(p, dp)], learn_rate=0.5, reg=0.1).step(); saved: p"),
    **{f"expected_conv_out_{i:02d}.pt": (
        lambda i=i: expected_conv_out(i),
        f"torch.manual_seed(42); net = CNN(**{CNN_PARAMS[i]}); torch.manual_seed(42); "
        "saved: net(torch.ones(1, 3, 100, 100)) in train mode") for i in range(len(CNN_PARAMS))},
}


def make_all(folder=HERE):
    folder = Path(folder)
    for name, (make, recipe) in RECIPES.items():
        torch.save(make(), folder / name)
    (folder / "recipes.json").write_text(json.dumps({n: r for n, (_, r) in RECIPES.items()}, indent=2) + "\n")


if __name__ == "__main__":
    make_all()
    print(f"wrote {', '.join(RECIPES)} and recipes.json to {HERE}")
