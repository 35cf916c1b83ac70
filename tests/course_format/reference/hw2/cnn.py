import torch
import torch.nn as nn
from torch import Tensor
from typing import Sequence

from .mlp import MLP, ACTIVATIONS, ACTIVATION_DEFAULT_KWARGS

POOLINGS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class CNN(nn.Module):
    """
    A convolutional feature extractor followed by an MLP head:

        [(CONV -> ACT)*P -> POOL]*(N/P) -> (FC -> ACT)*M -> FC
    """

    def __init__(
        self,
        in_size,
        out_classes: int,
        channels: Sequence[int],
        pool_every: int,
        hidden_dims: Sequence[int],
        conv_params: dict = {},
        activation_type: str = "relu",
        activation_params: dict = {},
        pooling_type: str = "max",
        pooling_params: dict = {},
    ):
        """
        :param in_size: Size of one input sample, (C, H, W).
        :param out_classes: Number of classes (output dimension).
        :param channels: Output channels of each conv layer (N of them).
        :param pool_every: P, the number of conv layers before each pooling.
        :param hidden_dims: Widths of the hidden FC layers (M of them).
        :param conv_params: Keyword arguments of every nn.Conv2d.
        :param activation_type: An activation name from ACTIVATIONS.
        :param activation_params: Keyword arguments of the activation.
        :param pooling_type: 'max' or 'avg'.
        :param pooling_params: Keyword arguments of the pooling layer.
        """
        super().__init__()
        assert channels and hidden_dims

        self.in_size = in_size
        self.out_classes = out_classes
        self.channels = channels
        self.pool_every = pool_every
        self.hidden_dims = hidden_dims
        self.conv_params = conv_params
        self.activation_type = activation_type
        self.activation_params = activation_params
        self.pooling_type = pooling_type
        self.pooling_params = pooling_params

        if activation_type not in ACTIVATIONS or pooling_type not in POOLINGS:
            raise ValueError("Unsupported activation or pooling type")

        self.feature_extractor = self._make_feature_extractor()
        self.mlp = self._make_mlp()

    def _make_feature_extractor(self):
        in_channels, in_h, in_w, = tuple(self.in_size)

        layers = []
        # [(CONV -> ACT)*P -> POOL]*(N/P); the last N mod P convs get no pool.
        # ====== YOUR CODE: ======
        prev_channels = in_channels
        for i, out_channels in enumerate(self.channels):
            layers.append(nn.Conv2d(prev_channels, out_channels, **self.conv_params))
            layers.append(ACTIVATIONS[self.activation_type](**self.activation_params))
            if (i + 1) % self.pool_every == 0:
                layers.append(POOLINGS[self.pooling_type](**self.pooling_params))
            prev_channels = out_channels
        # ========================
        seq = nn.Sequential(*layers)
        return seq

    def _n_features(self) -> int:
        """
        :return: The number of features the extractor outputs for one
            sample of shape in_size.
        """
        # the RNG state is restored, so building the model consumes it as usual
        rng_state = torch.get_rng_state()
        try:
            # ====== YOUR CODE: ======
            # probe with one all-zeros sample, in eval mode so batchnorm and
            # dropout behave deterministically on a batch of one
            was_training = self.feature_extractor.training
            self.feature_extractor.eval()
            with torch.no_grad():
                features = self.feature_extractor(torch.zeros(1, *self.in_size))
            self.feature_extractor.train(was_training)
            return features.numel()
            # ========================
        finally:
            torch.set_rng_state(rng_state)

    def _make_mlp(self):
        # (FC -> ACT)*M -> FC, with the same activation as the conv layers
        mlp: MLP = None
        # ====== YOUR CODE: ======
        hidden_nonlins = [
            ACTIVATIONS[self.activation_type](**self.activation_params)
            for _ in self.hidden_dims
        ]
        mlp = MLP(
            in_dim=self._n_features(),
            dims=[*self.hidden_dims, self.out_classes],
            nonlins=[*hidden_nonlins, "none"],
        )
        # ========================
        return mlp

    def forward(self, x: Tensor):
        # features -> flatten -> class scores
        out: Tensor = None
        # ====== YOUR CODE: ======
        features = self.feature_extractor(x)
        out = self.mlp(features.reshape(features.shape[0], -1))
        # ========================
        return out


