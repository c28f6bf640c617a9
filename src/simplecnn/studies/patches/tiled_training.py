"""Training a BagNet on large images tile by tile, with the whole image's gradient.

A BagNet's logit at window (i, j) depends on that q×q window only, so a crop of the image
holding a tile of windows gives exactly those windows' logits. The image's logits are the
mean over all W windows, and the loss is not linear in them, so gradient accumulation
needs the image-level upstream gradient g = ∂loss/∂(mean logits) first: pass 1 runs the
tiles without autograd and averages their logits; pass 2 re-runs each tile with autograd
and back-propagates g · (sum of the tile's logits) / W. The accumulated gradient is the
whole image's; only one tile's activations are alive at a time (two forward passes and
one backward, against one and one).

Batch norm in training mode normalises with the statistics of what it sees, a tile here
and the whole image there (tiles act like ghost batches), so equality holds with frozen
statistics (eval mode, as when fine-tuning at a higher resolution) or norms without batch
statistics. Pass 1 leaves the running statistics untouched (its momentum is set to zero),
so each tile updates them once, as in pass 2.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import pandas as pd
import torch
from torch import nn

from simplecnn.core.memory import peak_bytes, run_isolated
from simplecnn.core.models import BagNet

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def tile_crops(x: torch.Tensor, q: int, stride: int, tile: int) -> Iterator[tuple[int, int, int, int, torch.Tensor]]:
    """(row, col, rows, cols, crop) for each tile of at most ``tile`` × ``tile`` windows of
    side ``q`` every ``stride`` px, the crop being the input those windows see."""
    if tile < 1:
        raise ValueError(f"tile must be at least one output location, got {tile}")
    h, w = (x.shape[-2] - q) // stride + 1, (x.shape[-1] - q) // stride + 1
    if h < 1 or w < 1:
        raise ValueError(f"the image ({tuple(x.shape[-2:])} px) is smaller than one {q}×{q} patch")
    for i in range(0, h, tile):
        for j in range(0, w, tile):
            ih, jw = min(tile, h - i), min(tile, w - j)
            yield i, j, ih, jw, x[..., i * stride:(i + ih - 1) * stride + q, j * stride:(j + jw - 1) * stride + q]


def window_count(bagnet: BagNet, x: torch.Tensor) -> int:
    return ((x.shape[-2] - bagnet.q) // bagnet.stride + 1) * ((x.shape[-1] - bagnet.q) // bagnet.stride + 1)


@contextmanager
def _frozen_running_stats(model: nn.Module):
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 − 0) · running + 0 · batch: unchanged
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


def tiled_backward(bagnet: BagNet, x: torch.Tensor, y: torch.Tensor, tile: int,
                   loss_fn: Loss = nn.functional.cross_entropy) -> torch.Tensor:
    """Accumulate into ``.grad`` the gradient of ``loss_fn(bagnet(x), y)`` computed tile by
    tile (at most ``tile`` × ``tile`` windows alive at a time); returns the loss."""
    count = window_count(bagnet, x)
    total = None
    with torch.no_grad(), _frozen_running_stats(bagnet):
        for *_, crop in tile_crops(x, bagnet.q, bagnet.stride, tile):
            part = bagnet.patch_logits(crop).to(x.dtype).sum((2, 3))
            total = part if total is None else total + part
    mean = (total / count).requires_grad_()
    loss = loss_fn(mean, y)
    (upstream,) = torch.autograd.grad(loss, mean)
    for *_, crop in tile_crops(x, bagnet.q, bagnet.stride, tile):
        (bagnet.patch_logits(crop).to(x.dtype).sum((2, 3)) * upstream).sum().div(count).backward()
    return loss.detach()


def whole_backward(bagnet: BagNet, x: torch.Tensor, y: torch.Tensor,
                   loss_fn: Loss = nn.functional.cross_entropy) -> torch.Tensor:
    """The reference: the whole image's loss and gradient in one pass."""
    loss = loss_fn(bagnet(x).to(x.dtype), y)
    loss.backward()
    return loss.detach()


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def gradient_gap(bagnet: BagNet, x: torch.Tensor, y: torch.Tensor, tile: int) -> dict[str, float]:
    """Whole-image against tiled gradients of one step (model in its current mode; eval for
    equality, see the module's note): the largest absolute difference over all parameters,
    relative to the largest gradient, and the loss difference."""
    bagnet.zero_grad(set_to_none=True)
    loss_whole = whole_backward(bagnet, x, y)
    whole = gradients(bagnet)
    bagnet.zero_grad(set_to_none=True)
    loss_tiled = tiled_backward(bagnet, x, y, tile)
    tiled = gradients(bagnet)
    bagnet.zero_grad(set_to_none=True)
    if whole.keys() != tiled.keys():
        raise RuntimeError("tiled and whole-image passes reached different parameters")
    diff = max(float((whole[k] - tiled[k]).abs().max()) for k in whole)
    scale = max(float(g.abs().max()) for g in whole.values())
    return {"max_abs_diff": diff, "max_rel_diff": diff / scale if scale else 0.0,
            "loss_diff": float((loss_whole - loss_tiled).abs())}


