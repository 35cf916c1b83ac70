import abc
import torch


class Layer(abc.ABC):
    """
    A computation element with a hand-written forward and backward pass.
    """

    def __init__(self):
        # values saved by forward() for use in backward()
        self.grad_cache = {}
        self.training_mode = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    @abc.abstractmethod
    def forward(self, *args, **kwargs):
        """
        Computes and returns the layer's output.
        """
        pass

    @abc.abstractmethod
    def backward(self, dout):
        """
        :param dout: Gradient of the loss w.r.t. this layer's output.
        :return: Gradient of the loss w.r.t. this layer's input.
        """
        pass

    @abc.abstractmethod
    def params(self):
        """
        :return: A list of (tensor, gradient tensor) tuples, one per
            trainable parameter.
        """
        pass

    def train(self, training_mode=True):
        """
        Switches between training mode (True) and evaluation mode (False).
        """
        self.training_mode = training_mode

    def __repr__(self):
        return self.__class__.__name__


class LeakyReLU(Layer):
    """
    Leaky rectified linear unit: max(alpha*x, x).
    """

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        if not (0 <= alpha < 1):
            raise ValueError("Invalid value of alpha")
        self.alpha = alpha

    def forward(self, x, **kw):
        """
        :param x: Tensor of shape (N, *).
        :return: max(alpha*x, x), same shape as x.
        """

        # ====== YOUR CODE: ======
        out = torch.where(x >= 0, x, self.alpha * x)
        # ========================

        self.grad_cache["x"] = x
        return out

    def backward(self, dout):
        """
        :param dout: Gradient w.r.t. the output, shape (N, *).
        :return: Gradient w.r.t. the input, shape (N, *).
        """
        x = self.grad_cache["x"]

        # ====== YOUR CODE: ======
        dx = torch.where(x >= 0, dout, self.alpha * dout)
        # ========================

        return dx

    def params(self):
        return []

    def __repr__(self):
        return f"LeakyReLU({self.alpha=})"


class ReLU(LeakyReLU):
    """
    Rectified linear unit: a LeakyReLU with a zero slope.
    """

    def __init__(self):
        # ====== YOUR CODE: ======
        super().__init__(alpha=0.0)
        # ========================

    def __repr__(self):
        return "ReLU"


class Sigmoid(Layer):
    """
    Elementwise logistic function 1/(1+exp(-x)).
    """

    def __init__(self):
        super().__init__()

    def forward(self, x, **kw):
        """
        :param x: Tensor of shape (N, *).
        :return: sigmoid(x), same shape as x.
        """

        # ====== YOUR CODE: ======
        out = torch.sigmoid(x)
        # s' = s(1-s) needs only the output
        self.grad_cache["out"] = out
        # ========================

        return out

    def backward(self, dout):
        """
        :param dout: Gradient w.r.t. the output, shape (N, *).
        :return: Gradient w.r.t. the input, shape (N, *).
        """

        # ====== YOUR CODE: ======
        s = self.grad_cache["out"]
        dx = dout * s * (1 - s)
        # ========================

        return dx

    def params(self):
        return []


class TanH(Layer):
    """
    Elementwise hyperbolic tangent.
    """

    def __init__(self):
        super().__init__()

    def forward(self, x, **kw):
        """
        :param x: Tensor of shape (N, *).
        :return: tanh(x), same shape as x.
        """

        # ====== YOUR CODE: ======
        out = torch.tanh(x)
        # tanh' = 1 - tanh^2 needs only the output
        self.grad_cache["out"] = out
        # ========================

        return out

    def backward(self, dout):
        """
        :param dout: Gradient w.r.t. the output, shape (N, *).
        :return: Gradient w.r.t. the input, shape (N, *).
        """

        # ====== YOUR CODE: ======
        t = self.grad_cache["out"]
        dx = dout * (1 - t ** 2)
        # ========================

        return dx

    def params(self):
        return []


class Linear(Layer):
    """
    Fully-connected layer: y = x W^T + b.
    """

    def __init__(self, in_features, out_features, wstd=0.1):
        """
        :param in_features: Input dimension (Din).
        :param out_features: Output dimension (Dout).
        :param wstd: Standard deviation of the initial weights.
        """
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features

        # ====== YOUR CODE: ======
        self.w = torch.randn(out_features, in_features) * wstd
        self.b = torch.zeros(out_features)
        # ========================

        # gradients of w and b
        self.dw = torch.zeros_like(self.w)
        self.db = torch.zeros_like(self.b)

    def params(self):
        return [(self.w, self.dw), (self.b, self.db)]

    def forward(self, x, **kw):
        """
        :param x: Tensor of shape (N, Din).
        :return: x W^T + b, shape (N, Dout).
        """

        # ====== YOUR CODE: ======
        out = torch.mm(x, self.w.t()) + self.b
        # ========================

        self.grad_cache["x"] = x
        return out

    def backward(self, dout):
        """
        :param dout: Gradient w.r.t. the output, shape (N, Dout).
        :return: Gradient w.r.t. the input, shape (N, Din).
        """
        x = self.grad_cache["x"]

        # ====== YOUR CODE: ======
        # parameter gradients accumulate, like autograd's .grad
        self.dw += torch.mm(dout.t(), x)
        self.db += torch.sum(dout, dim=0)
        dx = torch.mm(dout, self.w)
        # ========================

        return dx

    def __repr__(self):
        return f"Linear({self.in_features=}, {self.out_features=})"


