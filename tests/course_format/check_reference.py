"""
Checks a course-format HW2 solution (hw2/ and cs236781/ packages) against the
conditions the course's notebooks assert (see the course skeleton's API.md).

    python tests/course_format/check_reference.py [--ref DIR]

DIR defaults to tests/course_format/reference. --slow adds the Part 3 notebook's
full depth x width grid of mlp_experiment (about 30 s). One line per check; the
exit status is non-zero when any check fails.
"""

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSETS = Path("/work/shared/course-assets")

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--ref", default=str(HERE / "reference"), help="folder holding hw2/ and cs236781/")
parser.add_argument("--slow", action="store_true", help="also run the slow checks")
ARGS = parser.parse_args()
REF = Path(ARGS.ref).resolve()
sys.path.insert(0, str(REF))

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from cs236781.train_results import BatchResult, EpochResult, FitResult
import hw2.answers as answers
import hw2.classifier as classifier
import hw2.cnn as cnn
import hw2.experiments as experiments
import hw2.layers as layers
import hw2.mlp as mlp
import hw2.optimizers as optimizers
import hw2.training as training
from hw2.grad_compare import compare_layer_to_torch

torch.set_num_threads(1)  # small ops; the machine's cores are shared

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def slow_check(fn):
    "A check run only with --slow."
    if ARGS.slow:
        CHECKS.append(fn)
    return fn


def quiet(fn, *args, **kwargs):
    "Calls fn with stdout captured; returns (result, captured text)."
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        res = fn(*args, **kwargs)
    return res, buf.getvalue()


def grad_ok(layer, x, y=None):
    diffs, _ = quiet(compare_layer_to_torch, layer, x, y)
    assert diffs, "no diffs returned"
    assert all(d < 1e-3 for d in diffs), f"gradient diffs {diffs}"
    return diffs


def assert_close(a, b, atol=1e-3, what="tensors"):
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    diff = (a - b).abs().max().item()
    assert torch.allclose(a, b, atol=atol), f"{what}: max diff {diff:.3g}"
    return diff


N, IN_FEATURES, NUM_CLASSES = 100, 200, 10


# ---------------------------------------------------------------- Part 1: layers


@check
def layer_leaky_relu():
    lrelu = layers.LeakyReLU(alpha=0.1)
    x = torch.randn(N, IN_FEATURES)
    assert_close(lrelu(x), nn.LeakyReLU(0.1)(x), atol=1e-6)
    grad_ok(lrelu, x)
    for bad in (-0.1, 1.0):
        try:
            layers.LeakyReLU(alpha=bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"alpha={bad} accepted")


@check
def layer_relu():
    relu = layers.ReLU()
    x = torch.randn(N, IN_FEATURES)
    assert_close(relu(x), torch.relu(x), atol=1e-6)
    grad_ok(relu, x)
    assert str(relu) == "ReLU" and relu.params() == []


@check
def layer_sigmoid():
    sigmoid = layers.Sigmoid()
    x = torch.randn(N, IN_FEATURES, IN_FEATURES)  # 3-D input
    assert_close(sigmoid(x), torch.sigmoid(x), atol=1e-6)
    grad_ok(sigmoid, x)
    assert str(sigmoid).lower() == "sigmoid"


@check
def layer_tanh():
    tanh = layers.TanH()
    x = torch.randn(N, IN_FEATURES, IN_FEATURES)
    assert_close(tanh(x), torch.tanh(x), atol=1e-6)
    grad_ok(tanh, x)


@check
def layer_linear_twice():
    fc = layers.Linear(IN_FEATURES, 1000)
    assert fc.w.shape == (1000, IN_FEATURES) and fc.b.shape == (1000,)
    assert not fc.w.requires_grad and fc.w.is_leaf
    assert [p is q for (p, _), q in zip(fc.params(), (fc.w, fc.b))] == [True, True]
    x = torch.randn(N, IN_FEATURES)
    z = fc(x)
    torch_fc = nn.Linear(IN_FEATURES, 1000, bias=True)
    torch_fc.weight = nn.Parameter(fc.w)
    torch_fc.bias = nn.Parameter(fc.b)
    assert_close(torch_fc(x), z, atol=1e-6)
    grad_ok(fc, x)
    # the course runs it again on the same layer: gradients must accumulate
    x = torch.randn(N, IN_FEATURES)
    fc(x)
    fc(x)
    grad_ok(fc, x)
    assert str(fc).startswith("Linear")


@check
def layer_linear_wstd():
    torch.manual_seed(0)
    w = layers.Linear(500, 400, wstd=0.5).w
    assert abs(w.std().item() - 0.5) < 0.01 and abs(w.mean().item()) < 0.01


@check
def layer_cross_entropy():
    ce = layers.CrossEntropyLoss()
    scores = torch.randn(N, NUM_CLASSES)
    labels = torch.randint(low=0, high=NUM_CLASSES, size=(N,), dtype=torch.long)
    loss = ce(scores, labels)
    assert loss.dim() == 0
    assert abs(F.cross_entropy(scores, labels) - loss).item() < 1e-5
    # large scores must not overflow
    big = ce(scores * 1000, labels)
    assert abs(F.cross_entropy(scores * 1000, labels) - big).item() < 1e-2
    grad_ok(ce, scores, y=labels)


@check
def layer_sequential():
    seq = layers.Sequential(
        layers.Linear(IN_FEATURES, 100),
        layers.Linear(100, 200),
        layers.Linear(200, 100),
        layers.ReLU(),
        layers.Linear(100, 500),
        layers.LeakyReLU(alpha=0.01),
        layers.Linear(500, 200),
        layers.ReLU(),
        layers.Linear(200, 500),
        layers.LeakyReLU(alpha=0.1),
        layers.Linear(500, 1),
        layers.Sigmoid(),
    )
    x = torch.randn(N, IN_FEATURES)
    assert tuple(seq(x).shape) == (N, 1)
    diffs = grad_ok(seq, x)
    assert len(diffs) == 1 + 14 and len(seq) == 12
    assert isinstance(seq[0], layers.Linear)