# --- peak memory of one training step, in a fresh interpreter --------------------------

def train_step(bagnet: BagNet, x: torch.Tensor, y: torch.Tensor, tile: int | None, lr: float = 0.01) -> float:
    """One SGD step with momentum (whole image, or tiled with ``tile``); returns the loss."""
    opt = torch.optim.SGD(bagnet.parameters(), lr=lr, momentum=0.9)
    opt.zero_grad(set_to_none=True)
    loss = whole_backward(bagnet, x, y) if tile is None else tiled_backward(bagnet, x, y, tile)
    opt.step()
    return float(loss)


def isolated_train_peak(kwargs: dict, num_classes: int, size: int, tile: int | None, seed: int = 0,
                        batch: int = 1) -> dict:
    """Peak memory (bytes) of one training step of a freshly initialised
    ``BagNet(num_classes, **kwargs)`` on ``batch`` random ``size``-px images, whole
    (``tile`` None) or by tiles, in a fresh interpreter (memory freed earlier in this
    process stays resident and would hide the peak); also the seconds of a second step and
    the windows per image."""
    job = json.dumps({"kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
                      "num_classes": num_classes, "size": size, "tile": tile, "seed": seed, "batch": batch})
    done = run_isolated(f"import runpy, sys; sys.argv = ['tiled_training', *sys.argv[1:]]; "
                        f"runpy.run_path({__file__!r}, run_name='__main__')", job)  # script: no package imports
    if done.returncode != 0:
        raise RuntimeError(f"isolated BagNet training step failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _main(job: str) -> None:
    spec = json.loads(job)
    torch.manual_seed(spec["seed"])
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["kwargs"].items()}
    bagnet = BagNet(spec["num_classes"], **kwargs).train()
    x = torch.rand(spec["batch"], 3, spec["size"], spec["size"])
    y = torch.randint(0, spec["num_classes"], (spec["batch"],))
    if torch.cuda.is_available():
        bagnet, x, y = bagnet.cuda(), x.cuda(), y.cuda()
    warm = copy.deepcopy(bagnet)  # first use loads lazy modules (the optimiser's, kernels): not the step's memory
    train_step(warm, x[:1, :, :bagnet.q + bagnet.stride, :bagnet.q + bagnet.stride], y[:1], spec["tile"])
    del warm
    loss, peak = peak_bytes(lambda: train_step(bagnet, x, y, spec["tile"]))
    t0 = time.perf_counter()  # timed on a second step: the first also pays for first-touch allocations
    train_step(bagnet, x, y, spec["tile"])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    print(json.dumps({"peak_bytes": peak, "seconds": seconds, "windows": window_count(bagnet, x), "loss": loss,
                      "device": "cuda" if torch.cuda.is_available() else "cpu"}))


if __name__ == "__main__":
    _main(sys.argv[1])


def memory_study(bag, image: torch.Tensor, label: torch.Tensor, kwargs: dict, num_classes: int, sizes: list[int],
                 tile: int, resolution: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """The chapter's training-memory test: the tiled gradient's gap to the whole image's on
    one test image (at a size with several tiles), then one training step whole and in tiles
    at each of ``sizes``, each in a fresh process. Returns the per-run table and the results
    section."""
    check = bag[1].eval()
    grad_px = max(kwargs["q"] + 4 * tile * check.stride, resolution)
    x = torch.nn.functional.interpolate(image.float() / 255, size=grad_px, mode="bilinear", align_corners=False)
    gap = gradient_gap(check, bag[0](x), label, tile)
    rows = []
    for size in sizes:
        for mode, t in (("whole image", None), (f"tiles of {tile ** 2} windows", tile)):
            r = isolated_train_peak(kwargs, num_classes, size, t, seed)
            rows.append({"image_px": size, "mode": mode, "peak_mib": r["peak_bytes"] / 2 ** 20,
                         "seconds": r["seconds"], "windows_per_s": r["windows"] / r["seconds"],
                         "peak_bytes": r["peak_bytes"], "windows": r["windows"]})
    table = pd.DataFrame(rows)
    whole = table["mode"] == "whole image"
    section = {"q": kwargs["q"], "tile_windows": tile ** 2, "gradient_gap": gap, "gradient_px": grad_px,
               "device": "cuda" if torch.cuda.is_available() else "cpu",
               "rows": [{"image_px": size, "windows": int(g.windows.iloc[0]),
                         "whole_peak_bytes": int(g[whole[g.index]].peak_bytes.iloc[0]),
                         "tiled_peak_bytes": int(g[~whole[g.index]].peak_bytes.iloc[0]),
                         "whole_windows_per_s": float(g[whole[g.index]].windows_per_s.iloc[0]),
                         "tiled_windows_per_s": float(g[~whole[g.index]].windows_per_s.iloc[0])}
                        for size, g in table.groupby("image_px")]}
    return table, section
