r"""
Hyperparameters and written answers for the HW2 notebooks (Markdown with
LaTeX math).
"""

from torch import nn

# ==============
# Part 1 answers

part1_q1 = r"""
**Your answer:**
$\partial Y/\partial X$ has shape (64, 512, 64, 1024) and is sparse, since row $i$ of $Y$ depends only on row $i$ of $X$, so we never build it and compute $\delta X = \delta Y\, W$ directly; likewise $\partial Y/\partial W$ has shape (64, 512, 512, 1024), is mostly zeros (output unit $j$ depends only on row $j$ of $W$), and we compute $\delta W = \delta Y^\top X$ instead.
"""

part1_q2 = r"""
**Your answer:**
No: descent methods only need the gradient, which could also be obtained by e.g. finite differences or forward-mode differentiation, but back-propagation is by far the cheapest exact way to get all parameter gradients of a deep network, so it is what is used in practice.
"""


# ==============
# Part 2 answers


def part2_overfit_hp():
    wstd, lr, reg = 0, 0, 0
    # ====== YOUR CODE: ======
    wstd, lr, reg = 0.1, 0.02, 0.0
    # ========================
    return dict(wstd=wstd, lr=lr, reg=reg)


def part2_optim_hp():
    wstd, lr_vanilla, lr_momentum, lr_rmsprop, reg, = (0, 0, 0, 0, 0)

    # ====== YOUR CODE: ======
    wstd = 0.1
    lr_vanilla = 0.05
    lr_momentum = 0.005
    lr_rmsprop = 0.0002
    reg = 0.001
    # ========================
    return dict(
        wstd=wstd,
        lr_vanilla=lr_vanilla,
        lr_momentum=lr_momentum,
        lr_rmsprop=lr_rmsprop,
        reg=reg,
    )


def part2_dropout_hp():
    wstd, lr, = (0, 0)
    # ====== YOUR CODE: ======
    wstd, lr = 0.05, 0.002
    # ========================
    return dict(wstd=wstd, lr=lr)


part2_q1 = r"""
**Your answer:**
We expect the no-dropout model to fit the small training set best but generalize worst, a moderate dropout to trade some training accuracy for better test accuracy, and a high dropout (0.8) to underfit, since too little signal survives each forward pass.
"""

part2_q2 = r"""
**Your answer:**
Yes: accuracy only counts whether the top score is right while cross-entropy also measures confidence, so a few confidently wrong predictions can raise the test loss while more samples cross over to the correct class and the accuracy rises.
"""

part2_q3 = r"""
**Your answer:**
Back-propagation is how the gradient is computed and gradient descent is how it is used to update the parameters; SGD estimates the gradient from small random batches, which is far cheaper per step than full-batch GD, fits in memory and adds noise that helps escape poor regions, and summing the batch losses before one backward pass does give the GD gradient (up to the $1/N$ scale) but runs out of memory because every batch's activations must be kept for that backward pass.
"""


# ==============
# Part 3 answers


def part3_arch_hp():
    n_layers = 0  # hidden layers
    hidden_dims = 0  # width of each hidden layer
    activation = "none"  # after each hidden layer
    out_activation = "none"  # after the output layer
    # ====== YOUR CODE: ======
    n_layers = 3
    hidden_dims = 16
    activation = "relu"
    out_activation = "none"
    # ========================
    return dict(
        n_layers=n_layers,
        hidden_dims=hidden_dims,
        activation=activation,
        out_activation=out_activation,
    )


def part3_optim_hp():
    loss_fn = None  # a torch.nn loss instance
    lr, weight_decay, momentum = 0, 0, 0  # torch.optim.SGD arguments
    # ====== YOUR CODE: ======
    loss_fn = nn.CrossEntropyLoss()
    lr, weight_decay, momentum = 0.01, 1e-4, 0.9
    # ========================
    return dict(lr=lr, weight_decay=weight_decay, momentum=momentum, loss_fn=loss_fn)


