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
    torch.testing.assert_close(ours, torch.softmax(logits.double().flatten(1, 2).mean(1), 1), rtol=1e-5, atol=1e-6)


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


# --- evaluate: choices on validation, test scored once, Holm over the rules ----------------

CENTRE = torch.zeros(5, 5, dtype=torch.bool)
CENTRE[2, 2] = True


def synthetic(informative: torch.Tensor, n: int = 90, classes: int = 3, seed: int = 0):
    """Window probabilities whose ``informative`` windows lean to the label and whose other
    windows are confidently wrong at random: a rule that reads only the informative windows wins."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    onehot = torch.nn.functional.one_hot(y, classes).float()[:, None, None]
    signal = torch.randn(n, 5, 5, classes, generator=g) + 2.0 * onehot
    noise = 5.0 * torch.nn.functional.one_hot(torch.randint(0, classes, (n, 5, 5), generator=g), classes).float()
    logits = torch.where(informative[None, :, :, None], signal, noise)
    return torch.softmax(logits, -1), y


def run(val_mask, test_mask, rules=("mean_logit", "mean_prob", "centre"), sigmas=(0.05, 3.0), bootstrap=200):
    pv, yv = synthetic(val_mask, seed=1)
    pt, yt = synthetic(test_mask, seed=2)
    ctx = {"val": fusion.Context(GRID), "test": fusion.Context(GRID)}
    return fusion.evaluate({"c": {"val": pv, "test": pt}}, {"c": ctx}, {"val": yv, "test": yt}, list(rules),
                           list(sigmas), bootstrap=bootstrap, seed=0)


def test_a_clearly_better_rule_and_its_sigma_are_chosen_and_resolved():
    result = run(CENTRE, CENTRE)
    chosen = result.chosen.loc["c"]
    assert chosen.rule == "centre" and chosen.sigma == 0.05
    assert chosen.delta > 0.2 and chosen.delta_low > 0 and chosen.p_holm < 0.05 and chosen.resolved
    assert result.verdicts().loc["centre"].tolist() == [1, 0, 1]  # better on one classifier of one
    assert fusion.check_lines(result)[0].startswith("c: best-on-validation rule centre vs mean_logit on test: ")
    assert "centre beats mean_logit for these trained models: image macro AUC (Holm-adjusted p) +" in fusion.check_lines(result)[0]
    assert fusion.verdict_sentence(result).startswith("After Holm's correction, centre beats mean_logit on 1 of 1")


def test_choices_follow_validation_when_test_disagrees():
    result = run(CENTRE, ~CENTRE)  # validation: only the centre speaks; test: all but the centre
    table = result.table.set_index("rule")
    assert result.chosen.loc["c", "rule"] == "centre" and result.chosen.loc["c", "sigma"] == 0.05
    assert table["image_auc"].idxmax() != "centre" and table.loc["centre", "delta"] < 0  # test would choose otherwise
    sweep = result.sweep.set_index("sigma")
    assert sweep.loc[3.0, "test_auc"] > sweep.loc[0.05, "test_auc"]  # and another σ
    assert "mean_logit beats" in fusion.check_lines(result)[0]
    assert "centre loses to it on 1" in fusion.verdict_sentence(result)


def test_reference_wins_ties_and_the_reference_row_is_not_tested():
    result = run(~CENTRE, ~CENTRE, rules=("mean_logit", "geometric_mean"), sigmas=(0.3,))
    # geometric_mean ranks classes within an image as mean_logit does; across images it need not,
    # so the choice is whichever validation prefers, with the reference kept on a tie
    row = result.table.set_index("rule").loc["mean_logit"]
    assert row.delta == 0 and np.isnan(row.p_value) and np.isnan(row.p_holm)
    val = result.table.set_index("rule")["val_auc"]
    expected = "geometric_mean" if val["geometric_mean"] > val["mean_logit"] else "mean_logit"
    assert result.chosen.loc["c", "rule"] == expected


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04, then running max
    assert metrics.holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})
    assert metrics.holm({"a": 0.6, "b": 0.5}) == pytest.approx({"a": 1.0, "b": 1.0})


def test_holm_is_applied_per_classifier_over_the_rules_compared():
    result = run(CENTRE, CENTRE, rules=("mean_logit", "mean_prob", "majority", "centre", "top_k"))
    t = result.table[result.table.rule != "mean_logit"].set_index("rule")
    expected = metrics.holm(t["p_value"].to_dict())
    assert t["p_holm"].to_dict() == pytest.approx(expected)
    assert (t["p_holm"] >= t["p_value"]).all()


def test_bad_rules_and_sigmas_are_named():
    with pytest.raises(ValueError, match="reference rule 'mean_logit'"):
        run(CENTRE, CENTRE, rules=("mean_prob", "centre"))
    with pytest.raises(ValueError, match="unknown fusion rule"):
        run(CENTRE, CENTRE, rules=("mean_logit", "median"))
    with pytest.raises(ValueError, match="sigmas is empty"):
        run(CENTRE, CENTRE, sigmas=())


def test_learned_rule_is_scored_out_of_fold_on_validation():
    """On noise with random labels the in-sample fit looks good; out of fold it is near chance."""
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(30, 5, 5, 3, generator=g), -1)
    y = torch.arange(30) % 3
    in_sample = metrics.macro_auc(fusion.fit_learned(probs, y, c=100.0)(probs), y)
    out_of_fold = metrics.macro_auc(fusion.learned_validation_scores(probs, y, c=100.0), y)
    assert in_sample > 0.8 and out_of_fold < 0.65 and in_sample - out_of_fold > 0.2
    with pytest.raises(ValueError, match="two validation images per class"):
        fusion.learned_validation_scores(probs[:4], torch.tensor([0, 1, 2, 2]))


def test_results_hold_every_row_and_the_headline_reads_them():
    import json

    from simplecnn.core.results import Headline
    from simplecnn.studies import summary

    rules = ["mean_logit", "mean_prob", "majority", "centre", "learned"]
    result = run(CENTRE, CENTRE, rules=rules)
    doc = json.loads(json.dumps(result.to_json(dataset="synthetic"), allow_nan=False))
    assert set(doc["classifiers"]["c"]) == set(rules)
    for rule, row in doc["classifiers"]["c"].items():
        assert {"val_auc", "image_auc", "image_auc_ci", "image_acc", "diff_vs_reference", "p_value", "p_holm"} <= set(row)
        lo, hi = row["image_auc_ci"]
        assert lo <= row["image_auc"] <= hi
    assert doc["best"]["c"]["rule"] == "centre" and doc["sigma"]["c"]["chosen"] == 0.05
    assert len(doc["sigma"]["c"]["sweep"]) == 2 and doc["verdicts"]["centre"] == {"better": 1, "worse": 0, "of": 1}
    rows = summary.study_headlines("fusion", doc)
    assert all(isinstance(r, Headline) for r in rows)
    by_quantity = {r.quantity: r for r in rows}
    assert by_quantity["fusion: classifiers whose validation-chosen rule beats mean_logit after Holm"].value == "1 / 1"
    gain = by_quantity["fusion: validation-chosen rule − mean_logit, image macro AUC"]
    assert gain.value == pytest.approx(result.chosen.loc["c", "delta"]) and gain.low <= gain.value <= gain.high


def test_object_size_gain_has_the_sign_the_data_give_it():
    """Small objects: only the centre window speaks (centre wins); large ones: every window
    speaks with noise (averaging all wins)."""
    small, ys = synthetic(CENTRE, n=90, seed=3)
    large, yl = synthetic(torch.ones(5, 5, dtype=torch.bool), n=90, seed=4)
    probs, y = torch.cat([small, large]), torch.cat([ys, yl])
    ctx = {"val": fusion.Context(GRID), "test": fusion.Context(GRID)}
    result = fusion.evaluate({"c": {"val": probs, "test": probs}}, {"c": ctx}, {"val": y, "test": y},
                             ["mean_logit", "centre"], [0.05], bootstrap=200)
    size = np.r_[np.full(90, 0.1), np.full(90, 0.9)]
    aucs, gains, effect = fusion.by_object_size(result, size, 2)
    assert gains["gain"].iloc[0] > 0 and gains["low"].iloc[0] > 0 and gains["resolved"].iloc[0]
    assert gains["gain"].iloc[1] < 0 and gains["high"].iloc[1] < 0
    first = aucs[(aucs["size bin (small → large)"] == 0) & (aucs.rule == "centre")].image_auc.iloc[0]
    assert first == pytest.approx(metrics.macro_auc(result.scores["c", "centre"][:90], y[:90].numpy()))
    # the size effect: small-bin gain − large-bin gain, one interval over the shared resamples
    assert effect["difference"] == pytest.approx(gains["gain"].iloc[0] - gains["gain"].iloc[1])
    assert effect["low"] > 0 and effect["status"] == "resolved: the smallest-object bin > the largest"
    assert effect["text"] in fusion.size_sentence(gains, effect)
    assert "one bin only" in fusion.size_sentence(gains.iloc[:1], {})
    # no size effect when both bins hold the same kind of image
    same = np.r_[np.full(45, 0.1), np.full(45, 0.9), np.full(45, 0.1), np.full(45, 0.9)]
    _, _, none = fusion.by_object_size(result, same, 2)
    assert none["status"] == "not resolved" and "not evidence of none" in none["text"]


def test_nothing_resolved_is_said_plainly():
    result = run(CENTRE, CENTRE, rules=("mean_logit", "mean_prob"), bootstrap=50)
    result.table["p_holm"] = 1.0  # as if every test had failed
    assert fusion.verdict_sentence(result).startswith("No rule beats mean_logit on any of the 1 classifiers")
