"""Resolution cascades: models m_0..m_n at growing resolutions, an image leaving at the first
stage whose confidence reaches that stage's threshold (the last stage takes the rest).

Everything after training works on cached per-stage logits: a threshold map over a grid
of (δ_0, …, δ_{n-2}) is one broadcast over all threshold combinations and images, for any
number of stages. Expected cost follows the report's equation (2.2): an image pays the
MACs of every stage it reaches.

Thresholds are chosen on validation over the fine grid (the coarse map's thresholds and its
zoom's together) and scored once on test with bootstrap intervals over the test images;
every exit rule (score, calibration, stage subset) goes through the same path. The
report's own claim is restated in real MACs by ``report_cost_model``, without training.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from simplecnn.core.cache import Cache
from simplecnn.core.metrics import (bootstrap_accuracy, confidence_interval, holm, normalised_entropy,
                                    paired_p_value)
from simplecnn.core.results import Headline
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

# --- selection on the fine grid, variants, scoring on test ----------------------------

def fine_grid(*grids: torch.Tensor) -> torch.Tensor:
    """The sorted union of threshold grids (the coarse map and its zoom): selection searches
    every threshold the maps drew, not only the coarse ones."""
    return torch.unique(torch.cat([g.flatten().float() for g in grids]))


def outcomes(scores: list[torch.Tensor], correct: list[torch.Tensor], stage_cost: list[float],
             thresholds: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per image and threshold combination: whether the stage it leaves at is right, what it
    paid, and that stage (shape G_0 × … × G_{n-2} × N). Bootstraps weight these per image."""
    n = len(scores)
    if not (len(correct) == len(stage_cost) == n and len(thresholds) == n - 1):
        raise ValueError(f"{n} stages need {n} scores, correctness vectors and costs, and {n - 1} threshold grids")
    for t in thresholds:
        check_thresholds(t)
    dims = [len(t) for t in thresholds]
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


def select(scores: list[torch.Tensor], correct: list[torch.Tensor], stage_cost: list[float],
           grids: list[torch.Tensor], target: float) -> list[float] | None:
    """The report's rule on validation: the cheapest threshold combination of ``grids`` whose
    accuracy reaches ``target`` (None: none does)."""
    sim = simulate(scores, correct, stage_cost, grids)
    index = choose_thresholds(sim["acc"], sim["cost"], target)
    return None if index is None else [float(grids[p][i]) for p, i in enumerate(index)]


def point_outcomes(scores: list[torch.Tensor], correct: list[torch.Tensor], stage_cost: list[float],
                   deltas: list[float]) -> dict[str, np.ndarray]:
    """Per-image correctness, cost and exit stage of the cascade at one threshold combination."""
    out = outcomes(scores, correct, stage_cost, [torch.tensor([d], dtype=torch.float32) for d in deltas])
    return {k: v.reshape(-1).numpy().astype(np.float64 if k != "exit" else np.int64) for k, v in out.items()}


def interval(samples: np.ndarray, value: float, level: float = 0.95) -> dict[str, float]:
    """A value with its percentile bootstrap interval, as the results json stores it."""
    low, high = confidence_interval(np.asarray(samples, dtype=np.float64), level)
    return {"value": float(value), "low": low, "high": high}


def compare_accuracy(cascade_correct: np.ndarray, reference_correct: np.ndarray, counts: np.ndarray,
                     level: float = 0.95) -> dict:
    """Cascade minus reference test accuracy with its paired bootstrap interval (same resampled
    images for both). ``matched``: the interval reaches zero, i.e. the test set shows no
    shortfall larger than its own uncertainty (absence of evidence, not proof of equality)."""
    diff = bootstrap_accuracy(cascade_correct, counts) - bootstrap_accuracy(reference_correct, counts)
    d = interval(diff, float(np.mean(cascade_correct) - np.mean(reference_correct)), level)
    return {**d, "matched": bool(d["high"] >= 0)}


