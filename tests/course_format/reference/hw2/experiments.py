import os
import sys
import json
import torch
import random
import argparse
import torchvision
from torch.utils.data import DataLoader

from cs236781.train_results import FitResult

from .cnn import CNN, ResNet, YourCNN
from .mlp import MLP
from .training import ClassifierTrainer
from .classifier import ArgMaxClassifier, BinaryClassifier, select_roc_thresh

DATA_DIR = os.path.expanduser("~/.pytorch-datasets")

MODEL_TYPES = {
    "cnn": CNN,
    "resnet": ResNet,
    "ycn": YourCNN,
}


def mlp_experiment(
    depth: int,
    width: int,
    dl_train: DataLoader,
    dl_valid: DataLoader,
    dl_test: DataLoader,
    n_epochs: int,
):
    # Train a BinaryClassifier MLP of the given depth and width, choose its
    # threshold on the validation set and measure it on the test set.
    # ====== YOUR CODE: ======
    model = BinaryClassifier(
        model=MLP(
            in_dim=2,
            dims=[*[width] * depth, 2],
            nonlins=[*["tanh"] * depth, "none"],
        ),
        threshold=0.5,
    )
    # tanh can't die like a narrow ReLU net (width 2) can
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(params=model.parameters(), lr=1e-2)
    trainer = ClassifierTrainer(model, loss_fn, optimizer)

    fit_res = trainer.fit(dl_train, dl_valid, num_epochs=n_epochs, print_every=0)
    valid_acc = fit_res.test_acc[-1]

    thresh = select_roc_thresh(model, *dl_valid.dataset.tensors, plot=False)
    model.threshold = thresh

    test_acc = trainer.test_epoch(dl_test, verbose=False).accuracy
    # ========================
    return model, thresh, valid_acc, test_acc


