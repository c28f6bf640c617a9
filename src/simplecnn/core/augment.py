"""Augmentations on uint8 image batches (N×3×H×W), drawn from one seeded generator.

They run on whole batches held in memory, so augmenting costs microseconds rather than the
PIL-per-image work of a DataLoader pipeline. Each is a small function in one registry;
studies add theirs with ``@register("name")`` and switch them on by name in TrainConfig.
Every function gets the batch, the generator, the images' indices in the training set and
the epoch (``alternate_flip`` needs the last two; the others ignore them).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Augmentation = Callable[[torch.Tensor, torch.Generator, torch.Tensor, int], torch.Tensor]
AUGMENTATIONS: dict[str, Augmentation] = {}


def register(name: str) -> Callable[[Augmentation], Augmentation]:
    def wrap(fn: Augmentation) -> Augmentation:
        AUGMENTATIONS[name] = fn
        return fn
    return wrap


def mirror_where(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.to(x.device)[:, None, None, None], x.flip(3), x)


@register("flip")
def flip(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    return mirror_where(x, torch.rand(len(x), generator=g) < 0.5)


@register("alternate_flip")
def alternate_flip(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """airbench's flip: each image is mirrored in every other epoch, starting from a fixed
    per-image coin, so two consecutive epochs always show both orientations."""
    coin = ((index * 2654435761) >> 13) & 1  # a fixed pseudo-random bit per training image
    return mirror_where(x, (coin + epoch) % 2 == 1)


def random_crop(x: torch.Tensor, side: int, g: torch.Generator) -> torch.Tensor:
    """A ``side``×``side`` window of each image at its own random offset, in one indexing op
    (no per-image loop: on a GPU a loop of small copies costs more than the model step)."""
    n, c, h, w = x.shape
    dy = torch.randint(0, h - side + 1, (n,), generator=g).to(x.device)
    dx = torch.randint(0, w - side + 1, (n,), generator=g).to(x.device)
    ar = torch.arange(side, device=x.device)
    rows = (dy[:, None] + ar)[:, None, :, None]
    cols = (dx[:, None] + ar)[:, None, None, :]
    return x[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None],
             rows, cols]


def pad_crop(x: torch.Tensor, g: torch.Generator, pad: int) -> torch.Tensor:
    """Reflect-pad by ``pad`` px and crop back at a random offset: a shift of up to ±pad px."""
    return random_crop(F.pad(x, (pad, pad, pad, pad), mode="reflect"), x.shape[-1], g)


@register("crop")
def crop(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Pad-crop by an eighth of the image side (4 px at CIFAR's 32 px)."""
    return pad_crop(x, g, max(1, x.shape[-1] // 8))


@register("small_crop")
def small_crop(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Pad-crop by a sixteenth of the side (2 px at 32 px), airbench's translation."""
    return pad_crop(x, g, max(1, x.shape[-1] // 16))


def _per_image_uniform(x: torch.Tensor, g: torch.Generator, low: float, high: float) -> torch.Tensor:
    """One factor per image of ``x``, drawn on the CPU generator (reproducible), on x's device."""
    return (low + (high - low) * torch.rand(len(x), generator=g)).to(x.device)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp uint8 images by per-image 2×3 affine matrices (bilinear, black outside)."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


@register("scale_crop")
def scale_crop(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Scale by 9/8 (32 -> 36 px) and crop back at a random offset (source 004's third augmentation)."""
    side = x.shape[-1]
    big = F.interpolate(x.float(), size=(side * 9 // 8,) * 2, mode="bilinear", antialias=True, align_corners=False)
    return random_crop(big.round_().clamp_(0, 255).to(torch.uint8), side, g)


@register("rotate")
def rotate(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Rotate each image by a uniform angle in ±90° (source 004's fourth augmentation)."""
    angle = torch.deg2rad(_per_image_uniform(x, g, -90.0, 90.0))
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _affine(x, theta)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB in [0, 1] to HSV in [0, 1] (hue in turns)."""
    r, g, b = x.unbind(1)
    v, _ = x.max(1)
    c = v - x.min(1).values
    safe = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(v == r, ((g - b) / safe) % 6, torch.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(c > 0, h / 6, torch.zeros_like(h))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return torch.stack((h, s, v), 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of ``rgb_to_hsv``."""
    h, s, v = x.unbind(1)
    k = lambda n: (n + h * 6) % 6  # noqa: E731
    f = lambda n: v - v * s * (torch.minimum(k(n), 4 - k(n)).clamp(0, 1))  # noqa: E731
    return torch.stack((f(5), f(3), f(1)), 1)


def to_uint8(f: torch.Tensor) -> torch.Tensor:
    return (f * 255).round_().clamp_(0, 255).to(torch.uint8)


def jitter_bcs(x: torch.Tensor, g: torch.Generator, low: float = 0.5, high: float = 1.5) -> torch.Tensor:
    """Brightness, contrast and saturation, each by one factor in [low, high] per image, in
    ColorJitter's order and formulas; returns floats in [0, 1] (hue is the caller's)."""
    gray = lambda t: (0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]).unsqueeze(1)  # noqa: E731
    f = x.float() / 255
    f = f * _per_image_uniform(x, g, low, high).view(-1, 1, 1, 1)
    c = _per_image_uniform(x, g, low, high).view(-1, 1, 1, 1)
    f = (c * f + (1 - c) * gray(f).mean((2, 3), keepdim=True)).clamp(0, 1)
    s = _per_image_uniform(x, g, low, high).view(-1, 1, 1, 1)
    return (s * f + (1 - s) * gray(f)).clamp(0, 1)


@register("color")
def color(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Brightness, contrast and saturation factors in [0.5, 1.5] and a hue shift in ±0.5 turn,
    per image (source 004's fifth augmentation, read as torchvision's ColorJitter(.5, .5, .5, .5))."""
    h, s, v = rgb_to_hsv(jitter_bcs(x, g)).unbind(1)
    h = (h + _per_image_uniform(x, g, -0.5, 0.5).view(-1, 1, 1)).remainder(1.0)
    return to_uint8(hsv_to_rgb(torch.stack((h, s, v), 1)))


def mirror(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    return x.flip(3)


def one_of(names: list[str]) -> Augmentation:
    """Each image gets the identity or exactly one of ``names``, uniformly: the online
    equivalent of source 004's offline set (the original plus one augmented copy per
    augmentation). As there, ``flip``'s copy is mirrored outright and the other
    augmentations start with a random flip when ``flip`` is among ``names``."""
    fns = [mirror if n == "flip" else AUGMENTATIONS[n] for n in names]
    prefix_flip = "flip" in names

    def apply(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
        choice = torch.randint(0, len(fns) + 1, (len(x),), generator=g)
        out = x.clone()
        for k, (name, fn) in enumerate(zip(names, fns), start=1):
            sel = (choice == k).nonzero().flatten()
            if len(sel):
                part = x[sel]
                if prefix_flip and name != "flip":
                    part = flip(part, g, index[sel], epoch)
                out[sel] = fn(part, g, index[sel], epoch)
        return out
    return apply


def _parts(names: tuple[str, ...] | list[str]) -> list[list[str]]:
    """Each pipeline entry's registered names (``oneof:a+b`` -> [a, b]); unknown: an error
    that lists the known ones."""
    parts = [n.removeprefix("oneof:").split("+") if n.startswith("oneof:") else [n] for n in names]
    unknown = [n for p in parts for n in p if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; known: {sorted(AUGMENTATIONS)} "
                         f"(and oneof:NAME+NAME+...)")
    return parts


def used_functions(names: tuple[str, ...] | list[str]) -> list[Augmentation]:
    """The registered functions a pipeline of ``names`` calls (their modules key the weights
    trained with it)."""
    return [AUGMENTATIONS[n] for p in _parts(names) for n in p]


def build_pipeline(names: tuple[str, ...] | list[str]) -> Augmentation:
    """Compose registered augmentations by name; ``oneof:a+b+c`` is ``one_of([a, b, c])``.
    An unknown name is an error that lists the known ones."""
    parts = _parts(names)
    fns = [one_of(p) if n.startswith("oneof:") else AUGMENTATIONS[n] for n, p in zip(names, parts)]

    def apply(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
        for fn in fns:
            x = fn(x, g, index, epoch)
        return x
    return apply