def expected_cost(cost: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Expected cost per image of each resample (rows of ``counts``)."""
    return counts @ np.asarray(cost, dtype=np.float64) / counts.sum(1)


@dataclass(frozen=True)
class Variant:
    """An exit rule: the confidence score, whether logits are temperature-scaled (fitted on
    validation), and which stages (indices into the trained stages) form the cascade."""

    score: str = "max_prob"
    calibrated: bool = False
    stages: tuple[int, ...] = (0, 1, 2)

    @property
    def name(self) -> str:
        return f"{self.score}{' + T' if self.calibrated else ''} [{'-'.join(map(str, self.stages))}]"


def variants(scores: list[str], n_stages: int, subsets: list[list[int]] | None = None) -> list[Variant]:
    """Every exit score, with and without temperature, over every stage subset (default: all
    subsets of at least two stages, in order); the report's rule (top probability,
    uncalibrated, all stages) first."""
    if subsets is None:
        subsets = [list(c) for k in range(n_stages, 1, -1) for c in itertools.combinations(range(n_stages), k)]
    report = Variant("max_prob", False, tuple(range(n_stages)))
    out = [report]
    for sub in subsets:
        if len(sub) < 2 or list(sub) != sorted(set(sub)) or not all(0 <= s < n_stages for s in sub):
            raise ValueError(f"a stage subset needs two or more distinct increasing indices below {n_stages}; got {sub}")
        for score in scores:
            for calibrated in (False, True):
                v = Variant(score, calibrated, tuple(sub))
                if v != report:
                    out.append(v)
    return out


def variant_inputs(logits: list[torch.Tensor], labels: torch.Tensor, variant: Variant,
                   temperatures: list[float]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Exit scores and per-image correctness of the variant's stages."""
    sc = [exit_score(logits[p], variant.score, temperatures[p] if variant.calibrated else 1.0) for p in variant.stages]
    return sc, [logits[p].argmax(1) == labels for p in variant.stages]


@dataclass
class Reference:
    """What a cascade is compared with: a single model's per-image correctness on validation
    (its accuracy is the target there) and on test, and its MACs per image."""

    name: str
    val_correct: torch.Tensor
    test_correct: torch.Tensor
    macs: float
    setting: str = ""


def score_variants(logits: dict[str, list[torch.Tensor]], labels: dict[str, torch.Tensor], stage_cost: list[float],
                   grid: torch.Tensor, rules: list[Variant], references: list[Reference], temperatures: list[float],
                   counts: np.ndarray, other_macs: dict[str, float] | None = None, level: float = 0.95) -> pd.DataFrame:
    """Every exit rule, selected on validation for every reference's validation accuracy and
    scored once on test: accuracy, expected MACs and MAC cut with bootstrap intervals over
    the test images (``counts``), the paired accuracy difference and whether it is matched.
    ``other_macs``: further models (e.g. full ResNets at 224 px) the MAC cut is also stated
    against, whose accuracy is not compared. The paired p-value of each rule's expected MACs
    against the first rule's (the report's) is Holm-corrected per reference."""
    rows, paid = [], {}
    for rule in rules:
        val_sc, val_ok = variant_inputs(logits["val"], labels["val"], rule, temperatures)
        test_sc, test_ok = variant_inputs(logits["test"], labels["test"], rule, temperatures)
        cost = [stage_cost[p] for p in rule.stages]
        grids = [grid] * (len(rule.stages) - 1)
        sim = simulate(val_sc, val_ok, cost, grids)
        for ref in references:
            row = {"rule": rule.name, "score": rule.score, "calibrated": rule.calibrated, "stages": list(rule.stages),
                   "reference": ref.name, "target_val_acc": float(ref.val_correct.float().mean())}
            index = choose_thresholds(sim["acc"], sim["cost"], row["target_val_acc"])
            if index is None:
                rows.append({**row, "reached": False})
                continue
            deltas = [float(grids[p][i]) for p, i in enumerate(index)]
            test = point_outcomes(test_sc, test_ok, cost, deltas)
            samples = expected_cost(test["cost"], counts)
            paid[(rule.name, ref.name)] = samples
            acc = bootstrap_accuracy(test["correct"], counts)
            row.update({"reached": True, "thresholds": deltas, "val_acc": float(sim["acc"][index]),
                        "val_macs": float(sim["cost"][index]),
                        "test_acc": interval(acc, test["correct"].mean(), level),
                        "expected_macs": interval(samples, test["cost"].mean(), level),
                        "stage_fractions": [float((test["exit"] == p).mean()) for p in range(len(rule.stages))],
                        "reference_test_acc": float(ref.test_correct.float().mean()),
                        "acc_difference": compare_accuracy(test["correct"], ref.test_correct.numpy(), counts, level),
                        "mac_cut": interval(ref.macs / samples, ref.macs / test["cost"].mean(), level),
                        "mac_cut_other": {k: interval(m / samples, m / test["cost"].mean(), level)
                                          for k, m in (other_macs or {}).items()}})
            rows.append(row)
    first = rules[0].name
    for ref in references:
        base = paid.get((first, ref.name))
        keys = [k for k in paid if k[1] == ref.name and k[0] != first]
        if base is None or not keys:
            continue
        raw = {k[0]: paired_p_value(paid[k], base) for k in keys}
        adjusted = holm(raw)
        for row in rows:
            if row["reference"] == ref.name and row["rule"] in raw:
                row["macs_p_vs_report"], row["macs_p_holm"] = raw[row["rule"]], adjusted[row["rule"]]
    return pd.DataFrame(rows)


