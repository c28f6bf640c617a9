"""Findings worded by their statistics, intervals that say what they cover, one aggregation
for every chapter, and the presentation helpers every chapter shares."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from simplecnn.core import findings, present
from simplecnn.core.results import Headline
from simplecnn.studies import fusion, summary
from simplecnn.studies.limited import ablation_tests
from simplecnn.studies.patches import Grid, compare


def test_a_comparison_has_three_outcomes_and_says_what_its_interval_covers():
    up = findings.compare("A", "B", 2.0, 0.5, 3.5, findings.SEEDS, "accuracy", " points")
    down = findings.compare("A", "B", -2.0, -3.5, -0.5, findings.IMAGES)
    neither = findings.compare("A", "B", 0.4, -0.5, 1.3, findings.IMAGES)
    assert (up.status, down.status, neither.status) == ("resolved: A > B", "resolved: A < B", "not resolved")
    assert up.words.startswith("A beats B:") and "these trained models" not in up.words
    assert down.words.startswith("B beats A for these trained models")
    assert "not evidence of none" in neither.words and not neither.resolved
    assert findings.covers_text(findings.SEEDS, 3) == "95% interval over 3 training seeds"
    assert "one trained model" in findings.covers_text(findings.IMAGES)


def test_across_seeds_is_students_t_and_needs_two_seeds():
    mean, low, high, p = findings.across_seeds([1.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(12.706 * 1.0, rel=1e-3)  # t(0.975, 1) × sd/√2
    assert 0.1 < p < 0.3
    assert all(math.isnan(x) for x in findings.across_seeds([1.0])[1:])


def test_pooled_paired_shares_the_variance_of_every_contrast():
    diffs = {"a": [10.0, 10.2], "b": [0.5, -0.3], "c": [1.0, 1.4]}
    out = findings.pooled_paired(diffs)
    ss = (0.1 ** 2 * 2) + (0.4 ** 2 * 2) + (0.2 ** 2 * 2)
    assert out["a"]["df"] == 3 and out["a"]["se"] == pytest.approx(math.sqrt(ss / 3 / 2))
    assert out["a"]["p"] < 0.001 and out["b"]["p"] > 0.2


def test_the_ablation_contrasts_are_paired_pooled_and_holm_corrected():
    rows = []
    for seed, base in ((0, 40.0), (1, 41.0)):  # a seed effect that pairing removes
        for setting, gain in (("none", 0), ("all", 10), ("crop+flip", 12), ("only color", 0.3),
                              ("all, offline ×5", 9)):
            rows.append({"setting": setting, "seed": seed, "acc": (base + gain + 0.2 * seed * (setting == "all")) / 100})
    tests = ablation_tests(pd.DataFrame(rows))
    assert set(tests) == {"all − none", "crop+flip − none", "only color − none", "all, offline ×5 − none",
                          "all, offline ×5 − all"}
    assert tests["all − none"]["resolved"] and tests["all − none"]["status"] == "resolved: all > none"
    assert tests["all, offline ×5 − all"]["status"] == "resolved: all, offline ×5 < all"
    assert tests["all − none"]["p_holm"] >= tests["all − none"]["p"]


def test_the_same_model_gives_the_same_number_in_the_patch_and_fusion_chapters():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 3, 3, 4, generator=g) * 30  # large logits: probabilities that underflow
    probs = torch.softmax(logits, -1)
    labels = torch.arange(40) % 4
    counts = np.ones((1, 40))
    patch_row, _ = compare.score_windows(probs, labels, counts)
    ctx = fusion.Context(Grid(9, 8, 25))
    fused = fusion.fuse("mean_logit", probs, ctx)
    assert float((fused.argmax(1) == labels).double().mean()) == patch_row["image_acc"]
    assert torch.equal(fused, compare.image_scores(probs, "mean_logit"))
    assert torch.allclose(fusion.fuse("mean_prob", probs, ctx), compare.image_scores(probs, "mean_prob"))


def test_the_supervised_rule_is_never_chosen_and_is_counted_apart():
    assert fusion.SUPERVISED == ("learned",)
    g = torch.Generator().manual_seed(1)
    labels = {s: torch.arange(60) % 3 for s in ("val", "test")}
    probs = {s: torch.softmax(torch.randn(60, 3, 3, 3, generator=g) + 3 * torch.nn.functional.one_hot(
        labels[s], 3)[:, None, None, :], -1) for s in ("val", "test")}
    ctx = {s: fusion.Context(Grid(9, 8, 25)) for s in ("val", "test")}
    result = fusion.evaluate({"clf": probs}, {"clf": ctx}, labels, ["mean_logit", "majority", "learned"], [0.5],
                             bootstrap=50)
    assert result.chosen.loc["clf", "rule"] != "learned"
    assert list(result.verdicts().index) == ["majority"] and list(result.verdicts(True).index) == ["learned"]


def test_present_formats_intervals_alike():
    assert present.interval(0.7431, 0.7312, 0.755) == "0.743 [0.731, 0.755]"
    assert present.interval(0.5, None, None, 100, "{:.1f}") == "50.0"
    assert present.interval(float("nan")) == "—"
    frame = pd.DataFrame({"x": [0.5], "x_low": [0.4], "x_high": [0.6]})
    assert present.interval_column(frame, "x", 100, "{:.0f}").tolist() == ["50 [40, 60]"]
    assert present.interval_of({"value": 2.0, "low": 1.5, "high": 2.5}) == "2.00 [1.50, 2.50]"


def test_the_closing_table_divides_only_like_by_like():
    rows = [Headline("params (M)", 138.4, setting="torchvision vgg16", source=138.0, source_setting="lecture",
                     comparable=True, rule="exact"),
            Headline("accuracy (%)", 70.1, 68.0, 72.0, "95% bootstrap CI over test images (one trained model)",
                     "top-1, Imagenette test, 64 px", 87.6, "ImageNet top-5, 224 px")]
    table, notes = summary.study_table("x", rows)
    assert table.loc["params (M)", "ours ÷ source"] == "1.003" and table.loc["accuracy (%)", "ours ÷ source"] == ""
    assert table.loc["accuracy (%)", "source"] == "87.6"  # shown beside, not divided
    assert notes[1].startswith("[2] top-1, Imagenette test, 64 px; source: ImageNet top-5")
    assert len(table.columns) <= 7  # a laptop screen holds it


def test_an_unmeasured_contrast_adds_nothing_to_the_pooled_variance():
    with_empty = findings.pooled_paired({"a": np.array([1.0, 2.0]), "b": np.array([]), "c": np.array([0.5, 0.7])})
    without = findings.pooled_paired({"a": np.array([1.0, 2.0]), "c": np.array([0.5, 0.7])})
    assert set(with_empty) == {"a", "c"} and with_empty["a"]["df"] == 2
    assert with_empty["a"]["p"] == without["a"]["p"] and math.isfinite(with_empty["a"]["p"])


def test_a_directed_comparison_names_the_better_side_and_holm_can_withhold_resolution():
    from simplecnn.core import findings
    # a deletion AUC: lower is better, so a negative difference is a win for A
    f = findings.compare("Grad-CAM", "centre prior", -0.05, -0.08, -0.02, findings.IMAGES, higher_is_better=False)
    assert f.status == "resolved: Grad-CAM better" and f.words.startswith("Grad-CAM beats centre prior")
    f = findings.compare("Grad-CAM", "centre prior", 0.05, 0.02, 0.08, findings.IMAGES, higher_is_better=False)
    assert f.status == "resolved: centre prior better"
    assert findings.compare("a", "b", 0.05, 0.02, 0.08, findings.SEEDS).status == "resolved: a > b"
    # the interval excludes zero, but the adjusted test did not reject: not resolved, said so
    f = findings.compare("a", "b", 0.05, 0.02, 0.08, findings.SEEDS, p=0.2, resolved=False)
    assert f.status == "not resolved" and "after Holm" in f.words and not f.resolved
    # Holm rejected while the percentile interval just touches zero: resolved the estimate's way
    f = findings.compare("a", "b", -0.05, -0.09, 0.0, findings.IMAGES, higher_is_better=True, resolved=True)
    assert f.status == "resolved: b better"
