"""The common protocol: aggregation by mean logits, image-clustered bootstrap CIs, headline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simplecnn.core import metrics
from simplecnn.core.results import Headline
from simplecnn.studies import patches
from simplecnn.studies.patches import compare


def test_mean_log_probability_is_a_bagnets_mean_logit_decision():
    logits = torch.randn(6, 3, 3, 4, dtype=torch.float64) * 3
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(compare.image_scores(probs, "mean_logit"), torch.softmax(logits.mean((1, 2)), -1))
    torch.testing.assert_close(compare.image_scores(probs, "mean_prob"), probs.mean((1, 2)))
    with pytest.raises(ValueError, match="unknown aggregation 'vote'"):
        compare.image_scores(probs, "vote")


def _windows(n: int = 60, p: int = 4, c: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % c
    logits = torch.randn(n, p, c, generator=g) + torch.randn(n, 1, c, generator=g)  # windows of an image correlate
    logits += torch.nn.functional.one_hot(labels, c)[:, None] * 0.8
    scores = torch.softmax(logits, -1).reshape(-1, c).double().numpy()
    return scores, labels.repeat_interleave(p).numpy(), np.repeat(np.arange(n), p), labels


def test_clustered_auc_weights_each_window_by_its_images_multiplicity():
    scores, window_labels, owner, _ = _windows()
    counts = metrics.bootstrap_counts(60, 7, seed=1)
    exact = compare.clustered_macro_auc(scores, window_labels, owner, counts, max_values=100)  # chunked
    reference = metrics.weighted_macro_auc(scores, window_labels, counts[:, owner])
    np.testing.assert_allclose(exact, reference, atol=1e-12)
    ones = compare.clustered_macro_auc(scores, window_labels, owner, np.ones((1, 60)))
    assert ones[0] == pytest.approx(metrics.macro_auc(scores, window_labels))


def test_linearised_bootstrap_tracks_the_exact_one():
    scores, window_labels, owner, _ = _windows(n=400, p=6, seed=2)
    counts = metrics.bootstrap_counts(400, 60, seed=3)
    auc, linear = compare.linearised_auc_bootstrap(scores, window_labels, owner, counts)
    exact = compare.clustered_macro_auc(scores, window_labels, owner, counts)
    assert auc == pytest.approx(metrics.macro_auc(scores, window_labels))
    assert np.corrcoef(exact, linear)[0, 1] > 0.98
    assert linear.std() == pytest.approx(exact.std(), rel=0.1)


def test_score_windows_gives_intervals_around_the_estimates():
    _, _, _, labels = _windows()
    probs = torch.softmax(torch.randn(60, 2, 2, 3) + torch.nn.functional.one_hot(labels, 3)[:, None, None] * 2, -1)
    counts = metrics.bootstrap_counts(60, 200, seed=0)
    row, boot = compare.score_windows(probs, labels, counts)
    for key in ("patch_auc", "image_acc", "image_auc"):
        assert row[f"{key}_low"] <= row[key] <= row[f"{key}_high"], key
        assert len(boot[key]) == 200
    assert row["patch_auc"] == pytest.approx(patches.evaluate(probs, labels)["patch_auc"])
    assert row["image_acc_mean_prob"] == pytest.approx(patches.evaluate(probs, labels)["image_acc"])
    d = compare.difference(boot, boot, "image_acc", (row["image_acc"], row["image_acc"]))
    assert d["diff"] == 0 and not d["resolved"]


def test_runtime_per_window_and_image():
    assert compare.runtime(2.0, 100, 10) == {"us_per_window": 2000.0, "ms_per_image": 20.0}


def test_headline_reads_the_results_and_old_results_without_intervals():
    row = {"patch_auc": 0.8, "patch_auc_low": 0.78, "patch_auc_high": 0.82, "image_acc": 0.5,
           "image_acc_low": 0.45, "image_acc_high": 0.55}
    results = {"setting": {"dataset": "imagenette", "n_test": 100, "resolution": 64, "stride": 8},
               "methods": {"bagnet": {"9": row, "33": row}, "tile2vec": {"33": row},
                           "full_cnn": {"64": {"image_acc": 0.6}}},
               "train_memory": {"q": 33, "tile_windows": 64, "rows": [
                   {"image_px": 224, "whole_peak_bytes": 40 << 20, "tiled_peak_bytes": 20 << 20},
                   {"image_px": 448, "whole_peak_bytes": 120 << 20, "tiled_peak_bytes": 20 << 20}]}}
    rows = {h.quantity: h for h in patches.headline(results)}
    assert all(isinstance(h, Headline) for h in rows.values())
    assert rows["BagNet-33 image accuracy (%)"].value == pytest.approx(50.0)
    assert rows["BagNet-33 image accuracy (%)"].source == compare.BAGNET_TOP5[33]
    assert rows["tile2vec patch AUC (q = 33)"].low == 0.78
    assert rows["full-image CNN accuracy (%)"].value == pytest.approx(60.0)
    assert rows["training peak memory, whole image ÷ tiles (448 px)"].value == 6.0
    results["train_memory"]["rows"][1]["tiled_peak_bytes"] = 4096  # page noise: no ratio
    rows = {h.quantity: h for h in patches.headline(results)}
    assert isinstance(rows["training peak memory, whole image ÷ tiles (448 px)"].value, str)
    old = {"methods": {"bagnet": {"33": {"patch_auc": 0.7, "image_acc": 0.4}}}, "ceiling_acc": 0.62}
    rows = {h.quantity: h for h in patches.headline(old)}
    assert rows["BagNet-33 image accuracy (%)"].low is None and rows["full-image CNN accuracy (%)"].value == 62.0
