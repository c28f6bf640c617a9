"""Grad-CAM and the other captum maps against their definitions, and the faithfulness and
sanity tools on data whose answer is known (each check shown able to fail)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from simplecnn.core import metrics
from simplecnn.core.models import Normalize, build_model
from simplecnn.core.results import Headline
from simplecnn.studies import gradcam
from simplecnn.studies.patches import Grid


def tiny_resnet():
    torch.manual_seed(0)
    body = build_model("resnet", 3, channels=[4, 8], blocks=[1, 1], stem="cifar", stem_channels=4)
    return nn.Sequential(Normalize([0.5] * 3, [0.25] * 3), body).eval()


def test_grad_cam_matches_its_definition():
    model = tiny_resnet()
    images = torch.randint(0, 255, (3, 3, 16, 16), dtype=torch.uint8)
    targets = torch.tensor([0, 2, 1])
    cam = gradcam.grad_cam(model, gradcam.stage_layer(model, -1), images, targets)
    saved = {}
    handle = model[1].stages[-1].register_forward_hook(lambda m, i, o: saved.setdefault("a", o))
    x = images.float() / 255
    out = model(x)
    handle.remove()
    grads = torch.autograd.grad(out.gather(1, targets[:, None]).sum(), saved["a"])[0]
    manual = torch.relu((grads.mean((2, 3), keepdim=True) * saved["a"]).sum(1, keepdim=True))
    manual = nn.functional.interpolate(manual, size=(16, 16), mode="bilinear")[:, 0]
    assert cam.shape == (3, 16, 16) and (cam >= 0).all()
    torch.testing.assert_close(cam, manual.detach(), rtol=1e-4, atol=1e-6)
    # the chapter's path (a named layer, a frozen copy) gives the same map
    torch.testing.assert_close(gradcam.attribute("gradcam", model, images, targets, layer="stages.1"), cam)


def test_every_method_gives_one_map_per_image_and_names_are_checked():
    model = tiny_resnet()
    images = torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8)
    targets = torch.tensor([0, 1])
    for method in gradcam.METHODS:
        maps = gradcam.attribute(method, model, images, targets, layer="stages.0", ig_steps=4, occlusion_window=4)
        assert maps.shape == (2, 16, 16) and torch.isfinite(maps).all(), method
    assert model[1].stem[2].inplace  # the model itself is left as it was
    with pytest.raises(ValueError, match="unknown attribution method"):
        gradcam.attribute("lime", model, images, targets)
    with pytest.raises(ValueError, match="no layer 'layer9'"):
        gradcam.named_layer(model, "layer9")
    with pytest.raises(ValueError, match="Linear has no stages to take Grad-CAM at"):
        gradcam.stage_layer(nn.Sequential(nn.Identity(), nn.Linear(2, 2)), -1)
    assert gradcam.layer_cells(model, "stages.1", 16) == (8, 8)  # stride 2 in the second stage
    assert gradcam.cells_check((8, 8))["status"] == "met"
    assert gradcam.cells_check((4, 4))["status"] == "NOT met"


def test_occlusion_finds_the_only_evidence():
    images = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    images[:, :, :8, :8] = 255
    maps = gradcam.attribute("occlusion", QuadrantModel(), images, torch.zeros(2, dtype=torch.long),
                             occlusion_window=8)
    assert maps[:, :8, :8].min() > 0 and maps[:, 8:, :].abs().max() < maps[:, :8, :8].min()


class QuadrantModel(nn.Module):
    """Class 0's logit is the brightness of the top-left quadrant; class 1's is constant."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # a device to read

    def forward(self, x):
        evidence = x[:, :, :8, :8].mean((1, 2, 3)) * 20
        return torch.stack([evidence, torch.full_like(evidence, 5.0)], 1) + self.dummy


def quadrant_data():
    images = torch.zeros(4, 3, 16, 16, dtype=torch.uint8)
    images[:, :, :8, :8] = 255
    good = torch.zeros(4, 16, 16)
    good[:, :8, :8] = 1 + torch.rand(4, 8, 8)
    return images, good, 1 - good / 2, torch.zeros(4, dtype=torch.long)


