import torch

from .layers import Layer


def compare_layer_to_torch(layer: Layer, x, y=None, seed=42):
    """
    Compares a Layer's hand-written backward pass with autograd's gradients
    of the same forward computation.
    :param layer: The Layer to check.
    :param x: An input tensor for the layer.
    :param y: An optional second input (e.g. labels for a loss layer).
    :param seed: Seed used before both forward passes, so that random layers
        (e.g. Dropout) behave identically.
    :return: A list of gradient-difference norms: the input first, then one
        per parameter.
    """
    # our own backward pass
    torch.manual_seed(seed)
    z = layer(x, y=y)
    if z.dim() != 0:
        dz = torch.randn(*z.shape)
    else:
        dz = torch.tensor(1.0)
    dx = layer.backward(dz)

    # autograd's backward pass through the same forward
    for p, _ in layer.params():
        p.requires_grad = True
    x.requires_grad = True
    torch.manual_seed(seed)
    z = layer(x, y=y)
    z.backward(dz)

    print("Comparing gradients... ")
    diffs = []

    diff = torch.norm(x.grad - dx).item()
    print(f"input    diff={diff:.3f}")
    diffs.append(diff)

    for i, (p, dp) in enumerate(layer.params()):
        diff = torch.norm(p.grad - dp).item()
        print(f"param#{i + 1:02d} diff={diff:.3f}")
        diffs.append(diff)

    return diffs
