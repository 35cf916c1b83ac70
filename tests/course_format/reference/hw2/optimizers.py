import abc
import torch
from torch import Tensor


class Optimizer(abc.ABC):
    """
    Base class for optimizers.
    """

    def __init__(self, params):
        """
        :param params: A list (or tuple) of model parameters: either
            (param, grad) tuples as returned by our Layers, or torch tensors
            whose gradient is taken from their .grad.
        """
        assert isinstance(params, (list, tuple))
        self._params = params

    @property
    def params(self):
        """
        :return: A list of (param_data, param_grad) tuples. The data is
            updated in place; the grad is None for a tensor without one.
        """
        returned_params = []
        for x in self._params:
            if isinstance(x, Tensor):
                p = x.data
                dp = x.grad.data if x.grad is not None else None
                returned_params.append((p, dp))
            elif isinstance(x, tuple) and len(x) == 2:
                returned_params.append(x)
            else:
                raise TypeError(f"Unexpected parameter type for parameter {x}")

        return returned_params

    def zero_grad(self):
        """
        Zeroes every parameter gradient, in place.
        """
        for p, dp in self.params:
            if dp is None:
                continue
            dp.zero_()

    @abc.abstractmethod
    def step(self):
        """
        Updates every parameter from its gradient.
        """
        raise NotImplementedError()


class VanillaSGD(Optimizer):
    def __init__(self, params, learn_rate=1e-3, reg=0):
        """
        :param params: The model parameters to optimize.
        :param learn_rate: Learning rate.
        :param reg: L2 regularization strength (lambda).
        """
        super().__init__(params)
        self.learn_rate = learn_rate
        self.reg = reg

    def step(self):
        for p, dp in self.params:
            if dp is None:
                continue

            # ====== YOUR CODE: ======
            # gradient of the loss plus that of (reg/2)*||p||^2
            grad = dp + self.reg * p
            p.add_(grad, alpha=-self.learn_rate)
            # ========================


class MomentumSGD(Optimizer):
    def __init__(self, params, learn_rate=1e-3, reg=0, momentum=0.9):
        """
        :param params: The model parameters to optimize.
        :param learn_rate: Learning rate.
        :param reg: L2 regularization strength (lambda).
        :param momentum: Momentum factor (mu).
        """
        super().__init__(params)
        self.learn_rate = learn_rate
        self.reg = reg
        self.momentum = momentum

        # ====== YOUR CODE: ======
        # one velocity per parameter, starting at zero
        self.velocities = [torch.zeros_like(p) for p, _ in self.params]
        # ========================

    def step(self):
        for (p, dp), v in zip(self.params, self.velocities):
            if dp is None:
                continue

            # ====== YOUR CODE: ======
            grad = dp + self.reg * p
            v.mul_(self.momentum).add_(grad, alpha=-self.learn_rate)
            p.add_(v)
            # ========================


class RMSProp(Optimizer):
    def __init__(self, params, learn_rate=1e-3, reg=0, decay=0.99, eps=1e-8):
        """
        :param params: The model parameters to optimize.
        :param learn_rate: Learning rate.
        :param reg: L2 regularization strength (lambda).
        :param decay: Decay of the running mean of squared gradients (gamma).
        :param eps: Small constant added inside the square root.
        """
        super().__init__(params)
        self.learn_rate = learn_rate
        self.reg = reg
        self.decay = decay
        self.eps = eps

        # ====== YOUR CODE: ======
        # one running mean of squared gradients per parameter
        self.sq_means = [torch.zeros_like(p) for p, _ in self.params]
        # ========================

    def step(self):
        for (p, dp), r in zip(self.params, self.sq_means):
            if dp is None:
                continue

            # ====== YOUR CODE: ======
            grad = dp + self.reg * p
            r.mul_(self.decay).add_((1 - self.decay) * grad * grad)
            p.sub_(self.learn_rate / torch.sqrt(r + self.eps) * grad)
            # ========================
