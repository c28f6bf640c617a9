"""Saliency maps of the full-image CNN, and the checks that make a map worth reading.

captum computes the maps: ``LayerGradCam`` (ReLU'd, bilinearly upsampled), ``GuidedGradCam``,
``IntegratedGradients`` and ``Occlusion``. This module adds what captum lacks:

- faithfulness metrics: deletion and insertion curves against a blurred copy (Petsiuk et
  al., 2018) and ROAD's remove-and-debias with noisy linear imputation (Rong et al., 2022;
  pytorch-grad-cam ships it but is not a dependency, so it is written here), all scored on
  the model's probability of its own predicted class;
- reference maps a method must beat: a random map as smooth as Grad-CAM's and a centre
  prior, compared by paired bootstrap over images, against each and against the better one;
- sanity checks: cascading model-parameter randomisation from the top (Adebayo et al.,
  2018) with Spearman rank correlation and SSIM per step, and agreement with BagNet's
  window evidence as a rank correlation at window resolution.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict

import numpy as np
import torch
from captum.attr import GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion
from scipy.stats import spearmanr
from torch import nn

from simplecnn.core import metrics
from simplecnn.core.cache import Cache, tensor_digest
from simplecnn.core.data import ImageSet
from simplecnn.core.results import Headline
from simplecnn.core.train import Trained, autocast
from simplecnn.studies.patches import Grid, window_means

METHODS = ("gradcam", "guided_gradcam", "integrated_gradients", "occlusion")
REFERENCES = ("smooth_random", "centre")
BEST = "best_reference"  # the better of the references, chosen in each bootstrap resample
LABELS = {"gradcam": "Grad-CAM", "guided_gradcam": "Guided Grad-CAM", "integrated_gradients": "Integrated gradients",
          "occlusion": "Occlusion", "smooth_random": "smooth random", "centre": "centre prior",
          BEST: "best reference"}
# metric -> whether a larger value means a more faithful map
METRICS = {"deletion": False, "insertion": True, "road_morf": False, "road_lerf": True, "road": True}
METRIC_LABELS = {"deletion": "deletion AUC", "insertion": "insertion AUC", "road_morf": "ROAD MoRF",
                 "road_lerf": "ROAD LeRF", "road": "ROAD (LeRF − MoRF)/2"}


# --- layers --------------------------------------------------------------------------------

def _body(model: nn.Module) -> nn.Module:
    return model[1] if isinstance(model, nn.Sequential) else model


def stage_layer(model: nn.Module, stage: int) -> nn.Module:
    """The ``stage``-th residual stage (negative counts from the end) of a ``Normalize`` +
    ResNet model: the layers Grad-CAM reads."""
    body = _body(model)
    if not hasattr(body, "stages"):
        raise ValueError(f"{type(body).__name__} has no residual stages to take Grad-CAM at")
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


# --- maps ----------------------------------------------------------------------------------

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


# --- faithfulness --------------------------------------------------------------------------

def ranked_pixels(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Per image, the rank of every pixel in decreasing map value (0: most salient); ties
    (a centre prior's rings, a ReLU's zeros) are broken in a seeded random order, not in
    raster order, which would remove the top rows first."""
    flat = maps.flatten(1)
    perm = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(seed))
    order = perm[torch.sort(flat[:, perm], dim=1, descending=True, stable=True).indices]
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    return ranks.view_as(maps)


