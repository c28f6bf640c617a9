"""Grad-CAM through captum against the definition, and the faithfulness and sanity tools."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from simplecnn.studies import gradcam
from simplecnn.core.models import Normalize, build_model


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


def test_stage_layer_needs_stages():
    with pytest.raises(ValueError, match="no residual stages"):
        gradcam.stage_layer(nn.Sequential(nn.Identity(), nn.Linear(2, 2)), -1)


class QuadrantModel(nn.Module):
    """Class 0's logit is the brightness of the top-left quadrant; class 1's is constant."""

    def forward(self, x):
        evidence = x[:, :, :8, :8].mean((1, 2, 3)) * 20
        return torch.stack([evidence, torch.full_like(evidence, 5.0)], 1)


def test_deletion_and_insertion_reward_the_map_that_finds_the_evidence():
    images = torch.zeros(4, 3, 16, 16, dtype=torch.uint8)
    images[:, :, :8, :8] = 255
    good = torch.zeros(4, 16, 16)
    good[:, :8, :8] = 1 + torch.rand(4, 8, 8)
    bad = 1 - good / 2
    targets = torch.zeros(4, dtype=torch.long)
    model = QuadrantModel()
    c_good = gradcam.deletion_insertion(model, images, targets, good, steps=8, baseline="zero")
    c_bad = gradcam.deletion_insertion(model, images, targets, bad, steps=8, baseline="zero")
    f = c_good["fractions"]
    assert gradcam.curve_auc(c_good["deletion"], f) < gradcam.curve_auc(c_bad["deletion"], f)
    assert gradcam.curve_auc(c_good["insertion"], f) > gradcam.curve_auc(c_bad["insertion"], f)
    torch.testing.assert_close(c_good["deletion"][:, 0], c_good["insertion"][:, -1])  # whole image at both ends
    with pytest.raises(ValueError, match="unknown baseline"):
        gradcam.deletion_insertion(model, images, targets, good, baseline="noise")


def test_ranks_and_rank_correlations():
    maps = torch.tensor([[[0.1, 0.9], [0.5, 0.3]]])
    assert gradcam.ranked_pixels(maps).tolist() == [[[3, 0], [1, 2]]]
    a = torch.rand(3, 4, 4)
    corr = gradcam.rank_correlations(a, torch.cat([a[:2] * 2, torch.zeros(1, 4, 4)]))
    assert corr[:2] == pytest.approx([1.0, 1.0]) and np.isnan(corr[2])


def test_randomised_copy_changes_weights_but_keeps_normalisation():
    model = tiny_resnet()
    clone = gradcam.randomised_copy(model, seed=1)
    assert torch.equal(clone[0].mean, model[0].mean)
    conv = lambda m: m[1].stages[0][0].body[0][0].weight  # noqa: E731
    assert not torch.equal(conv(clone), conv(model))
