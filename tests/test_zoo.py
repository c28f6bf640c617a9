"""Zoo measurements against quantities computed independently in the test."""

from __future__ import annotations


import pytest
from torch import nn

from simplecnn.core import memory

from simplecnn.studies import zoo


def test_macs_of_one_conv_and_one_linear():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 16 * 16, 5))
    # multiply-accumulates, plus one add per output for the biases (ptflops' aten count)
    assert zoo.macs(net, 16) == 3 * 8 * 9 * 16 * 16 + 8 * 16 * 16 * 5 + (8 * 16 * 16 + 5)


def test_activation_bytes_counts_each_output_once():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
    # conv output 8×16×16 (the in-place ReLU shares it), pooled output 8×8×8
    assert memory.activation_bytes(net, (3, 16, 16)) == 4 * (8 * 16 * 16 + 8 * 8 * 8)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    assert memory.activation_bytes(net, (3, 16, 16)) == 4 * (2 * 8 * 16 * 16 + 8 * 8 * 8)


def test_model_stats_agree_with_direct_counts():
    stats = zoo.model_stats("resnet18", resolution=64)
    assert stats["params"] == 11_689_512  # ResNet-18's published count (torchvision's model card)
    assert stats["param_bytes"] == 4 * 11_689_512
    assert zoo.model_stats("resnet18", resolution=128)["macs"] > 3.5 * stats["macs"]  # ~4× pixels


def test_original_resnet_layout_costs_fewer_macs():
    assert zoo.original_resnet_macs("resnet50", 64) < zoo.macs(zoo.build_zoo_model("resnet50"), 64)


def test_unknown_zoo_model_is_named():
    import pytest
    with pytest.raises(ValueError, match="unknown torchvision model"):
        zoo.build_zoo_model("resnet9000")


def test_measured_training_peak_grows_with_the_batch():
    builder = "simplecnn.studies.zoo:build_zoo_model"
    small = memory.measure_train_step_peak(builder, "resnet18", 1, 64, 10)
    large = memory.measure_train_step_peak(builder, "resnet18", 128, 64, 10)
    assert 0 < small < large
    # The step's floor is gradients + momentum (2 × 45 MB); 128 images' activations at 64 px
    # (128 × 1.7 MB) exceed it, so the peak must grow by a large share of them.
    per_image = memory.activation_bytes(zoo.build_zoo_model("resnet18", 10), (3, 64, 64))
    assert large - small > 40 * per_image


def test_original_layout_gives_the_lectures_resnet50_multiply_adds():
    import pandas as pd
    table = pd.DataFrame({"macs": [zoo.macs(zoo.build_zoo_model("resnet50"), 224)], "lecture_gmacs": [3.8]},
                         index=["resnet50"])
    frame = zoo.lecture_comparison(table, 224)
    assert frame.loc["resnet50", "stride in 1×1 (original) GMACs"] == pytest.approx(3.8, abs=0.1)
    assert frame.loc["resnet50", "torchvision (v1.5) GMACs"] == pytest.approx(4.1, abs=0.1)  # v1.5's known cost


def test_peak_estimate_is_gradients_momentum_and_batch_activations():
    import pandas as pd
    table = pd.DataFrame({"param_bytes": [100, 10], "activation_bytes": [5, 50], "train_step_peak_bytes": [230, 440]},
                         index=["a", "b"])
    peaks = zoo.peak_estimate(table, batch=6)
    assert peaks["estimate"].tolist() == [230, 320]
    assert peaks["ratio"].tolist() == pytest.approx([1.0, 440 / 320])


def test_conv_channels_in_module_order():
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(5, 7, 1)), nn.Linear(7, 2))
    assert zoo.conv_channels(net) == [5, 7]
    assert zoo.conv_channels(zoo.build_zoo_model("alexnet")) == [64, 192, 384, 256, 256]


def test_results_and_headline_compare_like_with_like():
    import pandas as pd
    table = pd.DataFrame({"params": [25_557_032, 138_357_544], "macs": [4_100_000_000, 15_500_000_000],
                          "activation_bytes": [1, 2], "receptive_field": [427, 212], "param_bytes": [4, 8]},
                         index=["resnet50", "vgg16"])
    original = pd.DataFrame({"stride in 1×1 (original) GMACs": [3.86]}, index=["resnet50"])
    results = zoo.results_dict(table, original, 224)
    assert results["resnet50"]["original_macs"] == 3_860_000_000 and "original_macs" not in results["vgg16"]
    rows = {h.quantity: h for h in zoo.headline(results)}
    assert rows["resnet50 GMACs"].value == pytest.approx(3.86) and rows["resnet50 GMACs"].source == 3.8
    assert "torchvision v1.5: 4.10 G" in rows["resnet50 GMACs"].setting
    assert rows["vgg16 parameters (M)"].value == pytest.approx(138.357544) and rows["vgg16 parameters (M)"].source == 138
    assert "resnet18 GMACs" not in rows  # models absent from the results give no row


# --- the data chapter's helpers (simplecnn.studies.data) -----------------------------------

def tiny_splits(n_train: int, n_val: int, n_test: int, side: int = 8):
    import torch
    from simplecnn.core.data import DataSplits, ImageSet

    def part(n):
        return ImageSet(torch.zeros(n, 3, side, side, dtype=torch.uint8), torch.arange(n) % 2, ["a", "b"])
    return DataSplits("tiny", part(n_train), part(n_val), part(n_test))


def test_split_table_and_data_headline():
    from simplecnn.studies import data as study
    splits = {"x": tiny_splits(8, 2, 4), "y": tiny_splits(6, 3, 3, side=16)}
    table = study.split_table(splits)
    assert table.loc["x"].tolist() == [8, 2, 4, 2, 8] and table.loc["y"].tolist() == [6, 3, 3, 2, 16]
    results = study.results_dict(splits)
    assert results == {"x": {"train": 8, "val": 2, "test": 4}, "y": {"train": 6, "val": 3, "test": 3}}
    rows = study.headline({"cifar10": {"train": 45000, "val": 5000, "test": 10000}})
    assert rows[0].value == "45,000 / 5,000 / 10,000" and "cifar10" in rows[0].quantity


def test_archive_table_shows_each_archive_once():
    from simplecnn.core.archives import Archive
    from simplecnn.studies import data as study
    table = study.archive_table({"d": Archive("d.tar.gz", "ab" * 32, "d-folder")})
    assert table.loc["d", "unpacks to"] == "d-folder" and table.loc["d", "sha256"] == "ab" * 8 + "…"
