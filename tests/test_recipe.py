"""The fast-training options, each on its own: alternating flips, patch whitening, EMA,
test-time flips, the FastNet builder and the named recipes."""

from __future__ import annotations

import pytest
import torch

from simplecnn.core import augment, recipes
from simplecnn.core.whitening import patch_covariance, patch_whitening_
from simplecnn.core.models import build_model
from simplecnn.core.train import TrainConfig, build_normalized, fit, predict


def test_alternate_flip_shows_each_image_both_ways_in_two_epochs():
    x = torch.randint(0, 255, (200, 3, 8, 8), dtype=torch.uint8)
    index = torch.arange(1000, 1200)
    g = torch.Generator().manual_seed(0)
    e0, e1 = augment.alternate_flip(x, g, index, 4), augment.alternate_flip(x, g, index, 5)
    flipped0 = torch.tensor([torch.equal(a, b.flip(2)) for a, b in zip(e0, x)])
    flipped1 = torch.tensor([torch.equal(a, b.flip(2)) for a, b in zip(e1, x)])
    assert torch.equal(flipped0, ~flipped1)
    assert 60 < flipped0.sum() < 140  # about half each epoch
    assert torch.equal(augment.alternate_flip(x, g, index, 6), e0)  # period two


def test_small_crop_shifts_by_at_most_two_pixels():
    x = torch.zeros(16, 3, 32, 32, dtype=torch.uint8)
    x[:, :, 15, 15] = 255
    out = augment.small_crop(x, torch.Generator().manual_seed(0), torch.arange(16), 0)
    ys, xs = (out[:, 0] == 255).nonzero()[:, 1], (out[:, 0] == 255).nonzero()[:, 2]
    assert len(ys) == 16 and (ys - 15).abs().max() <= 2 and (xs - 15).abs().max() <= 2


def test_patch_whitening_decorrelates_patches():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(64, 1, 16, 16, generator=g)
    images = torch.cat([base, 0.5 * base + 0.1 * torch.rand(64, 1, 16, 16, generator=g),
                        torch.rand(64, 1, 16, 16, generator=g)], 1)  # correlated channels
    conv = torch.nn.Conv2d(3, 8, 2)
    patch_whitening_(conv, images, eps=1e-6)
    out = conv(images)[:, :4].permute(0, 2, 3, 1).reshape(-1, 4).double()
    cov = torch.cov(out.T)
    assert torch.allclose(cov, torch.eye(4, dtype=torch.float64), atol=0.02)
    assert out.mean(0).abs().max() < 1e-3  # the bias centres the patches
    assert not conv.weight.requires_grad and conv.bias.requires_grad
    _, raw = patch_covariance(images, 2)
    assert (raw - torch.diag(torch.diag(raw))).abs().max() > 0.01  # they were correlated before


def test_whitening_needs_a_whiten_layer(bands):
    with pytest.raises(ValueError, match="whiten"):
        build_normalized("resnet", bands, {"channels": [8], "blocks": [1]}, seed=0, whiten=True)


def test_fastnet_whiten_weights_stay_frozen_while_its_bias_trains(bands):
    model = build_normalized("fastnet", bands, {"widths": [8, 8, 8], "whiten_width": 12}, seed=0, whiten=True)
    before_w, before_b = model[1].whiten.weight.clone(), model[1].whiten.bias.clone()
    fit(model, bands.train, TrainConfig(epochs=1, batch_size=32, lr=0.1))
    assert torch.equal(model[1].whiten.weight, before_w) and not torch.equal(model[1].whiten.bias, before_b)


def test_ema_returns_averaged_weights(bands):
    def run(ema: float) -> torch.nn.Module:
        torch.manual_seed(0)
        model = build_model("resnet", 3, channels=[8], blocks=[1], stem="cifar", stem_channels=8)
        init = [p.detach().clone() for p in model.parameters()]
        fit(model, bands.train, TrainConfig(epochs=2, batch_size=32, lr=0.5, schedule="constant", ema=ema))
        return sum((p.detach() - q).norm() for p, q in zip(model.parameters(), init))

    # a very slow average stays near the weights of the first step; the raw weights move on
    assert run(0.999) < 0.5 * run(0.0)


def test_tta_averages_each_image_with_its_mirror():
    torch.manual_seed(0)
    model = build_model("resnet", 4, channels=[8], blocks=[1], stem="cifar", stem_channels=8).eval()
    x = torch.randint(0, 255, (10, 3, 12, 12), dtype=torch.uint8)
    both = (predict(model, x) + predict(model, x.flip(3))) / 2
    assert torch.allclose(predict(model, x, tta=True), both, atol=1e-5)
    assert not torch.allclose(predict(model, x), both, atol=1e-3)


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
@pytest.mark.parametrize("dataset", ["cifar10", "imagenette"])
def test_every_recipe_learns_a_separable_task(name, dataset, bands):
    recipe = recipes.recipe(name, dataset)
    model = build_normalized(recipe.model, bands, recipe.model_kwargs, seed=0, whiten=recipe.config.whiten)
    config = TrainConfig(**{**recipe.config.__dict__, "epochs": 4, "batch_size": 32, "warmup": 0.1})
    history = fit(model, bands.train, config)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    acc = (predict(model, bands.test.images, tta=config.tta).argmax(1) == bands.test.labels).float().mean()
    assert acc > 0.6  # three classes: chance is a third


def test_unknown_recipe_is_named():
    with pytest.raises(ValueError, match="unknown recipe"):
        recipes.recipe("turbo", "cifar10")
