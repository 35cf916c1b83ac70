"""`pip install dlcourse`: the wheel and the sdist that `make dist` builds hold the library alone, and the wheel,
installed in a fresh environment outside the repository, runs the public API."""
import json
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import dlcourse
from fresh_venv import FreshVenv
from grader.course import NBS_DIR, ROOT, load_settings
from grader.edition import find_reference_code, reference_lines

pytestmark = pytest.mark.slow  # builds the wheel and installs it in a fresh venv

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    "The wheel and the sdist, built as `make dist` builds them."
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (wheel,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    return wheel, sdist


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory):
    "A fresh environment (dlcourse not importable in it) with the wheel installed."
    env = FreshVenv(tmp_path_factory.mktemp("wheel-venv") / "venv")
    env.pip_install(dist[0])
    yield env
    env.remove()


def wheel_files(wheel):
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_wheel_and_sdist_hold_the_library_alone(dist):
    wheel, sdist = dist
    version = dlcourse.__version__
    assert wheel.name == f"dlcourse-{version}-py3-none-any.whl" and sdist.name == f"dlcourse-{version}.tar.gz"
    names = wheel_files(wheel)
    top = {n.split("/")[0] for n in names}
    assert top == {"dlcourse", f"dlcourse-{version}.dist-info"}, top
    assert "dlcourse/layers.py" in names and "dlcourse/sample_data/cifar10-sample.tar.gz" in names
    with tarfile.open(sdist) as tar:
        in_sdist = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    for files in (names, in_sdist):
        assert not [n for n in files if n.split("/")[0] in ("grader", "tests", "nbs", "docs")], files
        assert not [n for n in files if n.endswith((".ipynb", ".db", ".pt", "settings.ini"))], files


def test_wheel_holds_no_hidden_test(dist, tmp_path):
    parts = [NBS_DIR / f"{part}.ipynb" for part in load_settings().parts]
    # a judge may compute an expected value with a line of the solution, which the wheel holds by design
    hidden = reference_lines(parts, solutions=False) - reference_lines(parts, hidden=False)
    assert len(hidden) > 50  # the scan really looks for something
    with zipfile.ZipFile(dist[0]) as z:
        z.extractall(tmp_path / "wheel")
    assert find_reference_code(tmp_path / "wheel", hidden) == []
    # and it would find them: the notebooks hold them
    assert find_reference_code(NBS_DIR, hidden)


def test_version_comes_from_one_place(dist, venv):
    with zipfile.ZipFile(dist[0]) as z:
        metadata = z.read(f"dlcourse-{dlcourse.__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {dlcourse.__version__}\n" in metadata
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert venv.run("-c", "import dlcourse; print(dlcourse.__version__)").stdout.strip() == dlcourse.__version__


API_CHECK = r'''
import json, sys
from pathlib import Path
import torch
import dlcourse
from torch.utils.data import DataLoader, Subset
from dlcourse.cnn import CNN
from dlcourse.datasets import as_tensors, find_cifar10
from dlcourse.grad_compare import compare_layer_to_torch
from dlcourse.layers import MLP, CrossEntropyLoss, Linear, ReLU, Sigmoid
from dlcourse.optimizers import VanillaSGD
from dlcourse.training import LayerTrainer

out = {"file": dlcourse.__file__}
torch.manual_seed(0)
x = torch.randn(8, 5, dtype=torch.float64)
out["grad_diffs"] = {
    "Linear": compare_layer_to_torch(Linear(5, 3), x.float(), verbose=False),
    "ReLU": compare_layer_to_torch(ReLU(), x, verbose=False),
    "Sigmoid": compare_layer_to_torch(Sigmoid(), x, verbose=False),
    "CrossEntropyLoss": compare_layer_to_torch(CrossEntropyLoss(), x, y=torch.randint(0, 5, (8,)), verbose=False),
    "MLP": compare_layer_to_torch(MLP(5, 3, [4]), x.float(), verbose=False),
}

p, dp = torch.randn(4, 3), torch.randn(4, 3)
before = p.clone()
VanillaSGD([(p, dp)], learn_rate=0.5, reg=0.1).step()
out["sgd_step_error"] = (p - (before - 0.5 * (dp + 0.1 * before))).abs().max().item()

train, test = as_tensors(find_cifar10(train=True)), as_tensors(find_cifar10(train=False))
out["sample_sizes"] = [len(train), len(test)]
torch.manual_seed(0)
model = MLP(3 * 32 * 32, 10, hidden_features=[64])
trainer = LayerTrainer(model, CrossEntropyLoss(), VanillaSGD(model.params(), learn_rate=0.05, reg=0.0))
fit = trainer.fit(DataLoader(Subset(train, range(500)), 50), DataLoader(Subset(test, range(200)), 50), num_epochs=3,
                  print_every=0)
out["fit"] = fit._asdict()

torch.manual_seed(42)
net = CNN((3, 100, 100), 10, channels=[32] * 4, pool_every=2, hidden_dims=[100] * 2,
          conv_params=dict(kernel_size=3, stride=1, padding=1), activation_type="relu", pooling_type="max",
          pooling_params=dict(kernel_size=2))
torch.manual_seed(42)
y = net(torch.ones(1, 3, 100, 100))
out["cnn_error"] = (y - torch.load(sys.argv[1])).abs().max().item()
print(json.dumps(out))
'''


def test_installed_wheel_runs_the_public_api(venv, tmp_path):
    asset = tmp_path / "expected_conv_out_00.pt"  # the course's expected CNN output, as data
    asset.write_bytes((ROOT / "tests" / "assets" / "expected_conv_out_00.pt").read_bytes())
    script = tmp_path / "api_check.py"
    script.write_text(API_CHECK)
    res = venv.run(str(script), str(asset), cwd=tmp_path)  # cwd outside the repository
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).is_relative_to(venv.path), out["file"]  # the installed wheel, not the repository
    for name, diffs in out["grad_diffs"].items():
        assert max(diffs) == 0, (name, diffs)  # the backward passes are bit-identical to autograd's on the CPU
    assert out["sgd_step_error"] < 1e-6
    assert out["sample_sizes"] == [3000, 1000]  # the embedded sample, found inside the installed package
    fit = out["fit"]
    assert fit["num_epochs"] == 3 and len(fit["test_acc"]) == 3
    assert fit["train_loss"][-1] < fit["train_loss"][0]
    assert max(fit["test_acc"]) > 15  # ten classes: chance is 10%
    assert out["cnn_error"] < 1e-6
    assert "embedded sample" in res.stdout


def console_command():
    return PYPROJECT["project"].get("scripts", {}).get("dlcourse")


@pytest.mark.skipif(console_command() is None, reason="pyproject.toml declares no `dlcourse` console command yet")
def test_console_command_from_the_wheel(venv, tmp_path):
    res = subprocess.run([str(venv.path / "bin" / "dlcourse"), "--help"], cwd=tmp_path, capture_output=True,
                         text=True, env=venv.env(), timeout=300)
    assert res.returncode == 0, res.stderr
    assert re.search(r"usage:", res.stdout, re.IGNORECASE), res.stdout