def selection_stability(val_scores: list[torch.Tensor], val_correct: list[torch.Tensor],
                        test_scores: list[torch.Tensor], test_correct: list[torch.Tensor], stage_cost: list[float],
                        grids: list[torch.Tensor], reference: Reference, val_counts: np.ndarray,
                        level: float = 0.95) -> dict:
    """How much the chosen operating point's MAC cut depends on which validation images were
    drawn: on each bootstrap resample of the validation set the thresholds are re-selected
    (target: the reference's accuracy on that resample) and scored on the whole test set.
    Returns the interval of the test MAC cut and test accuracy over resamples, and the share
    of resamples on which no threshold reached the target."""
    val = outcomes(val_scores, val_correct, stage_cost, grids)
    n = val["correct"].shape[-1]
    w = torch.as_tensor(val_counts, dtype=torch.float32)
    acc = (w @ val["correct"].reshape(-1, n).T) / w.sum(1, keepdim=True)  # resamples × combinations
    cost = (w @ val["cost"].reshape(-1, n).T) / w.sum(1, keepdim=True)
    target = torch.as_tensor(bootstrap_accuracy(reference.val_correct.numpy(), val_counts), dtype=torch.float32)
    masked = torch.where(acc >= target[:, None] - 1e-6, cost, torch.full_like(cost, float("inf")))
    chosen, reached = masked.argmin(1), torch.isfinite(masked.min(1).values)
    test = simulate(test_scores, test_correct, stage_cost, grids)
    test_cost, test_acc = test["cost"].flatten()[chosen[reached]], test["acc"].flatten()[chosen[reached]]
    out = {"resamples": int(len(val_counts)), "unreached_share": float(1 - reached.float().mean())}
    if reached.any():
        cut = (reference.macs / test_cost).numpy().astype(np.float64)
        out["mac_cut"] = dict(zip(("low", "high"), confidence_interval(cut, level)), median=float(np.median(cut)))
        out["test_acc"] = dict(zip(("low", "high"), confidence_interval(test_acc.numpy().astype(np.float64), level)),
                               median=float(test_acc.median()))
    return out


def map_position(delta: float, grid: torch.Tensor) -> float:
    """Where threshold ``delta`` falls on a heat map of ``grid`` (cell i spans [i, i + 1]);
    values between grid points are interpolated, so fine-grid choices can be marked."""
    g = grid.numpy()
    return float(np.interp(delta, g, np.arange(len(g)))) + 0.5


# --- the report's claim in real MACs -----------------------------------------------------

REPORT_STAGES = (("resnet18", 32, 11.69, 0.24), ("resnet34", 96, 21.80, 4.00), ("resnet50", 224, 25.56, 25.56))
"""Table 2.1 of the report: model, resolution, "FLOPS_224 (M)" and "FLOPS_Res (M)" as printed."""
REPORT_BASE = 224  # the resolution its "FLOPS_224" refers to