def cnn_experiment(
    run_name,
    out_dir="./results",
    seed=None,
    device=None,
    # Training params
    bs_train=128,
    bs_test=None,
    batches=100,
    epochs=100,
    early_stopping=3,
    checkpoints=None,
    lr=1e-3,
    reg=1e-3,
    # Model params
    filters_per_layer=[64],
    layers_per_block=2,
    pool_every=2,
    hidden_dims=[1024],
    model_type="cnn",
    # You can add extra configuration for your experiments here
    **kw,
):
    """
    Trains one CNN/ResNet/YourCNN configuration on CIFAR-10 and saves its
    config and FitResult to a JSON file in out_dir.
    """
    if not seed:
        seed = random.randint(0, 2 ** 31)
    torch.manual_seed(seed)
    if not bs_test:
        bs_test = max([bs_train // 4, 1])
    cfg = locals()

    tf = torchvision.transforms.ToTensor()
    ds_train = torchvision.datasets.CIFAR10(root=DATA_DIR, download=True, train=True, transform=tf)
    ds_test = torchvision.datasets.CIFAR10(root=DATA_DIR, download=True, train=False, transform=tf)

    if not device:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    # Select model class
    if model_type not in MODEL_TYPES:
        raise ValueError(f"Unknown model type: {model_type}")
    model_cls = MODEL_TYPES[model_type]

    # Train: K filters each repeated L times, e.g. K=[32,64], L=2 gives
    # channels [32,32,64,64].
    fit_res = None
    # ====== YOUR CODE: ======
    dl_train = DataLoader(ds_train, batch_size=bs_train, shuffle=True)
    dl_test = DataLoader(ds_test, batch_size=bs_test, shuffle=False)

    channels = [k for k in filters_per_layer for _ in range(layers_per_block)]
    model_kw = dict(
        conv_params=dict(kernel_size=3, stride=1, padding=1),
        pooling_params=dict(kernel_size=2),
    )
    model_kw.update(kw)

    in_size = ds_train[0][0].shape
    model = ArgMaxClassifier(
        model=model_cls(
            in_size,
            10,
            channels=channels,
            pool_every=pool_every,
            hidden_dims=hidden_dims,
            **model_kw,
        )
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=reg)
    trainer = ClassifierTrainer(model, loss_fn, optimizer, device)

    fit_res = trainer.fit(
        dl_train,
        dl_test,
        num_epochs=epochs,
        checkpoints=checkpoints,
        early_stopping=early_stopping,
        max_batches=batches,
    )
    # ========================

    save_experiment(run_name, out_dir, cfg, fit_res)


def save_experiment(run_name, out_dir, cfg, fit_res):
    output = dict(config=cfg, results=fit_res._asdict())

    cfg_LK = (
        f'L{cfg["layers_per_block"]}_K'
        f'{"-".join(map(str, cfg["filters_per_layer"]))}'
    )
    output_filename = f"{os.path.join(out_dir, run_name)}_{cfg_LK}.json"
    os.makedirs(out_dir, exist_ok=True)
    with open(output_filename, "w") as f:
        json.dump(output, f, indent=2)

    print(f"*** Output file {output_filename} written")


def load_experiment(filename):
    with open(filename, "r") as f:
        output = json.load(f)

    config = output["config"]
    fit_res = FitResult(**output["results"])

    return config, fit_res


def parse_cli():
    p = argparse.ArgumentParser(description="CS236781 HW2 Experiments")
    sp = p.add_subparsers(help="Sub-commands")

    # Experiment config
    sp_exp = sp.add_parser(
        "run-exp", help="Run experiment with a single configuration"
    )
    sp_exp.set_defaults(subcmd_fn=cnn_experiment)
    sp_exp.add_argument(
        "--run-name", "-n", type=str, help="Name of run and output file", required=True
    )
    sp_exp.add_argument(
        "--out-dir", "-o", type=str, help="Output folder", default="./results", required=False
    )
    sp_exp.add_argument(
        "--seed", "-s", type=int, help="Random seed", default=None, required=False
    )
    sp_exp.add_argument(
        "--device", "-d", type=str, help="Device (default is autodetect)", default=None, required=False
    )

    # # Training
    sp_exp.add_argument(
        "--bs-train", type=int, help="Train batch size", default=128, metavar="BATCH_SIZE"
    )
    sp_exp.add_argument(
        "--bs-test", type=int, help="Test batch size", metavar="BATCH_SIZE"
    )
    sp_exp.add_argument(
        "--batches", type=int, help="Number of batches per epoch", default=100
    )
    sp_exp.add_argument(
        "--epochs", type=int, help="Maximal number of epochs", default=100
    )
    sp_exp.add_argument(
        "--early-stopping", type=int, help="Stop after this many epochs without improvement", default=3
    )
    sp_exp.add_argument(
        "--checkpoints", type=int, help="Save model checkpoints to this file when test accuracy improves", default=None
    )
    sp_exp.add_argument("--lr", type=float, help="Learning rate", default=1e-3)
    sp_exp.add_argument("--reg", type=float, help="L2 regularization", default=1e-3)

    # # Model
    sp_exp.add_argument(
        "--filters-per-layer", "-K", type=int, nargs="+", help="Number of filters per conv layer in a block", metavar="K", required=True
    )
    sp_exp.add_argument(
        "--layers-per-block", "-L", type=int, metavar="L", help="Number of layers in each block", required=True
    )
    sp_exp.add_argument(
        "--pool-every", "-P", type=int, metavar="P", help="Pool after this number of conv layers", required=True
    )
    sp_exp.add_argument(
        "--hidden-dims", "-H", type=int, nargs="+", help="Output size of hidden linear layers", metavar="H", required=True
    )
    sp_exp.add_argument(
        "--model-type", "-M", choices=MODEL_TYPES.keys(), default="cnn", help="Which model instance to create"
    )

    parsed = p.parse_args()

    if "subcmd_fn" not in parsed:
        p.print_help()
        sys.exit()
    return parsed


if __name__ == "__main__":
    parsed_args = parse_cli()
    subcmd_fn = parsed_args.subcmd_fn
    del parsed_args.subcmd_fn
    print(f"*** Starting {subcmd_fn.__name__} with config:\n{parsed_args}")
    subcmd_fn(**vars(parsed_args))
