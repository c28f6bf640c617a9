"""The loader: mixed images, clear errors, deterministic stratified splits, the decode cache."""

from __future__ import annotations

import shutil


import pytest
import torch

from simplecnn.core import data
from simplecnn.core.archives import DataError
from simplecnn.core.data import load_dataset, load_folder


def test_mixed_modes_and_sizes_decode_to_uint8_squares(mixed_folder, cache):
    root = mixed_folder()
    images, _ = load_folder(root, 16, cache=cache)
    assert images.images.shape == (24, 3, 16, 16) and images.images.dtype == torch.uint8
    assert images.labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    assert images.classes == ["class0", "class1", "class2"]
    gray = images.images[1]  # the "L" image of class 0
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    # brightness survives every conversion: class means are ordered like the synthetic values
    means = [images.images[images.labels == c].float().mean().item() for c in range(3)]
    assert means[0] < means[1] < means[2]


def test_transparent_pixels_composite_on_white(tmp_path, cache):
    from PIL import Image
    root = tmp_path / "alpha"
    (root / "a").mkdir(parents=True)
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(root / "a" / "clear.png")
    images, _ = load_folder(root, 8, cache=cache)
    assert images.images.min().item() == 255


def test_sixteen_bit_grayscale_is_rescaled(tmp_path, cache):
    from PIL import Image
    import numpy as np
    root = tmp_path / "deep"
    (root / "a").mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 128 * 257, dtype=np.uint16)).save(root / "a" / "mid.png")
    images, _ = load_folder(root, 8, cache=cache)
    assert images.images.float().mean().item() == pytest.approx(128, abs=1)


def test_corrupt_file_names_the_path(mixed_folder, cache):
    root = mixed_folder()
    bad = root / "class1" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        load_folder(root, 16, cache=cache)


def test_truncated_jpeg_is_an_error(mixed_folder, cache):
    root = mixed_folder()
    good = root / "class0" / "img007.jpeg"
    good.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataError, match="img007.jpeg"):
        load_folder(root, 16, cache=cache)


def test_empty_class_folder_names_the_folder(mixed_folder, cache):
    root = mixed_folder()
    (root / "empty_class").mkdir()
    with pytest.raises(DataError, match="empty_class.*no images"):
        load_folder(root, 16, cache=cache)


def test_missing_directory_and_unknown_name(tmp_path, cache):
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "nowhere", 16, cache=cache)
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset(str(tmp_path / "nowhere"), 16, cache=cache)


def test_split_too_small_is_explained(mixed_folder, tmp_path, cache):
    root = mixed_folder(tmp_path / "tiny", classes=2, per_class=2)
    with pytest.raises(DataError, match="too small"):
        load_dataset(str(root), 16, val_fraction=0.2, cache=cache)


def test_train_val_layout_halves_val_stratified_and_deterministic(mixed_folder, tmp_path, cache):
    mixed_folder(tmp_path / "ds" / "train", per_class=8)
    mixed_folder(tmp_path / "ds" / "val", per_class=8)
    a = load_dataset(str(tmp_path / "ds"), 16, cache=cache)
    b = load_dataset(str(tmp_path / "ds"), 16, cache=cache)
    assert a.sizes() == {"train": 24, "val": 12, "test": 12}
    assert torch.bincount(a.val.labels).tolist() == [4, 4, 4] == torch.bincount(a.test.labels).tolist()
    assert torch.equal(a.test.images, b.test.images)
    c = load_dataset(str(tmp_path / "ds"), 16, split_seed=1, cache=cache)
    assert not torch.equal(a.test.images, c.test.images)
    # val and test are disjoint halves of the same folder
    pool = torch.cat([a.val.images, a.test.images]).flatten(1)
    assert len({tuple(r.tolist()) for r in pool}) == len(pool)


def test_single_folder_is_split_three_ways(mixed_folder, cache):
    root = mixed_folder(per_class=10)
    splits = load_dataset(str(root), 16, val_fraction=0.2, cache=cache)
    assert splits.sizes() == {"train": 18, "val": 6, "test": 6}
    assert set(splits.test.labels.tolist()) == {0, 1, 2}


def test_second_load_comes_from_the_cache(mixed_folder, cache, monkeypatch):
    root = mixed_folder()
    first, _ = load_folder(root, 16, cache=cache)
    monkeypatch.setattr(data, "decode_files", lambda *a, **k: pytest.fail("decoded twice"))
    second, _ = load_folder(root, 16, cache=cache)
    assert torch.equal(first.images, second.images)


def test_changed_files_invalidate_the_cache(mixed_folder, cache):
    root = mixed_folder()
    _, spec_a = load_folder(root, 16, cache=cache)
    shutil.copy(root / "class0" / "img000.jpg", root / "class0" / "extra.jpg")
    images, spec_b = load_folder(root, 16, cache=cache)
    assert spec_a["fingerprint"] != spec_b["fingerprint"] and len(images) == 25


def test_max_per_class_caps_each_class(mixed_folder, cache):
    root = mixed_folder(per_class=8)
    images, _ = load_folder(root, 16, max_per_class=3, cache=cache)
    assert torch.bincount(images.labels).tolist() == [3, 3, 3]


def test_parallel_decode_matches_sequential(mixed_folder, monkeypatch):
    root = mixed_folder(per_class=8)
    files, _, _ = data.list_image_folder(root)
    sequential = data.decode_files(files, 12)
    monkeypatch.setattr(data, "PARALLEL_MIN_FILES", 1)
    assert torch.equal(sequential, data.decode_files(files, 12))


@pytest.mark.skipif(not (data.data_dir() / "cifar10-jpg").is_dir(), reason="run `make data` first")
def test_real_cifar10_sample(cache):
    splits = load_dataset("cifar10", 32, max_per_class=20, cache=cache)
    assert splits.num_classes == 10 and "airplane" in splits.classes
    assert splits.test.images.shape == (200, 3, 32, 32)
    assert splits.sizes()["train"] + splits.sizes()["val"] == 200


@pytest.mark.skipif(not (data.data_dir() / "imagenette2-224").is_dir(), reason="run `make data` first")
def test_real_imagenette_sample_has_readable_names(cache):
    splits = load_dataset("imagenette", 24, max_per_class=6, cache=cache)
    assert "tench" in splits.classes and splits.sizes() == {"train": 60, "val": 30, "test": 30}
