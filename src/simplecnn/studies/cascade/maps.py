"""Threshold maps: a cascade's accuracy, expected cost and exits over a grid of thresholds,
for any number of stages, as broadcasts over cached per-stage scores; the Pareto front; and
the cascade run as deployed (``classify``)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch

from simplecnn.core.train import predict
from simplecnn.studies.cascade.scores import exit_score


def _grid_dims(scores: list, correct: list, stage_cost: list, thresholds: list[torch.Tensor]) -> list[int]:
    """The threshold axes' lengths, after checking that the stages' inputs agree."""
    n = len(scores)
    if not (len(correct) == len(stage_cost) == n and len(thresholds) == n - 1):
        raise ValueError(f"{n} stages need {n} scores, correctness vectors and costs, and {n - 1} threshold grids")
    for t in thresholds:
        check_thresholds(t)
    return [len(t) for t in thresholds]


def check_thresholds(thresholds: torch.Tensor) -> None:
    if ((thresholds < 0) | (thresholds > 1)).any():
        raise ValueError("thresholds must lie in [0, 1] (a confidence above δ_p leaves at stage p); got "
                         f"values from {thresholds.min():.3g} to {thresholds.max():.3g}")


def simulate(scores: list[torch.Tensor], correct: list[torch.Tensor], stage_cost: list[float],
             thresholds: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accuracy, expected cost and the share of images leaving at each stage, for every
    combination of thresholds.

    ``scores[p]`` and ``correct[p]`` are per image (N); ``thresholds[p]`` is the grid of δ_p
    for the first n - 1 stages (the last stage takes every image that reaches it). Results
    have one axis per threshold (G_0 × … × G_{n-2}), plus a stage axis first for
    ``stage_fractions``.
    """
    n = len(scores)
    dims = _grid_dims(scores, correct, stage_cost, thresholds)
    reach = torch.ones(*dims, len(scores[0]))  # images still in the cascade before stage p
    acc = torch.zeros(dims)
    cost = torch.zeros(dims)
    fractions = []
    for p in range(n):
        cost += stage_cost[p] * reach.mean(-1)
        if p < n - 1:
            leaves = (scores[p][None, :] >= thresholds[p][:, None]).float()  # G_p × N
            leave = reach * leaves.view(*[dims[p] if k == p else 1 for k in range(n - 1)], -1)
        else:
            leave = reach
        acc += (leave * correct[p].float()).mean(-1)
        fractions.append(leave.mean(-1))
        reach = reach - leave
    return {"acc": acc, "cost": cost, "stage_fractions": torch.stack(fractions)}


