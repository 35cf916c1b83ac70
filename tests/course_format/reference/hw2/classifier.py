import torch
import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor, nn
from typing import Optional
from sklearn.metrics import roc_curve
from abc import ABC, abstractmethod


class Classifier(nn.Module, ABC):
    """
    Wraps a model which returns raw class scores, and adds class
    probabilities and predictions on top of it.
    """

    def __init__(self, model):
        """
        :param model: A model returning (N, C) class scores for (N, *) inputs.
        """
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        """
        :param x: (N, D) input tensor.
        :return: (N, C) raw class scores.
        """

        z: Tensor = None

        # ====== YOUR CODE: ======
        z = self.model(x)
        # ========================

        assert z.shape[0] == x.shape[0] and z.ndim == 2, "raw scores should be (N, C)"
        return z

    def predict_proba(self, x: Tensor) -> Tensor:
        """
        :param x: (N, D) input tensor.
        :return: (N, C) class probabilities.
        """
        # ====== YOUR CODE: ======
        z = self.forward(x)
        # ========================
        return self.predict_proba_scores(z)

    def predict_proba_scores(self, z: Tensor) -> Tensor:
        """
        :param z: (N, C) raw class scores.
        :return: (N, C) class probabilities.
        """
        # ====== YOUR CODE: ======
        return torch.softmax(z, dim=1)
        # ========================

    def classify(self, x: Tensor) -> Tensor:
        """
        :param x: (N, D) input tensor.
        :return: (N,) integer class predictions.
        """
        y_proba = self.predict_proba(x)
        return self._classify(y_proba)

    def classify_scores(self, z: Tensor) -> Tensor:
        """
        :param z: (N, C) raw class scores.
        :return: (N,) integer class predictions.
        """
        y_proba = self.predict_proba_scores(z)
        return self._classify(y_proba)

    @abstractmethod
    def _classify(self, y_proba: Tensor) -> Tensor:
        """
        :param y_proba: (N, C) class probabilities.
        :return: (N,) predictions, dtype torch.int.
        """
        pass


class ArgMaxClassifier(Classifier):
    """
    Predicts the class with the highest probability.
    """

    def _classify(self, y_proba: Tensor):
        # ====== YOUR CODE: ======
        return torch.argmax(y_proba, dim=1).to(torch.int)
        # ========================


class BinaryClassifier(Classifier):
    """
    Two-class classifier which predicts with a probability threshold.
    """

    def __init__(
        self, model: nn.Module, positive_class: int = 1, threshold: float = 0.5
    ):
        """
        :param model: A model returning (N, 2) class scores.
        :param positive_class: Index (0 or 1) of the positive class.
        :param threshold: Probability of the positive class from which a
            sample is classified as positive.
        """
        super().__init__(model)
        assert positive_class in (0, 1)
        assert 0 < threshold < 1

        self.threshold = threshold
        self.positive_class = positive_class

    def _classify(self, y_proba: Tensor):
        # ====== YOUR CODE: ======
        positive = y_proba[:, self.positive_class] >= self.threshold
        return positive.to(torch.int)
        # ========================


def plot_decision_boundary_2d(
    classifier: Classifier,
    x: Tensor,
    y: Tensor,
    dx: float = 0.1,
    ax: Optional[plt.Axes] = None,
    cmap=plt.get_cmap("coolwarm"),
):
    """
    Plots 2D data with the classifier's decision regions behind it.
    :param classifier: A classifier of 2D samples.
    :param x: (N, 2) samples.
    :param y: (N,) labels.
    :param dx: Step of the evaluation grid.
    :param ax: Axes to plot on; a new figure is created if None.
    :param cmap: Colormap of the points and the regions.
    :return: (figure, axes).
    """
    assert x.ndim == 2 and y.ndim == 1 and x.shape[0] == y.shape[0]

    if ax is None:
        fig, ax = plt.subplots(1, 1, figsize=(10, 8))
    else:
        fig = ax.get_figure()

    ax.scatter(
        x[:, 0].numpy(),
        x[:, 1].numpy(),
        c=y.numpy(),
        s=20,
        alpha=0.8,
        edgecolor="k",
        cmap=cmap,
    )

    x1_grid, x2_grid, y_hat = None, None, None
    # ====== YOUR CODE: ======
    x1 = torch.arange(x[:, 0].min().item(), x[:, 0].max().item() + dx, dx)
    x2 = torch.arange(x[:, 1].min().item(), x[:, 1].max().item() + dx, dx)
    x1_grid, x2_grid = torch.meshgrid(x1, x2, indexing="ij")

    grid = torch.stack([x1_grid.reshape(-1), x2_grid.reshape(-1)], dim=1)
    with torch.no_grad():
        y_hat = classifier.classify(grid.to(x.dtype)).reshape(x1_grid.shape)
    # ========================

    ax.contourf(x1_grid.numpy(), x2_grid.numpy(), y_hat.numpy(), alpha=0.3, cmap=cmap)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")

    return fig, ax


def select_roc_thresh(
    classifier: BinaryClassifier, x: Tensor, y: Tensor, plot: bool = False,
):
    """
    Picks the threshold of the ROC point closest to the ideal point (0, 1).
    :param classifier: A BinaryClassifier.
    :param x: (N, D) samples.
    :param y: (N,) labels.
    :param plot: Whether to plot the ROC curve and the chosen point.
    :return: The selected threshold.
    """

    optimal_thresh_idx, optimal_thresh = None, None
    # ====== YOUR CODE: ======
    with torch.no_grad():
        y_proba = classifier.predict_proba(x)[:, classifier.positive_class]

    fpr, tpr, thresh = roc_curve(
        y.numpy(), y_proba.numpy(), pos_label=classifier.positive_class
    )
    # Euclidean distance of each ROC point from (0, 1)
    dist = np.sqrt(fpr ** 2 + (1 - tpr) ** 2)
    optimal_thresh_idx = int(np.argmin(dist))
    optimal_thresh = float(thresh[optimal_thresh_idx])
    # ========================

    if plot:
        fig, ax = plt.subplots(1, 1, figsize=(6, 4))
        ax.plot(fpr, tpr, color="C0")
        ax.scatter(
            fpr[optimal_thresh_idx],
            tpr[optimal_thresh_idx],
            color="C1",
            label=f"Threshold={optimal_thresh:.2f}",
        )
        ax.set_xlabel("FPR")
        ax.set_ylabel("TPR=1-FNR")
        ax.legend()

    return optimal_thresh
