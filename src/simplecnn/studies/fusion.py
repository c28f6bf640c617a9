"""Decision fusion: from per-window class probabilities to one score per class and image.

Every rule takes probabilities N × side × side × classes and a ``Context`` (the grid, the
windows' Grad-CAM weights, a rule's parameters) and returns image scores N × classes (rows
summing to 1, except the unnormalised geometric mean), so accuracy and one-vs-rest AUC
apply to all rules alike. Note that the
normalised geometric mean equals the softmax of the mean patch logit, BagNet's own rule:
log p = logit − logsumexp(logit), and the subtracted term is the same for every class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from simplecnn.core.metrics import normalised_entropy
from simplecnn.studies.patches import Grid

EPS = 1e-12


@dataclass
class Context:
    grid: Grid
    cam: torch.Tensor | None = None  # N × side × side window means of the predicted-class Grad-CAM
    sigma: float = 0.5  # centre weighting: Gaussian σ in units of the image side
    top_k: int = 5  # windows kept by the top-k rule
    cam_share: float = 0.3  # share of windows kept by the CAM mask
    learned: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)


def _normalise(scores: torch.Tensor) -> torch.Tensor:
    return scores / scores.sum(1, keepdim=True).clamp_min(EPS)


def _weighted(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean over windows; weights N × side × side (or side × side, shared)."""
    w = weights.expand(probs.shape[:3]).flatten(1)
    return _normalise((probs.flatten(1, 2) * w[..., None]).sum(1))


def majority(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Share of windows voting for each class (ties split by the mean probability)."""
    votes = torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).float().flatten(1, 2).mean(1)
    return _normalise(votes + 1e-3 * probs.flatten(1, 2).mean(1))


def mean_prob(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    return probs.flatten(1, 2).mean(1)


def mean_logit(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """softmax of the mean log-probability: BagNet's mean logit, the normalised geometric mean."""
    return torch.softmax(probs.clamp_min(EPS).log().flatten(1, 2).mean(1), 1)


def geometric_mean(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """The geometric mean left unnormalised per image: same ranking within an image as
    ``mean_logit``, different across images (so a different AUC)."""
    return probs.clamp_min(EPS).log().flatten(1, 2).mean(1).exp()


def centre_weights(grid: Grid, sigma: float) -> torch.Tensor:
    """Gaussian weight of each window by the distance of its centre from the image centre,
    distances and σ in units of the image side."""
    if sigma <= 0:
        raise ValueError(f"centre weighting needs σ > 0, got {sigma}")
    d = (grid.centres() - (grid.size - 1) / 2).norm(dim=-1) / grid.size
    return torch.exp(-d ** 2 / (2 * sigma ** 2))


def centre(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    return _weighted(probs, centre_weights(ctx.grid, ctx.sigma))


def confidence(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Windows weighted by their top probability."""
    return _weighted(probs, probs.max(-1).values)


def certainty(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Windows weighted by one minus their normalised entropy (negative entropy, shifted ≥ 0)."""
    return _weighted(probs, 1 - normalised_entropy(probs))


def top_k(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Mean over the k windows with the highest top probability."""
    flat = probs.flatten(1, 2)
    k = min(ctx.top_k, flat.shape[1])
    keep = flat.max(-1).values.topk(k, 1).indices
    return flat.gather(1, keep[..., None].expand(-1, -1, flat.shape[-1])).mean(1)


def _cam(ctx: Context) -> torch.Tensor:
    if ctx.cam is None:
        raise ValueError("CAM rules need Grad-CAM window weights: run the gradcam chapter first (its cache)")
    return ctx.cam


def cam_weighted(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    return _weighted(probs, _cam(ctx) + EPS)


def cam_masked(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Mean over the ``cam_share`` of windows with the highest Grad-CAM."""
    cam = _cam(ctx).flatten(1)
    k = max(1, int(round(ctx.cam_share * cam.shape[1])))
    mask = torch.zeros_like(cam).scatter_(1, cam.topk(k, 1).indices, 1.0)
    return _weighted(probs, mask.view_as(_cam(ctx)))


def pooled_features(probs: torch.Tensor, regions: int = 2) -> np.ndarray:
    """Window probabilities averaged over the whole image and over a regions × regions layout."""
    x = probs.permute(0, 3, 1, 2)
    pooled = [x.mean((2, 3)), torch.nn.functional.adaptive_avg_pool2d(x, regions).flatten(1)]
    return torch.cat(pooled, 1).numpy()


def fit_learned(probs: torch.Tensor, labels: torch.Tensor, c: float = 1.0, seed: int = 0):
    """A logistic regression over spatially pooled window probabilities (fit on validation only)."""
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(pooled_features(probs), labels.numpy())
    return lambda p: torch.from_numpy(clf.predict_proba(pooled_features(p))).float()


def learned(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    if ctx.learned is None:
        raise ValueError("the learned rule must be fitted on validation first (fusion.fit_learned)")
    return ctx.learned(probs)


RULES: dict[str, Callable[[torch.Tensor, Context], torch.Tensor]] = {
    "majority": majority, "mean_prob": mean_prob, "mean_logit": mean_logit, "geometric_mean": geometric_mean,
    "centre": centre, "confidence": confidence, "certainty": certainty, "top_k": top_k,
    "cam_weighted": cam_weighted, "cam_masked": cam_masked, "learned": learned,
}


def fuse(rule: str, probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    if rule not in RULES:
        raise ValueError(f"unknown fusion rule {rule!r}; known: {sorted(RULES)}")
    return RULES[rule](probs.float(), ctx)