@torch.no_grad()
def class_probability(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax probability of ``targets`` for float images in [0, 1]."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        with autocast(device):
            logits = model(x[i:i + batch_size].to(device)).float()
        out.append(torch.softmax(logits, 1).gather(1, targets[i:i + batch_size, None].to(device))[:, 0].cpu())
    return torch.cat(out)


@torch.no_grad()
def predicted_classes(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The class the model (one plain forward, the function the maps explain) predicts."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(images[i:i + batch_size].to(device).float() / 255).argmax(1).cpu()
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def deletion_insertion(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor,
                       steps: int = 16, baseline: str = "blur", batch_size: int = 256,
                       seed: int = 0) -> dict[str, torch.Tensor]:
    """Probability of ``targets`` as the most salient pixels are removed (deletion: replaced by
    the baseline) or added to the baseline (insertion), at ``steps`` + 1 fractions from 0 to 1.

    A faithful map makes deletion fall fast (low area) and insertion rise fast (high area).
    The baseline is a heavily blurred copy of the image, or ``"zero"`` for black."""
    x = images.float() / 255
    if baseline == "blur":
        base = blurred(x)
    elif baseline == "zero":
        base = torch.zeros_like(x)
    else:
        raise ValueError(f"unknown baseline {baseline!r}; use 'blur' or 'zero'")
    ranks = ranked_pixels(maps, seed)[:, None]
    n_pixels = maps[0].numel()
    fractions = torch.linspace(0, 1, steps + 1)
    full, empty = class_probability(model, x, targets, batch_size), class_probability(model, base, targets, batch_size)
    curves = {"deletion": torch.empty(len(x), steps + 1), "insertion": torch.empty(len(x), steps + 1)}
    curves["deletion"][:, 0], curves["insertion"][:, 0] = full, empty
    curves["deletion"][:, -1], curves["insertion"][:, -1] = empty, full
    for k in range(1, steps):
        top = ranks < int(round(float(fractions[k]) * n_pixels))
        curves["deletion"][:, k] = class_probability(model, torch.where(top, base, x), targets, batch_size)
        curves["insertion"][:, k] = class_probability(model, torch.where(top, x, base), targets, batch_size)
    curves["fractions"] = fractions
    return curves


def image_auc(curves: torch.Tensor, fractions: torch.Tensor) -> np.ndarray:
    """Per image, the area under its curve (trapezoids); their mean is ``curve_auc``."""
    return torch.trapezoid(curves, fractions, dim=1).double().numpy()


def curve_auc(curve: torch.Tensor, fractions: torch.Tensor) -> float:
    """Area under the mean curve over the fraction of pixels (trapezoids)."""
    return float(torch.trapezoid(curve.mean(0), fractions))


# ROAD's neighbour weights: direct neighbours 1/6, diagonal ones 1/12
_ROAD_KERNEL = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]])


def _laplace_fill(x: torch.Tensor, m: torch.Tensor, iterations: int, tol: float) -> torch.Tensor:
    """Solve ROAD's system on ``m`` (1: removed) for N × C × H × W ``x`` by conjugate
    gradients, started from the same problem solved at half resolution (cascadic multigrid):
    the smooth part of the answer comes cheap from the coarse level, so a few fine
    iterations suffice where a cold start needs hundreds."""
    c = x.shape[1]
    k = _ROAD_KERNEL.to(x)[None, None].expand(c, 1, 3, 3).contiguous()
    x, m = (t.contiguous(memory_format=torch.channels_last) for t in (x, m))  # the grouped conv's fast layout

    def neighbours(v):
        return nn.functional.conv2d(v, k, padding=1, groups=c)

    if min(x.shape[-2:]) > 4:
        kept = 1 - m
        share = nn.functional.avg_pool2d(kept, 2, ceil_mode=True)
        coarse_x = nn.functional.avg_pool2d(x * kept, 2, ceil_mode=True) / share.clamp_min(1e-12)
        coarse = _laplace_fill(coarse_x, (share == 0).to(x), iterations, tol)
        start = nn.functional.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False)
    else:  # the smallest level: each removed pixel starts at the mean of the kept ones
        start = ((x * (1 - m)).sum((2, 3), keepdim=True) / (1 - m).sum((2, 3), keepdim=True).clamp_min(1)).expand_as(x)
    degree = neighbours(torch.ones_like(x))

    def op(v):  # ROAD's system on the removed pixels: a weighted graph Laplacian, symmetric positive definite
        return m * (degree * v - neighbours(v * m))

    b = m * neighbours(x * (1 - m))
    v = m * start
    r = b - op(v)
    p = r
    rs = (r * r).sum((2, 3), keepdim=True)
    scale = (b * b).sum((2, 3), keepdim=True).clamp_min(1e-12)
    for _ in range(iterations):
        if bool((rs <= tol ** 2 * scale).all()):
            break
        ap = op(p)
        alpha = rs / (p * ap).sum((2, 3), keepdim=True).clamp_min(1e-20)
        v = v + alpha * p
        r = r - alpha * ap
        rs_new = (r * r).sum((2, 3), keepdim=True)
        p = r + (rs_new / rs.clamp_min(1e-20)) * p
        rs = rs_new
    return torch.where(m.bool(), v, x)


