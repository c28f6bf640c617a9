"""Theoretical receptive fields: analytic over the traced graph, and by gradient as a check.

``receptive_field`` traces a model with torch.fx and carries (size, jump) through the graph:
a k×k convolution or pooling of stride s and dilation d turns (r, j) into
(r + d·(k-1)·j, j·s); element-wise ops, additions and concatenations take the largest r of
their inputs (the union of the branches' windows when they are centred alike, as in
ResNets and Inception). Global pooling, flattening and linear layers end the spatial part.

``gradient_receptive_field`` measures the same thing: with all weights set positive, BN set
to identity and max-pools made averages, the gradient of one output location reaches exactly
the input pixels in its receptive field.
"""

from __future__ import annotations

import copy

import torch
import torch.fx as fx
from torch import nn

WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
GLOBAL_MODULES = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear)
GLOBAL_FUNCTIONS = {torch.flatten, torch.nn.functional.adaptive_avg_pool2d, torch.mean}


def _pair(v) -> int:
    """Square kernels only: (3, 3) -> 3; reject the rest instead of guessing."""
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ValueError(f"non-square window {v} is not supported")
        v = v[0]
    return int(v)


def receptive_field(model: nn.Module) -> dict[str, int]:
    """Receptive field (px) and jump (effective stride) of the last conv layer of ``model``.

    Where the last stage branches (Inception), the branch with the largest field is reported:
    it is the field of the final feature map.
    """
    graph = fx.symbolic_trace(model)
    modules = dict(graph.named_modules())
    state: dict[fx.Node, tuple[int, int] | None] = {}  # None: no longer spatial
    last = None
    for node in graph.graph.nodes:
        inputs = [state[a] for a in node.all_input_nodes if a in state]
        spatial = [s for s in inputs if s is not None]
        if node.op == "placeholder":
            state[node] = (1, 1)
            continue
        if not spatial:
            state[node] = None
            continue
        r, j = max(s[0] for s in spatial), max(s[1] for s in spatial)
        mod = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(mod, WINDOWED):
            k, s = _pair(mod.kernel_size), _pair(mod.stride)
            d = _pair(getattr(mod, "dilation", 1))
            state[node] = (r + d * (k - 1) * j, j * s)
            if isinstance(mod, nn.Conv2d) and (last is None or state[node][0] >= last[1][0]):
                last = (node.target, state[node])  # deepest conv; for branching nets the widest branch
        elif isinstance(mod, GLOBAL_MODULES) or (node.op == "call_function" and node.target in GLOBAL_FUNCTIONS):
            state[node] = None
        else:
            state[node] = (r, j)
    if last is None:
        raise ValueError("the model has no Conv2d layer")
    name, (r, j) = last
    return {"layer": name, "receptive_field": r, "jump": j}


@torch.no_grad()
def _positive_copy(model: nn.Module) -> nn.Module:
    """Copy with every weight positive, BN the identity, max-pools replaced by averages."""
    model = copy.deepcopy(model).eval()
    for name, mod in list(model.named_modules()):
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            mod.weight.fill_(1.0 / mod.weight[0].numel())
            if mod.bias is not None:
                mod.bias.zero_()
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.reset_parameters()
        elif isinstance(mod, nn.MaxPool2d):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, nn.AvgPool2d(mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode))
    return model


def gradient_receptive_field(model: nn.Module, input_size: int, layer: nn.Module | None = None,
                             location: tuple[int, int] | None = None) -> dict[str, int]:
    """Height and width of the input window that one output location of ``layer`` depends on.

    ``layer`` defaults to the one ``receptive_field`` reports (the deepest conv: in module
    order a ResNet's last conv is a shortcut's) and ``location`` to the centre of its output.
    The input must be large enough that the window is not clipped by the image border.
    """
    probe = _positive_copy(model)
    names = {m: n for n, m in model.named_modules()}
    target = probe.get_submodule(names[layer] if layer is not None else receptive_field(model)["layer"])
    captured = {}
    handle = target.register_forward_hook(lambda m, i, o: captured.__setitem__("out", o))
    x = torch.ones(1, 3, input_size, input_size, requires_grad=True)
    try:
        with torch.enable_grad():
            probe(x)
            out = captured["out"]
            h, w = out.shape[-2:]
            y, xx = location if location is not None else (h // 2, w // 2)
            out[0, :, y, xx].sum().backward()
    finally:
        handle.remove()
    hit = x.grad[0].abs().sum(0) > 0
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    return {"height": int(rows.max() - rows.min() + 1), "width": int(cols.max() - cols.min() + 1),
            "top": int(rows.min()), "left": int(cols.min())}