class CrossEntropyLoss(Layer):
    """
    Cross-entropy computed from raw class scores and integer labels.
    """

    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        """
        :param x: Class scores (not probabilities), shape (N, D).
        :param y: Integer labels, shape (N,).
        :return: The mean over the batch of -x_y + log(sum_k exp(x_k)),
            a scalar.
        """

        N = x.shape[0]

        # subtract the row max for numerical stability
        xmax, _ = torch.max(x, dim=1, keepdim=True)
        x = x - xmax

        # ====== YOUR CODE: ======
        log_norm = torch.log(torch.sum(torch.exp(x), dim=1))
        x_y = x[torch.arange(N), y]
        loss = torch.mean(log_norm - x_y)
        # ========================

        self.grad_cache["x"] = x
        self.grad_cache["y"] = y
        return loss

    def backward(self, dout=1.0):
        """
        :param dout: Gradient w.r.t. the (scalar) loss, 1 by default.
        :return: Gradient w.r.t. the scores x, shape (N, D).
        """
        x = self.grad_cache["x"]
        y = self.grad_cache["y"]
        N = x.shape[0]

        # ====== YOUR CODE: ======
        # (softmax(x) - onehot(y)) / N
        probs = torch.softmax(x, dim=1)
        onehot = torch.zeros_like(probs)
        onehot[torch.arange(N), y] = 1
        dx = dout * (probs - onehot) / N
        # ========================

        return dx

    def params(self):
        return []


class Dropout(Layer):
    """
    Inverted dropout: in training mode each unit is zeroed with probability
    p and the survivors are scaled by 1/(1-p); in test mode it's the identity.
    """

    def __init__(self, p=0.5):
        """
        :param p: Probability of dropping a unit.
        """
        super().__init__()
        assert 0.0 <= p < 1.0
        self.p = p

    def forward(self, x, **kw):
        # ====== YOUR CODE: ======
        if self.training_mode:
            # the mask comes from torch's global RNG
            keep = (torch.rand_like(x) >= self.p).to(x.dtype)
            mask = keep / (1 - self.p)
            self.grad_cache["mask"] = mask
            out = x * mask
        else:
            out = x
        # ========================

        return out

    def backward(self, dout):
        # ====== YOUR CODE: ======
        if self.training_mode:
            dx = dout * self.grad_cache["mask"]
        else:
            dx = dout
        # ========================

        return dx

    def params(self):
        return []

    def __repr__(self):
        return f"Dropout(p={self.p})"


class Sequential(Layer):
    """
    Runs its layers one after the other.
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = layers

    def forward(self, x, **kw):
        out = None

        # ====== YOUR CODE: ======
        out = x
        for layer in self.layers:
            out = layer(out, **kw)
        # ========================

        return out

    def backward(self, dout):
        din = None

        # ====== YOUR CODE: ======
        din = dout
        for layer in self.layers[::-1]:
            din = layer.backward(din)
        # ========================

        return din

    def params(self):
        params = []

        # ====== YOUR CODE: ======
        for layer in self.layers:
            params += layer.params()
        # ========================

        return params

    def train(self, training_mode=True):
        super().train(training_mode)
        for layer in self.layers:
            layer.train(training_mode)

    def __repr__(self):
        res = "Sequential\n"
        for i, layer in enumerate(self.layers):
            res += f"\t[{i}] {layer}\n"
        return res

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, item):
        return self.layers[item]


class MLP(Layer):
    """
    A multilayer perceptron made of our own Layers:

        FC(in, h1) -> act -> [Dropout] -> ... -> FC(hn, num_classes)

    A Dropout layer follows every activation when dropout > 0.
    """

    def __init__(
        self,
        in_features,
        num_classes,
        hidden_features=(),
        activation="relu",
        dropout=0,
        **kw,
    ):
        """
        :param in_features: Input dimension.
        :param num_classes: Output dimension.
        :param hidden_features: Hidden layer dimensions.
        :param activation: 'relu' or 'sigmoid'.
        :param dropout: Dropout probability; 0 means no dropout layers.
        :param kw: Extra arguments for every Linear layer (e.g. wstd).
        """
        super().__init__()
        layers = []

        # ====== YOUR CODE: ======
        activations = {"relu": ReLU, "sigmoid": Sigmoid}
        if activation not in activations:
            raise ValueError(f"Unsupported activation: {activation}")

        dims = [in_features, *hidden_features]
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers.append(Linear(d_in, d_out, **kw))
            layers.append(activations[activation]())
            if dropout > 0:
                layers.append(Dropout(dropout))
        layers.append(Linear(dims[-1], num_classes, **kw))
        # ========================

        self.sequence = Sequential(*layers)

    def forward(self, x, **kw):
        return self.sequence(x, **kw)

    def backward(self, dout):
        return self.sequence.backward(dout)

    def params(self):
        return self.sequence.params()

    def train(self, training_mode=True):
        super().train(training_mode)
        self.sequence.train(training_mode)

    def __repr__(self):
        return f"MLP, {self.sequence}"
