import importlib.util
from pathlib import Path

import pytest
import torch

ASSETS = Path(__file__).resolve().parent / "assets"

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

DEVICES = ["cpu", pytest.param("cuda", marks=[CUDA, pytest.mark.cuda])]


@pytest.fixture
def default_dtype(request):
    "Run a test with `torch.get_default_dtype()` set to the parametrized dtype."
    old = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(old)


def load_asset_maker():
    "tests/assets/make_assets.py as a module (it is a script, not part of a package)."
    spec = importlib.util.spec_from_file_location("make_assets", ASSETS / "make_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
