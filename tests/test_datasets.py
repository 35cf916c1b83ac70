"""CIFAR-10 loading: the embedded sample, image-folder exports (folder and tar.gz), the cache,
torchvision copies, and the errors a user sees."""
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlcourse import datasets
from dlcourse.datasets import CIFAR10_CLASSES, cifar10, cifar10_sample, find_cifar10, load_image_folder

FULL_COPY = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(datasets.ENV_VAR, raising=False)


def make_export(folder, n=3, classes=("a", "b")):
    "A tiny image-folder export of solid-colour PNGs; returns the expected images."
    expected = {}
    for split in ("train", "test"):
        for label, cls in enumerate(classes):
            (folder / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = np.full((4, 5, 3), 10 * label + i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / split / cls / f"{i}.png")
                expected[(split, label, i)] = pixels
    return expected


def test_embedded_sample_is_real_cifar10_in_label_order():
    train, test = cifar10_sample(True), cifar10_sample(False)
    assert (len(train), len(test)) == (3000, 1000)
    assert train.classes == CIFAR10_CLASSES
    assert torch.bincount(train.labels).tolist() == [300] * 10
    image, label = train[0]
    assert image.size == (32, 32) and image.mode == "RGB" and 0 <= label < 10


def test_images_come_in_a_fixed_mixed_order():
    a, b = cifar10_sample(True), cifar10_sample(True)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)
    assert len(set(a.labels[:40].tolist())) == 10
    in_class_order = load_image_folder(datasets.SAMPLE, "train", shuffle_seed=None)
    assert in_class_order.labels.tolist() == sorted(a.labels.tolist())


def test_folder_and_tarball_give_the_same_images(tmp_path):
    expected = make_export(tmp_path / "export")
    with tarfile.open(tmp_path / "export.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "export", arcname="export")
    for src in (tmp_path / "export", tmp_path / "export.tar.gz"):
        ds = load_image_folder(src, "test", shuffle_seed=None)
        assert ds.classes == ("a", "b") and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
        for k in range(6):
            assert np.array_equal(ds.images[k].numpy(), expected[("test", k // 3, k % 3)])


def test_second_load_reads_the_cache(tmp_path, monkeypatch):
    make_export(tmp_path / "export")
    first = load_image_folder(tmp_path / "export", "train")
    monkeypatch.setattr(datasets, "read_image_folder", lambda *a: pytest.fail("decoded again"))
    second = load_image_folder(tmp_path / "export", "train")
    assert torch.equal(first.images, second.images)


def test_transform_receives_pil_images(tmp_path):
    import torchvision.transforms as T
    make_export(tmp_path / "export")
    x, y = load_image_folder(tmp_path / "export", "train", transform=T.ToTensor(), shuffle_seed=None)[4]
    assert x.shape == (3, 4, 5) and y == 1 and torch.allclose(x, torch.full_like(x, 11 / 255))


def test_a_corrupt_image_is_named(tmp_path):
    make_export(tmp_path / "export")
    (tmp_path / "export" / "train" / "b" / "9.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="9.jpg"):
        load_image_folder(tmp_path / "export", "train", cache=False)


def test_missing_data_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True.*DLCOURSE_CIFAR10"):
        cifar10(root=tmp_path / "nowhere")


def test_wrong_number_of_classes_is_refused(tmp_path):
    make_export(tmp_path / "export")
    with pytest.raises(ValueError, match="2 class folders"):
        cifar10(root=tmp_path / "export")


def test_torchvision_copy_goes_to_torchvision(tmp_path, monkeypatch):
    import torchvision
    (tmp_path / "cifar-10-batches-py").mkdir()
    calls = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", lambda root, **kw: calls.append((Path(root), kw)) or "tv")
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path))
    assert cifar10(train=False) == "tv"
    assert calls == [(tmp_path, dict(train=False, transform=None, download=False))]


def test_find_falls_back_to_the_sample(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasets, "TORCHVISION_DIR", tmp_path / "none")
    assert len(find_cifar10(train=False)) == 1000
    assert "embedded sample" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(not FULL_COPY.exists(), reason=f"the full CIFAR-10 JPEG copy is not at {FULL_COPY}")
def test_full_jpeg_copy_loads_in_label_order():
    ds = cifar10(root=FULL_COPY, train=False)
    assert len(ds) == 10000 and ds.classes == CIFAR10_CLASSES
    assert torch.bincount(ds.labels).tolist() == [1000] * 10


def test_a_configured_location_that_is_missing_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "typo.tar.gz"))
    with pytest.raises(FileNotFoundError, match="typo"):
        find_cifar10(train=False)


def test_rotated_moons_are_the_course_points():
    # the course's recipe: global numpy seed, make_moons three times, train_test_split without shuffling;
    # exact: both sides run the same numpy and scikit-learn code on this machine
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split
    from dlcourse.datasets import rotate_2d, rotated_moons

    np.random.seed(42)
    X1, y1 = make_moons(n_samples=4000, noise=0.2)
    X2, y2 = make_moons(n_samples=4000, noise=0.25)
    X3, y3 = make_moons(n_samples=2000, noise=0.3)
    X = np.vstack([rotate_2d(X1, 10), rotate_2d(X2, 50), rotate_2d(X3, 40)])
    y = np.hstack([y1, y2, y3])
    X_train, X_valid, y_train, y_valid = train_test_split(X[:8000], y[:8000], test_size=1 / 3, shuffle=False)
    state = np.random.get_state()
    train, valid, test = rotated_moons()
    assert np.array_equal(np.random.get_state()[1], state[1])  # the global generator is left alone
    for ds, (Xe, ye) in zip((train, valid, test), [(X_train, y_train), (X_valid, y_valid), (X[8000:], y[8000:])]):
        assert np.array_equal(ds.tensors[0].numpy(), Xe.astype(np.float32)) and np.array_equal(ds.tensors[1].numpy(), ye)
