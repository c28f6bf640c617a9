"""Fusion rules, the paired bootstrap and its vectorised AUC."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from simplecnn.core import metrics
from simplecnn.studies import fusion
from simplecnn.studies.patches import Grid

GRID = Grid(q=9, stride=8, size=41)  # 5 × 5 windows


def window_probs(n=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, GRID.side, GRID.side, classes, generator=g) * 2, -1)


def test_every_rule_gives_one_score_row_per_image():
    probs = window_probs()
    ctx = fusion.Context(GRID, cam=torch.rand(6, 5, 5), learned=fusion.fit_learned(probs, torch.arange(6) % 3))
    for rule in fusion.RULES:
        scores = fusion.fuse(rule, probs, ctx)
        assert scores.shape == (6, 3) and (scores >= 0).all()
        if rule != "geometric_mean":
            torch.testing.assert_close(scores.sum(1), torch.ones(6, dtype=scores.dtype))
    with pytest.raises(ValueError, match="unknown fusion rule"):
        fusion.fuse("median", probs, ctx)


def test_mean_logit_from_probabilities_is_bagnets_mean_logit():
    logits = torch.randn(4, 5, 5, 3)
    ours = fusion.fuse("mean_logit", torch.softmax(logits, -1), fusion.Context(GRID))
    torch.testing.assert_close(ours, torch.softmax(logits.flatten(1, 2).mean(1), 1))


def test_majority_counts_votes_not_confidence():
    probs = torch.zeros(1, 5, 5, 2)
    probs[..., 0] = 0.51  # 24 windows barely for class 0
    probs[..., 1] = 0.49
    probs[0, 0, 0] = torch.tensor([0.0, 1.0])  # one window sure of class 1
    assert fusion.fuse("majority", probs, fusion.Context(GRID)).argmax() == 0
    assert fusion.fuse("top_k", probs, fusion.Context(GRID, top_k=1)).argmax() == 1


def test_centre_weighting_peaks_in_the_middle_and_tends_to_the_mean():
    w = fusion.centre_weights(GRID, 0.2)
    assert w.argmax() == 12 and torch.allclose(w, w.flip(0)) and torch.allclose(w, w.T)
    probs = window_probs()
    torch.testing.assert_close(fusion.fuse("centre", probs, fusion.Context(GRID, sigma=1e4)),
                               fusion.fuse("mean_prob", probs, fusion.Context(GRID)))
    with pytest.raises(ValueError, match="σ > 0"):
        fusion.centre_weights(GRID, 0)


def test_cam_mask_keeps_only_the_hottest_windows():
    probs = torch.zeros(1, 5, 5, 2)
    probs[..., 1] = 1.0
    probs[0, 2, 2] = torch.tensor([1.0, 0.0])
    cam = torch.zeros(1, 5, 5)
    cam[0, 2, 2] = 1.0
    ctx = fusion.Context(GRID, cam=cam, cam_share=0.04)  # one window of 25
    assert fusion.fuse("cam_masked", probs, ctx).argmax() == 0
    assert fusion.fuse("mean_prob", probs, ctx).argmax() == 1
    with pytest.raises(ValueError, match="gradcam chapter"):
        fusion.fuse("cam_weighted", probs, fusion.Context(GRID))


def test_weighted_auc_equals_sklearn_on_each_resample():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 150)
    s = rng.random((150, 4)).round(1)  # ties
    s[np.arange(150), y] += 0.3
    counts = metrics.bootstrap_counts(150, 5, 0)
    ours = metrics.weighted_macro_auc(s, y, counts)
    for row, value in zip(counts, ours):
        idx = np.repeat(np.arange(150), row.astype(int))
        ref = np.mean([roc_auc_score(y[idx] == c, s[idx, c]) for c in range(4)])
        assert value == pytest.approx(ref)


def test_paired_p_value():
    a = np.linspace(0.80, 0.82, 200)
    assert metrics.paired_p_value(a, a - 0.05) == pytest.approx(1 / 200)
    assert metrics.paired_p_value(a, a) == 1.0
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 200)
    assert metrics.paired_p_value(a + noise, a) > 0.05
