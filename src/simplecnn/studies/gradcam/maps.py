"""The maps: captum's attributions of the full-image CNN (Grad-CAM, Guided Grad-CAM,
integrated gradients, occlusion) with one post-processing for all, the reference maps a
method must beat (a random map as smooth as Grad-CAM's, a centre prior), and the cached
predicted-class Grad-CAM the patch and fusion chapters weight windows by."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import asdict

import torch
from captum.attr import GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion
from torch import nn

from simplecnn.core.cache import WEIGHTS, Cache, tensor_digest
from simplecnn.core.data import ImageSet
from simplecnn.core.train import Trained
from simplecnn.studies.patches import Grid, window_means

METHODS = ("gradcam", "guided_gradcam", "integrated_gradients", "occlusion")
REFERENCES = ("smooth_random", "centre")
BEST = "best_reference"  # the better of the references, chosen in each bootstrap resample
LABELS = {"gradcam": "Grad-CAM", "guided_gradcam": "Guided Grad-CAM", "integrated_gradients": "Integrated gradients",
          "occlusion": "Occlusion", "smooth_random": "smooth random", "centre": "centre prior",
          BEST: "best reference"}

CAM_CODE = (*WEIGHTS, "studies.gradcam.maps")
"""The code whose meaning decides the cached Grad-CAMs (their cache key)."""


def _body(model: nn.Module) -> nn.Module:
    return model[1] if isinstance(model, nn.Sequential) else model


def stage_layer(model: nn.Module, stage: int) -> nn.Module:
    """The ``stage``-th stage (negative counts from the end) of a ``Normalize`` + ResNet or
    FastNet model: the layers Grad-CAM reads."""
    body = _body(model)
    if not hasattr(body, "stages"):
        raise ValueError(f"{type(body).__name__} has no stages to take Grad-CAM at (ResNets and FastNet have)")
    return body.stages[stage]


def named_layer(model: nn.Module, name: str) -> nn.Module:
    """The layer ``name`` of the network behind ``Normalize`` (e.g. ``stages.1``, ResNet's
    layer2); an unknown name is an error listing the candidates."""
    body = _body(model)
    try:
        return body.get_submodule(name)
    except AttributeError:
        options = [n for n, _ in body.named_children()]
        if hasattr(body, "stages"):
            options += [f"stages.{i}" for i in range(len(body.stages))]
        raise ValueError(f"{type(body).__name__} has no layer {name!r}; try one of {options}") from None


@torch.no_grad()
def layer_cells(model: nn.Module, layer: str, size: int) -> tuple[int, int]:
    """Rows and columns of ``layer``'s output for a ``size``-px input: the cells of its Grad-CAM."""
    seen = {}

    def hook(module, inputs, output) -> None:  # returns None: the output is left as it is
        seen["shape"] = output.shape

    handle = named_layer(model, layer).register_forward_hook(hook)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, size, size, device=device))
    finally:
        handle.remove()
        model.train(was_training)
    return int(seen["shape"][-2]), int(seen["shape"][-1])


def attribution_copy(model: nn.Module) -> nn.Module:
    """A frozen eval-mode copy whose ReLUs are not in-place: guided backprop hooks ReLU
    modules, and backward hooks cannot wrap in-place outputs."""
    clone = copy.deepcopy(model).eval()
    for m in clone.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def blurred(x: torch.Tensor) -> torch.Tensor:
    """A heavily blurred copy of float images (two 9×9 box filters): the insertion start, the
    deletion end, and the baseline of integrated gradients and occlusion."""
    base = nn.functional.avg_pool2d(x, 9, 1, 4, count_include_pad=False)
    return nn.functional.avg_pool2d(base, 9, 1, 4, count_include_pad=False)


def grad_cam(model: nn.Module, layer: nn.Module, images: torch.Tensor, targets: torch.Tensor,
             batch_size: int = 128) -> torch.Tensor:
    """N × H × W Grad-CAM (ReLU'd, bilinearly upsampled) of ``targets`` at ``layer`` for uint8 images."""
    model.eval()
    cam = LayerGradCam(model, layer)
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device).float() / 255
        attr = cam.attribute(x, target=targets[i:i + batch_size].tolist(), relu_attributions=True)
        out.append(LayerAttribution.interpolate(attr.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]
                   .cpu())
    return torch.cat(out)


