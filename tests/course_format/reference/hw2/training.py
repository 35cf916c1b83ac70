import os
import abc
import sys
import torch
import torch.nn as nn
import tqdm.auto
from typing import Any, Callable, Optional
from torch.optim import Optimizer
from torch.utils.data import DataLoader

from cs236781.train_results import BatchResult, EpochResult, FitResult

from .classifier import Classifier


class Trainer(abc.ABC):
    """
    Trains and evaluates a model at three levels: many epochs (fit), one
    epoch (train_epoch/test_epoch) and one batch (train_batch/test_batch).
    """

    def __init__(self, model: nn.Module, device: Optional[torch.device] = None):
        """
        :param model: The model to train.
        :param device: Device to train on (CPU or GPU).
        """
        self.model = model
        self.device = device

        if self.device:
            model.to(self.device)

    def fit(
        self,
        dl_train: DataLoader,
        dl_test: DataLoader,
        num_epochs: int,
        checkpoints: str = None,
        early_stopping: int = None,
        print_every: int = 1,
        **kw,
    ) -> FitResult:
        """
        Trains for several epochs, evaluating on the test set after each one.
        :param dl_train: Training set loader.
        :param dl_test: Test (validation) set loader.
        :param num_epochs: Maximal number of epochs.
        :param checkpoints: Filename (without extension) to save the model to
            whenever the test accuracy improves.
        :param early_stopping: Stop after this many epochs without an
            improvement of the test accuracy.
        :param print_every: Print progress every this many epochs.
        :return: A FitResult with per-batch losses and per-epoch accuracies.
        """
        actual_num_epochs = 0
        epochs_without_improvement = 0

        train_loss, train_acc, test_loss, test_acc = [], [], [], []
        best_acc = None

        for epoch in range(num_epochs):
            verbose = False  # pass this to train/test_epoch.
            if print_every > 0 and (
                epoch % print_every == 0 or epoch == num_epochs - 1
            ):
                verbose = True
            self._print(f"--- EPOCH {epoch+1}/{num_epochs} ---", verbose)

            # ====== YOUR CODE: ======
            train_result = self.train_epoch(dl_train, verbose=verbose, **kw)
            test_result = self.test_epoch(dl_test, verbose=verbose, **kw)

            train_loss.extend(train_result.losses)
            train_acc.append(train_result.accuracy)
            test_loss.extend(test_result.losses)
            test_acc.append(test_result.accuracy)
            actual_num_epochs += 1
            # ========================

            if best_acc is None or test_result.accuracy > best_acc:
                # ====== YOUR CODE: ======
                best_acc = test_result.accuracy
                epochs_without_improvement = 0
                if checkpoints is not None:
                    self.save_checkpoint(checkpoints)
                # ========================
            else:
                # ====== YOUR CODE: ======
                epochs_without_improvement += 1
                if early_stopping and epochs_without_improvement >= early_stopping:
                    break
                # ========================

        return FitResult(actual_num_epochs, train_loss, train_acc, test_loss, test_acc)

    def save_checkpoint(self, checkpoint_filename: str):
        """
        Saves the whole model to a file.
        :param checkpoint_filename: File name or relative path.
        """
        torch.save(self.model, checkpoint_filename)
        print(f"\n*** Saved checkpoint {checkpoint_filename}")

    def train_epoch(self, dl_train: DataLoader, **kw) -> EpochResult:
        """
        One pass over the training set, in training mode.
        :param kw: Passed on to _foreach_batch.
        """
        self.model.train(True)  # set train mode
        return self._foreach_batch(dl_train, self.train_batch, **kw)

    def test_epoch(self, dl_test: DataLoader, **kw) -> EpochResult:
        """
        One pass over the test set, in evaluation mode.
        :param kw: Passed on to _foreach_batch.
        """
        self.model.train(False)  # set evaluation (test) mode
        return self._foreach_batch(dl_test, self.test_batch, **kw)

    @abc.abstractmethod
    def train_batch(self, batch) -> BatchResult:
        """
        Forward, loss, backward and an optimizer step on one batch.
        :return: A BatchResult with the loss and the number of correct
            classifications.
        """
        raise NotImplementedError()

    @abc.abstractmethod
    def test_batch(self, batch) -> BatchResult:
        """
        Forward and loss on one batch, no parameter update.
        :return: A BatchResult with the loss and the number of correct
            classifications.
        """
        raise NotImplementedError()

    @staticmethod
    def _print(message, verbose=True):
        """Prints only when verbose."""
        if verbose:
            print(message)

    @staticmethod
    def _foreach_batch(
        dl: DataLoader,
        forward_fn: Callable[[Any], BatchResult],
        verbose=True,
        max_batches=None,
    ) -> EpochResult:
        """
        Runs forward_fn on every batch of dl (at most max_batches of them)
        and collects the losses and the accuracy.
        """
        losses = []
        num_correct = 0
        num_samples = len(dl.sampler)
        num_batches = len(dl.batch_sampler)

        if max_batches is not None:
            if max_batches < num_batches:
                num_batches = max_batches
                num_samples = num_batches * dl.batch_size

        if verbose:
            pbar_fn = tqdm.auto.tqdm
            pbar_file = sys.stdout
        else:
            pbar_fn = tqdm.tqdm
            pbar_file = open(os.devnull, "w")

        pbar_name = forward_fn.__name__
        with pbar_fn(desc=pbar_name, total=num_batches, file=pbar_file) as pbar:
            dl_iter = iter(dl)
            for batch_idx in range(num_batches):
                data = next(dl_iter)
                batch_res = forward_fn(data)

                pbar.set_description(f"{pbar_name} ({batch_res.loss:.3f})")
                pbar.update()

                losses.append(batch_res.loss)
                num_correct += batch_res.num_correct

            avg_loss = sum(losses) / num_batches
            accuracy = 100.0 * num_correct / num_samples
            pbar.set_description(
                f"{pbar_name} "
                f"(Avg. Loss {avg_loss:.3f}, "
                f"Accuracy {accuracy:.1f})"
            )

        if not verbose:
            pbar_file.close()

        return EpochResult(losses=losses, accuracy=accuracy)


