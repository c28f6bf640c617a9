"""Receptive fields: the analytic walk over the traced graph agrees with gradients."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from simplecnn.core.models import build_model
from simplecnn.core.receptive import gradient_receptive_field, receptive_field


class Branchy(nn.Module):
    """Two branches of different fields merged by concatenation, then a strided conv."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.MaxPool2d(3, 1, 1))
        self.c = nn.Conv2d(8, 4, 3, stride=2, padding=1)

    def forward(self, x):
        return self.c(torch.cat([self.a(x), torch.relu(self.b(x))], 1))


def test_hand_computed_chain():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, stride=2), nn.Conv2d(4, 4, 3, dilation=2))
    # 3 -> 3+2 = 5 (jump 2 after the stride) -> 5 + 2·2·2 = 13
    assert receptive_field(net)["receptive_field"] == 13
    assert receptive_field(net)["jump"] == 2


@pytest.mark.parametrize("make, size", [
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, stride=2), nn.Conv2d(4, 4, 3, dilation=2)), 41),
    (Branchy, 33),
    (lambda: build_model("resnet", 10, channels=[8, 16, 16], blocks=[1, 1, 1], stem_channels=8), 257),
    (lambda: build_model("resnet", 10, channels=[4, 4], blocks=[1, 1], bottleneck=True, stem_channels=8), 161),
    (lambda: torchvision.models.alexnet(), 351),
    (lambda: torchvision.models.vgg11(), 301),
])
def test_analytic_matches_gradient(make, size):
    model = make()
    analytic = receptive_field(model)["receptive_field"]
    measured = gradient_receptive_field(model, size)
    assert measured["height"] == measured["width"] == analytic
    assert measured["top"] > 0 and measured["top"] + analytic < size  # the window was not clipped


def test_stride_placement_changes_resnet50s_field():
    from simplecnn.studies.zoo import build_zoo_model, stride_in_1x1
    v15 = receptive_field(build_zoo_model("resnet50"))["receptive_field"]
    v1 = receptive_field(stride_in_1x1(build_zoo_model("resnet50")))["receptive_field"]
    assert v1 > v15  # a stride in the 1×1 precedes the 3×3, so that 3×3 sees a coarser grid


def test_model_without_convolutions_is_an_error():
    with pytest.raises(ValueError, match="no Conv2d"):
        receptive_field(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))
