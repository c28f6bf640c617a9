"""The paper's five augmentations, and its fifth (colour) read as its sentence says.

Source 004 lists flip, crop, scale-and-crop, rotation and a colour change "between 0.5 and
1.5 of the original value" for brightness, contrast, saturation and hue. The first four and
torchvision's reading of the fifth are the core's (``core.augment``); the hue *factor* this
module registers (``color_hue_scale``) is the sentence's reading. Kept in a module of its own:
the weights trained with it are keyed by this module's code, and by nothing else of the study.
"""

from __future__ import annotations

import torch

from simplecnn.core import augment

COLOR_RANGE = (0.5, 1.5)  # "each change was in between 0.5 and 1.5 of the original value"
HUE_READINGS = ("scale", "shift")  # the paper's sentence; torchvision's ColorJitter(hue=0.5)


def scale_hue(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Multiply each uint8 image's hue (in turns, modulo one) by its factor.

    The paper's fifth augmentation changes hue "between 0.5 and 1.5 of the original value";
    torchvision's ColorJitter(hue=0.5) instead adds up to half a turn, which randomises
    colour entirely. Scaling keeps reds (hue 0) red and moves other hues in proportion."""
    hsv = augment.rgb_to_hsv(x.float() / 255)
    h = (hsv[:, 0] * factors.to(x.device).view(-1, 1, 1)).remainder(1.0)
    return augment.to_uint8(augment.hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), 1)))


@augment.register("color_hue_scale")
def color_hue_scale(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Source 004's fifth augmentation as written: brightness, contrast and saturation
    factors in [0.5, 1.5] (as core's ``color``) and a hue *factor* in [0.5, 1.5]."""
    low, high = COLOR_RANGE
    f = augment.jitter_bcs(x, g, low, high)
    hue = low + (high - low) * torch.rand(len(x), generator=g)
    return scale_hue((f * 255).round().to(torch.uint8), hue)


def augmentations(hue: str = "scale") -> tuple[str, ...]:
    """The paper's five augmentations in its order; ``hue`` picks the fifth's hue reading."""
    if hue not in HUE_READINGS:
        raise ValueError(f"hue must be one of {HUE_READINGS}, got {hue!r}")
    return ("flip", "crop", "scale_crop", "rotate", "color_hue_scale" if hue == "scale" else "color")


AUGMENTATIONS = augmentations("scale")


def policy(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The paper's offline ×(1+k) set as an online policy over ``names`` (empty: none)."""
    return (f"oneof:{'+'.join(names)}",) if names else ()