class ClassifierTrainer(Trainer):
    """
    Trainer for a Classifier (a torch model returning class scores).
    """

    def __init__(
        self,
        model: Classifier,
        loss_fn: nn.Module,
        optimizer: Optimizer,
        device: Optional[torch.device] = None,
    ):
        """
        :param model: The classifier to train.
        :param loss_fn: Loss on the raw scores and the labels.
        :param optimizer: Optimizer of the model's parameters.
        :param device: Device to train on (CPU or GPU).
        """
        super().__init__(model, device)
        self.optimizer = optimizer
        self.loss_fn = loss_fn

    def train_batch(self, batch) -> BatchResult:
        X, y = batch
        if self.device:
            X = X.to(self.device)
            y = y.to(self.device)

        self.model: Classifier
        batch_loss: float
        num_correct: int

        # ====== YOUR CODE: ======
        self.optimizer.zero_grad()
        scores = self.model(X)
        loss = self.loss_fn(scores, y)
        loss.backward()
        self.optimizer.step()

        batch_loss = loss.item()
        y_pred = self.model.classify_scores(scores.detach())
        num_correct = int(torch.sum(y_pred == y))
        # ========================

        return BatchResult(batch_loss, num_correct)

    def test_batch(self, batch) -> BatchResult:
        X, y = batch
        if self.device:
            X = X.to(self.device)
            y = y.to(self.device)

        self.model: Classifier
        batch_loss: float
        num_correct: int

        with torch.no_grad():
            # ====== YOUR CODE: ======
            scores = self.model(X)
            batch_loss = self.loss_fn(scores, y).item()
            y_pred = self.model.classify_scores(scores)
            num_correct = int(torch.sum(y_pred == y))
            # ========================

        return BatchResult(batch_loss, num_correct)


class LayerTrainer(Trainer):
    """
    Trainer for a model made of our own Layers (hw2.layers).
    """

    def __init__(self, model, loss_fn, optimizer):
        # ====== YOUR CODE: ======
        super().__init__(model)
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        # ========================

    def train_batch(self, batch) -> BatchResult:
        X, y = batch

        # ====== YOUR CODE: ======
        # the Layer MLP expects flat (N, D) inputs
        X = X.reshape(X.shape[0], -1)

        self.optimizer.zero_grad()
        scores = self.model(X)
        loss = self.loss_fn(scores, y)
        dout = self.loss_fn.backward()
        self.model.backward(dout)
        self.optimizer.step()

        num_correct = int(torch.sum(torch.argmax(scores, dim=1) == y))
        # ========================

        return BatchResult(loss.item(), num_correct)

    def test_batch(self, batch) -> BatchResult:
        X, y = batch

        # ====== YOUR CODE: ======
        X = X.reshape(X.shape[0], -1)
        scores = self.model(X)
        loss = self.loss_fn(scores, y)
        num_correct = int(torch.sum(torch.argmax(scores, dim=1) == y))
        # ========================

        return BatchResult(loss.item(), num_correct)
