"""tests/assets/ is what make_assets.py makes, and agrees with the course's own tensors."""
from pathlib import Path

import pytest
import torch

from conftest import ASSETS, load_asset_maker

COURSE_ASSETS = Path(__file__).resolve().parents[2] / "shared" / "course-assets"


def test_assets_are_regenerated_by_the_script(tmp_path):
    maker = load_asset_maker()
    maker.make_all(tmp_path)
    assert (tmp_path / "recipes.json").read_text() == (ASSETS / "recipes.json").read_text()
    for name in maker.RECIPES:
        assert torch.equal(torch.load(tmp_path / name), torch.load(ASSETS / name)), name


@pytest.mark.skipif(not COURSE_ASSETS.exists(), reason=f"the course's own tensors are not at {COURSE_ASSETS}")
def test_vsgd_equals_the_course_copy():
    # equal up to float32 round-off of the update (the course's arithmetic order is not known)
    ours, course = torch.load(ASSETS / "expected_vsgd.pt"), torch.load(COURSE_ASSETS / "expected_vsgd.pt")
    assert ours.shape == course.shape
    assert (ours - course).abs().max().item() <= 4 * torch.finfo(torch.float32).eps * course.abs().max().item()


@pytest.mark.skipif(not COURSE_ASSETS.exists(), reason=f"the course's own tensors are not at {COURSE_ASSETS}")
@pytest.mark.parametrize("i", range(3))
def test_cnn_outputs_equal_the_course_copies(i):
    ours, course = torch.load(ASSETS / f"expected_conv_out_{i:02d}.pt"), torch.load(COURSE_ASSETS / f"expected_conv_out_{i:02d}.pt")
    assert ours.shape == course.shape
    assert torch.allclose(ours, course, rtol=0, atol=1e-6), (ours - course).abs().max()