REPORT_CLAIMS = {
    # §2.2.5: ResNet34 (88.92 %) reached at 89.0 % with 7.15 M, "3.0x less" = 21.80 / 7.15
    "mid": {"section": "2.2.5", "cost": 7.15, "digits": 2, "reference": "resnet34", "reference_figure": 21.80,
            "cut": 3.0, "acc": 89.0, "reference_acc": 88.92},
    # §2.2.6: "ResNet152" (the figures are ResNet50's, 25.56 / 11.04 = 2.3) at 89.66 %
    "top": {"section": "2.2.6", "cost": 11.04, "digits": 2, "reference": "resnet50", "reference_figure": 25.56,
            "cut": 2.3, "acc": 89.66, "reference_acc": 89.63},
    # §2.2.6: "sacrificing between 1 to 0.1 %" wins "from 4.4x to 3.2x": cost = 25.56 / cut
    "top_minus_1pt": {"section": "2.2.6", "cut": 4.4, "reference": "resnet50", "reference_figure": 25.56},
    "top_minus_0.1pt": {"section": "2.2.6", "cut": 3.2, "reference": "resnet50", "reference_figure": 25.56},
}
REPORT_REAL = {"resnet18@32": ("resnet18", 32), "resnet34@96": ("resnet34", 96), "resnet50@224": ("resnet50", 224),
               "resnet34@224": ("resnet34", 224)}
"""Full-width models whose ptflops MACs restate the report: its stages and its references."""


def report_real_macs(num_classes: int = 10) -> dict[str, int]:
    """ptflops MACs per image of the report's stages and references (full width, the
    project's ImageNet-stem ResNets, ``num_classes`` outputs: Imagenette's ten)."""
    return {k: macs(build_model(m, num_classes), px) for k, (m, px) in REPORT_REAL.items()}


def report_params(num_classes: int = 1000) -> dict[str, int]:
    """Parameter counts of the report's models with an ImageNet head (1000 classes): the
    figures its "FLOPS_224" column holds."""
    return {m: count_params(build_model(m, num_classes)) for m, _, _, _ in REPORT_STAGES}


def feasible_range(stage_cost: list[float], total: tuple[float, float], objective: list[float]) -> tuple[float, float]:
    """Minimum and maximum of ``objective · (1, r_1, …, r_{n-1})`` over the shares r_p of
    images reaching stage p (1 ≥ r_1 ≥ … ≥ r_{n-1} ≥ 0) whose expected cost
    ``stage_cost · (1, r_1, …)`` lies in ``total`` (equation 2.2). Infeasible: NaNs."""
    from scipy.optimize import linprog

    k = len(stage_cost) - 1
    c = np.asarray(objective[1:], dtype=np.float64)
    order = np.zeros((k, k))  # r_{p+1} - r_p <= 0
    for p in range(k - 1):
        order[p, p], order[p, p + 1] = -1.0, 1.0
    a = np.vstack([order[:k - 1], np.asarray(stage_cost[1:])[None], -np.asarray(stage_cost[1:])[None]])
    b = np.r_[np.zeros(k - 1), total[1] - stage_cost[0], -(total[0] - stage_cost[0])]
    ends = []
    for sign in (1.0, -1.0):
        res = linprog(sign * c, A_ub=a, b_ub=b, bounds=[(0.0, 1.0)] * k, method="highs")
        if not res.success:
            return float("nan"), float("nan")
        ends.append(objective[0] + float(c @ res.x))
    return ends[0], ends[1]


