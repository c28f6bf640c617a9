"""Patch grid, the four patch classifiers, their cache entries, and tiled BagNet inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simplecnn.studies import patches

from simplecnn.studies.patches import sift, tile2vec, tiling
from simplecnn.core.models import build_model


def test_grid_windows_are_the_image_crops():
    images = torch.randint(0, 255, (2, 3, 20, 20), dtype=torch.uint8)
    grid = patches.Grid(q=5, stride=4, size=20)
    windows = patches.extract(images, grid)
    assert grid.side == 4 and windows.shape == (2, 16, 3, 5, 5)
    row, col = 2, 3
    assert torch.equal(windows[1, row * grid.side + col], images[1, :, 8:13, 12:17])
    assert torch.equal(grid.centres()[row, col], torch.tensor([10.0, 14.0]))


def test_grid_rejects_wrong_sizes():
    with pytest.raises(ValueError, match="between 1 and the image size"):
        patches.Grid(q=40, stride=8, size=32)
    with pytest.raises(ValueError, match="px but the grid is for"):
        patches.extract(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), patches.Grid(5, 2, 20))


def test_window_values_map_back_to_their_centres():
    grid = patches.Grid(q=5, stride=4, size=20)
    values = torch.arange(16.0).view(1, 4, 4)
    pixels = patches.to_pixels(values, grid)
    centres = grid.centres().long()
    for r in range(4):
        for c in range(4):
            y, x = centres[r, c]
            assert pixels[0, y, x] == values[0, r, c]
    assert torch.isnan(pixels[0, 19, 19])  # beyond half a stride past the last centre (14)
    cam = torch.rand(1, 20, 20)
    assert torch.isclose(patches.window_means(cam, grid)[0, 1, 2], cam[0, 4:9, 8:13].mean())


def test_true_class_picks_each_images_label():
    probs = torch.rand(3, 2, 2, 4)
    labels = torch.tensor([0, 3, 1])
    picked = patches.true_class(probs, labels)
    for i, c in enumerate(labels):
        assert torch.equal(picked[i], probs[i, :, :, c])


def test_evaluate_scores_perfect_and_chance_predictions():
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    perfect = torch.nn.functional.one_hot(labels, 3).float()[:, None, None, :].expand(6, 2, 2, 3)
    scores = patches.evaluate(perfect, labels)
    assert scores == {"patch_auc": 1.0, "patch_acc": 1.0, "image_auc": 1.0, "image_acc": 1.0}
    flat = torch.full((6, 2, 2, 3), 1 / 3)
    assert patches.evaluate(flat, labels)["patch_auc"] == pytest.approx(0.5)


def test_sift_descriptor_sees_only_its_window():
    img = torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8)
    grid = patches.Grid(q=9, stride=8, size=32)
    changed = img.clone()
    changed[..., 20:, :] = 0  # outside window (0, 0), inside later rows
    a = sift.patch_descriptors(patches.extract(img, grid), progress=False)
    b = sift.patch_descriptors(patches.extract(changed, grid), progress=False)
    assert a.shape == (1, grid.count, 128)
    np.testing.assert_array_equal(a[0, 0], b[0, 0])
    assert not np.array_equal(a[0, -1], b[0, -1])


def test_tile2vec_triplets_come_from_the_right_places():
    n, size, q, radius = 6, 24, 5, 3
    # pixel value encodes image (channel 0), row (channel 1) and column (channel 2)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images = torch.stack([torch.stack([torch.full((size, size), i), yy, xx]) for i in range(n)]).to(torch.uint8)
    a, nb, d = tile2vec.sample_triplets(images, q, radius, 200, torch.Generator().manual_seed(0))
    assert a.shape == (200, 3, q, q)
    assert torch.equal(a[:, 0, 0, 0], nb[:, 0, 0, 0])  # neighbour: same image
    assert (a[:, 0, 0, 0] != d[:, 0, 0, 0]).all()  # distant: another image
    offset = (a[:, 1:, 0, 0].long() - nb[:, 1:, 0, 0].long()).abs()
    assert offset.max() <= radius and offset.max() > 0
    assert torch.equal(a[:, 2, 0, 1:] - a[:, 2, 0, :-1], torch.ones(200, q - 1, dtype=torch.uint8))  # contiguous


def test_tile2vec_training_lowers_the_triplet_loss(textures):
    config = tile2vec.Tile2VecConfig(channels=8, dim=16, steps=60, batch_size=64)
    encoder, losses, _ = tile2vec.train_encoder(textures.train.images, 9, config, progress=False)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert tile2vec.embed(encoder, torch.zeros(2, 5, 3, 9, 9, dtype=torch.uint8)).shape == (2, 5, 16)


@pytest.mark.parametrize("method, options, floor", [
    ("pixels", {"components": 16}, 0.65),  # linear in pixels: no invariance to the stripes' phase
    ("sift", {"codebook": 16}, 0.9),
    ("tile2vec", {"channels": 8, "dim": 16, "steps": 60, "batch_size": 64}, 0.9),
    ("bagnet", {"width": 0.125, "blocks": [1, 1, 1, 1], "epochs": 4, "batch_size": 32, "lr": 0.05}, 0.9),
])
def test_every_method_learns_textures_from_single_windows(method, options, floor, textures, cache):
    grid = patches.Grid(q=9, stride=8, size=32)
    out = patches.patch_predictions(method, textures, grid, options, patches.LinearOptions(max_patches=5000),
                                    cache=cache)
    assert out["test"].shape == (len(textures.test), grid.side, grid.side, 3)
    torch.testing.assert_close(out["test"].sum(-1), torch.ones(out["test"].shape[:3]))
    scores = patches.evaluate(out["test"], textures.test.labels)
    assert scores["patch_auc"] > floor, scores
    assert out["params"] > 0 and out["train_s"] > 0 and out["test_s"] > 0


def test_patch_predictions_are_cached_per_grid(textures, cache, monkeypatch):
    calls = []
    real = patches.METHODS["pixels"]
    monkeypatch.setitem(patches.METHODS, "pixels", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = patches.patch_predictions("pixels", textures, patches.Grid(9, 8, 32), {"components": 8}, cache=cache)
    again = patches.patch_predictions("pixels", textures, patches.Grid(9, 8, 32), {"components": 8}, cache=cache)
    assert len(calls) == 1 and torch.equal(first["test"], again["test"]) and again["grid"]["q"] == 9
    patches.patch_predictions("pixels", textures, patches.Grid(9, 4, 32), {"components": 8}, cache=cache)
    assert len(calls) == 2


def test_unknown_method_and_mismatched_bagnet_grid_are_errors(textures, cache):
    with pytest.raises(ValueError, match="unknown patch method 'hog'"):
        patches.patch_predictions("hog", textures, patches.Grid(9, 8, 32))
    model = torch.nn.Sequential(torch.nn.Identity(), build_model("bagnet", 3, q=9, width=0.125, blocks=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match="multiple of 8"):
        patches.bagnet_patch_logits(model, textures.test.images, patches.Grid(9, 4, 32))


@pytest.mark.parametrize("tile", [1, 3, 4, 100])
def test_tiled_bagnet_inference_equals_the_whole_image(tile):
    torch.manual_seed(0)
    bag = build_model("bagnet", 5, q=17, width=0.125, blocks=[1, 1, 1, 1]).eval()
    for m in bag.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2)
    x = torch.randn(1, 3, 90, 75)
    with torch.no_grad():
        whole = bag.patch_logits(x)
    tiled = tiling.tiled_patch_logits(bag, x, tile)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-4


def test_isolated_peak_measures_whole_above_tiled():
    bag = build_model("bagnet", 5, q=9, width=0.125, blocks=[1, 1, 1, 1]).eval()
    x = torch.randn(1, 3, 400, 400)
    kwargs = {"q": 9, "width": 0.125, "blocks": (1, 1, 1, 1)}
    whole, whole_peak = tiling.isolated_peak(bag, kwargs, x, None)
    tiled, tiled_peak = tiling.isolated_peak(bag, kwargs, x, 4)
    assert (whole - tiled).abs().max() < 1e-4
    assert whole_peak > 2 * tiled_peak > 0


def test_a_codebook_larger_than_its_sample_names_the_fix():
    with pytest.raises(ValueError, match="codebook of 32 words needs at least 32 SIFT descriptors, got 10"):
        sift.fit_codebook(np.zeros((10, 1, 128), np.float32), 32, 0)