@check
def layer_mlp_7_layers():
    for activation in ("relu", "sigmoid"):
        m = layers.MLP(10, NUM_CLASSES, hidden_features=[100, 50, 100], activation=activation)
        assert len(m.sequence) == 7, len(m.sequence)
        pairs = sum(
            str(b1).startswith("Linear")
            for b1, b2 in zip(m.sequence, m.sequence[1:])
            if str(b2).lower() == activation
        )
        assert pairs == 3 and str(m.sequence[-1]).startswith("Linear")
        x = torch.randn(N, 10)
        labels = torch.randint(low=0, high=NUM_CLASSES, size=(N,), dtype=torch.long)
        assert tuple(m(x).shape) == (N, NUM_CLASSES)
        seq = layers.Sequential(m, layers.CrossEntropyLoss())
        loss = seq(x, y=labels)
        assert loss.dim() == 0
        grad_ok(seq, x, y=labels)
    assert str(layers.MLP(4, 2, [3])).startswith("MLP")


@check
def layer_mlp_wstd_kw():
    torch.manual_seed(1)
    m = layers.MLP(300, 10, [200] * 2, wstd=0.5)
    stds = [p.std().item() for p, _ in m.params()[::2]]
    assert all(abs(s - 0.5) < 0.03 for s in stds), stds


@check
def layer_dropout():
    d = layers.Dropout(p=0.3)
    x = torch.ones(200, 500)
    out = d(x)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.02
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.7))
    assert torch.equal(d.backward(torch.ones_like(x)) != 0, kept)
    d.train(False)
    assert torch.equal(d(x), x) and torch.equal(d.backward(x), x)
    assert str(d) == "Dropout(p=0.3)"
    # the mask comes from torch's global RNG
    d.train(True)
    torch.manual_seed(3)
    a = d(x)
    torch.manual_seed(3)
    assert torch.equal(a, d(x))


@check
def layer_mlp_dropout_10_layers():
    m = layers.MLP(3 * 32 * 32, NUM_CLASSES, [50] * 3, dropout=0.6)
    assert len(m.sequence) == 10, len(m.sequence)
    for b1, b2 in zip(m.sequence, m.sequence[1:]):
        if str(b1).lower() == "relu":
            assert str(b2).startswith("Dropout")
    assert str(m.sequence[-1]).startswith("Linear")
    m.train(True)
    grad_ok(m, torch.randn(500, 3 * 32 * 32))
    m.train(False)
    assert all(not layer.training_mode for layer in m.sequence)
    grad_ok(m, torch.randn(500, 3 * 32 * 32))


# ------------------------------------------------------------ Part 2: optimizers


@check
def optim_vsgd_asset():
    torch.manual_seed(42)
    p = torch.randn(500, 10)
    dp = torch.randn(*p.shape) * 2
    optimizers.VanillaSGD([(p, dp)], learn_rate=0.5, reg=0.1).step()
    expected = torch.load(ASSETS / "expected_vsgd.pt")
    diff = torch.norm(p - expected).item()
    assert diff < 1e-3, f"diff={diff}"
    return f"diff={diff:.2g}"


def _optim_case():
    torch.manual_seed(7)
    p1, dp1 = torch.randn(4, 3), torch.randn(4, 3)
    t = torch.randn(5, requires_grad=True)
    t.grad = torch.randn(5)
    no_grad = torch.randn(2, requires_grad=True)  # grad is None: skipped
    return p1, dp1, t, no_grad


def _run_steps(opt_cls, hand_step, **kw):
    p1, dp1, t, no_grad = _optim_case()
    params = [(p1, dp1), t, no_grad]
    expect = [p1.clone(), t.detach().clone()]
    grads = [dp1, t.grad]
    state = [torch.zeros_like(e) for e in expect]
    before = no_grad.detach().clone()
    opt = opt_cls(params, **kw)
    fresh = [g.clone() for g in grads]
    for _ in range(3):
        for g, f in zip(grads, fresh):  # as zero_grad + backward would
            g.copy_(f)
        opt.step()
        for i in range(2):
            expect[i], state[i] = hand_step(expect[i], fresh[i], state[i])
    assert_close(p1, expect[0], atol=1e-5, what="tuple param")
    assert_close(t.detach(), expect[1], atol=1e-5, what="tensor param")
    assert torch.equal(no_grad.detach(), before), "a param without grad was updated"
    opt.zero_grad()
    assert dp1.abs().sum() == 0 and t.grad.abs().sum() == 0, "zero_grad"


@check
def optim_vanilla_sgd():
    lr, reg = 0.1, 0.05

    def step(p, dp, s):
        return p - lr * (dp + reg * p), s

    _run_steps(optimizers.VanillaSGD, step, learn_rate=lr, reg=reg)


@check
def optim_momentum_sgd():
    lr, reg, mu = 0.1, 0.05, 0.8

    def step(p, dp, v):
        v = mu * v - lr * (dp + reg * p)
        return p + v, v

    _run_steps(optimizers.MomentumSGD, step, learn_rate=lr, reg=reg, momentum=mu)


@check
def optim_rmsprop():
    lr, reg, gamma, eps = 0.01, 0.05, 0.9, 1e-3  # a big eps: it sits inside the sqrt

    def step(p, dp, r):
        g = dp + reg * p
        r = gamma * r + (1 - gamma) * g ** 2
        return p - lr / torch.sqrt(r + eps) * g, r

    _run_steps(optimizers.RMSProp, step, learn_rate=lr, reg=reg, decay=gamma, eps=eps)


