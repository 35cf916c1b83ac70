"""A bank of single-bug mutants and correct alternatives of the exercises, to prove the hidden tests fair.

Each entry edits the reference solution of one notebook in grader/samples.py's format: (grade_id, text in the
reference cell, replacement). A mutant carries a witness: code run on the notebook's definitions that sets
`result`, which must differ between the reference and the mutant (the bug is observable through the API). An
alternative is a correct solution the course allows, written from the exercise text and the course's skeleton: the
tests must pass it. tests/test_bank.py runs the notebooks' own test cells, hidden tests included, on every entry.
The bug samples of grader/samples.py join the mutants, and its `alt_conventions` joins the alternatives.
"""
from dataclasses import dataclass

from grader.samples import SAMPLES


@dataclass(frozen=True)
class Entry:
    name: str
    part: str  # the notebook
    description: str
    edits: tuple
    witness: str = ""  # mutants only


def M(part, name, description, edits, witness):
    return Entry(name, part, description, tuple(edits), witness)


def A(part, name, description, edits):
    return Entry(name, part, description, tuple(edits))


P1, P2, P2T = "part1_backprop", "part2_optimizers", "part2_training"
P3, P3C, P3E, P4 = "part3_mlp", "part3_classifier", "part3_experiments", "part4_cnn"

LRELU_FWD = 'self.grad_cache["x"] = x\n        return torch.where(x > 0, x, self.alpha * x)'
LRELU_BWD = "return torch.where(x > 0, dout, self.alpha * dout)"
SIG_BWD = "return dout * (1 - out) * out"
TANH_BWD = "return dout * (1 - out ** 2)"
LIN_BWD = "self.dw += dout.T @ x\n        self.db += dout.sum(dim=0)\n        return dout @ self.w"
CE_FWD = """n = x.shape[0]
        shifted = x - x.max(dim=1, keepdim=True).values.detach()  # every exponent <= 0
        exp = torch.exp(shifted)
        sum_exp = exp.sum(dim=1)
        self.grad_cache.update(y=y, exp=exp, sum_exp=sum_exp)
        return (torch.log(sum_exp) - shifted[torch.arange(n), y]).mean()"""
CE_BWD = """y, exp, sum_exp = (self.grad_cache[k] for k in ("y", "exp", "sum_exp"))
        n = exp.shape[0]
        dloss = dout / n  # each sample's share of the mean
        dx = (dloss / sum_exp)[:, None] * exp  # log-sum-exp term: softmax * dloss
        dx[torch.arange(n), y] -= dloss  # -x_y term
        return dx"""
DROP_FWD = """if not self.training_mode or self.p == 0:
            self.grad_cache["mask"] = None
            return x
        keep = torch.rand_like(x) >= self.p
        mask = keep.to(x.dtype) / (1 - self.p)
        self.grad_cache["mask"] = mask
        return x * mask"""
MLP_LOOP = """for d_in, d_out in zip(dims, dims[1:]):
            layers += [Linear(d_in, d_out, **kw), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(Dropout(dropout))"""
VSGD = """g = torch.add(dp, p, alpha=self.reg)  # dp + reg * p, in one pass
            p.add_(g, alpha=-self.learn_rate)"""
MOM = """g = torch.add(dp, p, alpha=self.reg)
            v = self.velocities[i]
            v.mul_(self.momentum).add_(g, alpha=-self.learn_rate)  # v = mu * v - lr * g
            p += v"""
RMS = """g = torch.add(dp, p, alpha=self.reg)
            r = self.mean_squares[i]
            r.mul_(self.decay).addcmul_(g, g, value=1 - self.decay)  # r = decay * r + (1 - decay) * g^2
            p.addcdiv_(g, torch.sqrt(r + self.eps), value=-self.learn_rate)  # p -= lr * g / sqrt(r + eps)"""
TRAIN_BATCH = """self.optimizer.zero_grad()
        scores = self.model(X)
        loss = self.loss_fn(scores, y)
        self.model.backward(self.loss_fn.backward())
        self.optimizer.step()"""
TEST_BATCH = """        scores = self.model(X)
        loss = self.loss_fn(scores, y)
        num_correct = (scores.argmax(dim=1) == y).sum().item()
        return BatchResult(loss.item(), num_correct)"""
FIT_RECORD = """test_loss = sum(test_res.losses) / len(test_res.losses)
            history.train_loss.append(sum(train_res.losses) / len(train_res.losses))
            history.train_acc.append(train_res.accuracy)
            history.test_loss.append(test_loss)
            history.test_acc.append(test_res.accuracy)"""
GRID = """lo, hi = x.min(dim=0).values.numpy() - margin, x.max(dim=0).values.numpy() + margin
    x1, x2 = np.meshgrid(np.arange(lo[0], hi[0] + dx / 2, dx), np.arange(lo[1], hi[1] + dx / 2, dx))
    points = torch.from_numpy(np.stack([x1.ravel(), x2.ravel()], axis=1)).to(torch.float32)
    return x1, x2, predict(classifier, points).numpy().reshape(x1.shape)"""
ROC = """fpr, tpr, thresholds = roc_curve(np.asarray(y), positive_proba(classifier, x), pos_label=classifier.positive_class)
    best = int(np.argmin(fpr ** 2 + (1 - tpr) ** 2))"""
CNN_FE = """layers, in_channels = [], self.in_size[0]
        for i, out_channels in enumerate(self.channels):
            layers += [nn.Conv2d(in_channels, out_channels, **self.conv_params), self._activation()]
            if (i + 1) % self.pool_every == 0:
                layers.append(POOLINGS[self.pooling_type](**self.pooling_params))
            in_channels = out_channels
        return nn.Sequential(*layers)"""
CNN_NF = """rng_state, was_training = torch.get_rng_state(), self.feature_extractor.training
        try:
            self.feature_extractor.eval()  # batch norm must not learn from the dummy
            with torch.no_grad():
                return self.feature_extractor(torch.zeros(1, *self.in_size)).numel()
        finally:
            self.feature_extractor.train(was_training)
            torch.set_rng_state(rng_state)"""
RES_BETWEEN = """if dropout > 0:
                    layers.append(nn.Dropout2d(dropout))
                if batchnorm:
                    layers.append(nn.BatchNorm2d(c_out))"""
RES_SHORTCUT = """if in_channels == channels[-1]:
            self.shortcut_path = nn.Sequential(nn.Identity())
        else:
            self.shortcut_path = nn.Sequential(nn.Conv2d(in_channels, channels[-1], kernel_size=1, bias=False))"""
RESNET = """layers, in_channels = [], self.in_size[0]
        for start in range(0, len(self.channels), self.pool_every):
            group = self.channels[start:start + self.pool_every]
            if self.bottleneck and len(group) >= 3 and in_channels == group[-1]:
                inner = group[1:-1]
                layers.append(ResidualBottleneckBlock(group[-1], inner, [3] * len(inner), **block_kwargs))
            else:
                layers.append(ResidualBlock(in_channels, group, [3] * len(group), **block_kwargs))
            if len(group) == self.pool_every:
                layers.append(POOLINGS[self.pooling_type](**self.pooling_params))
            in_channels = group[-1]
        return nn.Sequential(*layers)"""