def test_deletion_and_insertion_reward_the_map_that_finds_the_evidence():
    images, good, bad, targets = quadrant_data()
    model = QuadrantModel()
    c_good = gradcam.deletion_insertion(model, images, targets, good, steps=8, baseline="zero")
    c_bad = gradcam.deletion_insertion(model, images, targets, bad, steps=8, baseline="zero")
    f = c_good["fractions"]
    assert gradcam.curve_auc(c_good["deletion"], f) < gradcam.curve_auc(c_bad["deletion"], f)
    assert gradcam.curve_auc(c_good["insertion"], f) > gradcam.curve_auc(c_bad["insertion"], f)
    torch.testing.assert_close(c_good["deletion"][:, 0], c_good["insertion"][:, -1])  # whole image at both ends
    assert gradcam.image_auc(c_good["deletion"], f).mean() == pytest.approx(gradcam.curve_auc(c_good["deletion"], f))
    with pytest.raises(ValueError, match="unknown baseline"):
        gradcam.deletion_insertion(model, images, targets, good, baseline="noise")


def test_ranks_break_ties_at_random_not_in_raster_order():
    maps = torch.tensor([[[0.1, 0.9], [0.5, 0.3]]])
    assert gradcam.ranked_pixels(maps).tolist() == [[[3, 0], [1, 2]]]
    flat = gradcam.ranked_pixels(torch.ones(1, 16, 16)).flatten()
    assert sorted(flat.tolist()) == list(range(256))
    assert flat[:128].float().mean() < 200 and not torch.equal(flat, torch.arange(256))  # the top rows are not first


def test_linear_imputation_restores_a_ramp_and_adds_only_the_stated_noise():
    i, j = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    ramp = ((0.5 * i + 0.3 * j) / 32).expand(2, 3, 32, 32).clone()  # harmonic: its own neighbour mean inside
    removed = torch.zeros(2, 32, 32, dtype=torch.bool)
    removed[0, 5:25, 3:30] = True
    removed[1, 1:-1:3, 1:-1:2] = True  # scattered pixels, none on the border (one-sided there)
    filled = gradcam.noisy_linear_impute(ramp, removed, noise=0.0, iterations=200, tol=1e-7)
    torch.testing.assert_close(filled, ramp, atol=1e-4, rtol=0)
    noisy = gradcam.noisy_linear_impute(ramp, removed, noise=0.05, iterations=200, tol=1e-7)
    assert torch.equal(noisy[~removed[:, None].expand_as(ramp)], ramp[~removed[:, None].expand_as(ramp)])
    assert (noisy - ramp)[removed[:, None].expand_as(ramp)].std() == pytest.approx(0.05, rel=0.1)
    with pytest.raises(ValueError, match="at least one kept pixel"):
        gradcam.noisy_linear_impute(ramp, torch.ones(2, 32, 32, dtype=torch.bool))


def test_road_rewards_the_map_that_finds_the_evidence():
    images, good, bad, targets = quadrant_data()
    model = QuadrantModel()
    r_good = gradcam.road(model, images, targets, good, (0.25, 0.5), noise=0.01)
    r_bad = gradcam.road(model, images, targets, bad, (0.25, 0.5), noise=0.01)
    assert r_good["morf"].mean() < r_bad["morf"].mean() and r_good["lerf"].mean() > r_bad["lerf"].mean()
    s = gradcam.faithfulness(model, images, targets, good, steps=4, road_fractions=(0.5,))["scores"]
    assert set(s) == set(gradcam.METRICS) and all(len(v) == 4 for v in s.values())
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        gradcam.road(model, images, targets, good, (0.5, 1.0))


