"""Exit scores and whether they mean what they say: the top probability, the margin and the
entropy, temperature scaling and the expected calibration error, a learned exit gate, and how
well each score ranks right predictions before wrong ones."""

from __future__ import annotations

import numpy as np
import torch

from simplecnn.core.metrics import confidence_interval, normalised_entropy


SCORES = ("max_prob", "margin", "entropy")


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


def interval(samples: np.ndarray, value: float, level: float = 0.95) -> dict[str, float]:
    """A value with its percentile bootstrap interval, as the results json stores it."""
    low, high = confidence_interval(np.asarray(samples, dtype=np.float64), level)
    return {"value": float(value), "low": low, "high": high}


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


def calibration_lines(calibration: list[dict]) -> list[str]:
    """The printed check per stage: its temperature and whether scaling lowered the test ECE."""
    return [f"check: {r['stage']}: T = {r['temperature']:.3f}; test ECE {r['test_ece_raw']['value']:.3f} -> "
            f"{r['test_ece_calibrated']['value']:.3f} after scaling "
            f"({'lower' if r['test_ece_calibrated']['value'] < r['test_ece_raw']['value'] else 'NOT lower'})"
            for r in calibration]


def calibration_frame(calibration: list[dict]):
    """The calibration table: temperature, ECE before and after scaling on validation (in
    sample) and test (with intervals), accuracy and mean confidence."""
    import pandas as pd

    from simplecnn.core.present import interval_of
    return pd.DataFrame([{"stage": r["stage"], "temperature": f"{r['temperature']:.3f}",
                          "val ECE raw": f"{r['val_ece_raw']:.3f}",
                          "val ECE scaled (in-sample)": f"{r['val_ece_calibrated']:.3f}",
                          "test ECE raw": interval_of(r["test_ece_raw"], 1, "{:.3f}"),
                          "test ECE scaled": interval_of(r["test_ece_calibrated"], 1, "{:.3f}"),
                          "test accuracy": f"{r['test_acc']:.1%}",
                          "mean test confidence raw": f"{r['test_confidence_raw']:.1%}",
                          "scaled": f"{r['test_confidence_calibrated']:.1%}"} for r in calibration]).set_index("stage")
