"""Tiled BagNet training: the whole image's gradient, in the memory of one tile."""

from __future__ import annotations

import copy

import pytest
import torch

from simplecnn.core.models import build_model
from simplecnn.studies.patches import tiled_training


def _bagnet(q: int = 17) -> torch.nn.Module:
    torch.manual_seed(0)
    bag = build_model("bagnet", 5, q=q, width=0.125, blocks=[1, 1, 1, 1]).double()
    for m in bag.modules():  # non-trivial frozen BN statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    return bag.eval()


@pytest.mark.parametrize("tile", [1, 3, 100])
def test_tiled_gradients_equal_whole_image_gradients(tile):
    bag = _bagnet()
    x, y = torch.randn(2, 3, 81, 73, dtype=torch.float64), torch.tensor([1, 3])
    gap = tiled_training.gradient_gap(bag, x, y, tile)
    assert gap["max_rel_diff"] < 1e-10 and gap["loss_diff"] < 1e-12, gap


def test_naive_per_tile_losses_would_not_give_the_whole_image_gradient():
    """Why two passes: summing each tile's own loss, weighted by its share, is not the
    image's loss (cross-entropy is not linear in the mean logits)."""
    bag, tile = _bagnet(), 3
    x, y = torch.randn(1, 3, 81, 73, dtype=torch.float64), torch.tensor([2])
    tiled_training.whole_backward(bag, x, y)
    whole = tiled_training.gradients(bag)
    bag.zero_grad(set_to_none=True)
    count = tiled_training.window_count(bag, x)
    for _, _, ih, jw, crop in tiled_training.tile_crops(x, bag.q, bag.stride, tile):
        (torch.nn.functional.cross_entropy(bag(crop), y) * ih * jw / count).backward()
    naive = tiled_training.gradients(bag)
    assert max(float((whole[k] - naive[k]).abs().max()) for k in whole) > 1e-6


def test_training_mode_updates_running_statistics_once_per_tile():
    bag = _bagnet().train()
    reference = copy.deepcopy(bag)
    x, y = torch.randn(1, 3, 57, 57, dtype=torch.float64), torch.tensor([0])  # 6 × 6 windows, tiles of 2 × 2
    with torch.no_grad():  # what one pass over the tiles does to the running statistics
        for *_, crop in tiled_training.tile_crops(x, bag.q, bag.stride, 2):
            reference.patch_logits(crop)
    tiled_training.tiled_backward(bag, x, y, 2)
    for m, r in zip(bag.modules(), reference.modules()):
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.testing.assert_close(m.running_mean, r.running_mean)
            assert m.momentum == r.momentum  # restored after pass 1
    assert all(p.grad is not None for p in bag.parameters())


def test_tile_must_hold_a_window():
    with pytest.raises(ValueError, match="at least one output location"):
        list(tiled_training.tile_crops(torch.zeros(1, 3, 40, 40), 9, 8, 0))


def test_tiled_training_peaks_below_whole_image_training():
    kwargs = {"q": 9, "width": 0.125, "blocks": (1, 1, 1, 1)}
    whole = tiled_training.isolated_train_peak(kwargs, 5, 320, None)
    tiled = tiled_training.isolated_train_peak(kwargs, 5, 320, 4)
    assert whole["windows"] == tiled["windows"] == ((320 - 9) // 8 + 1) ** 2
    assert whole["peak_bytes"] > 2 * tiled["peak_bytes"] > 0, (whole, tiled)
