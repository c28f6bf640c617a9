"""Background windows: detectors, object/background patch AUC, aggregation without background."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simplecnn.core import metrics
from simplecnn.studies.patches import Grid, background, compare

GRID = Grid(q=8, stride=8, size=40)  # 5 × 5 windows: a 3 × 3 centre and a ring of 16
RING = torch.ones(5, 5, dtype=torch.bool)
RING[1:4, 1:4] = False


def _windows(n: int = 300, c: int = 3, informative: torch.Tensor = ~RING, seed: int = 0):
    """Window probabilities where only ``informative`` windows carry the label (weakly);
    the others are confident noise that points at a random class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % c
    signal = torch.randn(n, 5, 5, c, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, c)[:, None, None]
    noise = 2.5 * torch.randn(n, 5, 5, c, generator=g)
    logits = torch.where(informative[None, :, :, None], signal, noise)
    return torch.softmax(logits, -1), labels


def test_centre_detector_calls_the_border_background():
    scores = background.centre_scores(2, GRID)
    mask = background.background_mask(scores, 16 / 25)
    assert mask.shape == (2, 5, 5)
    assert torch.equal(mask[0], RING) and torch.equal(mask[1], RING)
    assert int(background.background_mask(scores, 0.5)[0].sum()) == round(0.5 * 25)  # exact count with ties


def test_background_mask_takes_each_images_lowest_scores():
    scores = torch.arange(2 * 4, dtype=torch.float32).reshape(2, 2, 2)
    scores[1] = scores[1].flip(-1)
    mask = background.background_mask(scores, 0.5)
    assert mask[0].tolist() == [[True, True], [False, False]]
    assert mask[1].tolist() == [[True, True], [False, False]]
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        background.background_mask(scores, 1.0)


def test_saliency_finds_a_textured_object_on_a_flat_background():
    g = torch.Generator().manual_seed(0)
    images = torch.full((2, 3, 40, 40), 120, dtype=torch.uint8)
    images[:, :, 12:28, 12:28] = torch.randint(0, 256, (2, 3, 16, 16), generator=g, dtype=torch.uint8)
    scores = background.saliency_scores(images, GRID)
    assert scores.shape == (2, 5, 5)
    mask = background.background_mask(scores, 16 / 25)
    assert mask[:, 2, 2].logical_not().all()  # the centre window is object
    assert mask[:, [0, 0, 4, 4], [0, 4, 0, 4]].all()  # the corners are background
    with pytest.raises(ValueError, match="uint8"):
        background.saliency_maps(images.float())


def test_equal_weights_give_the_mean_logit_decision():
    probs, _ = _windows(20)
    torch.testing.assert_close(background.weighted_image_scores(probs, torch.ones(20, 5, 5)),
                               compare.image_scores(probs, "mean_logit"))
    with pytest.raises(ValueError, match="positive sum"):
        background.weighted_image_scores(probs, torch.zeros(20, 5, 5))


def test_region_auc_is_the_auc_of_the_selected_windows():
    probs, labels = _windows(60)
    counts = metrics.bootstrap_counts(60, 20, seed=0)
    mask = RING.expand(60, -1, -1)
    auc, boot = background.region_auc(probs, labels, mask, counts)
    flat = probs[mask]
    assert auc == pytest.approx(metrics.macro_auc(flat, labels.repeat_interleave(16)))
    assert boot.shape == (20,)


def test_background_windows_score_worse_and_ignoring_them_helps():
    probs, labels = _windows()
    counts = metrics.bootstrap_counts(len(labels), 200, seed=0)
    row, boot = background.background_rows(probs, labels, background.centre_scores(len(labels), GRID), 16 / 25,
                                           counts)
    assert row["patch_auc_object"] > 0.7 and abs(row["patch_auc_background"] - 0.5) < 0.05
    assert row["auc_gap_resolved"] and row["auc_gap_low"] > 0
    assert row["image_acc_object"] > row["image_acc_all"]
    assert row["image_acc_change_resolved"] and row["image_acc_change_low"] > 0
    for key in ("patch_auc_object", "patch_auc_background", "auc_gap", "image_acc_all", "image_acc_object",
                "image_acc_change", "image_auc_change"):
        assert row[f"{key}_low"] <= row[key] <= row[f"{key}_high"], key
    assert row["image_acc_all"] == pytest.approx(metrics.accuracy(compare.image_scores(probs), labels))
    summary = background.detector_summary([row], [boot])
    assert summary["hypothesis_holds"]
    assert "resolved" in background.check_line("centre", summary) and "holds" in background.check_line("centre",
                                                                                                     summary)


def test_when_the_border_is_informative_the_hypothesis_does_not_hold():
    probs, labels = _windows(informative=RING)
    counts = metrics.bootstrap_counts(len(labels), 200, seed=0)
    scores = background.centre_scores(len(labels), GRID)
    rows, boots = zip(*[background.background_rows(probs, labels, scores, 16 / 25, counts)])
    summary = background.detector_summary(list(rows), list(boots))
    assert summary["auc_gap_high"] < 0 and summary["image_acc_change_high"] < 0
    assert not summary["hypothesis_holds"]
    assert "does not hold" in background.check_line("centre", summary)


def test_scores_must_match_the_windows():
    probs, labels = _windows(12)
    with pytest.raises(ValueError, match="same grid"):
        background.background_rows(probs, labels, torch.zeros(12, 4, 4), 0.5, np.ones((1, 12)))


