"""Plotting helpers draw what they are given."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dlcourse.plot import dataset_first_n, plot_fit, tensors_as_images  # noqa: E402
from dlcourse.training import FitResult  # noqa: E402


def test_plot_fit_overlays_runs_with_legends():
    a = FitResult(3, [3.0, 2.0, 1.0], [10, 20, 30], [3.5, 2.5, 2.0], [9, 18, 25])
    b = FitResult(2, [3.0, 1.0], [10, 40], [3.0, 2.0], [12, 30])
    fig, axes = plot_fit(a, legend="a", log_loss=True)
    fig, axes = plot_fit(b, fig=fig, legend="b", log_loss=True)
    assert [ax.get_title() for ax in axes] == ["train loss", "train acc", "test loss", "test acc"]
    assert np.array_equal(axes[3].lines[1].get_ydata(), [12, 30]) and axes[0].get_yscale() == "log"
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["a", "b"]


def test_train_test_overlay_uses_two_panels():
    res = FitResult(2, [2.0, 1.0], [10, 20], [2.5, 1.5], [8, 15])
    fig, axes = plot_fit(res, train_test_overlay=True)
    assert len(axes) == 2 and [line.get_label() for line in axes[0].lines] == ["train", "test"]


def test_images_grid_and_titles():
    fig, axes = tensors_as_images([torch.rand(3, 8, 8) for _ in range(5)], nrows=2, titles="abcde")
    assert axes.shape == (2, 3) and axes[1, 1].get_title() == "e" and not axes[1, 2].images
    data = [(torch.full((1, 4, 4), float(i)), i % 2) for i in range(6)]
    fig, axes = dataset_first_n(data, 4, show_classes=True, class_labels=["even", "odd"])
    assert [ax.get_title() for ax in axes.flat] == ["even", "odd", "even", "odd"]
