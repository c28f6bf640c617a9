"""The model registry: every named configuration builds, runs and keeps its promises."""

from __future__ import annotations

import pytest
import torch

from simplecnn.models import LIMITED, MODELS, build_model, count_params


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_classifies_a_batch(name):
    kwargs = {"channels": [8], "blocks": [1]} if name == "resnet" else {}
    if name.startswith(("resnet", "cifar_", "limited_")) and name != "resnet":
        kwargs["width"] = 0.125
    model = build_model(name, 7, **kwargs).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("name", sorted(LIMITED))
def test_limited_resnets_are_just_under_five_million(name):
    params = count_params(build_model(f"limited_{name}", 10))
    assert 4_800_000 < params < 5_000_000


def test_width_scales_channels_and_keeps_proportions():
    full = build_model("limited_IIa", 10)
    narrow = build_model("limited_IIa", 10, width=0.25)
    ratio = count_params(narrow) / count_params(full)
    assert 0.05 < ratio < 0.08  # convolutions scale with width², the 10-way head linearly


def test_resnet18_matches_torchvision_in_size():
    import torchvision
    ours = count_params(build_model("resnet18", 1000))
    theirs = sum(p.numel() for p in torchvision.models.resnet18().parameters())
    assert ours == theirs


def test_bad_arguments_name_the_model():
    with pytest.raises(ValueError, match="limited_I"):
        build_model("limited_I", 10, depth=3)
