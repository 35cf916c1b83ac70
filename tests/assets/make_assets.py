"""Regenerate the expected tensors in tests/assets/ from the reference implementation.

    python tests/assets/make_assets.py

Each tensor's recipe (seed, module, arguments) is written to recipes.json beside it.
"""
import json
from pathlib import Path

import torch

from dlcourse.optimizers import VanillaSGD

HERE = Path(__file__).resolve().parent


def expected_vsgd():
    torch.manual_seed(42)
    p = torch.randn(500, 10)
    dp = torch.randn(*p.shape) * 2
    VanillaSGD([(p, dp)], learn_rate=0.5, reg=0.1).step()
    return p


RECIPES = {
    "expected_vsgd.pt": (expected_vsgd, "torch.manual_seed(42); p = randn(500, 10); dp = randn(500, 10) * 2; "
                                        "VanillaSGD([(p, dp)], learn_rate=0.5, reg=0.1).step(); saved: p"),
}


def make_all(folder=HERE):
    folder = Path(folder)
    for name, (make, recipe) in RECIPES.items():
        torch.save(make(), folder / name)
    (folder / "recipes.json").write_text(json.dumps({n: r for n, (_, r) in RECIPES.items()}, indent=2) + "\n")


if __name__ == "__main__":
    make_all()
    print(f"wrote {', '.join(RECIPES)} and recipes.json to {HERE}")
