"""Streamed window features: the same sample and predictions as the in-memory path, and
never more than a batch of images' windows featurised at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simplecnn.studies import patches
from simplecnn.studies.patches import methods, stream


def _pixels(windows: torch.Tensor) -> np.ndarray:
    return windows.reshape(*windows.shape[:2], -1).float().numpy() / 255


def test_sample_is_the_in_memory_sample_and_covers_everything_when_it_fits():
    assert np.array_equal(stream.sample_windows(3, 4, 100, seed=0), np.arange(12))
    index = stream.sample_windows(50, 16, 300, seed=1)
    assert len(index) == len(set(index.tolist())) == 300 and index.max() < 800
    assert np.array_equal(index, stream.sample_windows(50, 16, 300, seed=1))


@pytest.mark.parametrize("on_windows", [True, False])
def test_sampled_features_are_the_rows_of_the_full_feature_array(textures, on_windows):
    grid = patches.Grid(q=9, stride=8, size=32)
    images = textures.train.images[:30]
    full = _pixels(patches.extract(images, grid))  # 30 × 9 × 243
    index = stream.sample_windows(len(images), grid.count, 100, seed=3)
    featurize = _pixels if on_windows else (lambda imgs: _pixels(patches.extract(imgs, grid)))
    got = stream.sampled_features(images, grid, featurize, index, batch_images=7, on_windows=on_windows)
    np.testing.assert_array_equal(got, full.reshape(-1, full.shape[-1])[index])


def test_streamed_linear_read_out_matches_the_in_memory_one_in_bounded_batches(textures):
    grid = patches.Grid(q=9, stride=8, size=32)
    linear = patches.LinearOptions(c=1.0, max_patches=400, batch_images=5)
    seen = []

    def featurize(windows: torch.Tensor) -> np.ndarray:
        seen.append(windows.shape[0] * windows.shape[1])
        return _pixels(windows)

    # in memory: every training window featurised at once, then the reference fit
    train = _pixels(patches.extract(textures.train.images, grid))
    clf = methods.fit_linear(train, textures.train.labels.numpy(), linear.max_patches, linear.c, seed=0)
    expected = methods.linear_probs(clf, _pixels(patches.extract(textures.test.images, grid)), grid)
    out, _ = methods._feature_method(featurize, textures, grid, linear, 0, 0.0)
    torch.testing.assert_close(out["test"], expected, atol=1e-4, rtol=0)
    assert out["train_windows"] == linear.max_patches
    assert max(seen) <= linear.batch_images * grid.count  # never more than a batch of images' windows
    assert len(seen) >= len(textures.test) // linear.batch_images


def test_batch_must_hold_an_image(textures):
    grid = patches.Grid(q=9, stride=8, size=32)
    with pytest.raises(ValueError, match="batch_images must be at least 1"):
        next(stream.stream_features(textures.test.images, grid, _pixels, 0))


def test_bagnet_probe_reads_the_bagnets_penultimate_window_features(textures, cache):
    grid = patches.Grid(q=9, stride=8, size=32)
    options = {"width": 0.125, "blocks": [1, 1, 1, 1], "epochs": 2, "batch_size": 32, "lr": 0.05}
    out = patches.patch_predictions("bagnet_probe", textures, grid, options, patches.LinearOptions(max_patches=2000),
                                    cache=cache)
    assert out["test"].shape == (len(textures.test), grid.side, grid.side, 3)
    assert patches.evaluate(out["test"], textures.test.labels)["patch_auc"] > 0.9
    trained = patches.train_bagnet(textures, 9, patches.BagNetOptions(**options), 0, cache)  # the cached BagNet
    feats = patches.bagnet_window_features(trained.model, textures.test.images[:2], grid)
    bag = trained.model[1]
    with torch.no_grad():  # a window's features are the BagNet's on that window alone
        alone = bag.stages(bag.stem(trained.model[0](textures.test.images[1:2, :, 8:17, 16:25].float() / 255)))
    torch.testing.assert_close(torch.from_numpy(feats[1, 1 * grid.side + 2]), alone.flatten(), atol=1e-4, rtol=1e-4)