@check
def optim_param_types():
    try:
        optimizers.VanillaSGD(p for p in [torch.zeros(1)])
    except AssertionError:
        pass
    else:
        raise AssertionError("a generator of params was accepted")
    try:
        optimizers.VanillaSGD([3.0]).params
    except TypeError:
        pass
    else:
        raise AssertionError("a float param did not raise TypeError")
    t = torch.zeros(3, requires_grad=True)
    t.grad = torch.ones(3)
    [(p, dp)] = optimizers.VanillaSGD([t]).params
    assert not p.requires_grad and p.data_ptr() == t.data_ptr()


# -------------------------------------------------------------- Part 2: training


class DummyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 1)


class ScriptedTrainer(training.Trainer):
    "Epoch results follow a script; records how fit calls it."

    def __init__(self, test_script):
        super().__init__(DummyModel())
        self.test_script = list(test_script)
        self.calls, self.saved = [], []
        self.epochs_tested = 0

    def train_epoch(self, dl_train, **kw):
        self.calls.append(("train", kw))
        return EpochResult(losses=[1.0, 0.5], accuracy=50.0)

    def test_epoch(self, dl_test, **kw):
        self.calls.append(("test", kw))
        losses, acc = self.test_script[self.epochs_tested]
        self.epochs_tested += 1
        return EpochResult(losses=losses, accuracy=acc)

    def save_checkpoint(self, checkpoint_filename):
        self.saved.append((self.epochs_tested, checkpoint_filename))

    def train_batch(self, batch):
        raise NotImplementedError()

    def test_batch(self, batch):
        raise NotImplementedError()


@check
def fit_early_stopping_on_accuracy():
    # the test loss keeps improving, the accuracy doesn't: the course's
    # skeleton stops on accuracy
    script = [([5.0, 5.0], 10.0), ([4.0, 4.0], 30.0), ([3.0, 3.0], 30.0), ([2.0, 2.0], 20.0), ([1.0, 1.0], 40.0)]
    tr = ScriptedTrainer(script)
    res, out = quiet(tr.fit, None, None, num_epochs=5, checkpoints="ckpt", early_stopping=2, print_every=2, max_batches=7)
    assert isinstance(res, FitResult)
    assert res.num_epochs == 4, res.num_epochs
    assert res.test_acc == [10.0, 30.0, 30.0, 20.0] and res.train_acc == [50.0] * 4
    # losses: per batch (extended) or one mean per epoch
    assert res.test_loss in ([5.0, 5.0, 4.0, 4.0, 3.0, 3.0, 2.0, 2.0], [5.0, 4.0, 3.0, 2.0]), res.test_loss
    assert res.train_loss in ([1.0, 0.5] * 4, [0.75] * 4), res.train_loss
    assert tr.saved == [(1, "ckpt"), (2, "ckpt")], tr.saved
    verbose = [kw.get("verbose") for kind, kw in tr.calls if kind == "test"]
    assert verbose == [True, False, True, False], verbose
    assert all(kw.get("max_batches") == 7 for _, kw in tr.calls)
    assert "--- EPOCH 1/5 ---" in out and "--- EPOCH 3/5 ---" in out and "EPOCH 2/5" not in out


@check
def fit_no_early_stopping():
    script = [([1.0], a) for a in (10.0, 5.0, 5.0, 5.0, 5.0, 5.0)]
    tr = ScriptedTrainer(script)
    res, out = quiet(tr.fit, None, None, num_epochs=6, print_every=0)
    assert res.num_epochs == 6 and out.strip() == "", (res.num_epochs, out)
    assert tr.saved == []


@check
def fit_checkpoint_file():
    class T(training.Trainer):
        def train_batch(self, batch):
            return BatchResult(1.0, 1)

        def test_batch(self, batch):
            return BatchResult(1.0, 1)

    dl = DataLoader(TensorDataset(torch.zeros(4, 1), torch.zeros(4)), batch_size=2)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ckpt")
        quiet(T(DummyModel()).fit, dl, dl, num_epochs=1, checkpoints=path)
        assert os.path.exists(path) or os.path.exists(path + ".pt"), os.listdir(d)


@check
def foreach_batch_max_batches():
    dl = DataLoader(TensorDataset(torch.zeros(10, 1), torch.zeros(10)), batch_size=3)

    def fwd(batch):
        return BatchResult(0.5, batch[0].shape[0])

    res, out = quiet(training.Trainer._foreach_batch, dl, fwd, verbose=False, max_batches=2)
    assert len(res.losses) == 2 and res.accuracy == 100.0, res
    res, _ = quiet(training.Trainer._foreach_batch, dl, fwd, verbose=False)
    assert len(res.losses) == 4 and res.accuracy == 100.0, res
    res, _ = quiet(training.Trainer._foreach_batch, dl, fwd, verbose=False, max_batches=10)
    assert len(res.losses) == 4


@check
def layer_trainer_overfits():
    torch.manual_seed(0)
    X, y = torch.rand(20, 3, 4, 4), torch.randint(0, 3, (20,))
    dl = DataLoader(TensorDataset(X, y), batch_size=10, shuffle=False)
    model = layers.MLP(48, 3, [64], wstd=0.1)
    loss_fn = layers.CrossEntropyLoss()
    opt = optimizers.VanillaSGD(model.params(), learn_rate=0.2, reg=0)
    trainer = training.LayerTrainer(model, loss_fn, opt)
    br = trainer.train_batch(next(iter(dl)))
    assert type(br.num_correct) is int and isinstance(br.loss, float), br
    best = 0
    for _ in range(60):
        res, _ = quiet(trainer.train_epoch, dl, verbose=False, max_batches=2)
        best = max(best, res.accuracy)
    assert best == 100.0, best
    tb = trainer.test_batch(next(iter(dl)))
    assert type(tb.num_correct) is int and isinstance(tb.loss, float)
    fit, _ = quiet(trainer.fit, dl, dl, num_epochs=2, print_every=0)
    assert fit.num_epochs == 2