def pareto_front(acc: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats in both accuracy (higher) and cost (lower),
    sorted by cost."""
    order = np.lexsort((-acc, cost))
    front, best = [], -np.inf
    for i in order:
        if acc[i] > best:
            front.append(i)
            best = acc[i]
    return np.asarray(front, dtype=int)


def choose_thresholds(acc: torch.Tensor, cost: torch.Tensor, target: float,
                      tol: float = 1e-6) -> tuple[int, ...] | None:
    """Grid index of the cheapest threshold combination reaching accuracy ``target`` (None: none
    does); ``tol`` absorbs float rounding, far below one image's share of accuracy."""
    ok = acc >= target - tol
    if not ok.any():
        return None
    masked = torch.where(ok, cost, torch.full_like(cost, float("inf")))
    flat = int(masked.argmin())
    return tuple(int(i) for i in np.unravel_index(flat, tuple(acc.shape)))


def evaluate_thresholds(scores: list[torch.Tensor], correct: list[torch.Tensor], stage_cost: list[float],
                        deltas: list[float]) -> dict:
    """The cascade at one threshold combination: accuracy, expected cost, stage fractions."""
    out = simulate(scores, correct, stage_cost, [torch.tensor([d], dtype=torch.float32) for d in deltas])
    index = (0,) * len(deltas)
    return {"acc": float(out["acc"][index]), "cost": float(out["cost"][index]),
            "stage_fractions": [float(f[index]) for f in out["stage_fractions"]]}


@torch.no_grad()
def classify(models: list[torch.nn.Module], images: list[torch.Tensor], deltas: list[float],
             score: str | list[Callable[[torch.Tensor], torch.Tensor]] = "max_prob",
             batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the cascade as deployed: each stage on the images still in it, in batches; returns
    the predicted class and the exit stage of every image. ``images[p]`` holds the same
    images at stage p's resolution; ``score`` is an exit score's name or one callable per
    stage from logits to exit scores (a calibrated score, a learned gate)."""
    scorers = [lambda out: exit_score(out, score)] * len(models) if isinstance(score, str) else list(score)
    if len(scorers) < len(models) - 1:
        raise ValueError(f"{len(models)} stages need at least {len(models) - 1} exit scorers, got {len(scorers)}")
    if not (len(models) == len(images) == len(deltas) + 1):
        raise ValueError(f"{len(models)} models need {len(models)} image sets and {len(models) - 1} thresholds")
    check_thresholds(torch.tensor(deltas, dtype=torch.float32))
    n = len(images[0])
    remaining = torch.arange(n)
    preds, exits = torch.full((n,), -1), torch.full((n,), -1)
    for p, (model, imgs) in enumerate(zip(models, images)):
        if not len(remaining):
            break
        out = predict(model, imgs[remaining], batch_size=batch_size)
        leave = (scorers[p](out) >= deltas[p]) if p < len(deltas) else torch.ones(len(out), dtype=torch.bool)
        preds[remaining[leave]] = out[leave].argmax(1)
        exits[remaining[leave]] = p
        remaining = remaining[~leave]
    return preds, exits


def threshold_grid(size: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """``size`` thresholds evenly from ``low`` to ``high``; 1.0 sends (almost) everything on."""
    check_thresholds(torch.tensor([low, high]))
    return torch.linspace(low, high, size)


def frontier_table(acc: torch.Tensor, cost: torch.Tensor, thresholds: list[torch.Tensor]) -> pd.DataFrame:
    """The Pareto-optimal threshold combinations of a map, with their δs."""
    a, c = acc.flatten().numpy(), cost.flatten().numpy()
    front = pareto_front(a, c)
    idx = np.unravel_index(front, tuple(acc.shape))
    table = pd.DataFrame({"acc": a[front], "cost": c[front]})
    for p, t in enumerate(thresholds):
        table[f"delta_{p}"] = t.numpy()[idx[p]]
    return table


def fine_grid(*grids: torch.Tensor) -> torch.Tensor:
    """The sorted union of threshold grids (the coarse map and its zoom): selection searches
    every threshold the maps drew, not only the coarse ones."""
    return torch.unique(torch.cat([g.flatten().float() for g in grids]))


def outcomes(scores: list[torch.Tensor], correct: list[torch.Tensor], stage_cost: list[float],
             thresholds: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per image and threshold combination: whether the stage it leaves at is right, what it
    paid, and that stage (shape G_0 × … × G_{n-2} × N). Bootstraps weight these per image."""
    n = len(scores)
    dims = _grid_dims(scores, correct, stage_cost, thresholds)
    reach = torch.ones(*dims, len(scores[0]))
    right, paid, exit_at = torch.zeros_like(reach), torch.zeros_like(reach), torch.zeros_like(reach)
    for p in range(n):
        paid += stage_cost[p] * reach
        if p < n - 1:
            leaves = (scores[p][None, :] >= thresholds[p][:, None]).float()
            leave = reach * leaves.view(*[dims[p] if k == p else 1 for k in range(n - 1)], -1)
        else:
            leave = reach
        right += leave * correct[p].float()
        exit_at += p * leave
        reach = reach - leave
    return {"correct": right, "cost": paid, "exit": exit_at.long()}


def point_outcomes(scores: list[torch.Tensor], correct: list[torch.Tensor], stage_cost: list[float],
                   deltas: list[float]) -> dict[str, np.ndarray]:
    """Per-image correctness, cost and exit stage of the cascade at one threshold combination."""
    out = outcomes(scores, correct, stage_cost, [torch.tensor([d], dtype=torch.float32) for d in deltas])
    return {k: v.reshape(-1).numpy().astype(np.float64 if k != "exit" else np.int64) for k, v in out.items()}


def map_position(delta: float, grid: torch.Tensor) -> float:
    """Where threshold ``delta`` falls on a heat map of ``grid`` (cell i spans [i, i + 1]);
    values between grid points are interpolated, so fine-grid choices can be marked."""
    g = grid.numpy()
    return float(np.interp(delta, g, np.arange(len(g)))) + 0.5
