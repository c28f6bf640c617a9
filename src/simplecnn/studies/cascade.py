"""Resolution cascades: models m_0..m_n at growing resolutions, an image leaving at the first
stage whose confidence reaches that stage's threshold (the last stage takes the rest).

Everything after training works on cached per-stage logits: a threshold map over a grid
of (δ_0, …, δ_{n-2}) is one broadcast over all threshold combinations and images, for any
number of stages. Expected cost follows the report's equation (2.2): an image pays the
MACs of every stage it reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from simplecnn.core.cache import Cache
from simplecnn.core.metrics import normalised_entropy
from simplecnn.core.data import DataSplits
from simplecnn.core.models import build_model, count_params
from simplecnn.core.recipes import recipe
from simplecnn.core.train import Trained, predict, train_model
from simplecnn.core.complexity import macs

SCORES = ("max_prob", "margin", "entropy")


@dataclass(frozen=True)
class Stage:
    """One cascade stage: a registered model at a resolution, with its training budget."""

    model: str
    resolution: int
    width: float = 1.0
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.2
    extra: dict = field(default_factory=dict)  # further model arguments

    @property
    def name(self) -> str:
        return f"{self.model}@{self.resolution}"

    def model_kwargs(self) -> dict:
        return {"width": self.width, **self.extra}


def train_stage(stage: Stage, data: DataSplits, recipe_name: str = "fast", seed: int = 0,
                cache: Cache | None = None) -> Trained:
    """Train a stage through the core with a recipe's regimen (epochs, batch and lr from the stage)."""
    chosen = recipe(recipe_name, data.name, epochs=stage.epochs, batch_size=stage.batch_size, lr=stage.lr, seed=seed,
                    tta=False)  # one forward pass per image, so that the MACs counted are the MACs spent
    return train_model(stage.model, data, chosen.config, stage.model_kwargs(), cache=cache)


def stage_macs(stage: Stage, num_classes: int) -> int:
    """Multiply-accumulates of one image at the stage's own input size (ptflops)."""
    return macs(build_model(stage.model, num_classes, **stage.model_kwargs()), stage.resolution)


def stage_params(stage: Stage, num_classes: int) -> int:
    return count_params(build_model(stage.model, num_classes, **stage.model_kwargs()))


# --- calibration and exit scores ---------------------------------------------------------

def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) (Guo et al., 2017)."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss
    opt.step(closure)
    return float(log_t.detach().exp())


def exit_score(logits: torch.Tensor, score: str = "max_prob", temperature: float = 1.0) -> torch.Tensor:
    """Confidence in [0, 1] that lets an image leave: the top probability, the margin between
    the two top probabilities, or one minus the entropy over its maximum."""
    probs = torch.softmax(logits.float() / temperature, 1)
    if score == "max_prob":
        return probs.max(1).values
    if score == "margin":
        top = probs.topk(2, 1).values
        return top[:, 0] - top[:, 1]
    if score == "entropy":
        return 1 - normalised_entropy(probs)
    raise ValueError(f"unknown exit score {score!r}; known: {list(SCORES)}")


# --- threshold maps ---------------------------------------------------------------------

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
    if not (len(correct) == len(stage_cost) == n and len(thresholds) == n - 1):
        raise ValueError(f"{n} stages need {n} scores, correctness vectors and costs, and {n - 1} threshold grids")
    for t in thresholds:
        check_thresholds(t)
    dims = [len(t) for t in thresholds]
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


def choose_thresholds(acc: torch.Tensor, cost: torch.Tensor, target: float) -> tuple[int, ...] | None:
    """Grid index of the cheapest threshold combination reaching accuracy ``target`` (None: none does)."""
    ok = acc >= target
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
def classify(models: list[torch.nn.Module], images: list[torch.Tensor], deltas: list[float], score: str = "max_prob",
             batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the cascade as deployed: each stage on the images still in it, in batches; returns
    the predicted class and the exit stage of every image. ``images[p]`` holds the same
    images at stage p's resolution."""
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
        leave = (exit_score(out, score) >= deltas[p]) if p < len(deltas) else torch.ones(len(out), dtype=torch.bool)
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
