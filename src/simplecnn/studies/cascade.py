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
import time
from dataclasses import dataclass, field
from typing import Callable

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
                cache: Cache | None = None, label_smoothing: float = 0.0, cpu_bf16: bool = False) -> Trained:
    """Train a stage through the core with a recipe's regimen (epochs, batch and lr from the
    stage). ``label_smoothing`` defaults to none: smoothing caps every training target's
    probability below one, so the exits' confidences come out under-confident by
    construction, and a threshold on them no longer means what it says. No validation pass
    after each epoch: the chapter scores each stage once, after training, and the passes
    (about a minute of the cpu profile) change no weight."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
    chosen = recipe(recipe_name, data.name, epochs=stage.epochs, batch_size=stage.batch_size, lr=stage.lr, seed=seed,
                    label_smoothing=label_smoothing, cpu_bf16=cpu_bf16,
                    tta=False)  # one forward pass per image, so that the MACs counted are the MACs spent
    return train_model(stage.model, data, chosen.config, stage.model_kwargs(), cache=cache, track_val=False)


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


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15,
                               counts: np.ndarray | None = None) -> float | np.ndarray:
    """ECE over equal-width confidence bins (Guo et al., 2017): the image-share-weighted gap
    between accuracy and mean confidence in each bin (bin b holds confidences in
    (b / bins, (b + 1) / bins]). With ``counts`` (resamples × images, how often each image is
    drawn) one ECE per resample, so its bootstrap costs three matrix products."""
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=np.float64).reshape(-1)
    if conf.shape != ok.shape or ((conf < 0) | (conf > 1)).any():
        raise ValueError("expected_calibration_error needs one confidence in [0, 1] and one 0/1 correctness per image; "
                         f"got {conf.shape[0]} confidences (range {conf.min():.3g}–{conf.max():.3g}) and "
                         f"{ok.shape[0]} correctness values")
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    onehot = np.eye(bins)[which]  # N × bins
    w = np.ones((1, len(conf))) if counts is None else np.atleast_2d(np.asarray(counts, dtype=np.float64))
    gap = np.abs(w @ (onehot * ok[:, None]) - w @ (onehot * conf[:, None])).sum(1) / w.sum(1)
    return float(gap[0]) if counts is None else gap


def calibration_table(logits: dict[str, list[torch.Tensor]], labels: dict[str, torch.Tensor], names: list[str],
                      temperatures: list[float], counts: np.ndarray, bins: int = 15, level: float = 0.95) -> list[dict]:
    """Per stage: the temperature fitted on validation and the ECE of the top probability
    before and after dividing the logits by it, on validation (where T was fitted: in-sample)
    and on test (out of sample, with bootstrap intervals over the test images)."""
    rows = []
    for p, (name, t) in enumerate(zip(names, temperatures)):
        row = {"stage": name, "temperature": float(t)}
        for split in ("val", "test"):
            correct = (logits[split][p].argmax(1) == labels[split]).numpy()
            for key, temp in (("raw", 1.0), ("calibrated", t)):
                conf = torch.softmax(logits[split][p].float() / temp, 1).max(1).values.numpy()
                value = expected_calibration_error(conf, correct, bins)
                row[f"{split}_ece_{key}"] = (interval(expected_calibration_error(conf, correct, bins, counts), value,
                                                      level) if split == "test" else value)
                row[f"{split}_confidence_{key}"] = float(conf.mean())
            row[f"{split}_acc"] = float(correct.mean())
        rows.append(row)
    return rows


# --- a learned exit policy ---------------------------------------------------------------

def gate_features(logits: torch.Tensor, k: int = 3) -> np.ndarray:
    """What a gate sees of one stage's output: its top-k softmax probabilities (sorted), the
    normalised entropy and the log-ratio of the two top probabilities."""
    probs = torch.softmax(logits.float(), 1)
    k = min(k, probs.shape[1])
    top = probs.topk(k, 1).values
    ratio = (top[:, 0].clamp_min(1e-12).log() - top[:, min(1, k - 1)].clamp_min(1e-12).log())[:, None]
    return torch.cat([top, normalised_entropy(probs)[:, None], ratio], 1).numpy().astype(np.float64)


class ExitGate:
    """A logistic regression on ``gate_features`` predicting whether a stage's prediction is
    right; its probability is the exit score (an image leaves when it is high enough).
    Trained on validation; a degenerate split (all right or all wrong) gives a constant."""

    def __init__(self, k: int = 3, seed: int = 0):
        self.k, self.seed, self.model, self.constant = k, seed, None, None

    def fit(self, logits: torch.Tensor, correct: torch.Tensor) -> "ExitGate":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        y = np.asarray(correct, dtype=int).reshape(-1)
        if len(y) != len(logits):
            raise ValueError(f"a gate needs one correctness value per image: {len(logits)} logits, {len(y)} values")
        if y.min() == y.max():
            self.constant = float(y[0])
            return self
        self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=self.seed))
        self.model.fit(gate_features(logits, self.k), y)
        return self

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        if self.constant is not None:
            return torch.full((len(logits),), self.constant)
        if self.model is None:
            raise RuntimeError("ExitGate.score before fit: fit the gate on validation logits first")
        return torch.as_tensor(self.model.predict_proba(gate_features(logits, self.k))[:, 1], dtype=torch.float32)


def fit_gates(logits: list[torch.Tensor], labels: torch.Tensor, folds: int = 5, seed: int = 0,
              k: int = 3) -> tuple[list[ExitGate], list[torch.Tensor]]:
    """One gate per stage, fitted on the validation logits, and each stage's validation gate
    scores **cross-fitted** (each image scored by a gate that did not see it, ``folds``
    stratified folds), so that thresholds chosen on validation are not chosen on the gate's
    own training fit. Test images are scored by the gate fitted on all of validation."""
    from sklearn.model_selection import StratifiedKFold

    gates, scores = [], []
    for lg in logits:
        correct = (lg.argmax(1) == labels).numpy()
        gates.append(ExitGate(k, seed).fit(lg, correct))
        minority = int(min(correct.sum(), (~correct).sum()))
        splits = min(folds, minority)
        if splits < 2:
            scores.append(gates[-1].score(lg))
            continue
        out = torch.zeros(len(lg))
        for train, held in StratifiedKFold(splits, shuffle=True, random_state=seed).split(np.zeros(len(lg)), correct):
            out[held] = ExitGate(k, seed).fit(lg[train], correct[train]).score(lg[held])
        scores.append(out)
    return gates, scores


def ranking_auc(score: torch.Tensor | np.ndarray, correct: torch.Tensor | np.ndarray) -> float:
    """How well an exit score ranks right predictions before wrong ones (ROC AUC; 0.5: chance)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(correct, dtype=int)
    return float(roc_auc_score(y, np.asarray(score, dtype=np.float64))) if 0 < y.sum() < len(y) else float("nan")


