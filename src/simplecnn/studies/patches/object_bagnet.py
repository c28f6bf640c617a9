"""BagNet trained without background: its image logits average the object windows only.

The proposal's training without background, for the one family that is trained through its
aggregation. A BagNet's image logits are the mean of its window logits; this variant takes
the mean over a fixed set of window positions, the centre detector's object windows (the
same positions in every image, as for the refitted linear read-outs), in training and in
its own image decision. Background windows then get no gradient from the image label.

Registered with the core as ``bagnet_object``: this module's code is part of the key of the
weights trained with it (``core.train.weights_code``), so an edited module retrains instead of
loading weights trained by other code.
"""

from __future__ import annotations

import torch

from simplecnn.core.models import BagNet, register

__all__ = ["ObjectBagNet", "window_model", "MAP_STRIDE"]

MAP_STRIDE = 8  # stride (px) of a BagNet's logit map with the default strides (2, 2, 2, 1)


class ObjectBagNet(BagNet):
    """BagNet-q whose image logits are the mean window logits over ``keep`` (side × side
    bool over its logit map, True on object windows)."""

    def __init__(self, num_classes: int, keep: list[list[bool]], **kwargs):
        super().__init__(num_classes, **kwargs)
        mask = torch.as_tensor(keep, dtype=torch.bool)
        if mask.dim() != 2 or not mask.any():
            raise ValueError(f"keep must be a side × side mask with at least one object window, got shape "
                             f"{tuple(mask.shape)} with {int(mask.sum())} kept")
        self.register_buffer("keep", mask, persistent=False)  # rebuilt from the arguments, not stored
        # the mean over kept windows as a product with fixed weights: the same number as boolean
        # indexing, without a data-dependent shape (the fake pass runs it on the meta device)
        self.register_buffer("weights", mask.flatten().float() / mask.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.patch_logits(x)
        if maps.shape[-2:] != self.keep.shape:
            raise ValueError(f"the logit map is {tuple(maps.shape[-2:])} but the object mask is "
                             f"{tuple(self.keep.shape)}: train and score at the mask's image size")
        return maps.flatten(2) @ self.weights.to(maps.dtype)


def window_model(model: ObjectBagNet) -> torch.nn.Module:
    """The per-window computation (stem, stages, head) of ``model``: what one q × q window
    costs, for MAC counts on a single window (the pooled mask needs the whole map)."""
    return torch.nn.Sequential(model.stem, model.stages, model.head)


@register("bagnet_object")
def bagnet_object(num_classes: int, **kwargs) -> ObjectBagNet:
    """BagNet-q pooled over object windows (``keep`` and BagNet's arguments)."""
    kwargs = {k: tuple(v) if isinstance(v, list) and k != "keep" else v for k, v in kwargs.items()}
    return ObjectBagNet(num_classes, **kwargs)
