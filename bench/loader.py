"""Our training path (DeviceLoader + FastClassifierTrainer) against the course's loop (Dataset with ToTensor +
DataLoader + the trainer), same model, same images, same batches: training images per second, and the model alone
(a step on a batch that is already there) as the bound.

    python bench/loader.py [--device cuda] [--threads 1] [--batches 20]
"""
import argparse
import time

import torch
import torch.nn as nn
import torchvision.transforms as tvtf
from torch.utils.data import DataLoader

from dlcourse.cnn import CNN, ResNet
from dlcourse.datasets import cifar10_sample
from dlcourse.experiments import DeviceLoader, FastClassifierTrainer
from dlcourse.layers import MLP as LayerMLP, CrossEntropyLoss
from dlcourse.optimizers import MomentumSGD
from dlcourse.training import ClassifierTrainer, LayerTrainer


def timed(fn, repeat=3):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def models(device):
    conv = dict(conv_params=dict(kernel_size=3, padding=1))
    yield "Part 2 MLP (Layer, 3072-512-256-10)", lambda: LayerMLP(3072, 10, [512, 256]), "layer"
    yield "Part 5 CNN K=[32] L=4 P=2 H=[100]", lambda: CNN((3, 32, 32), 10, [32] * 4, 2, [100], **conv), "torch"
    yield "Part 5 ResNet K=[64,128,256] L=2 P=6", lambda: ResNet((3, 32, 32), 10, [64, 64, 128, 128, 256, 256], 6,
                                                                  [100]), "torch"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--bs", type=int, default=128)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ds, ds_tt = cifar10_sample(train=True), cifar10_sample(train=True, transform=tvtf.ToTensor())
    n_images = args.batches * args.bs
    print(f"device={device}, torch threads={torch.get_num_threads()}, batch {args.bs}, {args.batches} batches")
    for name, make, kind in models(device):
        def trainer(dev):
            torch.manual_seed(0)
            model = make()
            if kind == "layer":
                return LayerTrainer(model, CrossEntropyLoss(), MomentumSGD(model.params(), learn_rate=1e-3))
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            cls = FastClassifierTrainer if dev == "fast" else ClassifierTrainer
            return cls(model, nn.CrossEntropyLoss(), opt, device=device)
        if kind == "layer" and device.type != "cpu":
            continue
        course, fast = trainer("course"), trainer("fast")
        dl_course = DataLoader(ds_tt, args.bs, shuffle=True)
        dl_fast = DeviceLoader(ds, args.bs, shuffle=True, device=device, channels_last=device.type == "cuda")
        batch = next(iter(dl_fast))
        t_course = timed(lambda: course.train_epoch(dl_course, verbose=False, max_batches=args.batches))
        t_fast = timed(lambda: fast.train_epoch(dl_fast, verbose=False, max_batches=args.batches))
        t_model = timed(lambda: [fast.train_batch(batch) for _ in range(args.batches)])
        print(f"{name}: course loop {n_images / t_course:8.0f} img/s, ours {n_images / t_fast:8.0f} img/s, "
              f"model alone {n_images / t_model:8.0f} img/s -> ours / course = {t_course / t_fast:.2f}x, "
              f"ours / model alone = {t_model / t_fast:.2f}")


if __name__ == "__main__":
    main()
