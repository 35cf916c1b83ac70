"""Part 4's reference: the printed architectures equal the course's, residual blocks behave as residual blocks."""
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from conftest import DEVICES, load_asset_maker
from dlcourse.classifier import BinaryClassifier
from dlcourse.cnn import CNN, ResidualBlock, ResidualBottleneckBlock, ResNet
from dlcourse.mlp import MLP

SEED_TEXT = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_f98803a79e453e14.txt"


def seed_prints(name):
    "The module listings the course's notebook printed for class `name`, in order."
    text = SEED_TEXT.read_text()
    return re.findall(rf"^{name}\(\n.*?^\)$", text, flags=re.S | re.M)


def normalised(listing):
    # current torch prints BatchNorm's `bias=True`; the course's MLP softmax had no dim, the course tables give dim=1
    return listing.replace(", bias=True, track_running_stats", ", track_running_stats").replace("Softmax(dim=None)", "Softmax(dim=1)")


@pytest.mark.skipif(not SEED_TEXT.exists(), reason=f"the course's notebook is not at {SEED_TEXT}")
def test_printed_architectures_equal_the_course_listings():
    maker = load_asset_maker()
    ours = {
        "CNN": [CNN(**p) for p in maker.CNN_PARAMS],
        "ResNet": [ResNet(**p) for p in maker.RESNET_PARAMS],
        "ResidualBlock": [ResidualBlock(**maker.RESBLOCK_PARAMS)],
        "ResidualBottleneckBlock": [ResidualBottleneckBlock(**maker.BOTTLENECK_PARAMS)],
        "MLP": [MLP(2, [8, 16, 32, 64], ["relu", "tanh", nn.LeakyReLU(0.314), "softmax"])],
        "BinaryClassifier": [BinaryClassifier(MLP(2, [10, 10, 10, 2], ["relu"] * 3 + ["none"]))],
    }
    for name, modules in ours.items():
        listings = seed_prints(name)
        assert len(listings) >= len(modules), name
        for module, listing in zip(modules, listings):
            assert normalised(str(module)) == normalised(listing), name


def test_identity_shortcut_passes_the_input_through():
    block = ResidualBlock(4, [8, 4], [3, 5], batchnorm=True, dropout=0.3)
    with torch.no_grad():
        block.main_path[-1].weight.zero_()
        block.main_path[-1].bias.zero_()
    x = torch.randn(2, 4, 7, 9)
    assert torch.equal(block(x), torch.relu(x))  # main path silenced: ReLU(x + 0)
    assert isinstance(block.shortcut_path[0], nn.Identity)


def test_projection_shortcut_only_when_channels_change():
    block = ResidualBlock(3, [8, 6], [3, 3])
    (proj,) = block.shortcut_path
    assert isinstance(proj, nn.Conv2d) and proj.kernel_size == (1, 1) and proj.bias is None
    with torch.no_grad():
        block.main_path[-1].weight.zero_()
        block.main_path[-1].bias.zero_()
    x = torch.randn(2, 3, 5, 5)
    assert torch.allclose(block(x), torch.relu(nn.functional.conv2d(x, proj.weight)))


def test_main_path_order_and_sizes():
    block = ResidualBlock(3, [6, 4, 5], [3, 5, 1], batchnorm=True, dropout=0.2, activation_type="lrelu")
    kinds = [type(m) for m in block.main_path]
    step = [nn.Dropout2d, nn.BatchNorm2d, nn.LeakyReLU]
    assert kinds == [nn.Conv2d, *step, nn.Conv2d, *step, nn.Conv2d]
    assert block(torch.randn(2, 3, 11, 6)).shape == (2, 5, 11, 6)
    with pytest.raises(ValueError, match="odd"):
        ResidualBlock(3, [4], [2])


def test_bottleneck_parameter_counts():
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(ResidualBlock(256, [256, 256], [3, 3])) == 2 * (9 * 256 * 256 + 256) == 1_180_160
    assert count(ResidualBottleneckBlock(256, [64], [3])) == (256 * 64 + 64) + (9 * 64 * 64 + 64) + (64 * 256 + 256)


def test_building_a_network_leaves_batch_norm_untouched():
    net = ResNet((3, 20, 20), 4, [8, 8, 8], pool_every=2, hidden_dims=[10], batchnorm=True)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.num_batches_tracked.item() == 0 and torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
    assert net.training


def test_resnet_groups_pool_and_bottlenecks():
    net = ResNet((3, 16, 16), 4, [8, 8, 8, 16, 8], pool_every=3, hidden_dims=[], bottleneck=True)
    kinds = [type(m).__name__ for m in net.feature_extractor]
    assert kinds == ["ResidualBlock", "MaxPool2d", "ResidualBlock"]  # 3 -> 8 cannot be a bottleneck
    net = ResNet((8, 16, 16), 4, [8, 2, 8, 16, 8], pool_every=3, hidden_dims=[], bottleneck=True)
    assert [type(m).__name__ for m in net.feature_extractor] == ["ResidualBottleneckBlock", "MaxPool2d", "ResidualBlock"]
    with pytest.raises(ValueError, match="conv_params"):
        ResNet((3, 8, 8), 2, [4], 1, [], conv_params=dict(kernel_size=5))


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_resnet_trains_on_its_device(device):
    torch.manual_seed(0)
    net = ResNet((3, 16, 16), 3, [8, 16], pool_every=2, hidden_dims=[16], batchnorm=True, dropout=0.1).to(device)
    x, y = torch.randn(12, 3, 16, 16, device=device), torch.randint(0, 3, (12,), device=device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