def noisy_linear_impute(x: torch.Tensor, removed: torch.Tensor, noise: float = 0.01, seed: int = 0,
                        iterations: int = 20, tol: float = 1e-3) -> torch.Tensor:
    """ROAD's noisy linear imputation: each removed pixel becomes the weighted mean of its
    eight neighbours (kept pixels fixed; direct neighbours weigh 1/6, diagonal ones 1/12),
    plus Gaussian noise of std ``noise``.

    ``x``: N × C × H × W floats; ``removed``: N × H × W booleans. ROAD's code calls a sparse
    solver per image (about 20 ms at 64 px here); this solves all images and channels at
    once, by conjugate gradients from a coarse-to-fine start, to a relative residual of
    ``tol`` or ``iterations`` steps per level. Every image must keep at least one pixel."""
    if removed.flatten(1).all(1).any():
        raise ValueError("noisy linear imputation needs at least one kept pixel per image; remove fewer pixels")
    m = removed[:, None].to(x.dtype).expand_as(x).contiguous()
    out = _laplace_fill(x, m, iterations, tol)
    if noise:
        g = torch.Generator(device=x.device).manual_seed(seed)
        out = torch.where(m.bool(), out + noise * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype),
                          out)
    return out


@torch.no_grad()
def road(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor,
         fractions: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9), noise: float = 0.01, seed: int = 0,
         batch_size: int = 256) -> dict[str, torch.Tensor]:
    """ROAD remove-and-debias: probability of ``targets`` after imputing the most relevant
    (``morf``, lower is more faithful) or least relevant (``lerf``, higher) share of pixels,
    per image (N × len(fractions)). Imputation, not a blur, so that the pattern of removed
    pixels carries no class information of its own."""
    fractions = [float(f) for f in fractions]
    if not all(0 < f < 1 for f in fractions):
        raise ValueError(f"ROAD fractions must lie strictly between 0 and 1, got {fractions}")
    x = images.float() / 255
    ranks = ranked_pixels(maps, seed)
    n_pixels = maps[0].numel()
    out = {"morf": torch.empty(len(x), len(fractions)), "lerf": torch.empty(len(x), len(fractions))}
    for k, f in enumerate(fractions):
        cut = int(round(f * n_pixels))
        for name, removed in (("morf", ranks < cut), ("lerf", ranks >= n_pixels - cut)):
            parts = [noisy_linear_impute(x[i:i + batch_size], removed[i:i + batch_size], noise, seed + k)
                     for i in range(0, len(x), batch_size)]
            out[name][:, k] = class_probability(model, torch.cat(parts), targets, batch_size)
    out["fractions"] = torch.tensor(fractions)
    return out


def faithfulness(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor,
                 steps: int = 16, road_fractions: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
                 road_noise: float = 0.01, seed: int = 0) -> dict:
    """Every metric of ``METRICS`` per image (numpy, N), and the mean curves to draw."""
    c = deletion_insertion(model, images, targets, maps, steps, "blur", seed=seed)
    r = road(model, images, targets, maps, road_fractions, road_noise, seed)
    morf, lerf = r["morf"].double().mean(1).numpy(), r["lerf"].double().mean(1).numpy()
    return {"scores": {"deletion": image_auc(c["deletion"], c["fractions"]),
                       "insertion": image_auc(c["insertion"], c["fractions"]),
                       "road_morf": morf, "road_lerf": lerf, "road": (lerf - morf) / 2},
            "curves": {"fractions": c["fractions"].tolist(), "deletion": c["deletion"].mean(0).tolist(),
                       "insertion": c["insertion"].mean(0).tolist(), "road_fractions": r["fractions"].tolist(),
                       "road_morf": r["morf"].mean(0).tolist(), "road_lerf": r["lerf"].mean(0).tolist()}}