def attribute(method: str, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, layer: str = "stages.1",
              ig_steps: int = 16, occlusion_window: int = 8, batch_size: int = 64) -> torch.Tensor:
    """N × H × W map of ``method`` for the logit of ``targets`` on uint8 ``images``.

    Post-processing, the same for every use: Grad-CAM is captum's ``LayerGradCam`` at
    ``layer`` with ``relu_attributions=True``, bilinearly upsampled; Guided Grad-CAM is
    captum's (guided backprop × that map, bilinear); integrated gradients (``ig_steps``
    Gauss-Legendre steps) and occlusion (``occlusion_window``-px squares at their own stride)
    start from the blurred copy; pixel maps are summed over colour channels and kept signed
    (positive: evidence for the class), so ranking puts counter-evidence last."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; known: {list(METHODS)}")
    net = attribution_copy(model)
    device = next(net.parameters()).device
    out = []
    with warnings.catch_warnings():  # captum's notes that it sets requires_grad and hooks ReLUs, as intended here
        warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations")
        for i in range(0, len(images), batch_size):
            out.append(_attribute_batch(method, net, images[i:i + batch_size].to(device).float() / 255,
                                        targets[i:i + batch_size].to(device), layer, ig_steps, occlusion_window,
                                        batch_size))
    return torch.cat(out)


def _attribute_batch(method: str, net: nn.Module, x: torch.Tensor, t: torch.Tensor, layer: str, ig_steps: int,
                     occlusion_window: int, batch_size: int) -> torch.Tensor:
    """One batch of ``attribute``: the captum call, then the channel sum."""
    if method == "gradcam":
        a = LayerGradCam(net, named_layer(net, layer)).attribute(x, target=t, relu_attributions=True)
        a = LayerAttribution.interpolate(a, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    elif method == "guided_gradcam":
        a = GuidedGradCam(net, named_layer(net, layer)).attribute(x, target=t, interpolate_mode="bilinear")
    elif method == "integrated_gradients":
        a = IntegratedGradients(net).attribute(x, baselines=blurred(x), target=t, n_steps=ig_steps,
                                               internal_batch_size=4 * batch_size)
    else:
        w = occlusion_window
        a = Occlusion(net).attribute(x, sliding_window_shapes=(3, w, w), strides=(3, w, w), baselines=blurred(x),
                                     target=t, perturbations_per_eval=4)
    return a.detach().sum(1).float().cpu()


def smooth_random_maps(n: int, size: int, cells: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """n × size × size random maps exactly as smooth as Grad-CAM's: uniform noise on the
    layer's cell grid, upsampled bilinearly as Grad-CAM is."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 1, *cells, generator=g)
    return LayerAttribution.interpolate(noise, (size, size), interpolate_mode="bilinear")[:, 0]


def centre_map(n: int, size: int, sigma: float = 0.25) -> torch.Tensor:
    """n copies of a centred Gaussian (``sigma`` in image sides): the prior that the object
    is in the middle, which Imagenette's framing makes a strong one."""
    c = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) / (sigma * size)
    g = torch.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / 2)
    return g.expand(n, size, size).clone()


def display_maps(maps: torch.Tensor) -> torch.Tensor:
    """Positive part over each map's maximum, in [0, 1]: what the overlays draw."""
    pos = maps.clamp_min(0)
    return pos / pos.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]


def stratified_sample(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of up to ``per_class`` images of each class, drawn at random (seeded):
    every class is scored, none dominates."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks).sort().values


def overlay_picks(labels: torch.Tensor, pred: torch.Tensor, correct: bool) -> list[int]:
    """Per class (in class order), the first image whose prediction is (``correct``) or is
    not the label; classes without one are skipped."""
    ok = pred == labels
    out = []
    for c in labels.unique().tolist():
        idx = ((labels == c) & (ok if correct else ~ok)).nonzero().flatten()
        if len(idx):
            out.append(int(idx[0]))
    return out


def predicted_class_cam(trained: Trained, images: torch.Tensor, split: str, stage: int = -1,
                        cache: Cache | None = None) -> torch.Tensor:
    """Grad-CAM of the model's own prediction (no label needed, so usable at test time) at a
    stage, for every image of a split: N × H × W, cached with the model."""
    cache = cache or trained.cache
    spec = {"model": trained.key, "split": split, "images": tensor_digest(images), "stage": stage, "target": "pred"}

    def compute() -> torch.Tensor:
        targets = trained.logits(ImageSet(images, torch.zeros(len(images), dtype=torch.long), []), split).argmax(1)
        return grad_cam(trained.model, stage_layer(trained.model, stage), images, targets)
    return cache.get_or_compute("cam", spec, compute, code=CAM_CODE)


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
    return cache.get_or_compute("patch_cam", spec, compute, code=(*CAM_CODE, "studies.patches.grid"))


def window_weights(trained: Trained, images: torch.Tensor, split: str, stage: int = -1
                   ) -> Callable[[Grid], torch.Tensor]:
    """``grid`` → ``patch_weights``' per-window Grad-CAM mass on ``images``: the Grad-CAM
    detector the patch chapter's background analysis calls once per grid."""
    return lambda grid: patch_weights(trained, images, split, grid, stage)["weights"]


def centre_share(maps: torch.Tensor, area: float = 0.25) -> torch.Tensor:
    """Per map, the share of its positive mass inside the central square covering ``area`` of
    the image: ``area`` for mass spread evenly, more where the evidence sits in the middle.
    Measures, rather than assumes, how central a data set's objects are (on model-free
    saliency maps) and where a model looks (on its Grad-CAM)."""
    if not 0 < area < 1:
        raise ValueError(f"area must lie strictly between 0 and 1, got {area}")
    n, h, w = maps.shape
    side_h, side_w = max(1, round(h * area ** 0.5)), max(1, round(w * area ** 0.5))
    top, left = (h - side_h) // 2, (w - side_w) // 2
    pos = maps.clamp_min(0).double()
    total = pos.flatten(1).sum(1)
    inside = pos[:, top:top + side_h, left:left + side_w].flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp_min(1e-300), torch.full_like(total, float("nan")))
