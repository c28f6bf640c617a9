"""Accuracy and macro one-vs-rest AUC-ROC (the proposal's metric), from logits or probabilities."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def accuracy(scores, labels) -> float:
    """Share of rows whose highest score is the label."""
    return float((_np(scores).argmax(1) == _np(labels)).mean())


def macro_auc(probs, labels) -> float:
    """Mean over classes of the one-vs-rest ROC AUC; ``probs`` rows must sum to 1."""
    probs, labels = _np(probs).astype(np.float64), _np(labels)
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=np.arange(probs.shape[1])))


def softmax(logits) -> np.ndarray:
    return torch.softmax(torch.as_tensor(_np(logits), dtype=torch.float64), dim=1).numpy()


def summary(logits, labels) -> dict[str, float]:
    """Accuracy and macro AUC of logits against labels."""
    return {"acc": accuracy(logits, labels), "auc": macro_auc(softmax(logits), labels)}
