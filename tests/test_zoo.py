"""Zoo measurements against quantities computed independently in the test."""

from __future__ import annotations


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
    model = zoo.build_zoo_model("resnet18")
    assert stats["params"] == sum(p.numel() for p in model.parameters())
    assert stats["param_bytes"] == 4 * stats["params"]
    assert zoo.model_stats("resnet18", resolution=128)["macs"] > 3.5 * stats["macs"]  # ~4× pixels


def test_original_resnet_layout_costs_fewer_macs():
    assert zoo.original_resnet_macs("resnet50", 64) < zoo.macs(zoo.build_zoo_model("resnet50"), 64)


def test_unknown_zoo_model_is_named():
    import pytest
    with pytest.raises(ValueError, match="unknown torchvision model"):
        zoo.build_zoo_model("resnet9000")


def test_measured_training_peak_grows_with_the_batch():
    small = memory.measure_train_step_peak("resnet18", 1, 64, 10)
    large = memory.measure_train_step_peak("resnet18", 128, 64, 10)
    assert 0 < small < large
    # The step's floor is gradients + momentum (2 × 45 MB); 128 images' activations at 64 px
    # (128 × 1.7 MB) exceed it, so the peak must grow by a large share of them.
    per_image = memory.activation_bytes(zoo.build_zoo_model("resnet18", 10), (3, 64, 64))
    assert large - small > 40 * per_image
