"""Accuracy and macro one-vs-rest AUC-ROC (the proposal's metric), from logits or probabilities,
and the statistics every chapter states its uncertainty with: paired bootstrap resamples of
the test images, percentile intervals, paired p-values and Holm's correction."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def accuracy(scores, labels) -> float:
    """Share of rows whose highest score is the label."""
    return float((_np(scores).argmax(1) == _np(labels)).mean())


def macro_auc(scores, labels) -> float:
    """Mean over classes of the one-vs-rest ROC AUC of each class's score column (scikit-learn's
    ``multi_class="ovr"`` macro AUC, without its demand that rows sum to 1)."""
    scores, labels = _np(scores).astype(np.float64), _np(labels)
    missing = sorted(set(range(scores.shape[1])) - set(np.unique(labels).tolist()))
    if missing:
        raise ValueError(f"macro AUC needs every class among the labels; classes {missing} are absent")
    return float(np.mean([roc_auc_score(labels == c, scores[:, c]) for c in range(scores.shape[1])]))


def softmax(logits) -> np.ndarray:
    return torch.softmax(torch.as_tensor(_np(logits), dtype=torch.float64), dim=1).numpy()


def acc_auc(logits, labels) -> dict[str, float]:
    """Accuracy and macro AUC of logits against labels."""
    return {"acc": accuracy(logits, labels), "auc": macro_auc(softmax(logits), labels)}


def micro_roc(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of the one-vs-rest decisions of all classes pooled
    (micro-average): one curve per classifier, however many classes."""
    probs, labels = _np(probs), _np(labels)
    onehot = np.eye(probs.shape[1], dtype=bool)[labels]
    fpr, tpr, _ = roc_curve(onehot.ravel(), probs.ravel())
    return fpr, tpr


def normalised_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of class probabilities over its maximum, log(classes): in [0, 1]."""
    p = probs.clamp_min(1e-12)
    return -(p * p.log()).sum(-1) / np.log(probs.shape[-1])


# --- statistics -------------------------------------------------------------------------

def bootstrap_counts(n: int, rounds: int, seed: int) -> np.ndarray:
    """How often each of n test images is drawn in each of ``rounds`` resamples (rounds × n);
    shared by all rules so that comparisons are paired."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=rounds).astype(np.float64)


def weighted_macro_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Macro one-vs-rest AUC for every row of ``weights`` (B × N image multiplicities) at once.

    With integer weights this is the AUC of the resampled set (ties count one half), so a
    bootstrap costs one sort per class instead of one sklearn call per resample. Resamples
    in which a class has no positive or no negative image give NaN."""
    weights = np.atleast_2d(weights)
    aucs = []
    for c in range(scores.shape[1]):
        order = np.argsort(scores[:, c], kind="stable")
        s, pos = scores[order, c], labels[order] == c
        starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]  # groups of tied scores
        w = weights[:, order]
        wp = np.add.reduceat(w * pos, starts, axis=1)
        wn = np.add.reduceat(w * ~pos, starts, axis=1)
        below = np.cumsum(wn, 1) - wn
        denom = wp.sum(1) * wn.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            aucs.append(np.where(denom > 0, (wp * (below + wn / 2)).sum(1) / denom, np.nan))
    return np.mean(aucs, axis=0)


def confidence_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    s = samples[~np.isnan(samples)]
    return float(np.quantile(s, (1 - level) / 2)), float(np.quantile(s, 1 - (1 - level) / 2))


def paired_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided bootstrap p-value of ``mean(a) = mean(b)`` from paired resamples: twice the
    smaller share of resamples on either side of zero difference (at least 1 / resamples)."""
    d = (a - b)[~np.isnan(a - b)]
    one_sided = min((d <= 0).mean(), (d >= 0).mean())
    return float(min(1.0, max(2 * one_sided, 1 / len(d))))


def bootstrap_accuracy(correct: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Accuracy of each resample (rows of ``counts``) from a 0/1 vector of correct images."""
    return counts @ np.asarray(correct, dtype=np.float64) / counts.sum(1)


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (family-wise error) for a family of tests."""
    names = sorted(p_values, key=p_values.get)
    m, running, out = len(names), 0.0, {}
    for i, name in enumerate(names):
        running = max(running, min(1.0, (m - i) * p_values[name]))
        out[name] = running
    return out
