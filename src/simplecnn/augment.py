"""Augmentations on uint8 image batches (N×3×H×W), drawn from one seeded generator.

They run on whole batches held in memory, so augmenting costs microseconds rather than the
PIL-per-image work of a DataLoader pipeline. Each is a small function in one registry;
studies add theirs with ``@register("name")`` and switch them on by name in TrainConfig.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENTATIONS: dict[str, Augmentation] = {}


def register(name: str) -> Callable[[Augmentation], Augmentation]:
    def wrap(fn: Augmentation) -> Augmentation:
        AUGMENTATIONS[name] = fn
        return fn
    return wrap


@register("flip")
def flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = torch.rand(len(x), generator=g) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def pad_crop(x: torch.Tensor, g: torch.Generator, pad: int) -> torch.Tensor:
    """Reflect-pad by ``pad`` px and crop back at a random offset: a shift of up to ±pad px."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g).tolist()
    return torch.stack([padded[i, :, y:y + h, xx:xx + w] for i, (y, xx) in enumerate(zip(dy, dx))])


@register("crop")
def crop(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Pad-crop by an eighth of the image side (4 px at CIFAR's 32 px)."""
    return pad_crop(x, g, max(1, x.shape[-1] // 8))


def build_pipeline(names: tuple[str, ...] | list[str]) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Compose registered augmentations by name; an unknown name is an error that lists the known."""
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; known: {sorted(AUGMENTATIONS)}")
    fns = [AUGMENTATIONS[n] for n in names]

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for fn in fns:
            x = fn(x, g)
        return x
    return apply