# --- comparisons ---------------------------------------------------------------------------

def interval(values: np.ndarray, counts: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Mean of per-image ``values`` and its bootstrap CI over the resamples ``counts``."""
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    if not ok.any():  # e.g. rank correlations of maps that are all constant
        return {"value": float("nan"), "low": float("nan"), "high": float("nan")}
    c = counts[:, ok]
    low, high = metrics.confidence_interval(c @ values[ok] / c.sum(1), level)
    return {"value": float(values[ok].mean()), "low": low, "high": high}


def compare(scores: dict[str, dict[str, np.ndarray]], methods: Sequence[str], references: Sequence[str],
            higher_is_better: dict[str, bool], counts: np.ndarray, level: float = 0.95) -> list[dict]:
    """One row per method × reference (each, and ``BEST``: in every resample the reference
    that scores better there) × metric: the method's and the reference's mean and the
    paired bootstrap CI of their difference. ``beats``: the CI lies wholly on the good side.

    ``scores[name][metric]`` holds per-image values over the same images (NaN: left out)."""
    def resampled_means(v: np.ndarray) -> np.ndarray:  # NaN images are left out of each resample
        v = np.asarray(v, dtype=np.float64)
        ok = ~np.isnan(v)
        return counts @ np.where(ok, v, 0.0) / (counts @ ok).clip(min=1)

    rows = []
    for metric, higher in higher_is_better.items():
        means = {k: resampled_means(scores[k][metric]) for k in [*methods, *references]}
        stacked = np.stack([means[r] for r in references])
        best = stacked.max(0) if higher else stacked.min(0)
        point = {r: float(np.nanmean(scores[r][metric])) for r in references}
        best_point = max(point.values()) if higher else min(point.values())
        for m in methods:
            value = float(np.nanmean(scores[m][metric]))
            for ref in [*references, BEST]:
                resampled = best if ref == BEST else means[ref]
                ref_value = best_point if ref == BEST else point[ref]
                low, high = metrics.confidence_interval(means[m] - resampled, level)
                good = low > 0 if higher else high < 0
                worse = high < 0 if higher else low > 0
                rows.append({"method": m, "reference": ref, "metric": metric, "higher_is_better": higher,
                             "value": value, "reference_value": ref_value, "difference": value - ref_value,
                             "low": low, "high": high, "beats": bool(good), "loses": bool(worse)})
    return rows


def score_rows(scores: dict[str, dict[str, np.ndarray]], counts: np.ndarray, level: float = 0.95) -> list[dict]:
    """One row per map × metric: its mean over images with a bootstrap CI."""
    return [{"map": name, "metric": metric, **interval(v, counts, level)}
            for name, per_metric in scores.items() for metric, v in per_metric.items()]


WHY = {"centre": "Imagenette frames its objects in the middle, so 'look at the centre' already orders the "
                 "pixels well; a map must find the object better than that to win",
       "smooth_random": "the map orders pixels no better than smooth noise of its own resolution: at this layer "
                        "it does not carry the evidence the model uses",
       BEST: "no single map of the references is beaten, see the two rows above"}


def checks(rows: list[dict], method: str = "gradcam", references: Sequence[str] = REFERENCES) -> list[dict]:
    """The chapter's faithfulness checks for ``method``: its insertion AUC above each
    reference's and its deletion AUC below. Each says whether it is resolved, and if not
    whether the CI straddles zero (too few images to tell) or the reference wins (and why)."""
    out = []
    for metric, word in (("insertion", "above"), ("deletion", "below")):
        for ref in references:
            r = next((r for r in rows if (r["method"], r["reference"], r["metric"]) == (method, ref, metric)), None)
            if r is None:
                raise ValueError(f"no comparison of {method} with {ref} on {metric}; compare() them first")
            claim = f"{LABELS[method]}'s {METRIC_LABELS[metric]} is {word} the {LABELS[ref]}'s"
            diff = f"difference {r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
            if r["beats"]:
                status, text = "resolved", f"{claim} ({diff}): resolved."
            elif r["loses"]:
                status, text = "reversed", f"{claim}? No, the opposite holds ({diff}): {WHY[ref]}."
            else:
                status, text = "unresolved", (f"{claim}? Not resolved ({diff}): the interval includes zero, so "
                                              f"these images cannot tell the two apart.")
            out.append({"claim": claim, "metric": metric, "reference": ref, "status": status, "text": text,
                        "difference": r["difference"], "low": r["low"], "high": r["high"]})
    return out


def sanity_check(rows: list[dict], method: str = "gradcam", max_corr: float = 0.5) -> dict:
    """The map must change when the model does: at full randomisation (the last step) the
    upper CI bound of the trained-vs-randomised rank correlation is below ``max_corr``."""
    last = max(r["step"] for r in rows)
    r = next(r for r in rows if (r["step"], r["method"], r["metric"]) == (last, method, "spearman"))
    claim = f"{LABELS[method]}'s map changes when every layer is randomised (Spearman ρ below {max_corr:.2f})"
    ci = f"ρ = {r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
    if r["high"] < max_corr:
        status, text = "resolved", f"{claim}: {ci}, resolved."
    elif r["low"] >= max_corr:
        status, text = "reversed", (f"{claim}? No: {ci}; the map survives the loss of the weights, so it shows the "
                                    f"image (its edges and colours), not what the model learnt.")
    else:
        status, text = "unresolved", f"{claim}? Not resolved: {ci} straddles the bound; more images would tell."
    return {"claim": claim, "metric": "randomisation", "reference": "", "status": status, "text": text,
            "difference": r["value"], "low": r["low"], "high": r["high"]}


def cells_check(cells: tuple[int, int], minimum: int = 8) -> dict:
    """Grad-CAM's layer has at least ``minimum`` × ``minimum`` cells: enough to rank pixels."""
    claim = f"the Grad-CAM layer has at least {minimum}×{minimum} cells"
    ok = min(cells) >= minimum
    text = (f"{claim} ({cells[0]}×{cells[1]}): resolved." if ok else
            f"{claim}? No, {cells[0]}×{cells[1]}: at this input size the map has too few cells to order "
            f"pixels, so its faithfulness scores say little; take an earlier layer or a larger input.")
    return {"claim": claim, "metric": "cells", "reference": "", "status": "resolved" if ok else "reversed",
            "text": text, "difference": float(min(cells)), "low": None, "high": None}


def summary_of(rows: list[dict], key: str = "map") -> dict[str, dict[str, dict]]:
    """Rows of ``score_rows`` as metric -> map -> {value, low, high}."""
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        out.setdefault(r["metric"], {})[r[key]] = {k: r[k] for k in ("value", "low", "high")}
    return out


def results_doc(setting: dict, scores: list[dict], comparisons: list[dict], curves: dict, sanity: list[dict],
                agreement: list[dict], agreement_comparisons: list[dict], checks_: list[dict],
                regions: list[dict]) -> dict:
    """The chapter's results json: every row it shows, and the headline keys under stable
    names (``deletion_auc``, ``insertion_auc``, ``road``, ``randomisation_rank_corr``,
    ``bagnet_agreement``: map -> {value, low, high})."""
    by_metric = summary_of(scores)
    last = max(r["step"] for r in sanity)
    return {"setting": setting, "scores": scores, "comparisons": comparisons, "curves": curves,
            "deletion_auc": by_metric["deletion"], "insertion_auc": by_metric["insertion"],
            "road_morf": by_metric["road_morf"], "road_lerf": by_metric["road_lerf"], "road": by_metric["road"],
            "randomisation": sanity,
            "randomisation_rank_corr": {r["method"]: {k: r[k] for k in ("value", "low", "high")} for r in sanity
                                        if r["step"] == last and r["metric"] == "spearman"},
            "bagnet_agreement": summary_of(agreement)["bagnet_agreement"], "bagnet_comparisons": agreement_comparisons,
            "checks": checks_, "regions": regions}


# --- sanity checks ---------------------------------------------------------------------------

def rank_correlations(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman correlation between ``a[i]`` and ``b[i]`` (flattened), per image; NaN where
    one map is constant."""
    a, b = a.flatten(1).double().numpy(), b.flatten(1).double().numpy()
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        if a[i].std() > 0 and b[i].std() > 0:
            out[i] = spearmanr(a[i], b[i]).statistic
    return out


def ssim(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5, data_range: float = 1.0) -> np.ndarray:
    """Structural similarity (Wang et al., 2004: Gaussian window of ``sigma``, K1 = 0.01,
    K2 = 0.03) of N × H × W maps, per image (scikit-image is not a dependency)."""
    radius = int(3.5 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-t ** 2 / (2 * sigma ** 2))
    w = w / w.sum()

    def filt(v):
        v = nn.functional.conv2d(v, w.view(1, 1, 1, -1))
        return nn.functional.conv2d(v, w.view(1, 1, -1, 1))

    x, y = a[:, None].double(), b[:, None].double()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.mean((1, 2, 3)).numpy()


def unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Each map rescaled to [0, 1] (min to max; a constant map becomes 0)."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    return (maps - lo) / (hi - lo).clamp_min(1e-12)


def randomise_(module: nn.Module) -> None:
    """Re-draw ``module``'s learnt parameters as at initialisation (convs: He normal, the
    model's own init; linear layers: their default; BN: unit scale, zero shift, fresh
    statistics). Zero-init residual scales are not restored: a zeroed block would be
    removed, not randomised."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            m.reset_parameters()
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture with every learnt layer re-initialised (the cascading
    randomisation's end point); ``Normalize`` statistics are kept."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        randomise_(_body(clone))
    return clone.eval()


def cascade_blocks(model: nn.Module) -> list[str]:
    """Names (in the network behind ``Normalize``) of the blocks the cascading randomisation
    re-draws, top first: the head, each residual block from the last, then the stem."""
    body = _body(model)
    if not all(hasattr(body, a) for a in ("stem", "stages", "head")):
        raise ValueError(f"{type(body).__name__} is not a ResNet with stem, stages and head: no cascade order")
    blocks = [f"stages.{i}.{j}" for i in reversed(range(len(body.stages)))
              for j in reversed(range(len(body.stages[i])))]
    return ["head", *blocks, "stem"]


def cascading_randomisation(model: nn.Module, seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """(block, copy of ``model`` with that block and every one above it re-drawn), from the top."""
    clone = copy.deepcopy(model).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in cascade_blocks(clone):
            randomise_(_body(clone).get_submodule(name))
            yield name, copy.deepcopy(clone)


def sanity_rows(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, methods: Sequence[str],
                counts: np.ndarray, seed: int = 0, level: float = 0.95, options: dict | None = None,
                mapper: Callable[[str, nn.Module], torch.Tensor] | None = None) -> list[dict]:
    """Cascading randomisation: per step and method, the trained and the randomised model's
    maps (same images, same target classes) compared by Spearman ρ of the signed and of the
    absolute maps and by SSIM of the [0, 1]-rescaled absolute maps, mean with bootstrap CI.
    ``mapper(method, model)`` makes the maps (default: ``attribute`` with ``options``)."""
    mapper = mapper or (lambda m, net: attribute(m, net, images, targets, **(options or {})))
    trained = {m: mapper(m, model) for m in methods}
    rows = []
    for step, (block, net) in enumerate(cascading_randomisation(model, seed)):
        for m in methods:
            new = mapper(m, net)
            for name, v in (("spearman", rank_correlations(trained[m], new)),
                            ("spearman_abs", rank_correlations(trained[m].abs(), new.abs())),
                            ("ssim", ssim(unit_range(trained[m].abs()), unit_range(new.abs())))):
                rows.append({"step": step, "block": block, "method": m, "metric": name,
                             **interval(v, counts, level)})
    return rows


# --- BagNet, overlays, regions -----------------------------------------------------------------

def bagnet_agreement(maps: torch.Tensor, evidence: torch.Tensor, grid: Grid) -> np.ndarray:
    """Per image, Spearman ρ between the map's mean over each window of ``grid`` and BagNet's
    evidence (N × side × side) there: agreement at window resolution, no threshold."""
    return rank_correlations(window_means(maps, grid), evidence)


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


def region_rows(probs: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, share: float) -> list[dict]:
    """Patch classifier scores on object and background windows: the ``share`` of each image's
    windows with the highest map weight are object. ``probs``: N × side × side × classes,
    ``weights``: N × side × side."""
    w = weights.flatten(1)
    k = max(1, int(round(share * w.shape[1])))
    is_object = torch.zeros_like(w, dtype=torch.bool)
    is_object.scatter_(1, w.topk(k, 1).indices, True)
    p = probs.flatten(1, 2)
    y = labels[:, None].expand(-1, p.shape[1])
    rows = []
    for region, mask in (("object", is_object), ("background", ~is_object)):
        acc = metrics.accuracy(p[mask], y[mask])
        rows.append({"region": region, "patch_acc": acc, "patch_auc": metrics.macro_auc(p[mask], y[mask]),
                     "wrong_votes": 1 - acc})
    return rows


# --- cached maps for the fusion chapter --------------------------------------------------------

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


# --- headline ----------------------------------------------------------------------------------

def headline(results: dict) -> list[Headline]:
    """Grad-CAM's faithfulness (insertion and deletion AUC, ROAD), each against the better of
    the reference maps, its map change under full randomisation and its agreement with BagNet."""
    s = results["setting"]
    ci = f"{s['level']:.0%} bootstrap CI over test images"
    where = (f"{s['dataset']} test, {s['n_images']} images (stratified), {s['resolution']} px, "
             f"{s['layer']} ({s['cells'][0]}×{s['cells'][1]} cells), p(predicted class)")
    rows = []
    for metric in ("insertion", "deletion", "road"):
        key = {"insertion": "insertion_auc", "deletion": "deletion_auc", "road": "road"}[metric]
        v = results[key]["gradcam"]
        rows.append(Headline(f"Grad-CAM {METRIC_LABELS[metric]}", v["value"], v["low"], v["high"], ci,
                             f"{where}; {'higher' if METRICS[metric] else 'lower'} is more faithful"))
        d = next(r for r in results["comparisons"]
                 if (r["method"], r["reference"], r["metric"]) == ("gradcam", BEST, metric))
        rows.append(Headline(f"Grad-CAM {METRIC_LABELS[metric]} − best reference map", d["difference"], d["low"],
                             d["high"], f"{s['level']:.0%} paired bootstrap CI, best reference re-chosen per resample",
                             where))
    r = results["randomisation_rank_corr"]["gradcam"]
    rows.append(Headline("Grad-CAM rank correlation, trained vs fully randomised model", r["value"], r["low"], r["high"],
                         ci, f"Spearman ρ per image, {s['dataset']} test, {s['sanity_images']} images; near 1: the map "
                             f"ignores the weights", 0.0, "what an explanation of the model should approach"))
    b = results["bagnet_agreement"]["gradcam"]
    rows.append(Headline(f"Grad-CAM agreement with BagNet-{s['agreement_q']} evidence", b["value"], b["low"], b["high"],
                         ci, f"Spearman ρ over windows per image, {s['dataset']} test, {s['n_images']} images"))
    return rows