def report_cost_model(real_macs: dict[str, int], params_1000: dict[str, int] | None = None) -> dict:
    """The report's cost model identified and its claims restated in real MACs.

    Its "FLOPs" of a stage are the model's parameter count (ImageNet head) times
    (resolution / 224)²: ``reproduces`` checks that against Table 2.1's printed figures to
    their two decimals, and ``params_match`` that the project's builders count the same
    parameters. Each claim's quoted cost (known to its rounding) fixes the shares of images
    reaching each stage only to a range; over that range, the cascade's real ptflops MACs
    and its MAC cut against the full-width references at 224 px are intervals."""
    model = {m: fig * (px / REPORT_BASE) ** 2 for m, px, fig, _ in REPORT_STAGES}
    out = {"cost_model": "parameters (M, 1000-class head) × (resolution / 224)²",
           "stages": {f"{m}@{px}": {"flops_224_printed": fig, "flops_res_printed": printed, "cost_model": model[m],
                                    "real_macs": int(real_macs[f"{m}@{px}"])} for m, px, fig, printed in REPORT_STAGES},
           "reproduces": all(round(model[m], 2) == printed for m, _, _, printed in REPORT_STAGES)}
    if params_1000 is not None:
        out["params_1000"] = {m: int(params_1000[m]) for m, _, _, _ in REPORT_STAGES}
        out["params_match"] = all(round(params_1000[m] / 1e6, 2) == fig for m, _, fig, _ in REPORT_STAGES)
    names = [f"{m}@{px}" for m, px, _, _ in REPORT_STAGES]
    cost = [model[m] for m, _, _, _ in REPORT_STAGES]
    real = [float(real_macs[n]) for n in names]
    references = {"resnet34@224": float(real_macs["resnet34@224"]), "resnet50@224": float(real_macs["resnet50@224"])}
    out["references_real_macs"] = {k: int(v) for k, v in references.items()}
    claims = {}
    for key, claim in REPORT_CLAIMS.items():
        c = dict(claim)
        if "cost" in c:  # a quoted cost, known to half a unit of its last digit
            half = 0.5 * 10 ** -c["digits"]
            total = (c["cost"] - half, c["cost"] + half)
            c["cut_recomputed"] = c["reference_figure"] / c["cost"]
            c["cut_reproduced"] = round(c["cut_recomputed"], 1) == c["cut"]
        else:  # a quoted cut, known to its one decimal
            total = (c["reference_figure"] / (c["cut"] + 0.05), c["reference_figure"] / (c["cut"] - 0.05))
        c["cost_range"] = list(total)
        k = len(cost) - 1
        reach = [feasible_range(cost, total, [0.0] + [1.0 if q == p else 0.0 for q in range(k)]) for p in range(k)]
        c["reach_range"] = {names[p + 1]: list(reach[p]) for p in range(k)}
        exits = []
        for p in range(k + 1):  # exit share x_p = r_p - r_{p+1} (r_0 = 1, r_{n} = 0)
            coef = [0.0] * (k + 1)
            coef[p] = 1.0
            if p < k:
                coef[p + 1] = -1.0
            exits.append(list(feasible_range(cost, total, coef)))
        c["exit_range"] = dict(zip(names, exits))
        low, high = feasible_range(cost, total, real)
        c["real_macs_range"] = [low, high]
        c["real_cut_range"] = {r: [m / high, m / low] for r, m in references.items()}
        claims[key] = c
    out["claims"] = claims
    return out


# --- results and headlines ---------------------------------------------------------------

