"""The grader's torchvision copy of CIFAR-10 (grader/torchvision_data.py), outside any sandbox: torchvision reads it
as the data it was written from, the kernels' start-up file makes torchvision take it without downloading, and it is
written once per source. tests/test_sandbox.py loads it in a sandboxed kernel."""
import numpy as np
import pytest
import torch
import torchvision
from torchvision.transforms import ToTensor

from dlcourse import datasets
from dlcourse.datasets import CIFAR10_CLASSES, cifar10_sample, export_sample, find_cifar10
from grader import torchvision_data
from grader.torchvision_data import CHECKSUMS, STARTUP, cached_cifar10, write_cifar10

CIFAR10 = torchvision.datasets.CIFAR10


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(datasets.ENV_VAR, raising=False)


@pytest.fixture
def kernel_startup(tmp_path, monkeypatch):
    "Run the kernels' start-up file with $HOME at `tmp_path`; torchvision's CIFAR10 as it was afterwards."
    for name in ("train_list", "test_list", "meta"):
        monkeypatch.setattr(CIFAR10, name, getattr(CIFAR10, name))
    monkeypatch.setenv("HOME", str(tmp_path))
    return lambda: exec(STARTUP, {})


@pytest.fixture
def no_network(monkeypatch):
    def download(*args, **kwargs):
        raise AssertionError("torchvision tried to download CIFAR-10")
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", download)


def test_torchvision_reads_the_copy_as_the_data_it_was_written_from(tmp_path, kernel_startup, no_network):
    root = tmp_path / ".pytorch-datasets"
    write_cifar10(cifar10_sample(True), cifar10_sample(False), root, sample=True)
    with pytest.raises(RuntimeError, match="corrupted"):  # the original archive's MD5s: torchvision refuses it
        CIFAR10(root, train=False)
    kernel_startup()
    for train, n in ((True, 3000), (False, 1000)):
        ds = CIFAR10(root, train=train, download=True, transform=ToTensor())
        source = cifar10_sample(train, transform=ToTensor())
        assert len(ds) == n and tuple(ds.classes) == CIFAR10_CLASSES
        assert ds.targets == source.labels.tolist()
        assert np.array_equal(ds.data, source.images.numpy())
        for i in (0, 1, n // 2, n - 1):
            assert torch.equal(ds[i][0], source[i][0]) and ds[i][1] == source[i][1]


def test_the_start_up_file_does_nothing_without_a_copy(kernel_startup):
    before = (CIFAR10.train_list, CIFAR10.test_list, CIFAR10.meta)
    kernel_startup()
    assert (CIFAR10.train_list, CIFAR10.test_list, CIFAR10.meta) == before


def test_a_changed_file_is_still_refused(tmp_path, kernel_startup):
    folder = write_cifar10(cifar10_sample(True), cifar10_sample(False), tmp_path / ".pytorch-datasets")
    kernel_startup()
    with open(folder / "test_batch", "ab") as f:
        f.write(b"x")
    with pytest.raises(RuntimeError, match="corrupted"):
        CIFAR10(tmp_path / ".pytorch-datasets", train=False)


def test_a_copy_of_the_sample_is_not_taken_for_cifar10(tmp_path, monkeypatch, capsys):
    write_cifar10(cifar10_sample(True), cifar10_sample(False), tmp_path, sample=True)
    monkeypatch.setattr(datasets, "TORCHVISION_DIR", tmp_path)
    ds = find_cifar10(train=False)
    assert isinstance(ds, datasets.ImageTensorDataset) and len(ds) == 1000
    assert "embedded sample" in capsys.readouterr().out


def test_the_copy_is_written_once_per_source(tmp_path, monkeypatch, kernel_startup):
    cache = tmp_path / "cache"
    sample_copy = cached_cifar10(cache)
    assert (sample_copy / datasets.SAMPLE_COPY).exists()
    with monkeypatch.context() as m:
        m.setattr(torchvision_data, "write_cifar10", lambda *a, **k: pytest.fail("written again"))
        assert cached_cifar10(cache) == sample_copy

    # another source ($DLCOURSE_CIFAR10: an image-folder export of 2 train and 1 test images per class)
    export_sample(datasets.SAMPLE, tmp_path / "small.tar.gz", 2, 1)
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "small.tar.gz"))
    small = cached_cifar10(cache)
    assert small != sample_copy and not (small / datasets.SAMPLE_COPY).exists()
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith("torchvision-")) == \
        sorted([small.parent.name, sample_copy.parent.name]), "a temporary folder was left behind"
    (tmp_path / ".pytorch-datasets").symlink_to(small.parent)
    kernel_startup()
    ds = CIFAR10(tmp_path / ".pytorch-datasets", train=True)
    assert ds.targets == find_cifar10(train=True, verbose=False).labels.tolist() and len(ds) == 20


def test_a_missing_source_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="unset it to grade with the embedded sample"):
        cached_cifar10(tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("*"))


def test_checksums_are_those_of_the_files(tmp_path):
    import hashlib
    import json
    folder = write_cifar10(cifar10_sample(True), cifar10_sample(False), tmp_path)
    md5 = json.loads((folder / CHECKSUMS).read_text())
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"]
    assert sorted(md5) == sorted(names)
    assert all(md5[n] == hashlib.md5((folder / n).read_bytes()).hexdigest() for n in names)
