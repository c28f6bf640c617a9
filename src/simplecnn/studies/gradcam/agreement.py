"""Do the maps agree with BagNet's window evidence, and how do patch classifiers fare on the
windows a map calls object or background?"""

from __future__ import annotations

import numpy as np
import torch

from simplecnn.core import metrics
from simplecnn.studies.gradcam.sanity import rank_correlations
from simplecnn.studies.patches import Grid, window_means

def bagnet_agreement(maps: torch.Tensor, evidence: torch.Tensor, grid: Grid) -> np.ndarray:
    """Per image, Spearman ρ between the map's mean over each window of ``grid`` and BagNet's
    evidence (N × side × side) there: agreement at window resolution, no threshold."""
    return rank_correlations(window_means(maps, grid), evidence)


def region_rows(probs: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, share: float) -> list[dict]:
    """Patch classifier scores on object and background windows: the ``share`` of each image's
    windows with the highest map weight are object. ``probs``: N × side × side × classes,
    ``weights``: N × side × side."""
    w = weights.flatten(1)
    k = max(1, int(round(share * w.shape[1])))
    is_object = torch.zeros_like(w, dtype=torch.bool)
    is_object.scatter_(1, w.topk(k, 1).indices, True)
    p = probs.flatten(1, 2)
    y = labels[:, None].expand(-1, p.shape[1])
    rows = []
    for region, mask in (("object", is_object), ("background", ~is_object)):
        acc = metrics.accuracy(p[mask], y[mask])
        rows.append({"region": region, "patch_acc": acc, "patch_auc": metrics.macro_auc(p[mask], y[mask]),
                     "wrong_votes": 1 - acc})
    return rows


def region_table(study, true_cam: torch.Tensor, share: float):
    """``region_rows`` of every family and q of the patch study on its test images."""
    import pandas as pd
    test = study.splits.test
    return pd.DataFrame([{"method": m, "q": q, **row} for m in study.methods for q in study.qs
                         for row in region_rows(study.predictions(m, q)["test"], test.labels,
                                                window_means(true_cam, study.grid(q)), share)])