# witnesses shared by several mutants
W_LRELU = "l = LeakyReLU(0.5); l(torch.tensor([[-2.0, 3.0]])); result = (l(torch.tensor([[-2.0, 3.0]])), l.backward(torch.ones(1, 2)))"
W_SIG = "l = Sigmoid(); out = l(torch.tensor([[-1.0, 0.5]])); result = (out, l.backward(torch.tensor([[2.0, 3.0]])))"
W_TANH = "l = TanH(); out = l(torch.tensor([[-1.0, 0.5]])); result = (out, l.backward(torch.tensor([[2.0, 3.0]])))"
W_LIN = """torch.manual_seed(0); l = Linear(3, 2); l.b += 1; x = torch.randn(4, 3); out = l(x)
for _, g in l.params(): g.zero_()
dx = l.backward(torch.ones(4, 2)); l.backward(torch.ones(4, 2))
result = (out, dx, [g.clone() for _, g in l.params()], l.w.std() > 0.05)"""
W_CE = """s = torch.tensor([[1.0, 2.0, 3.0], [500.0, 0.0, -500.0]]); l = CrossEntropyLoss()
result = (l(s, torch.tensor([0, 1])), l.backward(torch.tensor(1.0)))"""
W_SEQ = """torch.manual_seed(0); a, b = Linear(3, 4), Linear(4, 2); s = Sequential(a, TanH(), b, CrossEntropyLoss())
loss = s(torch.randn(5, 3), y=torch.tensor([0, 1, 0, 1, 1])); dx = s.backward(torch.tensor(1.0))
s.train(False)
result = (loss, dx, len(s.params()), a.training_mode)"""
W_DROP = """torch.manual_seed(0); l = Dropout(0.25); x = torch.ones(200, 100)
z = l(x); dx = l.backward(torch.ones_like(x)); l.train(False)
result = ((z == 0).float().mean().round(decimals=1), z.sum() / (z != 0).sum(), dx.sum(), l(x).sum())"""
W_MLP = """torch.manual_seed(0); m = MLP(4, 3, [5, 6], activation="tanh", dropout=0.5, wstd=2.0)
result = ([str(layer) for layer in m.sequence], [round(layer.w.std().item()) for layer in m.sequence if isinstance(layer, Linear)])"""
W_VSGD = "p, dp = torch.ones(3), torch.full((3,), 2.0); VanillaSGD([(p, dp)], learn_rate=0.1, reg=0.5).step(); result = p"
W_MOM = """p, dp = torch.ones(3), torch.full((3,), 2.0); o = MomentumSGD([(p, dp)], learn_rate=0.1, reg=0.5, momentum=0.5)
o.step(); o.step(); result = p"""
W_RMS = """p, dp = torch.ones(3), torch.full((3,), 2.0); o = RMSProp([(p, dp)], learn_rate=0.1, reg=0.5, decay=0.75, eps=0.1)
o.step(); o.step(); result = p"""
W_FIT = """res = ScriptedTrainer([(2.0, 25), (1.0, 50), (1.0, 75), (1.2, 50), (0.5, 80)]).fit(toy, toy, 5, early_stopping=2, print_every=0, max_batches=1)
result = (res.num_epochs, res.train_acc, res.test_acc, epoch_means(res.train_loss, res.num_epochs))"""
W_FIT_CKPT = """import tempfile, os; ckpt = os.path.join(tempfile.mkdtemp(), "w")
ScriptedTrainer([(1.0, 25), (0.9, 75), (0.8, 50)]).fit(toy, toy, 3, checkpoints=ckpt, print_every=0)
s = torch.load(ckpt + ".pt", weights_only=True); result = (s["best_acc"], s["history"]["num_epochs"])"""
W_LT = """from dlcourse.layers import MLP as LMLP, CrossEntropyLoss as LCE
from dlcourse.optimizers import VanillaSGD as LSGD
torch.manual_seed(0); m = LMLP(6, 3, [8]); t = LayerTrainer(m, LCE(), LSGD(m.params(), learn_rate=0.5, reg=0.0))
X, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
r1 = t.train_batch((X, y)); r2 = t.train_batch((X, y)); r3 = t.test_batch((X, y)); r4 = t.test_batch((X, y))
result = (r1, r2, r3, r4, [p.clone() for p, _ in m.params()])"""
W_TMLP = """torch.manual_seed(0); m = MLP(3, [4, 2], [nn.LeakyReLU(0.3), "softmax"])
result = ([str(x) for x in m.seq], m(torch.randn(5, 3)).sum(1), len(list(m.parameters())))"""
W_CLF = """z = torch.tensor([[0.0, 0.3], [2.0, 0.0], [0.0, -0.1]])
b = BinaryClassifier(nn.Identity(), threshold=0.47)
result = (b.predict_proba(z), b.classify(z), b.classify_scores(z), b.classify(z).dtype, ArgMaxClassifier(nn.Identity()).classify(z))"""
W_GRID = """torch.manual_seed(0); c = BinaryClassifier(nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 2)))
x1, x2, y_hat = decision_grid(c, torch.tensor([[0.0, 0.0], [1.0, 2.0]]), dx=0.5)
result = (np.asarray(x1), np.asarray(x2), np.asarray(y_hat))"""
W_ROC = """gen = torch.Generator().manual_seed(1); z = torch.stack([torch.zeros(80), torch.randn(80, generator=gen)], 1)
y = (torch.rand(80, generator=gen) < torch.sigmoid(2 * z[:, 1])).long()
result = (select_roc_thresh(BinaryClassifier(nn.Identity()), z, y), select_roc_thresh(BinaryClassifier(nn.Identity(), positive_class=0), z, y))"""
W_EXP = """from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0); x = torch.randn(320, 2); y = (x[:, 0] + 0.3 * torch.randn(320) > 0).long()
xt = torch.randn(64, 2); yt = (xt[:, 0] + xt[:, 1] > 0.5).long()
dl, dlv, dlt = (DataLoader(TensorDataset(*t), batch_size=32) for t in ((x[:256], y[:256]), (x[256:], y[256:]), (xt, yt)))
model, thresh, valid_acc, test_acc = mlp_experiment(2, 4, dl, dlv, dlt, n_epochs=4)
result = ([(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)], thresh == model.threshold, thresh, valid_acc, test_acc)"""
W_CNN = """torch.manual_seed(0); net = CNN((3, 12, 12), 4, channels=[4, 6, 5], pool_every=2, hidden_dims=[7],
          conv_params=dict(kernel_size=3, padding=2), activation_type="lrelu", activation_params=dict(negative_slope=0.2),
          pooling_params=dict(kernel_size=2))
torch.manual_seed(0); out = net(torch.ones(1, 3, 12, 12))
result = (str(net), out)"""
W_RES = """torch.manual_seed(0); b = ResidualBlock(3, [4, 5], [3, 5], batchnorm=True, dropout=0.3, activation_type="lrelu", activation_params=dict(negative_slope=0.2))
b.eval(); result = (str(b), b(torch.ones(1, 3, 6, 6)))"""
W_BNB = """torch.manual_seed(0); b = ResidualBottleneckBlock(8, [4, 2], [3, 5], batchnorm=True, activation_type="tanh")
b.eval(); result = (str(b), b(torch.ones(1, 8, 6, 6)))"""
W_RESNET = """torch.manual_seed(0); net = ResNet((3, 8, 8), 3, channels=[4, 2, 5, 5, 2, 5, 6], pool_every=3, hidden_dims=[5], bottleneck=True, batchnorm=True)
net.eval(); result = (str(net), net(torch.ones(1, 3, 8, 8)))"""