def moons(seed=42):
    "The course's Part3 data and loaders."
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    def rotate_2d(X, deg=0):
        a = np.deg2rad(deg)
        return X @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T

    np.random.seed(seed)
    n, n_train = 10_000, 8000
    X1, y1 = make_moons(n_samples=n_train // 2, noise=0.2)
    X1 = rotate_2d(X1, deg=10)
    X2, y2 = make_moons(n_samples=n_train // 2, noise=0.25)
    X2 = rotate_2d(X2, deg=50)
    X3, y3 = make_moons(n_samples=(n - n_train), noise=0.3)
    X3 = rotate_2d(X3, deg=40)
    X, y = np.vstack([X1, X2, X3]), np.hstack([y1, y2, y3])
    X_train, X_valid, y_train, y_valid = train_test_split(X[:n_train, :], y[:n_train], test_size=1 / 3, shuffle=False)
    X_test, y_test = X[n_train:, :], y[n_train:]
    return [
        DataLoader(TensorDataset(torch.from_numpy(X_).to(torch.float32), torch.from_numpy(y_)), shuffle=True, num_workers=0, batch_size=32)
        for X_, y_ in [(X_train, y_train), (X_valid, y_valid), (X_test, y_test)]
    ]


# ------------------------------------------------------ Part 3: MLP & classifier


@check
def torch_mlp_8_params():
    m = mlp.MLP(in_dim=2, dims=[8, 16, 32, 64], nonlins=["relu", "tanh", nn.LeakyReLU(0.314), "softmax"])
    x = torch.randn(32, 2)
    yhat = m(x)
    assert len([*m.parameters()]) == 8
    assert tuple(yhat.shape) == (32, m.out_dim) and m.out_dim == 64 and m.in_dim == 2
    assert torch.allclose(torch.sum(yhat, dim=1), torch.tensor(1.0))
    assert yhat.grad_fn is not None
    try:
        mlp.MLP(2, [4, 2], ["relu"])
    except AssertionError:
        pass
    else:
        raise AssertionError("len(nonlins) != len(dims) accepted")


@check
def torch_mlp_tables():
    assert mlp.ACTIVATIONS["lrelu"] is nn.LeakyReLU and mlp.ACTIVATIONS[None] is nn.Identity
    assert mlp.ACTIVATIONS["none"] is nn.Identity and mlp.ACTIVATIONS["tanh"] is nn.Tanh
    assert mlp.ACTIVATION_DEFAULT_KWARGS["softmax"] == {"dim": 1}
    assert mlp.ACTIVATION_DEFAULT_KWARGS["logsoftmax"] == {"dim": 1}
    assert mlp.ACTIVATION_DEFAULT_KWARGS["relu"] == {}


def bmlp4():
    return classifier.BinaryClassifier(
        model=mlp.MLP(in_dim=2, dims=[*[10] * 3, 2], nonlins=[*["relu"] * 3, "none"]),
        threshold=0.5,
    )


@check
def binary_classifier_int32():
    model = bmlp4()
    x0 = torch.randn(32, 2)
    assert len([*model.parameters()]) == 8
    scores = model(x0)
    assert scores.grad_fn is not None and tuple(scores.shape) == (32, 2)
    assert not torch.allclose(torch.sum(scores, dim=1), torch.tensor(1.0))
    proba = model.predict_proba(x0)
    assert tuple(proba.shape) == (32, 2)
    assert torch.allclose(torch.sum(proba, dim=1), torch.tensor(1.0))
    yhat = model.classify(x0)
    assert tuple(yhat.shape) == (32,) and yhat.dtype == torch.int, yhat.dtype
    assert all(v in (0, 1) for v in yhat.tolist())
    assert torch.equal(model.classify_scores(scores.detach()), yhat)
    model.threshold = 0.999
    assert model.classify(x0).sum() <= yhat.sum()
    for kw in (dict(positive_class=2), dict(threshold=1.0), dict(threshold=0.0)):
        try:
            classifier.BinaryClassifier(nn.Linear(2, 2), **kw)
        except AssertionError:
            pass
        else:
            raise AssertionError(f"{kw} accepted")


@check
def select_roc_thresh_separable():
    # positives have x > 0; P(class 1) = sigmoid(4x)
    lin = nn.Linear(1, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-2.0], [2.0]]))
        lin.bias.zero_()
    model = classifier.BinaryClassifier(lin)
    x = torch.cat([torch.linspace(-2, -0.1, 30), torch.linspace(0.1, 2, 30)]).unsqueeze(1)
    y = (x[:, 0] > 0).long()
    thresh = classifier.select_roc_thresh(model, x, y)
    assert 0 < float(thresh) < 1, thresh
    model.threshold = thresh
    assert torch.equal(model.classify(x).long(), y), "threshold does not separate"
    import matplotlib.pyplot as plt

    thresh2 = classifier.select_roc_thresh(model, x, y, plot=True)
    assert float(thresh2) == float(thresh)
    plt.close("all")


@check
def decision_boundary_plot():
    import matplotlib.pyplot as plt

    lin = nn.Linear(2, 2)
    model = classifier.BinaryClassifier(lin)
    x = torch.randn(50, 2)
    y = (x[:, 0] > 0).long()
    fig, ax = classifier.plot_decision_boundary_2d(model, x, y)
    assert ax.get_xlabel() == "x1" and ax.get_ylabel() == "x2"
    assert tuple(fig.get_size_inches()) == (10, 8)
    fig2, axes = plt.subplots(1, 2)
    f, a = classifier.plot_decision_boundary_2d(model, x, y, dx=0.2, ax=axes[1])
    assert a is axes[1] and f is fig2
    import inspect

    cmap = inspect.signature(classifier.plot_decision_boundary_2d).parameters["cmap"].default
    assert getattr(cmap, "name", None) == "coolwarm"
    plt.close("all")