def records(frame: pd.DataFrame) -> list[dict]:
    """Rows of a variants table as json-ready dicts (a row's missing fields left out)."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()
                    if not (isinstance(v, float) and np.isnan(v))})
    return out


REPORT_HEADLINE = {  # the report's figure comparable with the cascade at the last (-1) and middle (-2) stage's accuracy
    -1: ("top", "validation, parameter-count cost model (25.56 / 11.04), vs ResNet50@224 (called ResNet152)"),
    -2: ("mid", "validation, parameter-count cost model (21.80 / 7.15), vs ResNet34 (its parameter count)"),
}


def headline(results: dict) -> list[Headline]:
    """At the last and the middle stage's accuracy as targets (the report's two claims; the
    first stage's target is met by the first stage alone), with the report's exit rule: the
    cascade's test MAC cut against that stage at its own resolution (bootstrap CI, with
    whether accuracy is matched), its test accuracy, its stability over validation
    resamples; at the last stage's target also its cut against the full-width ResNets at
    224 px (MACs only). Then the report's own claims restated in real MACs (ranges, since
    its quoted cost fixes the stage shares only to a range)."""
    s = results["setting"]
    rows = []
    names = list(results["stages"])
    for ref in names[max(1, len(names) - 2):]:
        t = results["targets"].get(ref, {})
        if not t.get("reached", False):
            rows.append(Headline(f"cascade MAC cut at {ref}'s accuracy (×)", "not reached on validation",
                                 setting=f"{s['dataset']} validation, no threshold reaches {ref}'s accuracy"))
            continue
        px = results["stages"][ref]["resolution"]
        d = t["acc_difference"]
        status = "matched" if d["matched"] else "not matched"
        where = (f"ptflops MACs per image, {s['dataset']} test ({s['n_test']:,} images); {ref} at its own {px} px; "
                 f"thresholds chosen on validation (fine grid); accuracy {status}: cascade − {ref} = "
                 f"{100 * d['value']:+.1f} points [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]")
        position = names.index(ref) - len(names)
        source, source_setting = None, ""
        if position in REPORT_HEADLINE:
            key, source_setting = REPORT_HEADLINE[position]
            source = REPORT_CLAIMS[key]["cut"]
        c = t["mac_cut"]
        rows.append(Headline(f"cascade MAC cut at {ref}'s accuracy (×)", c["value"], c["low"], c["high"],
                             f"{s['level']:.0%} bootstrap CI over test images", where, source, source_setting))
        a = t["test_acc"]
        rows.append(Headline(f"cascade test accuracy at {ref}'s accuracy target (%)", 100 * a["value"],
                             100 * a["low"], 100 * a["high"], f"{s['level']:.0%} bootstrap CI over test images",
                             f"top-1, {s['dataset']} test; {ref} itself: {100 * t['reference_test_acc']:.1f} %",
                             REPORT_CLAIMS[REPORT_HEADLINE[position][0]]["acc"] if position in REPORT_HEADLINE else None,
                             "validation accuracy of the report's chosen point" if position in REPORT_HEADLINE else ""))
        st = t.get("stability", {})
        if "mac_cut" in st:
            rows.append(Headline(f"cascade MAC cut at {ref}'s accuracy, re-selected on validation resamples (×)",
                                 st["mac_cut"]["median"], st["mac_cut"]["low"], st["mac_cut"]["high"],
                                 f"median and {s['level']:.0%} range over {st['resamples']} validation resamples",
                                 f"test MAC cut vs {ref} at {px} px; target unreached on "
                                 f"{st['unreached_share']:.0%} of resamples"))
        for other, o in (t.get("mac_cut_other", {}) if position == -1 else {}).items():
            rows.append(Headline(f"cascade MACs at {ref}'s accuracy: cut vs full-width {other} (×)", o["value"],
                                 o["low"], o["high"], f"{s['level']:.0%} bootstrap CI over test images",
                                 f"ptflops MACs, {s['dataset']} test; {other} counted, not trained here: accuracy "
                                 f"not compared"))
    rep = results["report"]
    for key, ref in (("mid", "resnet34@224"), ("top", "resnet50@224")):
        c = rep["claims"][key]
        low, high = c["real_cut_range"][ref]
        rows.append(Headline(f"report's §{c['section']} claim in real MACs: cut vs {ref} (×)", (low + high) / 2,
                             low, high, f"range over the stage shares its quoted {c['cost']} M allows; value: midpoint",
                             "ptflops MACs of full-width ResNet18@32, ResNet34@96, ResNet50@224 (10 classes) at "
                             "the report's stage shares; no training", c["cut"],
                             "validation, parameter-count cost model"))
    return rows


def targets_from(frame: pd.DataFrame, rule: str, stability: dict[str, dict] | None = None) -> dict[str, dict]:
    """The ``rule``'s rows of a ``score_variants`` table keyed by reference, each with its
    stability interval (``selection_stability``) where one was computed."""
    out = {}
    for row in records(frame[frame["rule"] == rule]):
        ref = row.pop("reference")
        out[ref] = {**row, **({"stability": stability[ref]} if stability and ref in stability else {})}
    return out
