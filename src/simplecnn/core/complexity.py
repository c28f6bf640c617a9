"""Compute cost of a model: multiply-accumulates counted by ptflops.

ptflops' aten backend counts the multiply-accumulates of convolutions and matrix products
only (what papers call "FLOPs" or "multiply-adds"); a FLOP count proper is about twice
that. Every study's MAC column comes from here, so they are comparable across chapters.
"""

from __future__ import annotations

from ptflops import get_model_complexity_info
from torch import nn


def macs(model: nn.Module, resolution: int) -> int:
    """Multiply-accumulates of one forward pass (conv and linear layers), batch 1."""
    count, _ = get_model_complexity_info(model, (3, resolution, resolution), as_strings=False,
                                         print_per_layer_stat=False, backend="aten")
    return int(count)
