"""The reference trainers: bookkeeping, early stopping, checkpoints that resume, devices."""
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import DEVICES
from dlcourse.layers import MLP, CrossEntropyLoss
from dlcourse.optimizers import MomentumSGD
from dlcourse.training import BatchResult, ClassifierTrainer, FitResult, LayerTrainer, Trainer


def blobs(n=200, d=6, classes=3, seed=0):
    "Linearly separable-ish Gaussian blobs."
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    centers = 3 * torch.randn(classes, d, generator=g)
    return TensorDataset(centers[y] + torch.randn(n, d, generator=g), y)


class Scripted(Trainer):
    "Test epochs report scripted (loss, accuracy %); four samples per batch."
    def __init__(self, script):
        super().__init__(nn.Linear(2, 2))
        self.script, self.epoch = script, 0

    def train_batch(self, batch):
        return BatchResult(1.0, 1)

    def test_batch(self, batch):
        loss, acc = self.script[self.epoch]
        return BatchResult(loss, round(acc / 100 * len(batch[1])))

    def test_epoch(self, dl, **kw):
        res = super().test_epoch(dl, **kw)
        self.epoch += 1
        return res


TOY = DataLoader(TensorDataset(torch.zeros(8, 2), torch.zeros(8, dtype=torch.long)), batch_size=4)


@pytest.mark.parametrize("patience,expected", [(1, 3), (2, 4), (3, 5), (None, 6)])
def test_early_stopping_counts_epochs_without_a_lower_test_loss(patience, expected):
    script = [(2.0, 10), (1.0, 20), (1.0, 30), (1.5, 40), (1.2, 50), (1.1, 60)]
    res = Scripted(script).fit(TOY, TOY, 6, early_stopping=patience, print_every=0)
    assert res.num_epochs == expected == len(res.test_loss)


def test_accuracy_counts_a_short_last_batch():
    class Half(Scripted):
        def test_batch(self, batch):
            return BatchResult(0.0, len(batch[1]) // 2)
    dl = DataLoader(TensorDataset(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long)), batch_size=4)
    res = Half([]).test_epoch(dl, verbose=False)  # 2 + 2 + 1 of 10 correct
    assert res.accuracy == 50.0 and len(res.losses) == 3


def test_max_batches():
    calls = []
    class Count(Scripted):
        def train_batch(self, batch):
            calls.append(1)
            return super().train_batch(batch)
    Count([]).train_epoch(TOY, max_batches=1, verbose=False)
    assert len(calls) == 1


def test_layer_trainer_learns_blobs():
    torch.manual_seed(0)
    model = MLP(6, 3, [32])
    trainer = LayerTrainer(model, CrossEntropyLoss(), MomentumSGD(model.params(), learn_rate=0.05, reg=0.0))
    dl = DataLoader(blobs(), batch_size=20)
    res = trainer.fit(dl, dl, 5, print_every=0)
    assert isinstance(res, FitResult) and res.test_acc[-1] > 90 and res.train_loss[-1] < res.train_loss[0]


def layer_run(tmp_path, epochs, seed=0):
    torch.manual_seed(seed)
    model = MLP(6, 3, [16])
    trainer = LayerTrainer(model, CrossEntropyLoss(), MomentumSGD(model.params(), learn_rate=0.01, reg=0.0))
    dl = DataLoader(blobs(), batch_size=20)
    return trainer, trainer.fit(dl, dl, epochs, checkpoints=str(tmp_path / "ckpt"), print_every=0)


def test_layer_checkpoint_resumes_where_it_stopped(tmp_path):
    # the test accuracy keeps improving on this easy problem, so every epoch is checkpointed
    straight, res_straight = layer_run(tmp_path / "a", 6)
    layer_run(tmp_path / "b", 3)
    resumed, res_resumed = layer_run(tmp_path / "b", 6, seed=123)  # a different init, overwritten by the checkpoint
    assert res_resumed.num_epochs == 6
    assert res_resumed.test_acc[:3] == res_straight.test_acc[:3]
    for (p, _), (q, _) in zip(resumed.model.params(), straight.model.params()):
        assert torch.allclose(p, q, atol=1e-6)


def test_checkpoint_is_saved_only_when_test_accuracy_improves(tmp_path):
    script = [(1.0, 50), (0.9, 25), (0.8, 75), (0.7, 75)]
    Scripted(script).fit(TOY, TOY, 4, checkpoints=str(tmp_path / "c"), print_every=0)
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["best_acc"] == 75.0 and state["history"]["num_epochs"] == 3


@pytest.mark.parametrize("device", DEVICES)
def test_classifier_trainer_on_device(device, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = ClassifierTrainer(model, nn.CrossEntropyLoss(), opt, device=torch.device(device))
    assert next(model.parameters()).device.type == device
    dl = DataLoader(blobs(), batch_size=20)
    res = trainer.fit(dl, dl, 4, checkpoints=str(tmp_path / "clf"), print_every=0)
    assert res.test_acc[-1] > 90
    state = torch.load(tmp_path / "clf.pt", weights_only=True)
    assert set(state) >= {"model", "optimizer", "history", "best_acc"} and state["optimizer"]["state"]


def test_classify_scores_decides_predictions():
    class Always0(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 3)
        def forward(self, x):
            return self.lin(x)
        def classify_scores(self, scores):
            return torch.zeros(len(scores), dtype=torch.long)
    ds = blobs()
    trainer = ClassifierTrainer(Always0(), nn.CrossEntropyLoss(), torch.optim.SGD(Always0().parameters(), lr=0.1))
    res = trainer.test_epoch(DataLoader(ds, batch_size=50), verbose=False)
    assert res.accuracy == pytest.approx(100 * (ds.tensors[1] == 0).float().mean().item())


def test_progress_bars_go_to_stdout_not_stderr(capfd):
    Scripted([(1.0, 50)]).fit(TOY, TOY, 1, print_every=1)
    out, err = capfd.readouterr()
    assert "train_batch" in out and "EPOCH 1/1" in out and err == ""