def test_study_rows_cover_every_detector_family_and_q():
    probs, labels = _windows(90)
    counts = metrics.bootstrap_counts(90, 50, seed=0)
    centre = background.centre_scores(90, GRID)
    preds = {("a", 8): probs, ("b", 8): probs.flip(1), ("a", 9): probs}  # q = 9 has no detector scores
    rows, summaries = background.study_rows(preds, labels, {("centre", 8): centre, ("flat", 8): -centre}, 0.5, counts)
    assert [(r["detector"], r["method"]) for r in rows] == [("centre", "a"), ("centre", "b"), ("flat", "a"),
                                                            ("flat", "b")]
    assert set(summaries) == {"centre", "flat"} and summaries["centre"]["rows"] == 2
    assert summaries["centre"]["auc_gap"] == pytest.approx((rows[0]["auc_gap"] + rows[1]["auc_gap"]) / 2)
    with pytest.raises(ValueError, match="share a q"):
        background.study_rows({("a", 9): probs}, labels, {("centre", 8): centre}, 0.5, counts)


def test_ties_are_broken_without_favouring_a_side():
    flat = torch.zeros(400, 2, 2)  # every window tied: which half is background is chance
    mask = background.background_mask(flat, 0.5)
    assert (mask.flatten(1).sum(1) == 2).all()
    share = mask.float().mean(0)
    assert ((share - 0.5).abs() < 0.1).all()  # each window background in about half the images
    assert torch.equal(mask, background.background_mask(flat, 0.5))  # seeded


def test_object_positions_are_the_centre_windows_and_the_sample_stays_inside_them():
    from simplecnn.studies import patches
    from simplecnn.studies.patches import stream
    allowed = patches.object_positions(GRID, 16 / 25)
    assert np.array_equal(allowed.reshape(5, 5), (~RING).numpy())
    index = stream.sample_windows(50, 25, 300, seed=0, allowed=allowed)
    assert len(index) == 300 and len(set(index.tolist())) == 300
    assert allowed[index % 25].all()  # never a ring window
    assert len(np.unique(index // 25)) > 40  # drawn across the images
    every = (np.arange(4)[:, None] * 25 + np.flatnonzero(allowed)).ravel()
    assert np.array_equal(stream.sample_windows(4, 25, 300, 0, allowed), every)  # all of them when they fit
    assert np.array_equal(stream.sample_windows(50, 25, 300, 0), stream.sample_windows(50, 25, 300, 0, None))
    with pytest.raises(ValueError, match="booleans"):
        stream.sample_windows(4, 25, 10, 0, np.zeros(25, bool))
    with pytest.raises(ValueError, match="train_windows"):
        patches.LinearOptions(train_windows="middle")
    # the background options change the cache key only when they apply
    assert patches.LinearOptions().spec() == patches.LinearOptions(train_share=0.3).spec()
    assert patches.LinearOptions(train_windows="centre").spec() != patches.LinearOptions().spec()


def test_refit_on_object_windows_helps_only_where_the_border_misleads_the_fit():
    # the all-window fit is hurt by the ring (its windows point at the wrong class); the
    # object-window refit is not: refit > original when both vote with the centre only
    probs, labels = _windows()
    wrong = torch.nn.functional.one_hot((labels + 1) % 3, 3)[:, None, None].float()
    fit_all = torch.softmax(probs.log() + 0.8 * wrong, -1)  # the fit learnt a bias from the border
    counts = metrics.bootstrap_counts(len(labels), 200, seed=0)
    ring = RING.expand(len(labels), -1, -1)
    row = background.refit_rows(fit_all, probs, labels, ring, counts)
    assert row["image_acc_refit"] > 0 and row["image_acc_refit_resolved"]
    assert row["image_acc_total"] > row["image_acc_refit"] - 1e-9  # the object-only vote helps too here
    for f, a in background.REFIT_CASES:
        key = f"image_acc_fit_{f}_agg_{a}"
        assert row[f"{key}_low"] <= row[key] <= row[f"{key}_high"]
    same = background.refit_rows(probs, probs, labels, ring, counts)
    assert same["image_acc_refit"] == 0 and not same["image_acc_refit_resolved"]
    assert "not resolved" in background.refit_line("pixels", 8, same)
    with pytest.raises(ValueError, match="same test windows"):
        background.refit_rows(probs, probs[:10], labels, ring, counts)


def test_refit_study_trains_every_family_on_centre_windows(monkeypatch):
    from types import SimpleNamespace

    from simplecnn.studies import patches
    probs, labels = _windows(60)
    seen = []

    def fake_predictions(method, data, grid, options, linear, seed):
        seen.append((method, options, linear.train_windows, linear.train_share))
        return {"test": probs, "train_windows": 123, "train_s": 4.5}
    monkeypatch.setattr(patches, "patch_predictions", fake_predictions)
    data = SimpleNamespace(test=type("Test", (), {"labels": labels, "__len__": lambda self: 60})())
    counts = metrics.bootstrap_counts(60, 50, seed=0)
    rows, lines = background.refit_study({"pixels": probs, "sift": probs, "bagnet": probs}, data, GRID,
                                         {"sift": {"codebook": 4}, "bagnet": {"epochs": 1}},
                                         patches.LinearOptions(), 0, 16 / 25, counts)
    assert seen == [("pixels", {}, "centre", 16 / 25), ("sift", {"codebook": 4}, "centre", 16 / 25),
                    ("bagnet", {"epochs": 1}, "centre", 16 / 25)]
    assert [r["method"] for r in rows] == ["pixels", "sift", "bagnet"] and rows[0]["train_windows"] == 123
    assert rows[2]["train_s"] == 4.5
    assert rows[0]["image_acc_total"] > 0  # the refit (here the informative centre) votes with object windows only
    assert lines[0].startswith("pixels-8:")