MUTANTS = [
    # Part 1
    M(P1, "lrelu_slope_lost_in_backward", "LeakyReLU backward drops the negative slope", [
        ("leaky_relu", LRELU_BWD, "return torch.where(x > 0, dout, 0 * dout)")], W_LRELU),
    M(P1, "lrelu_negative_slope_sign", "LeakyReLU forward flips the sign of negative inputs", [
        ("leaky_relu", "return torch.where(x > 0, x, self.alpha * x)", "return torch.where(x > 0, x, -self.alpha * x)")], W_LRELU),
    M(P1, "lrelu_cache_kept", "LeakyReLU keeps the first input it saw for backward", [
        ("leaky_relu", 'self.grad_cache["x"] = x', 'self.grad_cache.setdefault("x", x)')],
      "l = LeakyReLU(0.5); l(torch.tensor([[1.0]])); l(torch.tensor([[-1.0]])); result = l.backward(torch.ones(1, 1))"),
    M(P1, "relu_default_slope", "ReLU keeps LeakyReLU's default slope", [
        ("relu", "super().__init__(alpha=0.0)", "super().__init__()")], "result = ReLU()(torch.tensor([[-1.0, 2.0]]))"),
    M(P1, "sigmoid_forgets_dout", "Sigmoid backward ignores the upstream gradient", [
        ("sigmoid", SIG_BWD, "return (1 - out) * out")], W_SIG),
    M(P1, "sigmoid_half_derivative", "Sigmoid backward multiplies by sigma(x) only", [
        ("sigmoid", SIG_BWD, "return dout * out")], W_SIG),
    M(P1, "tanh_no_square", "TanH backward uses 1 - tanh(x)", [("tanh", TANH_BWD, "return dout * (1 - out)")], W_TANH),
    M(P1, "tanh_caches_input", "TanH caches its input and treats it as the output", [
        ("tanh", 'self.grad_cache["out"] = out', 'self.grad_cache["out"] = x')], W_TANH),
    M(P1, "linear_db_mean", "Linear averages the bias gradient over the batch", [
        ("linear", "self.db += dout.sum(dim=0)", "self.db += dout.mean(dim=0)")], W_LIN),
    M(P1, "linear_dw_overwritten", "Linear overwrites dw instead of accumulating", [
        ("linear", "self.dw += dout.T @ x", "self.dw.copy_(dout.T @ x)")], W_LIN),
    M(P1, "linear_forward_no_bias", "Linear forward forgets the bias", [
        ("linear", "return x @ self.w.T + self.b", "return x @ self.w.T")], W_LIN),
    M(P1, "linear_wstd_squared", "Linear draws weights with variance wstd^4", [
        ("linear", "self.w = torch.randn(out_features, in_features) * wstd", "self.w = torch.randn(out_features, in_features) * wstd ** 2")], W_LIN),
    M(P1, "linear_bias_ones", "Linear starts the bias at one", [
        ("linear", "self.b = torch.zeros(out_features)", "self.b = torch.ones(out_features)")], W_LIN),
    M(P1, "linear_stale_input", "Linear backward uses the first input it saw", [
        ("linear", 'self.grad_cache["x"] = x', 'self.grad_cache.setdefault("x", x)')],
      """torch.manual_seed(0); l = Linear(2, 2); l(torch.ones(1, 2)); l(torch.full((1, 2), 3.0)); l.backward(torch.ones(1, 2))
result = l.dw"""),
    M(P1, "ce_sum_not_mean", "cross-entropy sums the batch instead of averaging", [
        ("cross_entropy", "shifted[torch.arange(n), y]).mean()", "shifted[torch.arange(n), y]).sum()")], W_CE),
    M(P1, "ce_backward_not_averaged", "cross-entropy backward forgets the 1/N of the mean", [
        ("cross_entropy", "dloss = dout / n", "dloss = dout")], W_CE),
    M(P1, "ce_backward_no_label_term", "cross-entropy backward forgets the -x_y term", [
        ("cross_entropy", "dx[torch.arange(n), y] -= dloss  # -x_y term", "pass")], W_CE),
    M(P1, "ce_shift_gradient_lost", "cross-entropy shifts by the row maximum but not in the backward softmax", [
        ("cross_entropy", "dx = (dloss / sum_exp)[:, None] * exp", "dx = (dloss / torch.exp(x).sum(dim=1))[:, None] * torch.exp(x)"),
        ("cross_entropy", "self.grad_cache.update(y=y, exp=exp, sum_exp=sum_exp)", "self.grad_cache.update(y=y, exp=exp, sum_exp=sum_exp, x=x)"),
        ("cross_entropy", 'n = exp.shape[0]\n        dloss', 'n = exp.shape[0]\n        x = self.grad_cache["x"]\n        dloss')], W_CE),
    M(P1, "seq_backward_in_forward_order", "Sequential backpropagates from the first layer", [
        ("sequential", "for layer in reversed(self.layers):", "for layer in self.layers:")], W_SEQ),
    M(P1, "seq_params_first_layer", "Sequential lists only the first layer's parameters", [
        ("sequential", "return [p for layer in self.layers for p in layer.params()]", "return self.layers[0].params()")], W_SEQ),
    M(P1, "seq_train_always_true", "Sequential.train puts every layer in training mode", [
        ("sequential", "layer.train(training_mode)", "layer.train()")], W_SEQ),
    M(P1, "seq_kwargs_dropped", "Sequential does not hand the labels on to the layers", [
        ("sequential", "x = layer(x, **kw)", "x = layer(x)")], W_SEQ),
    M(P1, "dropout_keeps_p", "Dropout keeps each unit with probability p", [
        ("dropout", "keep = torch.rand_like(x) >= self.p", "keep = torch.rand_like(x) < self.p")], W_DROP),
    M(P1, "dropout_in_eval", "Dropout also drops units in evaluation mode", [
        ("dropout", "if not self.training_mode or self.p == 0:", "if self.p == 0:")], W_DROP),
    M(P1, "dropout_backward_unmasked", "Dropout backward lets the gradient through dropped units", [
        ("dropout", "return dout if mask is None else dout * mask", "return dout")], W_DROP),
    M(P1, "dropout_scaled_by_p", "Dropout rescales kept units by 1/p", [
        ("dropout", "mask = keep.to(x.dtype) / (1 - self.p)", "mask = keep.to(x.dtype) / self.p")], W_DROP),
    M(P1, "dropout_numpy_mask", "Dropout draws its mask with numpy's generator", [
        ("dropout", "keep = torch.rand_like(x) >= self.p",
         "keep = torch.from_numpy(__import__('numpy').random.rand(*x.shape) >= self.p)")],
      "l = Dropout(0.5); x = torch.ones(10, 10); torch.manual_seed(3); a = l(x); torch.manual_seed(3); result = torch.equal(a, l(x))"),
    M(P1, "mlp_kwargs_not_last", "the MLP's last Linear ignores wstd", [
        ("mlp", "layers.append(Linear(dims[-1], num_classes, **kw))", "layers.append(Linear(dims[-1], num_classes))")], W_MLP),
    M(P1, "mlp_dropout_before_activation", "the MLP puts Dropout before the activation", [
        ("mlp", MLP_LOOP, """for d_in, d_out in zip(dims, dims[1:]):
            layers.append(Linear(d_in, d_out, **kw))
            if dropout > 0:
                layers.append(Dropout(dropout))
            layers.append(ACTIVATIONS[activation]())""")], W_MLP),
    M(P1, "mlp_activation_at_the_end", "the MLP applies the activation to the class scores too", [
        ("mlp", "layers.append(Linear(dims[-1], num_classes, **kw))",
         "layers += [Linear(dims[-1], num_classes, **kw), ACTIVATIONS[activation]()]")], W_MLP),
    M(P1, "mlp_always_relu", "the MLP ignores the activation argument", [
        ("mlp", "layers += [Linear(d_in, d_out, **kw), ACTIVATIONS[activation]()]", "layers += [Linear(d_in, d_out, **kw), ReLU()]")], W_MLP),
    # Part 2: optimizers
    M(P2, "vsgd_no_l2", "VanillaSGD forgets the L2 term", [("vanilla_sgd", VSGD, "p.add_(dp, alpha=-self.learn_rate)")], W_VSGD),
    M(P2, "vsgd_ascent", "VanillaSGD steps up the gradient", [
        ("vanilla_sgd", "p.add_(g, alpha=-self.learn_rate)", "p.add_(g, alpha=self.learn_rate)")], W_VSGD),
    M(P2, "vsgd_half_l2", "VanillaSGD uses reg / 2 for the L2 gradient", [
        ("vanilla_sgd", "g = torch.add(dp, p, alpha=self.reg)", "g = torch.add(dp, p, alpha=self.reg / 2)")], W_VSGD),
    M(P2, "momentum_forgets_velocity", "MomentumSGD never stores its velocity", [
        ("momentum_sgd", "v = self.velocities[i]", "v = self.velocities[i].clone()")], W_MOM),
    M(P2, "momentum_never_decays", "MomentumSGD accumulates the velocity without the factor mu", [
        ("momentum_sgd", "v.mul_(self.momentum).add_(g, alpha=-self.learn_rate)", "v.add_(g, alpha=-self.learn_rate)")], W_MOM),
    M(P2, "momentum_no_l2", "MomentumSGD forgets the L2 term", [
        ("momentum_sgd", MOM, MOM.replace("g = torch.add(dp, p, alpha=self.reg)", "g = dp"))], W_MOM),
    M(P2, "rmsprop_no_root", "RMSProp divides by r + eps without the square root", [
        ("rmsprop", "torch.sqrt(r + self.eps)", "(r + self.eps)")], W_RMS),
    M(P2, "rmsprop_decay_swapped", "RMSProp swaps decay and 1 - decay", [
        ("rmsprop", "r.mul_(self.decay).addcmul_(g, g, value=1 - self.decay)", "r.mul_(1 - self.decay).addcmul_(g, g, value=self.decay)")], W_RMS),
    M(P2, "rmsprop_no_l2", "RMSProp forgets the L2 term", [
        ("rmsprop", RMS, RMS.replace("g = torch.add(dp, p, alpha=self.reg)", "g = dp"))], W_RMS),
    M(P2, "rmsprop_fresh_average", "RMSProp restarts its running average at every step", [
        ("rmsprop", "r = self.mean_squares[i]", "r = torch.zeros_like(p)")], W_RMS),
    # Part 2: training
    M(P2T, "fit_count_never_reset", "fit never resets the count of epochs without improvement", [
        ("trainer_fit", "best_loss, epochs_without_improvement = test_loss, 0", "best_loss = test_loss")],
      """res = ScriptedTrainer([(1.0, 10), (0.9, 10), (1.0, 10), (0.8, 10), (0.9, 10), (0.95, 10), (0.7, 10)]).fit(toy, toy, 7, early_stopping=2, print_every=0)
result = res.num_epochs"""),
    M(P2T, "fit_tie_is_improvement", "fit counts an equal test loss as an improvement", [
        ("trainer_fit", "test_loss < best_loss", "test_loss <= best_loss")], W_FIT),
    M(P2T, "fit_train_acc_from_test", "fit records the test accuracy as the training accuracy", [
        ("trainer_fit", "history.train_acc.append(train_res.accuracy)", "history.train_acc.append(test_res.accuracy)")], W_FIT),
    M(P2T, "fit_train_loss_from_test", "fit records the test loss as the training loss", [
        ("trainer_fit", "history.train_loss.append(sum(train_res.losses) / len(train_res.losses))", "history.train_loss.append(test_loss)")], W_FIT),
    M(P2T, "fit_keywords_dropped", "fit does not hand max_batches on to the training epochs", [
        ("trainer_fit", "train_res = self.train_epoch(dl_train, verbose=verbose, **kw)", "train_res = self.train_epoch(dl_train, verbose=verbose)")],
      """t = ScriptedTrainer([(1.0, 50)] * 2); t.fit(toy, toy, 2, print_every=0, max_batches=1); result = t.train_batches"""),
    M(P2T, "fit_epoch_count_off", "fit's FitResult counts one epoch too few", [
        ("trainer_fit", "history = history._replace(num_epochs=epoch + 1)", "history = history._replace(num_epochs=epoch)")], W_FIT),
    M(P2T, "fit_checkpoint_every_epoch", "fit saves a checkpoint after every epoch, not only the best", [
        ("trainer_fit", "if best_acc is None or test_res.accuracy > best_acc:", "if True:")], W_FIT_CKPT),
    M(P2T, "trainer_no_zero_grad", "LayerTrainer lets gradients pile up across batches", [
        ("layer_trainer", "self.optimizer.zero_grad()\n        scores", "scores")], W_LT),
    M(P2T, "trainer_no_step", "LayerTrainer never updates the parameters", [
        ("layer_trainer", "self.model.backward(self.loss_fn.backward())\n        self.optimizer.step()", "self.model.backward(self.loss_fn.backward())")], W_LT),
    M(P2T, "trainer_loss_after_step", "LayerTrainer reports the loss after the update", [
        ("layer_trainer", "self.optimizer.step()\n        num_correct", "self.optimizer.step()\n        loss = self.loss_fn(self.model(X), y)\n        num_correct")], W_LT),
    M(P2T, "trainer_test_batch_trains", "LayerTrainer.test_batch also updates the model", [
        ("layer_trainer", TEST_BATCH, TEST_BATCH.replace("        num_correct", "        self.model.backward(self.loss_fn.backward())\n        self.optimizer.step()\n        num_correct", 1))], W_LT),
    M(P2T, "trainer_argmax_dim0", "LayerTrainer takes the arg-max over the batch", [
        ("layer_trainer", "(scores.argmax(dim=1) == y)", "(scores.argmax(dim=0) == y)")], W_LT),
    # Part 3: MLP
    M(P3, "torch_mlp_last_nonlin_dropped", "the torch MLP drops the last non-linearity", [
        ("torch_mlp", "self.seq = nn.Sequential(*layers)", "self.seq = nn.Sequential(*layers[:-1])")], W_TMLP),
    M(P3, "torch_mlp_no_bias", "the torch MLP's Linear layers have no bias", [
        ("torch_mlp", "nn.Linear(d_in, d_out)", "nn.Linear(d_in, d_out, bias=False)")], W_TMLP),
    M(P3, "torch_mlp_module_rebuilt", "the torch MLP rebuilds a given module with default arguments", [
        ("torch_mlp", "make_activation(nonlin)", "make_activation(nonlin if not isinstance(nonlin, nn.Module) else type(nonlin)())")], W_TMLP),
    M(P3, "torch_mlp_first_nonlin_everywhere", "the torch MLP uses the first non-linearity for every layer", [
        ("torch_mlp", "make_activation(nonlin)", "make_activation(nonlins[0])")], W_TMLP),
    # Part 3: classifier
    M(P3C, "softmax_over_batch", "Classifier normalises over the batch dimension", [
        ("classifier", "return self.softmax(z)", "return torch.softmax(z, dim=0)")], W_CLF),
    M(P3C, "classify_raw_scores", "Classifier.classify thresholds raw scores instead of probabilities", [
        ("classifier", "return self._classify(self.predict_proba(x))", "return self._classify(self(x))")], W_CLF),
    M(P3C, "classify_scores_reruns_model", "classify_scores runs the model on the scores again", [
        ("classifier", "return self._classify(self.predict_proba_scores(z))", "return self._classify(self.predict_proba(z))")],
      """calls = []; b = BinaryClassifier(nn.Identity()); b.model.register_forward_hook(lambda *a: calls.append(1))
b.classify_scores(torch.zeros(2, 2)); result = len(calls)"""),
    M(P3C, "binary_fixed_threshold", "BinaryClassifier ignores its threshold", [
        ("binary_classifier", ">= self.threshold", ">= 0.5")], W_CLF),
    M(P3C, "binary_int64_labels", "BinaryClassifier returns int64 labels", [
        ("binary_classifier", "1 - self.positive_class).to(torch.int)", "1 - self.positive_class)")], W_CLF),
    M(P3C, "binary_argmax", "BinaryClassifier takes the arg-max, whatever the threshold", [
        ("binary_classifier", "is_positive = y_proba[:, self.positive_class] >= self.threshold",
         "is_positive = y_proba.argmax(dim=1) == self.positive_class")], W_CLF),
    M(P3C, "argmax_over_batch", "ArgMaxClassifier takes the arg-max over the batch", [
        ("argmax_classifier", "y_proba.argmax(dim=1)", "y_proba.argmax(dim=0)")], W_CLF),
    M(P3C, "argmin_classifier", "ArgMaxClassifier picks the least probable class", [
        ("argmax_classifier", "y_proba.argmax(dim=1)", "y_proba.argmin(dim=1)")], W_CLF),
    M(P3C, "grid_labels_transposed", "decision_grid lays the labels out transposed to the coordinates", [
        ("decision_boundary", "predict(classifier, points).numpy().reshape(x1.shape)", "predict(classifier, points).numpy().reshape(x1.shape[::-1]).T")], W_GRID),
    M(P3C, "grid_no_margin", "decision_grid spans the points without the margin", [
        ("decision_boundary", "lo, hi = x.min(dim=0).values.numpy() - margin, x.max(dim=0).values.numpy() + margin",
         "lo, hi = x.min(dim=0).values.numpy(), x.max(dim=0).values.numpy()")], W_GRID),
    M(P3C, "grid_axes_swapped", "decision_grid gives x1 the range of the second coordinate", [
        ("decision_boundary", "np.meshgrid(np.arange(lo[0], hi[0] + dx / 2, dx), np.arange(lo[1], hi[1] + dx / 2, dx))",
         "np.meshgrid(np.arange(lo[1], hi[1] + dx / 2, dx), np.arange(lo[0], hi[0] + dx / 2, dx))")], W_GRID),
    M(P3C, "grid_train_mode", "decision_grid classifies in training mode (dropout on)", [
        ("decision_boundary", "predict(classifier, points).numpy()", "classifier.classify(points).numpy()")], W_GRID),
    M(P3C, "roc_pos_label_fixed", "select_roc_thresh always takes label 1 as positive", [
        ("roc_thresh", "pos_label=classifier.positive_class", "pos_label=1")], W_ROC),
    M(P3C, "roc_farthest_point", "select_roc_thresh picks the point farthest from (0, 1)", [
        ("roc_thresh", "best = int(np.argmin(fpr ** 2 + (1 - tpr) ** 2))", "best = int(np.argmax(fpr ** 2 + (1 - tpr) ** 2))")], W_ROC),
    M(P3C, "roc_on_scores", "select_roc_thresh builds the curve from raw scores, not probabilities", [
        ("roc_thresh", "positive_proba(classifier, x), pos_label", "predict(classifier, x, 'forward')[:, classifier.positive_class].numpy(), pos_label")], W_ROC),
    M(P3C, "roc_distance_to_origin", "select_roc_thresh measures the distance to (0, 0)", [
        ("roc_thresh", "best = int(np.argmin(fpr ** 2 + (1 - tpr) ** 2))", "best = int(np.argmin(fpr ** 2 + tpr ** 2))")], W_ROC),
    # Part 3: experiments
    M(P3E, "experiment_depth_off_by_one", "mlp_experiment builds one hidden layer too few", [
        ("mlp_experiment", 'MLP(2, [width] * depth + [2], ["tanh"] * depth + ["none"])',
         'MLP(2, [width] * (depth - 1) + [2], ["tanh"] * (depth - 1) + ["none"])')], W_EXP),
    M(P3E, "experiment_valid_acc_on_train", "mlp_experiment reports the training accuracy as validation accuracy", [
        ("mlp_experiment", "valid_acc = trainer.test_epoch(dl_valid, verbose=False).accuracy", "valid_acc = trainer.test_epoch(dl_train, verbose=False).accuracy")], W_EXP),
    M(P3E, "experiment_threshold_on_test", "mlp_experiment chooses the threshold on the test set", [
        ("mlp_experiment", "select_roc_thresh(model, *dl_valid.dataset.tensors)", "select_roc_thresh(model, *dl_test.dataset.tensors)")],
      W_EXP + "\nresult = bool(np.isclose(thresh, select_roc_thresh(model, *dlv.dataset.tensors)))"),
    # Part 4
    M(P4, "cnn_pool_first", "the CNN pools after the first convolution of each group", [
        ("cnn", "if (i + 1) % self.pool_every == 0:", "if i % self.pool_every == 0:")], W_CNN),
    M(P4, "cnn_conv_params_ignored", "the CNN ignores conv_params", [
        ("cnn", "nn.Conv2d(in_channels, out_channels, **self.conv_params)", "nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)")], W_CNN),
    M(P4, "cnn_pool_params_ignored", "the CNN ignores pooling_params", [
        ("cnn", "POOLINGS[self.pooling_type](**self.pooling_params)", "POOLINGS[self.pooling_type](kernel_size=2)")],
      "net = CNN((3, 12, 12), 2, channels=[4], pool_every=1, hidden_dims=[], conv_params=dict(kernel_size=3), pooling_params=dict(kernel_size=3)); result = str(net)"),
    M(P4, "cnn_activation_on_scores", "the CNN's head applies the activation to the class scores", [
        ("cnn", 'nonlins = [self._activation() for _ in self.hidden_dims] + ["none"]', "nonlins = [self._activation() for _ in self.hidden_dims] + [self._activation()]")], W_CNN),
    M(P4, "cnn_head_default_activation", "the CNN's head uses the default activation, not activation_params", [
        ("cnn", 'nonlins = [self._activation() for _ in self.hidden_dims] + ["none"]', 'nonlins = [self.activation_type for _ in self.hidden_dims] + ["none"]')], W_CNN),
    M(P4, "cnn_features_from_train_mode_dummy", "counting the CNN's features draws random numbers (a rand dummy)", [
        ("cnn", CNN_NF, "return self.feature_extractor(torch.rand(1, *self.in_size)).numel()")], W_CNN),
    M(P4, "resblock_bn_before_dropout", "the residual block applies batch norm before dropout", [
        ("residual_block", RES_BETWEEN, """if batchnorm:
                    layers.append(nn.BatchNorm2d(c_out))
                if dropout > 0:
                    layers.append(nn.Dropout2d(dropout))""")], W_RES),
    M(P4, "resblock_activation_after_last", "the residual block puts an activation after the last convolution too", [
        ("residual_block", "if i < len(channels) - 1:", "if True:")], W_RES),
    M(P4, "resblock_shortcut_bias", "the residual block's projection has a bias", [
        ("residual_block", "kernel_size=1, bias=False)", "kernel_size=1)")], W_RES),
    M(P4, "resblock_activation_params_ignored", "the residual block ignores activation_params", [
        ("residual_block", "layers.append(ACTIVATIONS[activation_type](**activation_params))", "layers.append(ACTIVATIONS[activation_type]())")], W_RES),
    M(P4, "resblock_plain_dropout", "the residual block uses element-wise Dropout instead of Dropout2d", [
        ("residual_block", "nn.Dropout2d(dropout)", "nn.Dropout(dropout)")], W_RES),
    M(P4, "resblock_no_projection", "the residual block never projects: the sum fails when the channels change", [
        ("residual_block", RES_SHORTCUT, "self.shortcut_path = nn.Sequential(nn.Identity())")], W_RES),
    M(P4, "bottleneck_no_down_projection", "the bottleneck block starts with a KxK convolution, not a 1x1", [
        ("bottleneck_block", "[inner_channels[0], *inner_channels, in_out_channels],\n                         [1, *inner_kernel_sizes, 1]",
         "[*inner_channels, in_out_channels],\n                         [*inner_kernel_sizes, 1]")], W_BNB),
    M(P4, "bottleneck_3x3_projections", "the bottleneck block projects with 3x3 convolutions", [
        ("bottleneck_block", "[1, *inner_kernel_sizes, 1]", "[3, *inner_kernel_sizes, 3]")], W_BNB),
    M(P4, "bottleneck_kwargs_dropped", "the bottleneck block ignores batchnorm, dropout and the activation", [
        ("bottleneck_block", "[1, *inner_kernel_sizes, 1], **kwargs)", "[1, *inner_kernel_sizes, 1])")], W_BNB),
    M(P4, "resnet_bottleneck_ignored", "ResNet never builds bottleneck blocks", [
        ("resnet", "if self.bottleneck and len(group) >= 3 and in_channels == group[-1]:", "if False:")], W_RESNET),
    M(P4, "resnet_pools_leftover", "ResNet pools after a last group shorter than pool_every", [
        ("resnet", "if len(group) == self.pool_every:", "if True:")], W_RESNET),
    M(P4, "resnet_block_kwargs_dropped", "ResNet's plain blocks ignore batch norm, dropout and the activation", [
        ("resnet", "layers.append(ResidualBlock(in_channels, group, [3] * len(group), **block_kwargs))",
         "layers.append(ResidualBlock(in_channels, group, [3] * len(group)))")], W_RESNET),
    M(P4, "resnet_stale_channels", "ResNet feeds each block the first channel count of the previous group", [
        ("resnet", "in_channels = group[-1]", "in_channels = group[0]")], W_RESNET),
    M(P4, "resnet_bottleneck_inner_kernels", "ResNet's bottlenecks use 5x5 inner convolutions", [
        ("resnet", "ResidualBottleneckBlock(group[-1], inner, [3] * len(inner), **block_kwargs)",
         "ResidualBottleneckBlock(group[-1], inner, [5] * len(inner), **block_kwargs)")], W_RESNET),
]