@check
def argmax_classifier():
    model = classifier.ArgMaxClassifier(model=cnn.CNN(**CNN_PARAMS[0]))
    img = torch.randint(low=0, high=256, size=(3, 100, 100), dtype=torch.float).unsqueeze(0)
    assert tuple(model.classify(img).shape) == (1,)
    assert tuple(model.predict_proba(img).shape) == (1, 10)
    assert abs(torch.sum(model.predict_proba(img)).item() - 1.0) < 1e-3
    z = torch.tensor([[0.1, 3.0, -1.0], [2.0, 0.0, 0.5]])
    assert model.classify_scores(z).tolist() == [1, 0]


@check
def classifier_trainer_part3_fit():
    dl_train, dl_valid, dl_test = moons()
    torch.manual_seed(42)
    hp_arch, hp_optim = answers.part3_arch_hp(), answers.part3_optim_hp()
    model = classifier.BinaryClassifier(
        model=mlp.MLP(
            in_dim=2,
            dims=[*[hp_arch["hidden_dims"]] * hp_arch["n_layers"], 2],
            nonlins=[*[hp_arch["activation"]] * hp_arch["n_layers"], hp_arch["out_activation"]],
        ),
        threshold=0.5,
    )
    loss_fn = hp_optim.pop("loss_fn")
    optimizer = torch.optim.SGD(params=model.parameters(), **hp_optim)
    trainer = training.ClassifierTrainer(model, loss_fn, optimizer, device=torch.device("cpu"))
    br = trainer.train_batch(next(iter(dl_train)))
    assert type(br.num_correct) is int and isinstance(br.loss, float), br
    res, _ = quiet(trainer.fit, dl_train, dl_valid, num_epochs=20, print_every=10)
    assert res.train_acc[-1] >= 85.0 and res.test_acc[-1] >= 75.0, (res.train_acc[-1], res.test_acc[-1])
    return f"train {res.train_acc[-1]:.1f}%, valid {res.test_acc[-1]:.1f}%"


@check
def mlp_experiment_returns():
    dl_train, dl_valid, dl_test = moons()
    torch.manual_seed(42)
    (model, thresh, valid_acc, test_acc), out = quiet(experiments.mlp_experiment, 2, 8, dl_train, dl_valid, dl_test, n_epochs=3)
    assert isinstance(model, classifier.BinaryClassifier)
    assert 0 < float(thresh) < 1 and float(model.threshold) == float(thresh)
    assert 0 <= valid_acc <= 100 and 0 <= test_acc <= 100
    assert test_acc >= 75, test_acc
    return f"valid {valid_acc:.1f}%, test {test_acc:.1f}%"


@slow_check
def mlp_experiment_grid():
    # the Part 3 notebook's architecture experiment and its asserts
    dl_train, dl_valid, dl_test = moons()
    torch.manual_seed(42)
    test_accs = []
    for width in [2, 8, 32, 128]:
        for depth in [1, 2, 4]:
            (_, _, _, test_acc), _ = quiet(experiments.mlp_experiment, depth, width, dl_train, dl_valid, dl_test, n_epochs=10)
            test_accs.append(test_acc)
    lo, q75 = np.min(test_accs), np.quantile(test_accs, 0.75)
    assert lo >= 75.0 and q75 >= 85.0, (lo, q75)
    return f"min {lo:.1f}%, 75th percentile {q75:.1f}%"


# ------------------------------------------------------------------- Part 4: CNN

CNN_PARAMS = [
    dict(
        in_size=(3, 100, 100), out_classes=10, channels=[32] * 4, pool_every=2, hidden_dims=[100] * 2,
        conv_params=dict(kernel_size=3, stride=1, padding=1), activation_type="relu", activation_params=dict(),
        pooling_type="max", pooling_params=dict(kernel_size=2),
    ),
    dict(
        in_size=(3, 100, 100), out_classes=10, channels=[32] * 4, pool_every=2, hidden_dims=[100] * 2,
        conv_params=dict(kernel_size=5, stride=2, padding=3), activation_type="lrelu", activation_params=dict(negative_slope=0.05),
        pooling_type="avg", pooling_params=dict(kernel_size=3),
    ),
    dict(
        in_size=(3, 100, 100), out_classes=3, channels=[16] * 5, pool_every=3, hidden_dims=[100] * 1,
        conv_params=dict(kernel_size=2, stride=2, padding=2), activation_type="lrelu", activation_params=dict(negative_slope=0.1),
        pooling_type="max", pooling_params=dict(kernel_size=2),
    ),
]

RESNET_PARAMS = [
    dict(
        in_size=(3, 100, 100), out_classes=10, channels=[32, 64] * 3, pool_every=4, hidden_dims=[100] * 2,
        activation_type="lrelu", activation_params=dict(negative_slope=0.01), pooling_type="avg",
        pooling_params=dict(kernel_size=2), batchnorm=True, dropout=0.1, bottleneck=False,
    ),
    dict(
        in_size=(3, 100, 100), out_classes=5, channels=[64, 16, 64] * 4, pool_every=3, hidden_dims=[64] * 1,
        activation_type="tanh", pooling_type="max", pooling_params=dict(kernel_size=2),
        batchnorm=True, dropout=0.1, bottleneck=True,
    ),
]


def _cnn_asset(i):
    torch.manual_seed(42)
    net = cnn.CNN(**CNN_PARAMS[i])
    torch.manual_seed(42)
    out = net(torch.ones(1, 3, 100, 100))
    expected = torch.load(ASSETS / f"expected_conv_out_{i:02d}.pt")
    return f"max_diff={assert_close(out, expected, what=f'conv_out_{i:02d}'):.2g}"


@check
def cnn_asset_00():
    return _cnn_asset(0)


@check
def cnn_asset_01():
    return _cnn_asset(1)


@check
def cnn_asset_02():
    return _cnn_asset(2)