# --- threshold maps ---------------------------------------------------------------------

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


GATE = "gate"  # the learned exit policy's score name (``ExitGate``)


def variants(scores: list[str], n_stages: int, subsets: list[list[int]] | None = None,
             gate: bool = False) -> list[Variant]:
    """Every exit score, with and without temperature, over every stage subset (default: all
    subsets of at least two stages, in order); the report's rule (top probability,
    uncalibrated, all stages) first. With ``gate`` also the learned gate on every subset
    (uncalibrated only: the logistic regression calibrates its own output)."""
    unknown = [sc for sc in scores if sc not in SCORES]
    if unknown:
        raise ValueError(f"unknown exit scores {unknown}; known: {list(SCORES)} (the learned gate: gate=True)")
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
        if gate:
            out.append(Variant(GATE, False, tuple(sub)))
    return out


def variant_inputs(logits: list[torch.Tensor], labels: torch.Tensor, variant: Variant, temperatures: list[float],
                   gate_scores: list[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Exit scores and per-image correctness of the variant's stages; the learned gate's
    scores (one tensor per trained stage) come precomputed in ``gate_scores``."""
    if variant.score == GATE:
        if gate_scores is None:
            raise ValueError("a gate variant needs gate_scores (fit_gates: cross-fitted on validation, the fitted "
                             "gates' scores on test)")
        sc = [gate_scores[p] for p in variant.stages]
    else:
        sc = [exit_score(logits[p], variant.score, temperatures[p] if variant.calibrated else 1.0)
              for p in variant.stages]
    return sc, [logits[p].argmax(1) == labels for p in variant.stages]


def variant_scorers(variant: Variant, temperatures: list[float],
                    gates: list[ExitGate] | None = None) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The variant's exit scores as deployed: one callable per stage of the variant, from
    that stage's logits to its exit score (for ``classify``)."""
    if variant.score == GATE:
        if gates is None:
            raise ValueError("a gate variant needs its fitted gates (fit_gates)")
        return [gates[p].score for p in variant.stages]
    return [lambda out, t=(temperatures[p] if variant.calibrated else 1.0): exit_score(out, variant.score, t)
            for p in variant.stages]


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
                   counts: np.ndarray, other_macs: dict[str, float] | None = None, level: float = 0.95,
                   gate_scores: dict[str, list[torch.Tensor]] | None = None) -> pd.DataFrame:
    """Every exit rule, selected on validation for every reference's validation accuracy and
    scored once on test: accuracy, expected MACs and MAC cut with bootstrap intervals over
    the test images (``counts``), the paired accuracy difference and whether it is matched.
    ``other_macs``: further models (e.g. full ResNets at 224 px) the MAC cut is also stated
    against, whose accuracy is not compared. The paired p-value of each rule's expected MACs
    against the first rule's (the report's) is Holm-corrected per reference."""
    rows, paid = [], {}
    for rule in rules:
        val_sc, val_ok = variant_inputs(logits["val"], labels["val"], rule, temperatures,
                                        (gate_scores or {}).get("val"))
        test_sc, test_ok = variant_inputs(logits["test"], labels["test"], rule, temperatures,
                                          (gate_scores or {}).get("test"))
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


# --- goals, their diagnosis, and timing ------------------------------------------------

def oracle_cost(correct: list[torch.Tensor], stage_cost: list[float], target: float) -> float | None:
    """The least expected cost per image at which exits that *know* which predictions are
    right reach accuracy ``target`` (None: not even then): an image counted right leaves at
    the first stage that gets it right and pays every stage up to it; the others leave at the
    first stage. No exit rule over these stages can be cheaper, so a goal beyond the
    oracle's cut is out of reach of the ladder itself, not of the rule."""
    ok = torch.stack([c.bool() for c in correct]).numpy()  # stages × N
    n, paid = ok.shape[1], np.cumsum(np.asarray(stage_cost, dtype=np.float64))
    rightable = ok.any(0)
    cost_right = paid[np.argmax(ok, 0)][rightable]
    needed = int(np.ceil(target * n - 1e-6))
    if needed > len(cost_right):
        return None
    kept = np.sort(cost_right)[:max(needed, 0)]
    return float((kept.sum() + (n - len(kept)) * stage_cost[0]) / n)


def goal_check(quantity: str, value: float, goal: float, low: float | None = None, high: float | None = None,
               matched: bool | None = None) -> dict:
    """A goal ``value ≥ goal`` judged on its measured value: "met" or "NOT met", whether the
    interval lies wholly on one side (``resolved``), and, where the value is a cut at an
    accuracy target, whether that accuracy was matched (a cut at a lower accuracy does not
    meet a goal stated at that accuracy)."""
    value = float(value)
    met = bool(np.isfinite(value) and value >= goal and matched is not False)
    resolved = None if low is None or high is None else bool(low >= goal or high < goal)
    out = {"quantity": quantity, "value": value, "goal": float(goal), "met": met, "status": "met" if met else "NOT met",
           "resolved": resolved}
    if low is not None:
        out.update(low=float(low), high=float(high))
    if matched is not None:
        out["matched"] = bool(matched)
    return out


def mac_goal_reason(cut: float | None, oracle_cut: float | None, goal: float, matched: bool | None = None) -> str:
    """Why a MAC-cut goal is (not) met, in one sentence, from the measured cut and the
    oracle's (``oracle_cost``) on the same stages."""
    if cut is None or not np.isfinite(cut):
        return "no threshold reached the target accuracy on validation"
    if matched is False:
        return f"the chosen point's test accuracy falls short of the target (cut {cut:.2f}× at a lower accuracy)"
    if cut >= goal:
        return f"cut {cut:.2f}× ≥ {goal:g}×"
    if oracle_cut is None or oracle_cut < goal:
        bound = "none" if oracle_cut is None else f"{oracle_cut:.2f}×"
        return (f"cut {cut:.2f}× < {goal:g}×, and even exits that know which predictions are right would reach only "
                f"{bound}: the ladder's stages are too close in accuracy for their cost gap")
    return (f"cut {cut:.2f}× < {goal:g}× although oracle exits would reach {oracle_cut:.2f}×: the exit rule cannot "
            f"tell right from wrong predictions well enough")


def speed_goal_reason(speedup: float, mac_cut: float, goal: float) -> str:
    """Why a wall-clock goal is (not) met: time can fall short of the MACs saved, since
    small stages do fewer MACs per second and every stage call pays a fixed overhead."""
    if speedup >= goal:
        return f"speed-up {speedup:.2f}× ≥ {goal:g}×"
    if mac_cut < goal:
        return f"speed-up {speedup:.2f}× < {goal:g}×; the MACs themselves fall only {mac_cut:.2f}×"
    return (f"speed-up {speedup:.2f}× < {goal:g}× although the MACs fall {mac_cut:.2f}×: the small stages' lower MACs "
            f"per second and each stage call's fixed overhead eat the saving")


def goals_table(targets: dict[str, dict[str, dict]], oracle: dict[str, dict], speedup: dict[str, dict],
                mid: str, top: str, goal_mid: float, goal_top: float, goal_speed: float) -> list[dict]:
    """Every goal of the chapter judged for every declared rule (``targets``: rule label ->
    ``targets_from`` rows): the MAC cut at the ``mid`` and ``top`` stage's accuracy, with
    the oracle's cut on the same stages (``oracle_cost``) and the reason, and the measured
    wall-clock speed-ups over ``top`` (``speedup``: rule -> batched / one_image_mean)."""
    goals = []
    for label, tg in targets.items():
        for key, ref, goal in (("mid", mid, goal_mid), ("top", top, goal_top)):
            t = tg.get(ref, {})
            reached = bool(t.get("reached"))
            c = t["mac_cut"] if reached else {"value": float("nan"), "low": None, "high": None}
            matched = t["acc_difference"]["matched"] if reached else None
            o = oracle.get(ref, {}).get("cut")
            g = goal_check(f"MAC cut at {ref}'s accuracy (×)", c["value"], goal, c["low"], c["high"], matched)
            goals.append({**g, "rule": label, "target": key, "oracle_cut": o,
                          "reason": mac_goal_reason(c["value"] if reached else None, o, goal, matched)})
        if label in speedup and tg.get(top, {}).get("reached"):
            cut = tg[top]["mac_cut"]["value"]
            for key, field_, what in (("batched", "batched", "in batches"),
                                      ("one", "one_image_mean", "one image at a time (mean latency)")):
                value = speedup[label][field_]
                goals.append({**goal_check(f"wall-clock speed-up over {top}, {what} (×)", value, goal_speed),
                              "rule": label, "target": f"speed_{key}", "mac_cut": cut,
                              "reason": speed_goal_reason(value, cut, goal_speed)})
    return goals


def ranking_table(logits: dict[str, list[torch.Tensor]], labels: dict[str, torch.Tensor], names: list[str],
                  gate_scores: dict[str, list[torch.Tensor]], scores: list[str]) -> list[dict]:
    """Per stage and split, how well each exit score ranks right predictions before wrong
    ones (``ranking_auc``): the learned gate's and each named score's."""
    rows = []
    for p, name in enumerate(names):
        row = {"stage": name}
        for split in ("val", "test"):
            ok = logits[split][p].argmax(1) == labels[split]
            row[f"{split}_auc_gate"] = ranking_auc(gate_scores[split][p], ok)
            for sc in scores:
                row[f"{split}_auc_{sc}"] = ranking_auc(exit_score(logits[split][p], sc), ok)
        rows.append(row)
    return rows


def wall_time(fn: Callable[[], object], repeats: int = 1) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def latency(run: Callable[[int], object], n: int, warmup: int = 3, percentiles: tuple[float, ...] = (50, 95)) -> dict:
    """Per-call latency in seconds of ``run(i)`` for i = 0 … n-1 (e.g. image i at batch 1),
    after ``warmup`` untimed calls: the mean (what throughput at batch 1 pays) and the
    percentiles, keyed ``p50``, ``p95`` …"""
    if n < 1:
        raise ValueError(f"latency needs at least one call, got n={n}")
    for i in range(min(warmup, n)):
        run(i)
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        run(i)
        times[i] = time.perf_counter() - t0
    return {"n": int(n), "mean": float(times.mean()), "min": float(times.min()), "max": float(times.max()),
            **{f"p{q:g}": float(np.percentile(times, q)) for q in percentiles}}


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
    top = names[-1]
    g = results.get("gate_targets", {}).get(top, {})
    if g.get("reached"):
        c, d = g["mac_cut"], g["acc_difference"]
        rows.append(Headline(f"cascade MAC cut at {top}'s accuracy, learned exit gate (×)", c["value"], c["low"],
                             c["high"], f"{s['level']:.0%} bootstrap CI over test images",
                             f"ptflops MACs, {s['dataset']} test; logistic gate per stage trained on validation; "
                             f"accuracy {'matched' if d['matched'] else 'not matched'}"))
    for rule, sp in results.get("speedup", {}).items():
        for key, what in (("batched", "in batches"), ("one_image_mean", "one image at a time, mean latency")):
            rows.append(Headline(f"cascade wall-clock speed-up over {top}, {rule}, {what} (×)", sp[key],
                                 interval="one timing run", setting=f"{s['dataset']} test images, this run's machine "
                                 f"({s.get('latency_images', '?')} images one at a time); at {top}'s accuracy target"))
    cal = results.get("calibration", [])
    if cal:
        e0, e1 = cal[-1]["test_ece_raw"], cal[-1]["test_ece_calibrated"]
        for key, e, what in (("raw", e0, "raw"), ("calibrated", e1, "temperature-scaled (T fitted on validation)")):
            rows.append(Headline(f"top stage's test ECE, {what}", e["value"], e["low"], e["high"],
                                 f"{s['level']:.0%} bootstrap CI over test images",
                                 f"{top}, {s['dataset']} test, {s.get('ece_bins', 15)} equal-width bins"))
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
