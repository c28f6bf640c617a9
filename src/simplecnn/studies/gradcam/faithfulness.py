"""Is a map faithful to the model? Deletion and insertion curves against a blurred copy
(Petsiuk et al., 2018) and ROAD's remove-and-debias with noisy linear imputation (Rong et
al., 2022), all on the model's probability of its own predicted class, and each method
compared with the reference maps by paired bootstrap over images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from simplecnn.core import metrics
from simplecnn.core.train import autocast
from simplecnn.studies.gradcam.maps import BEST, blurred

# metric -> whether a larger value means a more faithful map
METRICS = {"deletion": False, "insertion": True, "road_morf": False, "road_lerf": True, "road": True}
METRIC_LABELS = {"deletion": "deletion AUC", "insertion": "insertion AUC", "road_morf": "ROAD MoRF",
                 "road_lerf": "ROAD LeRF", "road": "ROAD (LeRF − MoRF)/2"}


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
