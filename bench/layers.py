"""One training step of the from-scratch Layer MLP (dlcourse.layers: forward, hand-written backward, MomentumSGD)
against the same MLP in torch.nn with autograd and torch.optim.SGD with momentum (same sizes, same batch), in one
run on one machine.

The course's `backward` returns the gradient of the input, which autograd skips when the input needs none: for
3072-512-256-10 that is 1.57M of 5.1M multiply-adds per sample, so the Layer step does 1.45x torch's arithmetic. The
second comparison asks autograd for the same gradient (`x.requires_grad_()`), and measures the layers' own cost.

    python bench/layers.py [--threads 1] [--dims 3072 512 256 10] [--bs 128]
"""
import argparse
import time

import torch
import torch.nn as nn

from dlcourse.layers import MLP, CrossEntropyLoss
from dlcourse.optimizers import MomentumSGD


def per_step(step, n=50):
    for _ in range(5):
        step()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            step()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dims", type=int, nargs="+", default=[3072, 512, 256, 10])
    p.add_argument("--bs", type=int, default=128)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = torch.randn(args.bs, args.dims[0]), torch.randint(0, args.dims[-1], (args.bs,))

    ours = MLP(args.dims[0], args.dims[-1], args.dims[1:-1])
    loss_fn, opt = CrossEntropyLoss(), MomentumSGD(ours.params(), learn_rate=1e-3, reg=0, momentum=0.9)
    def ours_step():
        opt.zero_grad()
        loss_fn(ours(x), y)
        ours.backward(loss_fn.backward())
        opt.step()

    layers = []
    for d_in, d_out in zip(args.dims, args.dims[1:]):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    ref = nn.Sequential(*layers[:-1])
    ref_opt = torch.optim.SGD(ref.parameters(), lr=1e-3, momentum=0.9)
    def torch_step(inputs):
        def step():
            ref_opt.zero_grad()
            inputs.grad = None
            nn.functional.cross_entropy(ref(inputs), y).backward()
            ref_opt.step()
        return step

    t_ours, t_torch = per_step(ours_step), per_step(torch_step(x))
    t_torch_dx = per_step(torch_step(x.clone().requires_grad_()))
    print(f"MLP {'-'.join(map(str, args.dims))}, batch {args.bs}, {args.threads} thread(s): Layer step "
          f"{t_ours * 1e3:.2f} ms, torch.nn + autograd {t_torch * 1e3:.2f} ms -> Layer / torch = {t_ours / t_torch:.2f}x")
    print(f"  with the input's gradient in both: torch.nn + autograd {t_torch_dx * 1e3:.2f} ms -> "
          f"Layer / torch = {t_ours / t_torch_dx:.2f}x")


if __name__ == "__main__":
    main()