def synthetic_scores(n=200, seed=0):
    """Per-image insertion and deletion scores: the method beats smooth noise clearly, ties
    with the centre on insertion and loses to it on deletion."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.5, 0.1, n)
    return {"gradcam": {"insertion": base + 0.1, "deletion": base - 0.1},
            "smooth_random": {"insertion": base + rng.normal(0, 0.02, n), "deletion": base + rng.normal(0, 0.02, n)},
            "centre": {"insertion": base + 0.1 + rng.normal(0, 0.05, n), "deletion": base - 0.2}}


def test_compare_and_checks_can_resolve_fail_and_reverse():
    counts = metrics.bootstrap_counts(200, 500, 0)
    rows = gradcam.compare(synthetic_scores(), ["gradcam"], list(gradcam.REFERENCES),
                           {"insertion": True, "deletion": False}, counts)
    get = {(r["reference"], r["metric"]): r for r in rows}
    assert get["smooth_random", "insertion"]["beats"] and get["smooth_random", "deletion"]["beats"]
    assert not get["centre", "insertion"]["beats"] and not get["centre", "insertion"]["loses"]
    assert get["centre", "deletion"]["loses"]
    # the best reference is the centre on deletion (lower), so the method loses to it there
    assert get[gradcam.BEST, "deletion"]["reference_value"] == pytest.approx(get["centre", "deletion"]["reference_value"])
    assert get[gradcam.BEST, "deletion"]["loses"]
    status = {(c["reference"], c["metric"]): c["status"] for c in gradcam.checks(rows)}
    assert status == {("smooth_random", "insertion"): "resolved: Grad-CAM better",
                      ("smooth_random", "deletion"): "resolved: Grad-CAM better",
                      ("centre", "insertion"): "not resolved", ("centre", "deletion"): "resolved: centre prior better"}
    with pytest.raises(ValueError, match="compare"):
        gradcam.checks(rows, method="occlusion")


def test_ssim_of_equal_constant_and_unrelated_maps():
    a = torch.rand(3, 24, 24)
    assert gradcam.ssim(a, a) == pytest.approx(np.ones(3))
    c1, c2 = 0.2, 0.6  # constant maps: only the luminance term is left
    k1 = 0.01 ** 2
    expected = (2 * c1 * c2 + k1) / (c1 ** 2 + c2 ** 2 + k1)
    assert gradcam.ssim(torch.full((1, 24, 24), c1), torch.full((1, 24, 24), c2))[0] == pytest.approx(expected)
    assert (gradcam.ssim(a, torch.rand(3, 24, 24)) < 0.2).all()


def test_cascading_randomisation_goes_top_down_and_accumulates():
    model = tiny_resnet()
    assert gradcam.cascade_blocks(model) == ["head", "stages.1.0", "stages.0.0", "stem"]
    steps = list(gradcam.cascading_randomisation(model, seed=0))
    weight = lambda m, name: dict(m[1].named_parameters())[name]  # noqa: E731
    head, low = "head.2.weight", "stages.0.0.body.0.0.weight"
    assert not torch.equal(weight(steps[0][1], head), weight(model, head))
    assert torch.equal(weight(steps[0][1], low), weight(model, low))  # not yet
    assert not torch.equal(weight(steps[2][1], low), weight(model, low))
    assert torch.equal(weight(steps[2][1], head), weight(steps[0][1], head))  # a step keeps what is drawn above
    clone = gradcam.randomised_copy(model, seed=1)
    assert torch.equal(clone[0].mean, model[0].mean) and not torch.equal(weight(clone, low), weight(model, low))


def test_cascading_randomisation_knows_fastnet_and_refuses_other_models():
    """A user's own data set may get the FastNet recipe: its cascade runs head, groups, stem."""
    from simplecnn.core.models import build_model
    model = build_model("fastnet", 10, width=0.125)
    assert gradcam.cascade_blocks(model) == ["head", "body.3", "body.2", "body.1", "whiten"]
    steps = dict(gradcam.cascading_randomisation(model, seed=0))
    assert not torch.equal(steps["body.2"].body[2][0].weight, model.body[2][0].weight)
    assert torch.equal(steps["body.3"].body[2][0].weight, model.body[2][0].weight)  # below the step: not yet
    with pytest.raises(ValueError, match="no cascade order"):
        gradcam.cascade_blocks(torch.nn.Linear(2, 2))


def test_sanity_check_fails_for_a_map_that_ignores_the_model():
    model = tiny_resnet()
    images = torch.randint(0, 255, (6, 3, 16, 16), dtype=torch.uint8)
    targets = torch.zeros(6, dtype=torch.long)
    counts = metrics.bootstrap_counts(6, 100, 0)
    edges = lambda method, net: images.float().mean(1)  # noqa: E731  (an "explanation" blind to the weights)
    rows = gradcam.sanity_rows(model, images, targets, ["gradcam"], counts, mapper=edges)
    assert {r["metric"] for r in rows} == {"spearman", "spearman_abs", "ssim"} and len(rows) == 4 * 3
    assert all(r["value"] == pytest.approx(1.0) for r in rows)
    assert gradcam.sanity_check(rows)["status"] == "NOT met"
    real = gradcam.sanity_rows(model, images, targets, ["integrated_gradients"], counts, options={"ig_steps": 4})
    assert min(r["value"] for r in real if r["metric"] == "spearman") < 0.9


