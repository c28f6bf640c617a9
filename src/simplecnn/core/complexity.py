"""Compute cost of a model: multiply-accumulates counted by ptflops, and measured speed.

ptflops' aten backend counts the multiply-accumulates of convolutions and matrix products
only (what papers call "FLOPs" or "multiply-adds"); a FLOP count proper is about twice
that. Every study's MAC column comes from here, so they are comparable across chapters.
"""

from __future__ import annotations

import time

import torch
from ptflops import get_model_complexity_info
from torch import nn

from simplecnn.core.device import resolve_device


def macs(model: nn.Module, resolution: int) -> int:
    """Multiply-accumulates of one forward pass (conv and linear layers), batch 1."""
    count, _ = get_model_complexity_info(model, (3, resolution, resolution), as_strings=False,
                                         print_per_layer_stat=False, backend="aten")
    return int(count)


def train_images_per_s(model: nn.Module, batch: int, resolution: int, num_classes: int, steps: int = 3,
                       warmup: int = 1, device: torch.device | str | None = None) -> float:
    """Training images/s of ``model``: SGD steps (forward, backward, momentum update) on a
    fixed random batch, channels_last, timed after ``warmup`` steps (the data pipeline is
    not part of it: the core's loader costs a few percent on top, README)."""
    device = resolve_device(device or "auto")
    model = model.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, resolution, resolution, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            start = time.perf_counter()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    return batch * steps / (time.perf_counter() - start)