part3_q1 = r"""
**Your answer:**
In our run the training accuracy plateaued at about 93.5% within a few epochs, so the optimization error is low; validation accuracy stayed around 88%, and since the (unshuffled) validation set comes only from the 50°-rotated moons while training is mostly the 10° ones, that gap is a generalization error caused mainly by the distribution shift; the curved boundary of a 3×16 ReLU MLP fits the moons well, so we would not call the approximation error high.
"""

part3_q2 = r"""
**Your answer:**
We expected the FNR to be higher, and at threshold 0.5 we measured a validation FNR of about 0.21 against an FPR of about 0.03: the validation samples all come from the 50°-rotated moons, which the mostly-10° training data pushes partly across the learned boundary on the positive side.
"""

part3_q3 = r"""
**Your answer:**
No: in the first scenario missed patients are cheaply caught later, so we would pick a point with a low FPR to avoid costly and risky tests, while in the second a missed patient may die, so we would pick a point with a high TPR (low FNR) and accept more false positives.
"""

part3_q4 = r"""
**Your answer:**
In our grid (tanh MLPs, Adam, 10 epochs) every depth/width reached about 87–90% test accuracy, so on this easy 2-D problem neither more width nor more depth helped noticeably, the equal-parameter pairs (1×32 vs 4×8, 1×128 vs 4×32) scored within about 1% of each other, and choosing the threshold on the validation ROC did help the first model (test accuracy 86.5% at 0.5, 88.1% at the ROC threshold of about 0.15) because it corrects the bias the shifted validation data reveals.
"""
# ==============
# Part 4 answers


def part4_optim_hp():
    loss_fn = None  # a torch.nn loss instance
    lr, weight_decay, momentum = 0, 0, 0  # torch.optim.SGD arguments
    # ====== YOUR CODE: ======
    loss_fn = nn.CrossEntropyLoss()
    lr, weight_decay, momentum = 0.01, 0.0, 0.9
    # ========================
    return dict(lr=lr, weight_decay=weight_decay, momentum=momentum, loss_fn=loss_fn)


part4_q1 = r"""
**Your answer:**
Two 3x3 convs on 256 channels have $2(3\cdot3\cdot256\cdot256+256) = 1{,}180{,}160$ parameters while the 1x1(256→64), 3x3(64→64), 1x1(64→256) bottleneck has $(256\cdot64+64)+(9\cdot64\cdot64+64)+(64\cdot256+256) = 70{,}016$, so it needs far fewer parameters and FLOPs, at the cost of mixing spatial information only in its narrow middle layer while its 1x1 convs mix across feature maps.
"""

# ==============
# Part 5 answers

part5_q1 = r"""
**Your answer:**
We expect accuracy to improve with depth only up to a moderate L, after which a plain CNN without skip connections or normalization becomes hard or impossible to train because of vanishing gradients, which batch normalization or residual connections would mitigate.
"""

part5_q2 = r"""
**Your answer:**
Our expectation is that more filters per layer help at small and moderate depths by giving each layer more features, while at a given depth the trainability problem seen in experiment 1.1 is not fixed by adding filters.
"""

part5_q3 = r"""
**Your answer:**
With K=[64, 128, 256] every extra L adds three conv layers, so we expect the shallow settings to train best and the deepest to suffer from the same vanishing-gradient problem as in experiment 1.1.
"""

part5_q4 = r"""
**Your answer:**
Skip connections give the gradient a direct path through every block, so we expect the ResNet to stay trainable at depths where the plain CNN of experiments 1.1 and 1.3 failed.
"""

part5_q5 = r"""
**Your answer:**
Our YourCNN groups every P convolutions into a residual block with batch normalization and channel dropout, and only pools while the feature maps stay at least 2x2, so that the deep configurations of experiment 2 remain trainable and regularized, unlike the plain CNN of experiment 1.
"""
