import torch
from typing import Sequence, Union

from torch import Tensor, nn
from collections import defaultdict

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softmax": nn.Softmax,
    "logsoftmax": nn.LogSoftmax,
    "lrelu": nn.LeakyReLU,
    "none": nn.Identity,
    None: nn.Identity,
}

# Default keyword arguments to pass to activation class constructors, e.g.
# activation_cls(**ACTIVATION_DEFAULT_KWARGS[name])
ACTIVATION_DEFAULT_KWARGS = defaultdict(
    dict,
    {
        "softmax": dict(dim=1),
        "logsoftmax": dict(dim=1),
    },
)


class MLP(nn.Module):
    """
    A general-purpose MLP: every Linear layer is followed by its own
    nonlinearity.
    """

    def __init__(
        self, in_dim: int, dims: Sequence[int], nonlins: Sequence[Union[str, nn.Module]]
    ):
        """
        :param in_dim: Input dimension.
        :param dims: Output dimension of each layer.
        :param nonlins: The nonlinearity after each layer: a name from
            ACTIVATIONS or an nn.Module instance.
        """
        super().__init__()
        assert len(nonlins) == len(dims)
        self.in_dim = in_dim
        self.out_dim = dims[-1]

        # ====== YOUR CODE: ======
        layers = []
        d_ins = [in_dim, *dims[:-1]]
        for d_in, d_out, nonlin in zip(d_ins, dims, nonlins):
            layers.append(nn.Linear(d_in, d_out, bias=True))
            layers.append(self._make_nonlin(nonlin))
        self.sequence = nn.Sequential(*layers)
        # ========================

    @staticmethod
    def _make_nonlin(nonlin):
        if isinstance(nonlin, nn.Module):
            return nonlin
        return ACTIVATIONS[nonlin](**ACTIVATION_DEFAULT_KWARGS[nonlin])

    def forward(self, x: Tensor) -> Tensor:
        """
        :param x: Input of shape (N, in_dim).
        :return: Output of shape (N, out_dim).
        """
        # ====== YOUR CODE: ======
        return self.sequence(x)
        # ========================
