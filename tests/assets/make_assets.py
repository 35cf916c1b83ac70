"""Regenerate the expected tensors in tests/assets/ from the reference implementation.

    python tests/assets/make_assets.py

Each tensor's recipe (seed, module, arguments) is written to recipes.json beside it.
"""
import json
from pathlib import Path

import torch

from dlcourse.cnn import CNN, ResidualBlock, ResidualBottleneckBlock, ResNet
from dlcourse.optimizers import VanillaSGD

HERE = Path(__file__).resolve().parent


def expected_vsgd(dtype=torch.float32):
    "`dtype` other than float32 recomputes the same update at another precision (tests/test_assets.py)."
    torch.manual_seed(42)
    p = torch.randn(500, 10)
    dp = torch.randn(*p.shape) * 2
    p, dp = p.to(dtype), dp.to(dtype)
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


def expected_conv_out(i, dtype=torch.float32):
    torch.manual_seed(42)
    net = CNN(**CNN_PARAMS[i]).to(dtype)
    torch.manual_seed(42)
    with torch.no_grad():
        return net(torch.ones(1, 3, 100, 100, dtype=dtype))


RESBLOCK_PARAMS = dict(in_channels=3, channels=[6, 4] * 2, kernel_sizes=[3, 5] * 2, batchnorm=True, dropout=0.2)
BOTTLENECK_PARAMS = dict(in_out_channels=256, inner_channels=[64, 32, 64], inner_kernel_sizes=[3, 5, 3],
                         batchnorm=False, dropout=0.1, activation_type="lrelu")
RESNET_PARAMS = [
    dict(in_size=(3, 100, 100), out_classes=10, channels=[32, 64] * 3, pool_every=4, hidden_dims=[100] * 2,
         activation_type="lrelu", activation_params=dict(negative_slope=0.01), pooling_type="avg",
         pooling_params=dict(kernel_size=2), batchnorm=True, dropout=0.1, bottleneck=False),
    dict(in_size=(3, 100, 100), out_classes=5, channels=[64, 16, 64] * 4, pool_every=3, hidden_dims=[64] * 1,
         activation_type="tanh", pooling_type="max", pooling_params=dict(kernel_size=2), batchnorm=True,
         dropout=0.1, bottleneck=True),
]


def eval_out(module_cls, params, in_shape, dtype=torch.float32):
    """Build under seed 42 and run on ones in eval mode: dropout off, batch norm with its initial statistics.
    (Train-mode outputs depend on the CPU's dropout mask stream, so they are not reproducible across machines.)"""
    torch.manual_seed(42)
    net = module_cls(**params)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
    with torch.no_grad():
        return net.to(dtype).eval()(torch.ones(*in_shape, dtype=dtype))


def eval_recipe(module_cls, params, in_shape):
    return (f"torch.manual_seed(42); net = {module_cls.__name__}(**{params}); reset batch-norm running stats; "
            f"saved: net.eval()(torch.ones{tuple(in_shape)})")


RESIDUAL = {
    "expected_resblock_out.pt": (ResidualBlock, RESBLOCK_PARAMS, (1, 3, 32, 32)),
    "expected_resblock_bn_out.pt": (ResidualBottleneckBlock, BOTTLENECK_PARAMS, (1, 256, 32, 32)),
    **{f"expected_resnet_out_{i:02d}.pt": (ResNet, p, (1, 3, 100, 100)) for i, p in enumerate(RESNET_PARAMS)},
}

RECIPES = {
    "expected_vsgd.pt": (expected_vsgd, "torch.manual_seed(42); p = randn(500, 10); dp = randn(500, 10) * 2; "
                                        "VanillaSGD([(p, dp)], learn_rate=0.5, reg=0.1).step(); saved: p"),
    **{f"expected_conv_out_{i:02d}.pt": (
        lambda i=i: expected_conv_out(i),
        f"torch.manual_seed(42); net = CNN(**{CNN_PARAMS[i]}); torch.manual_seed(42); "
        "saved: net(torch.ones(1, 3, 100, 100)) in train mode") for i in range(len(CNN_PARAMS))},
    **{name: (lambda args=args: eval_out(*args), eval_recipe(*args)) for name, args in RESIDUAL.items()},
}


def make_all(folder=HERE):
    folder = Path(folder)
    for name, (make, recipe) in RECIPES.items():
        torch.save(make(), folder / name)
    (folder / "recipes.json").write_text(json.dumps({n: r for n, (_, r) in RECIPES.items()}, indent=2) + "\n")


if __name__ == "__main__":
    make_all()
    print(f"wrote {', '.join(RECIPES)} and recipes.json to {HERE}")