@check
def cnn_structure():
    net = cnn.CNN(**CNN_PARAMS[2])
    kinds = [type(m).__name__ for m in net.feature_extractor]
    assert kinds == ["Conv2d", "LeakyReLU"] * 3 + ["MaxPool2d"] + ["Conv2d", "LeakyReLU"] * 2, kinds
    assert isinstance(net.mlp, mlp.MLP)
    for bad in (dict(activation_type="nope"), dict(pooling_type="nope")):
        try:
            cnn.CNN(**{**CNN_PARAMS[0], **bad})
        except ValueError:
            pass
        else:
            raise AssertionError(f"{bad} accepted")


@check
def cnn_n_features_keeps_rng():
    torch.manual_seed(0)
    net = cnn.ResNet(**RESNET_PARAMS[0])
    state = torch.get_rng_state()
    n = net._n_features()
    assert torch.equal(state, torch.get_rng_state()), "_n_features changed the RNG state"
    assert n == 64 * 50 * 50, n
    assert cnn.CNN(**CNN_PARAMS[1])._n_features() == 32


@check
def cnn_overfit_part4_hp():
    # the course overfits 50 CIFAR-10 images; random images stand in for them
    torch.manual_seed(42)
    X, y = torch.rand(50, 3, 32, 32), torch.randint(0, 10, (50,))
    dl_train = DataLoader(TensorDataset(X, y), 2, shuffle=False)
    model = classifier.ArgMaxClassifier(
        model=cnn.CNN(
            (3, 32, 32), 10, channels=[32], pool_every=1, hidden_dims=[100],
            conv_params=dict(kernel_size=3, stride=1, padding=1), pooling_params=dict(kernel_size=2),
        )
    )
    hp_optim = answers.part4_optim_hp()
    loss_fn = hp_optim.pop("loss_fn")
    optimizer = torch.optim.SGD(params=model.parameters(), **hp_optim)
    trainer = training.ClassifierTrainer(model, loss_fn, optimizer)
    best = 0
    for i in range(25):
        res, _ = quiet(trainer.train_epoch, dl_train, max_batches=25, verbose=False)
        best = max(best, res.accuracy)
    assert best >= 90, best
    return f"best {best:.0f}%"


def _relu_sum_matches(block, x):
    "With dropout=0 in eval mode a block is relu(main(x) + shortcut(x))."
    block.eval()
    with torch.no_grad():
        expected = torch.relu(block.main_path(x) + block.shortcut_path(x))
        assert_close(block(x), expected, atol=1e-6, what="relu(main+shortcut)")


def _try_asset(name, out):
    expected = torch.load(ASSETS / name)
    diff = (out - expected).abs().max().item() if out.shape == expected.shape else float("nan")
    return f"{name}: max_diff={diff:.2g}"


ASSET_NOTES = []


@check
def residual_block_structure():
    torch.manual_seed(42)
    block = cnn.ResidualBlock(in_channels=3, channels=[6, 4] * 2, kernel_sizes=[3, 5] * 2, batchnorm=True, dropout=0.2)
    torch.manual_seed(42)
    out = block(torch.ones(1, 3, 32, 32))
    assert tuple(out.shape) == (1, 4, 32, 32)
    ASSET_NOTES.append(_try_asset("expected_resblock_out.pt", out))
    kinds = [type(m).__name__ for m in block.main_path]
    assert len(block.main_path) == 13, kinds
    assert kinds == ["Conv2d", "Dropout2d", "BatchNorm2d", "ReLU"] * 3 + ["Conv2d"], kinds
    convs = [m for m in block.main_path if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [3, 5, 3, 5] and all(c.bias is not None for c in convs)
    assert [c.padding[0] for c in convs] == [1, 2, 1, 2]
    sc = [m for m in block.shortcut_path.modules() if isinstance(m, nn.Conv2d)]
    assert len(sc) == 1 and sc[0].kernel_size == (1, 1) and sc[0].bias is None
    names = [n for n, _ in block.named_children()]
    assert names.index("main_path") < names.index("shortcut_path"), "main path must be built first"
    same = cnn.ResidualBlock(4, [8, 4], [3, 3])
    assert not [p for p in same.shortcut_path.parameters()], "identity shortcut has parameters"
    try:
        cnn.ResidualBlock(3, [4], [2])
    except AssertionError:
        pass
    else:
        raise AssertionError("an even kernel size was accepted")


@check
def residual_block_relu_sum():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 16, 16)
    _relu_sum_matches(cnn.ResidualBlock(3, [6, 4] * 2, [3, 5] * 2, batchnorm=True, dropout=0.0), x)
    _relu_sum_matches(cnn.ResidualBlock(3, [5, 3], [3, 3], activation_type="tanh"), x)
    same = cnn.ResidualBlock(3, [5, 3], [3, 1])
    same.eval()
    with torch.no_grad():
        assert_close(same(x), torch.relu(same.main_path(x) + x), atol=1e-6, what="identity shortcut")


@check
def bottleneck_block():
    torch.manual_seed(42)
    block = cnn.ResidualBottleneckBlock(
        in_out_channels=256, inner_channels=[64, 32, 64], inner_kernel_sizes=[3, 5, 3],
        batchnorm=False, dropout=0.1, activation_type="lrelu",
    )
    torch.manual_seed(42)
    x = torch.ones(1, 256, 32, 32)
    out = block(x)
    assert out.shape == x.shape
    ASSET_NOTES.append(_try_asset("expected_resblock_bn_out.pt", out))
    kinds = [type(m).__name__ for m in block.main_path]
    assert kinds == ["Conv2d", "Dropout2d", "LeakyReLU"] * 4 + ["Conv2d"], kinds
    convs = [m for m in block.main_path if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [1, 3, 5, 3, 1]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(256, 64), (64, 64), (64, 32), (32, 64), (64, 256)]
    assert not [p for p in block.shortcut_path.parameters()]
    nodrop = cnn.ResidualBottleneckBlock(16, [4], [3], batchnorm=True)
    assert len(nodrop.main_path) == 3 + 2 * 2
    _relu_sum_matches(nodrop, torch.randn(2, 16, 8, 8))


