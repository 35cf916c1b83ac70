"""CIFAR-10 where torchvision's own examples look for it, for code that loads it with torchvision itself.

Students load CIFAR-10 as torchvision's tutorials do, `CIFAR10(root="~/.pytorch-datasets", download=True)`, and a
sandboxed kernel has neither that folder nor a network. So the sandbox runner writes the CIFAR-10 its kernels'
`find_cifar10` finds ($DLCOURSE_CIFAR10, else the embedded sample) in torchvision's format (`write_cifar10`), once
per source (`cached_cifar10`), and every sandboxed kernel finds it, read-only, at
~/.pytorch-datasets/cifar-10-batches-py: the sandbox binds it at `IN_SANDBOX`, and each kernel's home (made
afresh for each notebook, grader/sandbox.py) links to it (`SandboxConfig.home_links`).

torchvision accepts its files only with the MD5s of the original archive's, which a re-encoded copy cannot have; it
would then download. So the copy lists its own files' MD5s (`CHECKSUMS`), and the kernels' start-up file (`STARTUP`)
has torchvision expect those. A copy of the sample is marked `SAMPLE_COPY`, so that `find_cifar10` still says it
uses the sample.

Kernels of the "local" and "parallel" runners run as the instructor, with the instructor's home and network:
torchvision finds or downloads ~/.pytorch-datasets there as usual.
"""
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dlcourse.datasets import ENV_VAR, SAMPLE, SAMPLE_COPY, _fingerprint, cache_dir, cifar10_sample, find_cifar10

FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10.base_folder
CHECKSUMS = "dlcourse-md5.json"  # {file name: MD5} of the files written
VERSION = 1  # of the format written: part of the cache's key
IN_SANDBOX = f"/opt/dlcourse-grading/{FOLDER}"  # where the sandbox binds the copy, read-only
HOME_LINK = f".pytorch-datasets/{FOLDER}"  # in each sandboxed kernel's home: a link to IN_SANDBOX


def _arrays(ds):
    "A CIFAR-10 split's images (uint8 (N, 32, 32, 3)), labels and class names: ImageTensorDataset or torchvision's."
    if hasattr(ds, "images"):
        return np.asarray(ds.images), [int(y) for y in ds.labels], list(ds.classes)
    return np.asarray(ds.data), [int(y) for y in ds.targets], list(ds.classes)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def write_cifar10(train, test, dest: Path, sample=False) -> Path:
    """Write the data sets `train` and `test` as torchvision's CIFAR-10 files in `dest`/cifar-10-batches-py, images
    in their order, and `CHECKSUMS` last; `sample`: mark the copy as the embedded sample's. Returns that folder.

    The pickles hold str keys, as torchvision reads the original (Python 2) files: "data" (uint8 (N, 3072), each
    row an image's channels, rows, columns), "labels", "batch_label", "filenames"; batches.meta: "label_names"."""
    folder = Path(dest) / FOLDER
    folder.mkdir(parents=True)
    (train_x, train_y, classes), (test_x, test_y, test_classes) = _arrays(train), _arrays(test)
    if classes != test_classes or train_x.shape[1:] != (32, 32, 3) or test_x.shape[1:] != (32, 32, 3):
        raise ValueError(f"not CIFAR-10: classes {classes} and {test_classes}, images {train_x.shape[1:]} "
                         f"and {test_x.shape[1:]}")
    batches = [(f"data_batch_{k + 1}", f"training batch {k + 1} of 5", rows)
               for k, rows in enumerate(np.array_split(np.arange(len(train_y)), 5))]
    batches.append(("test_batch", "testing batch 1 of 1", np.arange(len(test_y))))
    for name, label, rows in batches:
        x, y = (test_x, test_y) if name == "test_batch" else (train_x, train_y)
        entry = {"batch_label": label, "labels": [y[i] for i in rows], "filenames": [f"{i:05d}.png" for i in rows],
                 "data": np.ascontiguousarray(x[rows].transpose(0, 3, 1, 2).reshape(len(rows), -1))}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=4))
    meta = {"label_names": classes, "num_cases_per_batch": len(batches[0][2]), "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    if sample:
        (folder / SAMPLE_COPY).touch()
    names = [name for name, _, _ in batches] + ["batches.meta"]
    (folder / CHECKSUMS).write_text(json.dumps({name: _md5(folder / name) for name in names}, indent=1))
    return folder


def cached_cifar10(cache: Path = None) -> Path:
    """The torchvision copy (its cifar-10-batches-py folder) of the CIFAR-10 that a sandboxed kernel's
    `find_cifar10` finds: $DLCOURSE_CIFAR10, else the embedded sample. Written once per source under `cache`
    (default: `dlcourse.datasets.cache_dir()`), in a temporary folder renamed when complete."""
    source = os.environ.get(ENV_VAR)
    source_path = Path(source).expanduser() if source else SAMPLE
    if not source_path.exists():
        raise FileNotFoundError(f"${ENV_VAR} = {source}, which does not exist: set it to a CIFAR-10 copy, or unset "
                                "it to grade with the embedded sample")
    cache = Path(cache or cache_dir())
    target = cache / f"torchvision-cifar10-{_fingerprint(source_path)}-v{VERSION}"
    if not (target / FOLDER / CHECKSUMS).exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache))
        try:
            load = (lambda train: find_cifar10(train, verbose=False)) if source else cifar10_sample
            write_cifar10(load(True), load(False), tmp, sample=not source)
            tmp.chmod(0o755)  # mkdtemp's 0700 would hide it from the sandbox's user
            tmp.rename(target)
        except OSError:
            if not (target / FOLDER / CHECKSUMS).exists():  # not another grading process's, renamed first
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target / FOLDER


# The grading kernels' start-up file: where the grader's copy is at ~/.pytorch-datasets, torchvision's CIFAR10
# expects its files' MD5s (the copy's CHECKSUMS) instead of the original archive's, so that it takes the copy as
# downloaded and verified rather than download (no network) or write (read-only). Elsewhere it does nothing.
STARTUP = f'''\
def _dlcourse_cifar10_checksums():
    import json, os
    path = os.path.expanduser("~/.pytorch-datasets/{FOLDER}/{CHECKSUMS}")
    if not os.path.isfile(path):
        return
    import torchvision.datasets
    with open(path) as f:
        md5 = json.load(f)
    cls = torchvision.datasets.CIFAR10
    cls.train_list = [[name, md5[name]] for name, _ in cls.train_list]
    cls.test_list = [[name, md5[name]] for name, _ in cls.test_list]
    cls.meta = {{**cls.meta, "md5": md5[cls.meta["filename"]]}}

_dlcourse_cifar10_checksums()
del _dlcourse_cifar10_checksums
'''
