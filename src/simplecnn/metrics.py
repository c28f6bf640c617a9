"""Accuracy and macro one-vs-rest AUC-ROC (the proposal's metric), from logits or probabilities."""

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


def summary(logits, labels) -> dict[str, float]:
    """Accuracy and macro AUC of logits against labels."""
    return {"acc": accuracy(logits, labels), "auc": macro_auc(softmax(logits), labels)}


def micro_roc(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of the one-vs-rest decisions of all classes pooled
    (micro-average): one curve per classifier, however many classes."""
    probs, labels = _np(probs), _np(labels)
    onehot = np.eye(probs.shape[1], dtype=bool)[labels]
    fpr, tpr, _ = roc_curve(onehot.ravel(), probs.ravel())
    return fpr, tpr