class ResidualBlock(nn.Module):
    """
    A residual block: relu(main_path(x) + shortcut_path(x)).
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        kernel_sizes: Sequence[int],
        batchnorm: bool = False,
        dropout: float = 0.0,
        activation_type: str = "relu",
        activation_params: dict = {},
        **kwargs,
    ):
        """
        :param in_channels: Number of input channels.
        :param channels: Output channels of each conv on the main path.
        :param kernel_sizes: Kernel size (odd) of each conv on the main path.
        :param batchnorm: Whether to add BatchNorm2d after each inner conv.
        :param dropout: Dropout2d probability after each inner conv (0: none).
        :param activation_type: An activation name from ACTIVATIONS.
        :param activation_params: Keyword arguments of the activation.
        """
        super().__init__()
        assert channels and kernel_sizes
        assert len(channels) == len(kernel_sizes)
        assert all(map(lambda x: x % 2 == 1, kernel_sizes))

        if activation_type not in ACTIVATIONS:
            raise ValueError("Unsupported activation type")

        self.main_path, self.shortcut_path = None, None

        # main path: conv -> [dropout] -> [batchnorm] -> act for every conv but
        # the last; the main path is built first, then the shortcut.
        # ====== YOUR CODE: ======
        main_layers = []
        prev_channels = in_channels
        last = len(channels) - 1
        for i, (out_channels, k) in enumerate(zip(channels, kernel_sizes)):
            main_layers.append(
                nn.Conv2d(prev_channels, out_channels, kernel_size=k, padding=k // 2, bias=True)
            )
            if i < last:
                if dropout > 0:
                    main_layers.append(nn.Dropout2d(dropout))
                if batchnorm:
                    main_layers.append(nn.BatchNorm2d(out_channels))
                main_layers.append(ACTIVATIONS[activation_type](**activation_params))
            prev_channels = out_channels
        self.main_path = nn.Sequential(*main_layers)

        if in_channels != channels[-1]:
            # project the input to the output's number of channels
            self.shortcut_path = nn.Sequential(
                nn.Conv2d(in_channels, channels[-1], kernel_size=1, bias=False)
            )
        else:
            self.shortcut_path = nn.Sequential(nn.Identity())
        # ========================

    def forward(self, x: Tensor):
        out: Tensor = None
        # ====== YOUR CODE: ======
        out = self.main_path(x) + self.shortcut_path(x)
        # ========================
        out = torch.relu(out)
        return out


class ResidualBottleneckBlock(ResidualBlock):
    """
    A residual bottleneck block: a 1x1 conv down to inner_channels[0], the
    inner convs, then a 1x1 conv back up to in_out_channels.
    """

    def __init__(
        self,
        in_out_channels: int,
        inner_channels: Sequence[int],
        inner_kernel_sizes: Sequence[int],
        **kwargs,
    ):
        """
        :param in_out_channels: Input and output channels of the block.
        :param inner_channels: Output channels of the inner convs.
        :param inner_kernel_sizes: Kernel sizes of the inner convs.
        :param kwargs: Passed on to ResidualBlock.
        """
        assert len(inner_channels) > 0
        assert len(inner_channels) == len(inner_kernel_sizes)

        # ====== YOUR CODE: ======
        super().__init__(
            in_channels=in_out_channels,
            channels=[inner_channels[0], *inner_channels, in_out_channels],
            kernel_sizes=[1, *inner_kernel_sizes, 1],
            **kwargs,
        )
        # ========================


class ResNet(CNN):
    def __init__(
        self,
        in_size,
        out_classes,
        channels,
        pool_every,
        hidden_dims,
        batchnorm=False,
        dropout=0.0,
        bottleneck: bool = False,
        **kwargs,
    ):
        """
        Arguments as for CNN and ResidualBlock, plus:
        :param bottleneck: Use a ResidualBottleneckBlock for a group whose
            input and output channels are equal.
        """
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.bottleneck = bottleneck
        super().__init__(
            in_size, out_classes, channels, pool_every, hidden_dims, **kwargs
        )

    def _make_feature_extractor(self):
        in_channels, in_h, in_w, = tuple(self.in_size)

        layers = []
        # [-> (CONV -> ACT)*P -> POOL]*(N/P), a residual block per P convs;
        # the last N mod P convs form a block with no pool after it.
        # ====== YOUR CODE: ======
        P = self.pool_every
        n_full = len(self.channels) // P
        groups = [self.channels[g * P:(g + 1) * P] for g in range(n_full)]
        remainder = self.channels[n_full * P:]

        prev_channels = in_channels
        for group in [*groups, remainder]:
            if not group:
                continue
            layers.append(self._make_block(prev_channels, group))
            if len(group) == P:
                layers.append(POOLINGS[self.pooling_type](**self.pooling_params))
            prev_channels = group[-1]
        # ========================
        seq = nn.Sequential(*layers)
        return seq

    def _make_block(self, in_channels, group):
        block_kw = dict(
            batchnorm=self.batchnorm,
            dropout=self.dropout,
            activation_type=self.activation_type,
            activation_params=self.activation_params,
        )
        if self.bottleneck and in_channels == group[-1]:
            inner = group[1:-1]
            return ResidualBottleneckBlock(
                in_out_channels=group[-1],
                inner_channels=inner,
                inner_kernel_sizes=[3] * len(inner),
                **block_kw,
            )
        return ResidualBlock(in_channels, group, [3] * len(group), **block_kw)


class YourCNN(CNN):
    def __init__(self, *args, batchnorm: bool = True, dropout: float = 0.1, **kwargs):
        """
        See CNN.__init__ for the arguments; adds:
        :param batchnorm: BatchNorm2d inside every residual block.
        :param dropout: Dropout2d probability inside every residual block.
        """
        self.batchnorm = batchnorm
        self.dropout = dropout
        super().__init__(*args, **kwargs)

    # Residual blocks of P 3x3 convs with batchnorm and dropout (so deep
    # configurations still train), and a pool after each full block as long
    # as the feature maps stay at least 2x2.
    # ====== YOUR CODE: ======
    def _make_feature_extractor(self):
        in_channels, in_h, in_w, = tuple(self.in_size)
        pool_params = dict(kernel_size=2)
        pool_params.update(self.pooling_params)
        k = pool_params["kernel_size"]
        s = pool_params.get("stride") or k

        layers = []
        prev_channels, h, w = in_channels, in_h, in_w
        P = self.pool_every
        for start in range(0, len(self.channels), P):
            group = self.channels[start:start + P]
            layers.append(
                ResidualBlock(
                    prev_channels,
                    group,
                    [3] * len(group),
                    batchnorm=self.batchnorm,
                    dropout=self.dropout,
                    activation_type=self.activation_type,
                    activation_params=self.activation_params,
                )
            )
            prev_channels = group[-1]
            pooled_h, pooled_w = (h - k) // s + 1, (w - k) // s + 1
            if len(group) == P and min(pooled_h, pooled_w) >= 2:
                layers.append(POOLINGS[self.pooling_type](**pool_params))
                h, w = pooled_h, pooled_w
        return nn.Sequential(*layers)
    # ========================
