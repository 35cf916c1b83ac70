"""Part 3's reference: classifiers, decision grids, ROC thresholds, the explorers, the depth/width experiment."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.metrics import roc_curve
from torch.utils.data import DataLoader, TensorDataset

from conftest import DEVICES
from dlcourse.classifier import (ArgMaxClassifier, BinaryClassifier, decision_grid, plot_confusion,
                                 plot_decision_boundary_2d, positive_proba, select_roc_thresh, threshold_explorer)
from dlcourse.datasets import rotated_moons
from dlcourse.experiments import boundary_explorer, mlp_experiment
from dlcourse.mlp import MLP
from dlcourse.plot import STATIC_PLOTS_VAR, widgets_available


def logits(s):
    "Scores [0, s]: P(class 1) = sigmoid(s), so s = 0 is exactly one half."
    s = torch.as_tensor(s, dtype=torch.float32)
    return torch.stack([torch.zeros_like(s), s], dim=1)


def scored_sample(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = logits(torch.randn(n, generator=g) * 2)
    y = (torch.rand(n, generator=g) < torch.sigmoid(0.7 * z[:, 1])).long()
    return z, y


def test_threshold_is_inclusive_and_respects_the_positive_class():
    z = logits([-3.0, -0.5, 0.0, 0.5, 3.0])
    assert BinaryClassifier(nn.Identity(), threshold=0.5).classify(z).tolist() == [0, 0, 1, 1, 1]
    assert BinaryClassifier(nn.Identity(), threshold=0.9).classify(z).tolist() == [0, 0, 0, 0, 1]
    assert BinaryClassifier(nn.Identity(), positive_class=0, threshold=0.5).classify(z).tolist() == [0, 0, 0, 1, 1]
    assert BinaryClassifier(nn.Identity()).classify(z).dtype == torch.int
    with pytest.raises(ValueError, match="positive_class"):
        BinaryClassifier(nn.Identity(), positive_class=2)


def test_probabilities_and_argmax():
    z = torch.randn(20, 5) * 4
    clf = ArgMaxClassifier(nn.Identity())
    assert torch.allclose(clf.predict_proba(z), torch.softmax(z, 1))
    assert torch.equal(clf.classify(z).long(), z.argmax(1))
    assert torch.equal(clf.classify_scores(z), clf.classify(z))


@pytest.mark.parametrize("positive", [1, 0])
def test_roc_threshold_is_the_point_closest_to_the_corner(positive):
    z, y = scored_sample(seed=positive)
    clf = BinaryClassifier(nn.Identity(), positive_class=positive)
    p, is_pos = torch.softmax(z, 1)[:, positive].numpy(), y.numpy() == positive

    def distance(th):  # brute force: classify at th and measure
        pred = p >= th
        return np.hypot((pred & ~is_pos).mean() / (~is_pos).mean(), 1 - (pred & is_pos).sum() / is_pos.sum())

    th = select_roc_thresh(clf, z, y)
    assert np.isclose(distance(th), min(distance(c) for c in p))
    assert th in roc_curve(y.numpy(), p, pos_label=positive)[2]  # one of the curve's own thresholds


def test_classifier_at_the_chosen_threshold_sits_on_the_roc_point():
    z, y = scored_sample(seed=5)
    clf = BinaryClassifier(nn.Identity())
    clf.threshold = select_roc_thresh(clf, z, y)
    fpr, tpr, t = roc_curve(y.numpy(), positive_proba(clf, z))
    i = list(t).index(clf.threshold)
    pred, truth = clf.classify(z).numpy() == 1, y.numpy() == 1
    assert (pred & ~truth).sum() / (~truth).sum() == pytest.approx(fpr[i])
    assert (pred & truth).sum() / truth.sum() == pytest.approx(tpr[i])


def test_decision_grid_is_the_classifier_on_a_meshgrid():
    line = BinaryClassifier(nn.Linear(2, 2))
    with torch.no_grad():
        line.model.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        line.model.bias.zero_()
    x1, x2, y_hat = decision_grid(line, torch.tensor([[-1.0, -2.0], [3.0, 1.0]]), dx=0.25)
    assert x1.shape == y_hat.shape and np.isclose(x1.min(), -1.5) and np.isclose(x2.max(), 1.5)
    assert np.all(y_hat[x1 > x2 + 1e-6] == 1) and np.all(y_hat[x1 < x2 - 1e-6] == 0)
    fig, ax = plot_decision_boundary_2d(line, torch.randn(30, 2), torch.randint(0, 2, (30,)))
    assert len(ax.collections) >= 2  # the filled regions and the points


def test_predictions_use_eval_mode_and_restore_the_mode():
    clf = BinaryClassifier(nn.Sequential(nn.Linear(2, 32), nn.Dropout(0.9), nn.Linear(32, 2)))
    x = torch.randn(50, 2)
    assert clf.training
    a, b = positive_proba(clf, x), positive_proba(clf, x)
    assert np.array_equal(a, b) and clf.training  # no dropout noise, mode restored
    conf = plot_confusion(clf, x, torch.randint(0, 2, (50,)))
    assert conf.shape == (2, 2) and np.isclose(conf.sum(), 1.0)


def test_threshold_explorer_slider_moves_the_roc_point():
    z, y = scored_sample(seed=3)
    clf = BinaryClassifier(nn.Identity())
    p, truth = positive_proba(clf, z), y.numpy() == 1

    def point(th):
        pred = p >= th
        return (pred & ~truth).sum() / (~truth).sum(), (pred & truth).sum() / truth.sum()

    widget = threshold_explorer(clf, z, y, interactive=True)
    slider = widget.children[0]
    assert slider.value == pytest.approx(select_roc_thresh(clf, z, y), abs=0.01)
    for value in (0.2, 0.75):
        slider.value = value
        assert widget.result == pytest.approx(point(value))
    assert threshold_explorer(clf, z, y, threshold=0.3, interactive=False) == pytest.approx(point(0.3))


def test_widgets_fall_back_outside_a_jupyter_kernel(monkeypatch):
    assert not widgets_available()  # plain Python: no kernel to show a widget in
    monkeypatch.setenv(STATIC_PLOTS_VAR, "1")
    assert not widgets_available()


@pytest.fixture(scope="module")
def moons_loaders():
    torch.manual_seed(0)
    train, valid, test = rotated_moons(n=1500)
    return [DataLoader(ds, batch_size=32, shuffle=True) for ds in (train, valid, test)]


def test_mlp_experiment_reports_accuracies_at_the_chosen_threshold(moons_loaders):
    model, thresh, valid_acc, test_acc = mlp_experiment(2, 8, *moons_loaders, n_epochs=3)
    assert model.threshold == thresh and 0 < thresh < 1
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [8, 8, 2]
    model.eval()
    with torch.no_grad():
        for dl, acc in [(moons_loaders[1], valid_acc), (moons_loaders[2], test_acc)]:
            x, y = dl.dataset.tensors
            assert 100 * (model.classify(x).long() == y).float().mean().item() == pytest.approx(acc, abs=1e-4)
    assert test_acc > 75


def test_boundary_explorer_trains_on_demand(moons_loaders):
    widget = boundary_explorer(*moons_loaders, depth=1, width=4, n_epochs=1, interactive=True)
    assert widget.result is None  # nothing trained until the button is pressed
    widget.update()
    assert widget.result.get_title().startswith("depth=1, width=4, 1 epochs")
    ax = boundary_explorer(*moons_loaders, depth=2, width=2, n_epochs=1, interactive=False)
    assert ax.get_title().startswith("depth=2, width=2")


@pytest.mark.parametrize("device", DEVICES)
def test_helpers_follow_the_model_to_its_device(device):
    clf = BinaryClassifier(MLP(2, [8, 2], ["relu", "none"])).to(device)
    x, y = torch.randn(40, 2), torch.randint(0, 2, (40,))
    assert positive_proba(clf, x).shape == (40,)
    assert 0 <= select_roc_thresh(clf, x, y) <= 1 or np.isinf(select_roc_thresh(clf, x, y))
    assert decision_grid(clf, x)[2].shape[0] > 0


EXPLORER_CELL = """
import torch, torch.nn as nn
from dlcourse.classifier import BinaryClassifier, threshold_explorer
g = torch.Generator().manual_seed(0)
z = torch.stack([torch.zeros(100), torch.randn(100, generator=g)], 1)
threshold_explorer(BinaryClassifier(nn.Identity()), z, (torch.rand(100, generator=g) < torch.sigmoid(z[:, 1])).long())
"""


@pytest.mark.slow
@pytest.mark.parametrize("static", [False, True])
def test_explorer_in_a_jupyter_kernel(static, monkeypatch):
    "In a real kernel the explorer is a widget (saved as widget state for the front end); static plots give a PNG."
    import nbformat
    from nbclient import NotebookClient

    if static:
        monkeypatch.setenv(STATIC_PLOTS_VAR, "1")
    else:
        monkeypatch.delenv(STATIC_PLOTS_VAR, raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%matplotlib inline\n" + EXPLORER_CELL)])
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    kinds = {kind for out in nb.cells[0].outputs for kind in out.get("data", {})}
    if static:
        assert "image/png" in kinds and "application/vnd.jupyter.widget-view+json" not in kinds
    else:
        assert "application/vnd.jupyter.widget-view+json" in kinds
        models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
        assert "FloatSliderModel" in {m["model_name"] for m in models}


def test_roc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        select_roc_thresh(BinaryClassifier(nn.Identity()), torch.randn(10, 2), torch.ones(10, dtype=torch.long))