@check
def resnet_structure():
    outs = []
    for i, params in enumerate(RESNET_PARAMS):
        torch.manual_seed(42)
        net = cnn.ResNet(**params)
        torch.manual_seed(42)
        out = net(torch.ones(1, 3, 100, 100))
        assert tuple(out.shape) == (1, params["out_classes"])
        ASSET_NOTES.append(_try_asset(f"expected_resnet_out_{i:02d}.pt", out))
        outs.append(net)
    kinds = [type(m).__name__ for m in outs[0].feature_extractor]
    assert kinds == ["ResidualBlock", "AvgPool2d", "ResidualBlock"], kinds
    assert [len(outs[0].feature_extractor[i].main_path) for i in (0, 2)] == [13, 5]
    kinds = [type(m).__name__ for m in outs[1].feature_extractor]
    assert kinds == ["ResidualBlock", "MaxPool2d"] + ["ResidualBottleneckBlock", "MaxPool2d"] * 3, kinds
    assert [len(b.main_path) for b in outs[1].feature_extractor[::2]] == [9, 9, 9, 9]
    lin = [m for m in outs[1].mlp.modules() if isinstance(m, nn.Linear)]
    assert lin[0].in_features == 64 * 6 * 6 and lin[-1].out_features == 5
    assert any(isinstance(m, nn.Tanh) for m in outs[1].mlp.modules()), "the head reuses the conv activation"


@check
def resnet_eval_relu_sum():
    torch.manual_seed(3)
    net = cnn.ResNet((3, 32, 32), 10, channels=[8, 16, 16, 16, 4, 16, 8], pool_every=3, hidden_dims=[20],
                     batchnorm=True, dropout=0.0, bottleneck=True, pooling_params=dict(kernel_size=2))
    net.eval()
    kinds = [type(m).__name__ for m in net.feature_extractor]
    assert kinds == ["ResidualBlock", "MaxPool2d", "ResidualBottleneckBlock", "MaxPool2d", "ResidualBlock"], kinds
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h = x
        for m in net.feature_extractor:
            if isinstance(m, cnn.ResidualBlock):
                _relu_sum_matches(m, h)
            h = m(h)
        assert_close(net(x), net.mlp(h.reshape(2, -1)), atol=1e-6, what="resnet forward")


@check
def your_cnn_forward():
    net = cnn.YourCNN((3, 100, 100), 10, channels=[32] * 4, pool_every=2, hidden_dims=[100] * 2)
    img = torch.randint(low=0, high=256, size=(3, 100, 100), dtype=torch.float).unsqueeze(0)
    assert tuple(net(img).shape) == (1, 10)
    deep = cnn.YourCNN((3, 32, 32), 10, channels=[32] * 4 + [64] * 4 + [128] * 4, pool_every=3, hidden_dims=[100])
    assert tuple(deep(torch.rand(2, 3, 32, 32)).shape) == (2, 10)


# ---------------------------------------------------------- Part 5: experiments


class FakeCIFAR10(torch.utils.data.Dataset):
    "Stands in for torchvision's CIFAR10 (no download): random 3x32x32 images."

    calls = []

    def __init__(self, root, train=True, transform=None, download=False, **kw):
        FakeCIFAR10.calls.append(dict(root=root, train=train, download=download, transform=transform))
        g = torch.Generator().manual_seed(0 if train else 1)
        n = 64 if train else 24
        self.data = torch.rand(n, 3, 32, 32, generator=g)
        self.targets = torch.randint(0, 10, (n,), generator=g).tolist()
        self.classes = [str(i) for i in range(10)]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.data[i], self.targets[i]


@check
def save_experiment_file_name():
    fit = FitResult(2, [1.0, 0.5], [10.0, 20.0], [1.5, 1.2], [12.0, 15.0])
    cfg = dict(run_name="test_run", out_dir="./results", seed=42, layers_per_block=1, filters_per_layer=[32, 64], kw={})
    with tempfile.TemporaryDirectory() as d, contextlib.chdir(d):
        _, out = quiet(experiments.save_experiment, "test_run", "./results", cfg, fit)
        assert os.path.isfile("results/test_run_L1_K32-64.json"), os.listdir(d)
        assert "results/test_run_L1_K32-64.json" in out and out.startswith("*** Output file")
        cfg2, fit2 = experiments.load_experiment("results/test_run_L1_K32-64.json")
        assert cfg2 == cfg and fit2 == fit and isinstance(fit2, FitResult)
    assert experiments.DATA_DIR == os.path.expanduser("~/.pytorch-datasets")
    assert set(experiments.MODEL_TYPES) == {"cnn", "resnet", "ycn"}


@check
def cnn_experiment_smoke():
    import torchvision

    real = torchvision.datasets.CIFAR10
    torchvision.datasets.CIFAR10 = FakeCIFAR10
    FakeCIFAR10.calls.clear()
    try:
        with tempfile.TemporaryDirectory() as d, contextlib.chdir(d):
            for model_type in ("resnet", "cnn", "ycn"):
                quiet(
                    experiments.cnn_experiment,
                    "test_run", seed=42, bs_train=8, batches=2, epochs=2, early_stopping=5,
                    filters_per_layer=[32, 64], layers_per_block=1, pool_every=1, hidden_dims=[100],
                    model_type=model_type,
                )
                cfg, fit = experiments.load_experiment("results/test_run_L1_K32-64.json")
                assert cfg["model_type"] == model_type and cfg["seed"] == 42 and cfg["bs_test"] == 2
                assert cfg["device"] is None and cfg["kw"] == {} and cfg["filters_per_layer"] == [32, 64]
                assert 1 <= fit.num_epochs <= 2 and len(fit.test_acc) == fit.num_epochs
            try:
                quiet(experiments.cnn_experiment, "bad", seed=1, filters_per_layer=[8], layers_per_block=1,
                      pool_every=1, hidden_dims=[8], model_type="nope")
            except ValueError:
                pass
            else:
                raise AssertionError("unknown model_type accepted")
    finally:
        torchvision.datasets.CIFAR10 = real
    assert {c["train"] for c in FakeCIFAR10.calls} == {True, False}
    assert all(c["root"] == experiments.DATA_DIR and c["download"] for c in FakeCIFAR10.calls)


