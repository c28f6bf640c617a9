"""Grad-CAM with captum, and the checks that make a saliency map worth reading.

captum computes the maps (``LayerGradCam``, upsampled by ``LayerAttribution.interpolate``);
this module adds what it lacks: deletion and insertion curves against a random order
(Petsiuk et al., 2018), the model-randomisation sanity check (Adebayo et al., 2018), and
per-image rank correlations between maps.
"""

from __future__ import annotations

import copy
from dataclasses import asdict

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from scipy.stats import spearmanr
from torch import nn

from simplecnn.core.cache import Cache, tensor_digest
from simplecnn.core.data import ImageSet
from simplecnn.studies.patches import Grid, window_means
from simplecnn.core.train import Trained, autocast


def stage_layer(model: nn.Module, stage: int) -> nn.Module:
    """The ``stage``-th residual stage (negative counts from the end) of a ``Normalize`` +
    ResNet model: the layers Grad-CAM reads."""
    body = model[1] if isinstance(model, nn.Sequential) else model
    if not hasattr(body, "stages"):
        raise ValueError(f"{type(body).__name__} has no residual stages to take Grad-CAM at")
    return body.stages[stage]


def grad_cam(model: nn.Module, layer: nn.Module, images: torch.Tensor, targets: torch.Tensor,
             batch_size: int = 128) -> torch.Tensor:
    """N × H × W Grad-CAM (ReLU'd, bilinearly upsampled) of ``targets`` at ``layer`` for uint8 images."""
    model.eval()
    cam = LayerGradCam(model, layer)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].float() / 255
        attr = cam.attribute(x, target=targets[i:i + batch_size].tolist(), relu_attributions=True)
        out.append(LayerAttribution.interpolate(attr.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0])
    return torch.cat(out)


def ranked_pixels(maps: torch.Tensor) -> torch.Tensor:
    """Per image, the rank of every pixel in decreasing map value (0: most salient)."""
    order = maps.flatten(1).argsort(1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    return ranks.view_as(maps)


@torch.no_grad()
def deletion_insertion(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor,
                       steps: int = 16, baseline: str = "blur", batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Probability of ``targets`` as the most salient pixels are removed (deletion: replaced by
    the baseline) or added to the baseline (insertion), at ``steps`` + 1 fractions from 0 to 1.

    A faithful map makes deletion fall fast (low area) and insertion rise fast (high area).
    The baseline is a heavily blurred copy of the image, or ``"zero"`` for black."""
    model.eval()
    x = images.float() / 255
    if baseline == "blur":
        base = nn.functional.avg_pool2d(x, 9, 1, 4, count_include_pad=False)
        base = nn.functional.avg_pool2d(base, 9, 1, 4, count_include_pad=False)
    elif baseline == "zero":
        base = torch.zeros_like(x)
    else:
        raise ValueError(f"unknown baseline {baseline!r}; use 'blur' or 'zero'")
    ranks = ranked_pixels(maps)[:, None]
    n_pixels = maps[0].numel()
    fractions = torch.linspace(0, 1, steps + 1)
    curves = {"deletion": torch.empty(len(x), steps + 1), "insertion": torch.empty(len(x), steps + 1)}
    for k, f in enumerate(fractions):
        top = ranks < int(round(float(f) * n_pixels))
        for name, inputs in (("deletion", torch.where(top, base, x)), ("insertion", torch.where(top, x, base))):
            probs = []
            for i in range(0, len(x), batch_size):
                with autocast(x.device):
                    probs.append(torch.softmax(model(inputs[i:i + batch_size]).float(), 1))
            curves[name][:, k] = torch.cat(probs).gather(1, targets[:, None])[:, 0]
    curves["fractions"] = fractions
    return curves


def curve_auc(curve: torch.Tensor, fractions: torch.Tensor) -> float:
    """Area under the mean curve over the fraction of pixels (trapezoids)."""
    return float(torch.trapezoid(curve.mean(0), fractions))


def rank_correlations(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman correlation between ``a[i]`` and ``b[i]`` (flattened), per image; NaN where
    one map is constant."""
    a, b = a.flatten(1).double().numpy(), b.flatten(1).double().numpy()
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        if a[i].std() > 0 and b[i].std() > 0:
            out[i] = spearmanr(a[i], b[i]).statistic
    return out


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture with every learnt layer re-initialised (the cascading
    randomisation's end point); ``Normalize`` statistics are kept."""
    torch.manual_seed(seed)
    clone = copy.deepcopy(model)
    for m in clone.modules():
        if hasattr(m, "reset_parameters") and m is not clone:
            m.reset_parameters()
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    return clone.eval()


def predicted_class_cam(trained: Trained, images: torch.Tensor, split: str, stage: int = -1,
                        cache: Cache | None = None) -> torch.Tensor:
    """Grad-CAM of the model's own prediction (no label needed, so usable at test time) at a
    stage, for every image of a split: N × H × W, cached with the model."""
    cache = cache or trained.cache
    spec = {"model": trained.key, "split": split, "images": tensor_digest(images), "stage": stage, "target": "pred"}

    def compute() -> torch.Tensor:
        targets = trained.logits(ImageSet(images, torch.zeros(len(images), dtype=torch.long), []), split).argmax(1)
        return grad_cam(trained.model, stage_layer(trained.model, stage), images, targets)
    return cache.get_or_compute("cam", spec, compute)


def patch_weights(trained: Trained, images: torch.Tensor, split: str, grid: Grid, stage: int = -1,
                  cache: Cache | None = None) -> dict[str, torch.Tensor]:
    """Per window of ``grid``, the mean predicted-class Grad-CAM (``weights``: N × side × side),
    and per image the ``object_size``: the share of pixels at or above half the map's maximum."""
    cache = cache or trained.cache
    spec = {"model": trained.key, "split": split, "images": tensor_digest(images), "stage": stage,
            "grid": asdict(grid)}

    def compute() -> dict[str, torch.Tensor]:
        cam = predicted_class_cam(trained, images, split, stage, cache)
        peak = cam.flatten(1).max(1).values.clamp_min(1e-12)
        return {"weights": window_means(cam, grid), "object_size": (cam >= peak[:, None, None] / 2).flatten(1)
                .float().mean(1)}
    return cache.get_or_compute("patch_cam", spec, compute)