# witnesses of the bug samples in grader/samples.py
SAMPLE_WITNESSES = {
    "relu_uses_output": (P1, W_LRELU),
    "dw_transposed": (P1, "torch.manual_seed(0); l = Linear(3, 3); l(torch.randn(2, 3)); l.backward(torch.randn(2, 3)); result = l.dw"),
    "dropout_not_rescaled": (P1, W_DROP),
    "ce_overflow": (P1, W_CE),
    "momentum_sign": (P2, W_MOM),
    "eps_outside_root": (P2, W_RMS),
    "reg_twice": (P2, W_VSGD),
    "early_stop_off_by_one": (P2T, W_FIT),
    "mlp_no_flatten": (P3, "m = MLP(12, [3], ['none']); result = m(torch.ones(2, 3, 2, 2)).shape"),
    "cnn_pool_leftover": (P4, W_CNN),
    "cnn_rng_disturbed": (P4, W_CNN),
    "threshold_strict": (P3C, "result = BinaryClassifier(nn.Identity()).classify(torch.zeros(1, 2))"),
    "roc_youden": (P3C, """gen = torch.Generator().manual_seed(0); s = torch.randn(100, generator=gen)
y = (torch.rand(100, generator=gen) < torch.sigmoid(2 * s - 1.5)).long()
result = select_roc_thresh(BinaryClassifier(nn.Identity()), torch.stack([torch.zeros(100), s], 1), y)"""),
    "grid_threshold_unset": (P3E, W_EXP),
    "resblock_no_padding": (P4, W_RES),
    "shortcut_always_projects": (P4, "result = str(ResidualBlock(4, [6, 4], [3, 3]))"),
}
MUTANTS += [M(SAMPLE_WITNESSES[name][0], name, s.description, s.edits, SAMPLE_WITNESSES[name][1])
            for name, s in SAMPLES.items() if name in SAMPLE_WITNESSES]