@check
def cli_help():
    env = dict(os.environ, PYTHONPATH=str(REF), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "hw2.experiments", "--help"], cwd=REF, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "CS236781 HW2 Experiments" in p.stdout and "run-exp" in p.stdout, p.stdout
    # run-exp --help, in this process
    argv, buf = sys.argv, io.StringIO()
    try:
        sys.argv = ["hw2.experiments", "run-exp", "--help"]
        with contextlib.redirect_stdout(buf):
            experiments.parse_cli()
    except SystemExit as e:
        assert e.code in (0, None), e.code
    else:
        raise AssertionError("run-exp --help did not exit")
    finally:
        sys.argv = argv
    for opt in ("--run-name", "--out-dir", "--seed", "--device", "--bs-train", "--bs-test", "--batches", "--epochs",
                "--early-stopping", "--checkpoints", "--lr", "--reg", "--filters-per-layer", "--layers-per-block",
                "--pool-every", "--hidden-dims", "--model-type"):
        assert opt in buf.getvalue(), f"{opt} missing from run-exp --help"


@check
def cli_parse():
    argv = sys.argv
    try:
        sys.argv = ["hw2.experiments", "run-exp", "-n", "test", "-K", "32", "64", "-L", "2", "-P", "2", "-H", "100"]
        args = experiments.parse_cli()
    finally:
        sys.argv = argv
    assert args.subcmd_fn is experiments.cnn_experiment
    a = vars(args)
    expect = dict(run_name="test", out_dir="./results", seed=None, device=None, bs_train=128, bs_test=None, batches=100,
                  epochs=100, early_stopping=3, checkpoints=None, lr=1e-3, reg=1e-3, filters_per_layer=[32, 64],
                  layers_per_block=2, pool_every=2, hidden_dims=[100], model_type="cnn")
    for k, v in expect.items():
        assert a[k] == v, f"{k}: {a[k]!r} != {v!r}"


# ------------------------------------------------------------------- answers


@check
def answers_hp():
    hp = answers.part2_overfit_hp()
    assert set(hp) == {"wstd", "lr", "reg"} and hp["lr"] > 0 and hp["wstd"] > 0
    hp = answers.part2_optim_hp()
    assert set(hp) == {"wstd", "lr_vanilla", "lr_momentum", "lr_rmsprop", "reg"}
    assert all(hp[k] > 0 for k in ("wstd", "lr_vanilla", "lr_momentum", "lr_rmsprop"))
    hp = answers.part2_dropout_hp()
    assert set(hp) == {"wstd", "lr"} and hp["lr"] > 0
    hp = answers.part3_arch_hp()
    assert set(hp) == {"n_layers", "hidden_dims", "activation", "out_activation"}
    assert hp["activation"] in mlp.ACTIVATIONS and hp["out_activation"] in mlp.ACTIVATIONS
    for fn in (answers.part3_optim_hp, answers.part4_optim_hp):
        hp = fn()
        assert set(hp) == {"lr", "weight_decay", "momentum", "loss_fn"} and callable(hp["loss_fn"])


@check
def answers_part2_overfit_hp():
    # the course overfits 20 CIFAR-10 images; random images stand in for them
    torch.manual_seed(42)
    X, y = torch.rand(20, 3, 32, 32), torch.randint(0, 10, (20,))
    dl_train = DataLoader(TensorDataset(X, y), 10, shuffle=False)
    hp = answers.part2_overfit_hp()
    torch.manual_seed(42)
    model = layers.MLP(3 * 32 * 32, num_classes=10, hidden_features=[128] * 3, wstd=hp["wstd"])
    opt = optimizers.VanillaSGD(model.params(), learn_rate=hp["lr"], reg=hp["reg"])
    trainer = training.LayerTrainer(model, layers.CrossEntropyLoss(), opt)
    best = 0
    for _ in range(20):
        res, _ = quiet(trainer.train_epoch, dl_train, max_batches=2, verbose=False)
        best = max(best, res.accuracy)
    assert best >= 98, best
    return f"best {best:.0f}%"


@check
def answers_text():
    names = ["part1_q1", "part1_q2", "part2_q1", "part2_q2", "part2_q3", "part3_q1", "part3_q2", "part3_q3",
             "part3_q4", "part4_q1", "part5_q1", "part5_q2", "part5_q3", "part5_q4", "part5_q5"]
    for name in names:
        text = getattr(answers, name)
        assert isinstance(text, str) and text.strip().startswith("**Your answer:**"), name
        assert len(text.strip()) > len("**Your answer:**") + 20, f"{name} is empty"


def main():
    failed = 0
    t_all = time.time()
    for fn in CHECKS:
        t0 = time.time()
        try:
            note = fn()
        except Exception as e:
            failed += 1
            tb = traceback.extract_tb(e.__traceback__)[-1]
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e} ({Path(tb.filename).name}:{tb.lineno})", flush=True)
        else:
            extra = f" ({note})" if note else ""
            print(f"PASS {fn.__name__}{extra} [{time.time() - t0:.1f}s]", flush=True)
    for note in ASSET_NOTES:
        print(f"INFO residual asset {note} (informational: these depend on the CPU's dropout RNG path)")
    print(f"{len(CHECKS) - failed}/{len(CHECKS)} checks passed in {time.time() - t_all:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
