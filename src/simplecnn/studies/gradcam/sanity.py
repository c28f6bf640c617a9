"""Does the map change when the model does? Cascading model-parameter randomisation from
the top (Adebayo et al., 2018), with Spearman rank correlation and SSIM per step."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from simplecnn.studies.gradcam.faithfulness import interval
from simplecnn.studies.gradcam.maps import _body, attribute

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
    re-draws, top first: the head, each residual block from the last, then the stem; for
    the core's FastNet (the recipe a user's own data set may get), the head, each ConvGroup
    from the last, then the whitening stem."""
    body = _body(model)
    if all(hasattr(body, a) for a in ("stem", "stages", "head")):
        blocks = [f"stages.{i}.{j}" for i in reversed(range(len(body.stages)))
                  for j in reversed(range(len(body.stages[i])))]
        return ["head", *blocks, "stem"]
    if all(hasattr(body, a) for a in ("whiten", "body", "head")):
        groups = [f"body.{i}" for i in reversed(range(len(body.body))) if any(True for _ in body.body[i].parameters())]
        return ["head", *groups, "whiten"]
    raise ValueError(f"{type(body).__name__} has no cascade order: the cascading randomisation knows ResNets "
                     "(stem, stages, head) and FastNet (whiten, body, head)")


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