ALTERNATIVES = [
    # Part 1
    A(P1, "lrelu_max_form", "LeakyReLU as max(alpha x, x) and a float slope mask", [
        ("leaky_relu", "return torch.where(x > 0, x, self.alpha * x)", "return torch.max(self.alpha * x, x)"),
        ("leaky_relu", LRELU_BWD, "slope = (x > 0).to(dout.dtype) + self.alpha * (x <= 0).to(dout.dtype)\n        return dout * slope")]),
    A(P1, "lrelu_caches_mask", "LeakyReLU caches the slope of each element instead of the input", [
        ("leaky_relu", LRELU_FWD, 'self.grad_cache["slope"] = torch.where(x > 0, torch.ones_like(x), torch.full_like(x, self.alpha))\n        return x * self.grad_cache["slope"]'),
        ("leaky_relu", 'x = self.grad_cache["x"]\n        ' + LRELU_BWD, 'return dout * self.grad_cache["slope"]')]),
    A(P1, "relu_by_keyword", "ReLU passes alpha=0 positionally", [("relu", "super().__init__(alpha=0.0)", "super().__init__(0)")]),
    A(P1, "sigmoid_written_out", "Sigmoid written as the formula 1 / (1 + exp(-x)) (saturates to 0, never NaN)", [
        ("sigmoid", "out = torch.sigmoid(x)", "out = 1 / (1 + torch.exp(-x))"),
        ("sigmoid", SIG_BWD, "return dout * (out - out ** 2)")]),
    A(P1, "tanh_cached_input", "TanH caches its input and recomputes tanh in backward", [
        ("tanh", 'self.grad_cache["out"] = out', 'self.grad_cache["x"] = x'),
        ("tanh", 'out = self.grad_cache["out"]\n        ' + TANH_BWD, 'return dout * (1 - torch.tanh(self.grad_cache["x"]) ** 2)')]),
    A(P1, "linear_flattens", "Linear flattens its input (as some course solutions do) and uses matmul forms", [
        ("linear", 'self.grad_cache["x"] = x\n        return x @ self.w.T + self.b',
         'x = x.reshape(x.shape[0], -1)\n        self.grad_cache["x"] = x\n        return torch.matmul(x, self.w.t()) + self.b'),
        ("linear", LIN_BWD, "self.dw.add_(torch.matmul(dout.t(), x))\n        self.db.add_(dout.sum(0))\n        return torch.matmul(dout, self.w)")]),
    A(P1, "linear_normal_init", "Linear initialises with torch.normal and torch.zeros_like", [
        ("linear", "self.w = torch.randn(out_features, in_features) * wstd\n        self.b = torch.zeros(out_features)",
         "self.w = torch.normal(0.0, wstd, size=(out_features, in_features))\n        self.b = torch.zeros(out_features)")]),
    A(P1, "ce_logsumexp", "cross-entropy with torch.logsumexp and the softmax form of the gradient (the course's tip)", [
        ("cross_entropy", CE_FWD, """xmax, _ = torch.max(x, dim=1, keepdim=True)
        x = x - xmax
        self.grad_cache["x"], self.grad_cache["y"] = x, y
        return torch.mean(-x[range(x.shape[0]), y] + torch.logsumexp(x, dim=1))"""),
        ("cross_entropy", CE_BWD, """x, y = self.grad_cache["x"], self.grad_cache["y"]
        n = x.shape[0]
        dx = torch.softmax(x, dim=1)
        dx[range(n), y] -= 1
        return dx * dout / n""")]),
    A(P1, "sequential_index_loops", "Sequential with index loops and a kw passed only where accepted by all", [
        ("sequential", "for layer in self.layers:\n            x = layer(x, **kw)\n        return x",
         "out = x\n        for i in range(len(self.layers)):\n            out = self.layers[i].forward(out, **kw)\n        return out"),
        ("sequential", "for layer in reversed(self.layers):\n            dout = layer.backward(dout)\n        return dout",
         "din = dout\n        for i in range(len(self.layers) - 1, -1, -1):\n            din = self.layers[i].backward(din)\n        return din"),
        ("sequential", "return [p for layer in self.layers for p in layer.params()]",
         "params = []\n        for layer in self.layers:\n            params += layer.params()\n        return params"),
        ("sequential", "super().train(training_mode)\n        for layer in self.layers:\n            layer.train(training_mode)",
         "self.training_mode = training_mode\n        for layer in self.layers:\n            layer.train(training_mode)")]),
    A(P1, "dropout_bernoulli_test_time_scaling", "Dropout with torch.bernoulli, scaling by 1 - p at test time", [
        ("dropout", DROP_FWD, """if self.training_mode:
            mask = torch.bernoulli(torch.full_like(x, 1 - self.p))
        else:
            mask = torch.full_like(x, 1 - self.p)
        self.grad_cache["mask"] = mask
        return x * mask"""),
        ("dropout", "return dout if mask is None else dout * mask", "return dout * mask")]),
    A(P1, "dropout_caches_boolean_mask", "inverted Dropout caching a boolean mask and the scale", [
        ("dropout", DROP_FWD, """scale = 1 / (1 - self.p) if self.training_mode else 1.0
        keep = torch.rand(x.shape) > self.p if self.training_mode else torch.ones(x.shape, dtype=torch.bool)
        self.grad_cache.update(keep=keep, scale=scale)
        return x * keep * scale"""),
        ("dropout", 'mask = self.grad_cache["mask"]\n        return dout if mask is None else dout * mask',
         'return dout * self.grad_cache["keep"] * self.grad_cache["scale"]')]),
    A(P1, "mlp_list_building", "MLP built in one pass over the hidden sizes, a new Dropout each time", [
        ("mlp", """dims = [in_features, *hidden_features]
        layers = []
        """ + MLP_LOOP + """
        layers.append(Linear(dims[-1], num_classes, **kw))""", """layers, d_in = [], in_features
        for h in hidden_features:
            layers.append(Linear(d_in, h, **kw))
            layers.append(ACTIVATIONS[activation]())
            layers += [Dropout(p=dropout)] if dropout > 0 else []
            d_in = h
        layers.append(Linear(d_in, num_classes, **kw))""")]),
    # Part 2: optimizers
    A(P2, "vsgd_updates_gradient", "VanillaSGD updates the gradient, then the parameters (the course's skeleton)", [
        ("vanilla_sgd", VSGD, "dp += self.reg * p\n            p -= self.learn_rate * dp")]),
    A(P2, "vsgd_out_of_place_data", "VanillaSGD computes the step out of place and writes it with copy_", [
        ("vanilla_sgd", VSGD, "p.copy_(p - self.learn_rate * (dp + self.reg * p))")]),
    A(P2, "momentum_dict_by_index", "MomentumSGD with lazily created velocities and the gradient updated in place", [
        ("momentum_sgd", "self.velocities = [torch.zeros_like(p) for p, _ in self.params]", "self.v = {}"),
        ("momentum_sgd", MOM, """dp += self.reg * p
            if i not in self.v:
                self.v[i] = torch.zeros_like(p)
            self.v[i] = self.momentum * self.v[i] - self.learn_rate * dp
            p += self.v[i]""")]),
    A(P2, "momentum_torch_form", "MomentumSGD in torch's form: v = mu v + g, p -= lr v (the same for a fixed lr)", [
        ("momentum_sgd", MOM, """g = dp + self.reg * p
            self.velocities[i] = self.momentum * self.velocities[i] + g
            p -= self.learn_rate * self.velocities[i]""")]),
    A(P2, "rmsprop_plain_ops", "RMSProp with plain tensor operations and the gradient updated in place", [
        ("rmsprop", RMS, """dp += self.reg * p
            self.mean_squares[i] = self.decay * self.mean_squares[i] + (1 - self.decay) * dp ** 2
            p -= self.learn_rate / torch.sqrt(self.mean_squares[i] + self.eps) * dp""")]),
    # Part 2: training
    A(P2T, "fit_per_batch_losses", "fit keeps every batch's loss (the course's FitResult) and its own counters", [
        ("trainer_fit", FIT_RECORD, """test_loss = sum(test_res.losses) / len(test_res.losses)
            history.train_loss.extend(train_res.losses)
            history.train_acc.append(train_res.accuracy)
            history.test_loss.extend(test_res.losses)
            history.test_acc.append(test_res.accuracy)""")]),
    A(P2T, "layer_trainer_predictions_first", "LayerTrainer with explicit predictions and torch.sum", [
        ("layer_trainer", TRAIN_BATCH, """scores = self.model.forward(X)
        loss = self.loss_fn.forward(scores, y)
        self.optimizer.zero_grad()
        dout = self.loss_fn.backward()
        self.model.backward(dout)
        self.optimizer.step()"""),
        ("layer_trainer", "num_correct = (scores.argmax(dim=1) == y).sum().item()",
         "y_pred = torch.argmax(scores, dim=1)\n        num_correct = int(torch.sum(y_pred == y))")]),
    # Part 3: MLP
    A(P3, "torch_mlp_softmax_no_dim", "the torch MLP builds activations itself, softmax without dim (the course's listing)", [
        ("torch_mlp", """layers = []
        for d_in, d_out, nonlin in zip([in_dim, *dims], dims, nonlins):
            layers += [nn.Linear(d_in, d_out), make_activation(nonlin)]
        self.seq = nn.Sequential(*layers)""", """layers, d_in = [], in_dim
        for d_out, nonlin in zip(dims, nonlins):
            layers.append(nn.Linear(d_in, d_out))
            if isinstance(nonlin, nn.Module):
                layers.append(nonlin)
            elif nonlin == "softmax":
                layers.append(nn.Softmax())
            else:
                layers.append(ACTIVATIONS[nonlin](**ACTIVATION_DEFAULT_KWARGS[nonlin]))
            d_in = d_out
        self.seq = nn.Sequential(*layers)""")]),
    # Part 3: classifier
    A(P3C, "classifier_forward_call", "classify via self.model.forward (the course's submissions), softmax without dim", [
        ("classifier", "return self.softmax(z)", "return torch.softmax(z, dim=-1)"),
        ("classifier", "return self._classify(self.predict_proba(x))", "z = self.model.forward(x)\n        return self._classify(self.predict_proba_scores(z))"),
        ("classifier", "return self._classify(self.predict_proba_scores(z))", "y_proba = self.predict_proba_scores(z)\n        return self._classify(y_proba)")]),
    A(P3C, "binary_course_reading", "BinaryClassifier returns label 1 where P(positive class) >= threshold (the course's docstring)", [
        ("binary_classifier", "return torch.where(is_positive, self.positive_class, 1 - self.positive_class).to(torch.int)",
         "return is_positive.to(torch.int)")]),
    A(P3C, "grid_torch_meshgrid", "decision_grid with torch.meshgrid ('ij', as the course's skeleton suggests), arange without the end", [
        ("decision_boundary", GRID, """x1_range = torch.arange(x[:, 0].min() - margin, x[:, 0].max() + margin, dx)
    x2_range = torch.arange(x[:, 1].min() - margin, x[:, 1].max() + margin, dx)
    x1_grid, x2_grid = torch.meshgrid(x1_range, x2_range, indexing="ij")
    points = torch.stack([x1_grid.reshape(-1), x2_grid.reshape(-1)], dim=1)
    y_hat = predict(classifier, points).reshape(x1_grid.shape)
    return x1_grid, x2_grid, y_hat""")]),
    A(P3C, "roc_with_predict_proba", "select_roc_thresh from predict_proba in eval mode and a Euclidean norm", [
        ("roc_thresh", ROC, """classifier.eval()
    with torch.no_grad():
        proba = classifier.predict_proba(torch.as_tensor(x))[:, classifier.positive_class].numpy()
    fpr, tpr, thresholds = roc_curve(y, proba, pos_label=classifier.positive_class)
    best = np.linalg.norm(np.stack([fpr, 1 - tpr], axis=1), axis=1).argmin()""")]),
    # Part 3: experiments
    A(P3E, "experiment_sgd_relu", "mlp_experiment with ReLU, SGD with momentum and accuracy measured by hand", [
        ("mlp_experiment", """model = BinaryClassifier(MLP(2, [width] * depth + [2], ["tanh"] * depth + ["none"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-5)""", """model = BinaryClassifier(MLP(2, [*[width] * depth, 2], [*["relu"] * depth, "none"]), threshold=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)"""),
        ("mlp_experiment", """model.threshold = select_roc_thresh(model, *dl_valid.dataset.tensors)
    valid_acc = trainer.test_epoch(dl_valid, verbose=False).accuracy
    test_acc = trainer.test_epoch(dl_test, verbose=False).accuracy""", """thresh = select_roc_thresh(model, *dl_valid.dataset.tensors)
    model.threshold = thresh
    accs = []
    for dl in (dl_valid, dl_test):
        x, y = dl.dataset.tensors
        with torch.no_grad():
            accs.append(100.0 * (model.classify(x).long() == y).float().mean().item())
    valid_acc, test_acc = accs""")]),
    # Part 4
    A(P4, "cnn_nested_blocks", "the CNN groups each pooling block in a nested Sequential and counts features from a zeros dummy", [
        ("cnn", CNN_FE, """blocks, block, in_channels = [], [], self.in_size[0]
        for i, out_channels in enumerate(self.channels):
            block += [nn.Conv2d(in_channels, out_channels, **self.conv_params), self._activation()]
            in_channels = out_channels
            if (i + 1) % self.pool_every == 0:
                blocks.append(nn.Sequential(*block, POOLINGS[self.pooling_type](**self.pooling_params)))
                block = []
        if block:
            blocks.append(nn.Sequential(*block))
        return nn.Sequential(*blocks)"""),
        ("cnn", CNN_NF, """rng_state = torch.get_rng_state()  # the course's skeleton keeps the random state like this
        try:
            out = self.feature_extractor(torch.zeros(1, *self.in_size))
            return int(torch.prod(torch.tensor(out.shape)))
        finally:
            torch.set_rng_state(rng_state)""")]),
    A(P4, "resblock_built_by_index", "the residual block built with index loops, a Sequential(Identity) per the listing", [
        ("residual_block", """layers, c_in = [], in_channels
        for i, (c_out, k) in enumerate(zip(channels, kernel_sizes)):
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=k, padding=k // 2))
            if i < len(channels) - 1:
                """ + RES_BETWEEN + """
                layers.append(ACTIVATIONS[activation_type](**activation_params))
            c_in = c_out""", """all_channels = [in_channels, *channels]
        layers = []
        for i in range(len(channels)):
            layers.append(nn.Conv2d(all_channels[i], all_channels[i + 1], kernel_sizes[i], padding=int((kernel_sizes[i] - 1) / 2), bias=True))
            if i == len(channels) - 1:
                break
            if dropout > 0:
                layers.append(nn.Dropout2d(p=dropout))
            if batchnorm:
                layers.append(nn.BatchNorm2d(all_channels[i + 1]))
            layers.append(ACTIVATIONS[activation_type](**activation_params))""")]),
    A(P4, "bottleneck_keywords", "the bottleneck block passes its arguments by keyword", [
        ("bottleneck_block", """super().__init__(in_out_channels, [inner_channels[0], *inner_channels, in_out_channels],
                         [1, *inner_kernel_sizes, 1], **kwargs)""", """channels = [inner_channels[0]] + list(inner_channels) + [in_out_channels]
        kernel_sizes = [1] + list(inner_kernel_sizes) + [1]
        super().__init__(in_channels=in_out_channels, channels=channels, kernel_sizes=kernel_sizes, **kwargs)""")]),
    A(P4, "resnet_while_loop", "ResNet with a while loop over the channels", [
        ("resnet", RESNET, """layers, in_channels, i, P = [], self.in_size[0], 0, self.pool_every
        while i < len(self.channels):
            group = self.channels[i:i + P]
            use_bottleneck = self.bottleneck and in_channels == group[-1] and len(group) > 2
            if use_bottleneck:
                layers.append(ResidualBottleneckBlock(in_out_channels=group[-1], inner_channels=group[1:-1],
                                                      inner_kernel_sizes=[3] * (len(group) - 2), **block_kwargs))
            else:
                layers.append(ResidualBlock(in_channels=in_channels, channels=group, kernel_sizes=[3] * len(group), **block_kwargs))
            if len(group) == P:
                layers.append(POOLINGS[self.pooling_type](**self.pooling_params))
            in_channels, i = group[-1], i + P
        return nn.Sequential(*layers)""")]),
]
ALTERNATIVES.append(A(P1, "alt_conventions_part1", SAMPLES["alt_conventions"].description,
                      [e for e in SAMPLES["alt_conventions"].edits if e[0] != "classifier"]))
ALTERNATIVES.append(A(P3C, "alt_conventions_part3", SAMPLES["alt_conventions"].description,
                      [e for e in SAMPLES["alt_conventions"].edits if e[0] == "classifier"]))
