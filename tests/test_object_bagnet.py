"""The BagNet trained without background: pooling over object windows, its guards, and a
task where only training on the object windows can learn the right classes."""

from __future__ import annotations

import pytest
import torch

from simplecnn.core.complexity import macs
from simplecnn.core.data import DataSplits, ImageSet
from simplecnn.core.models import build_model
from simplecnn.studies import patches
from simplecnn.studies.patches import background, object_bagnet

ARGS = {"q": 9, "width": 0.125, "blocks": [1, 1, 1, 1]}


def _pooled(keep: torch.Tensor, classes: int = 3):
    return build_model("bagnet_object", classes, **ARGS, keep=keep.tolist())


def test_image_logits_are_the_mean_window_logits_over_the_kept_windows():
    torch.manual_seed(0)
    keep = torch.zeros(4, 4, dtype=torch.bool)
    keep[1:3, 1:3] = True
    keep[0, 3] = True
    model = _pooled(keep).eval()
    assert model.stride == object_bagnet.MAP_STRIDE  # the stride the mask helpers assume
    x = torch.rand(2, 3, 33, 33)  # a 4 × 4 logit map for q = 9 at stride 8
    maps = model.patch_logits(x)
    torch.testing.assert_close(model(x), maps[:, :, keep].mean(2))
    plain = build_model("bagnet", 3, **ARGS).eval()
    plain.load_state_dict(model.state_dict())  # the mask is not a stored weight
    everything = _pooled(torch.ones(4, 4, dtype=torch.bool)).eval()
    everything.load_state_dict(model.state_dict())
    torch.testing.assert_close(everything(x), plain(x))
    assert not torch.allclose(model(x), plain(x))
    assert macs(object_bagnet.window_model(model), 9) == macs(plain, 9) > 0  # one window costs what it costs


def test_background_pixels_get_no_gradient():
    torch.manual_seed(0)
    keep = torch.zeros(4, 4, dtype=torch.bool)
    keep[0, 0] = True  # the one window of rows and columns 0..8
    model = _pooled(keep).eval()
    x = torch.rand(1, 3, 33, 33, requires_grad=True)
    model(x)[0, 1].backward()
    grad = x.grad.abs().sum((0, 1))
    assert grad[:9, :9].sum() > 0
    assert grad[9:, :].sum() == 0 and grad[:, 9:].sum() == 0


def test_an_empty_mask_and_a_mask_of_the_wrong_size_are_errors():
    with pytest.raises(ValueError, match="at least one object window"):
        _pooled(torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="train and score at the mask's image size"):
        _pooled(torch.ones(4, 4, dtype=torch.bool))(torch.rand(1, 3, 41, 41))


def test_the_pooled_map_mask_is_the_read_outs_object_positions():
    grid = patches.Grid(9, 8, 33)
    mask = patches.bagnet_object_mask(grid, 0.75)
    assert mask.shape == (4, 4) and mask.sum() == 4
    assert (mask.flatten() == patches.object_positions(grid, 0.75)).all()
    assert mask[1:3, 1:3].all()  # the four windows nearest the centre


def _border_task(n: int = 240, size: int = 33, seed: int = 0) -> DataSplits:
    """Class c shows texture c in the central 17 × 17 px (the four central windows of side 9
    every 8 px) and texture c + 1 (mod 3) around it:
    a BagNet pooling every window learns the border's texture as the class, one pooling the
    centre windows learns the centre's."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")

    def texture(c: int) -> torch.Tensor:
        if c == 2:
            return torch.rand(size, size, generator=g) * 200
        period = 4 + int(torch.randint(0, 3, (1,), generator=g))
        return (((yy if c == 0 else xx) % period) < period // 2).float() * 160 + 40

    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        img = texture((c + 1) % 3)
        img[8:25, 8:25] = texture(c)[8:25, 8:25]
        images[i] = (img + torch.randn(3, size, size, generator=g) * 10).clamp(0, 255).to(torch.uint8)
    names = ["horizontal", "vertical", "speckle"]
    cut1, cut2 = int(n * 0.6), int(n * 0.8)
    parts = [ImageSet(images[a:b], labels[a:b], names) for a, b in ((0, cut1), (cut1, cut2), (cut2, n))]
    return DataSplits("border", *parts, spec={"dataset": "border", "n": n, "size": size, "seed": seed})


def test_training_on_centre_windows_learns_what_the_centre_shows(cache):
    data, grid, share = _border_task(), patches.Grid(9, 8, 33), 0.75
    options = {"width": 0.125, "blocks": [1, 1, 1, 1], "epochs": 4, "batch_size": 32, "lr": 0.05}
    everything = patches.patch_predictions("bagnet", data, grid, options, patches.LinearOptions(), cache=cache)
    centre = patches.LinearOptions(train_windows="centre", train_share=share)
    pooled = patches.patch_predictions("bagnet", data, grid, options, centre, cache=cache)
    assert pooled["train_windows"] == len(data.train) * 4 and everything["train_windows"] == len(data.train) * 16
    ring = background.background_mask(background.centre_scores(len(data.test), grid), share)
    y = data.test.labels
    vote = lambda probs: background.weighted_image_scores(probs, (~ring).double()).argmax(1)  # noqa: E731
    assert (vote(pooled["test"]) == y).float().mean() > 0.9
    assert (vote(everything["test"]) == y).float().mean() < 0.5  # it learned the border's textures