def test_reference_maps_and_bagnet_agreement():
    smooth = gradcam.smooth_random_maps(4, 16, (4, 4), seed=0)
    white = torch.rand(4, 16, 16)
    step = lambda m: (m[:, 1:] - m[:, :-1]).abs().mean()  # noqa: E731
    assert smooth.shape == (4, 16, 16) and step(smooth) < step(white) / 3
    assert not torch.equal(smooth[0], smooth[1])
    centre = gradcam.centre_map(2, 16)
    assert int(centre[0].argmax()) in {7 * 16 + 7, 7 * 16 + 8, 8 * 16 + 7, 8 * 16 + 8}
    torch.testing.assert_close(centre[0], centre[0].flip(0).flip(1))
    grid = Grid(4, 4, 16)
    evidence = torch.rand(3, 4, 4)
    maps = evidence.repeat_interleave(4, 1).repeat_interleave(4, 2)  # the evidence itself, at pixels
    assert gradcam.bagnet_agreement(maps, evidence, grid) == pytest.approx(np.ones(3))
    assert np.nanmean(gradcam.bagnet_agreement(torch.rand(3, 16, 16), evidence, grid)) < 0.9


def test_samples_picks_and_regions():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    s = gradcam.stratified_sample(labels, 2, seed=0)
    assert torch.bincount(labels[s]).tolist() == [2, 2, 2]
    pred = torch.tensor([0, 1, 0, 1, 1, 1, 0, 0])
    assert gradcam.overlay_picks(labels, pred, True) == [0, 3]
    assert gradcam.overlay_picks(labels, pred, False) == [1, 6]
    probs = torch.zeros(2, 2, 2, 2)
    probs[..., 1] = 1.0  # every window votes class 1 ...
    probs[:, 0, 0] = torch.tensor([1.0, 0.0])  # ... but the top-left ones, which vote class 0
    weights = torch.zeros(2, 2, 2)
    weights[:, 0, 0] = 1.0
    rows = {r["region"]: r for r in gradcam.region_rows(probs, torch.tensor([0, 1]), weights, 0.25)}
    assert rows["object"]["patch_acc"] == 0.5 and rows["background"]["patch_acc"] == 0.5
    assert rows["object"]["wrong_votes"] == 0.5


def test_headline_reads_the_results_doc():
    counts = metrics.bootstrap_counts(200, 200, 0)
    scores = synthetic_scores()
    for v in scores.values():
        v.update({"road_morf": v["deletion"], "road_lerf": v["insertion"], "road": v["insertion"] - v["deletion"]})
    higher = gradcam.METRICS
    comparisons = gradcam.compare(scores, ["gradcam"], list(gradcam.REFERENCES), higher, counts)
    sanity = [{"step": 0, "block": "head", "method": "gradcam", "metric": "spearman", "value": 0.1, "low": 0.0,
               "high": 0.2}]
    agreement = [{"map": m, "metric": "bagnet_agreement", "value": 0.3, "low": 0.2, "high": 0.4} for m in scores]
    setting = {"dataset": "imagenette", "resolution": 64, "n_images": 200, "layer": "stages.1", "cells": [8, 8],
               "level": 0.95, "sanity_images": 6, "agreement_q": 17}
    doc = gradcam.results_doc(setting, gradcam.score_rows(scores, counts), comparisons, {}, sanity, agreement, [],
                              gradcam.checks(comparisons), [])
    rows = gradcam.headline(doc)
    assert all(isinstance(r, Headline) for r in rows) and len({r.quantity for r in rows}) == len(rows)
    ins = next(r for r in rows if r.quantity == "Grad-CAM insertion AUC")
    assert ins.value == pytest.approx(scores["gradcam"]["insertion"].mean()) and ins.low <= ins.value <= ins.high
    assert doc["randomisation_rank_corr"]["gradcam"]["value"] == 0.1
    assert set(doc["deletion_auc"]) == set(scores)


def test_fastnet_gives_grad_cam_its_conv_groups_as_stages():
    from simplecnn.core.models import build_model
    from simplecnn.studies.gradcam.maps import stage_layer
    model = build_model("fastnet", 3, width=0.25)
    assert stage_layer(model, -1) is model.body[-1] and len(model.stages) == len(model.body) - 1
