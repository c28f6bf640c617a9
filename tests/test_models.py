"""The model registry: every named configuration builds, runs and keeps its promises."""

from __future__ import annotations

import pytest
import torch

from simplecnn.core.models import LIMITED, MODELS, build_model, count_params
from simplecnn.core.receptive import gradient_receptive_field, receptive_field


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_classifies_a_batch(name):
    kwargs = {"channels": [8], "blocks": [1]} if name == "resnet" else {}
    if name in ("bagnet", "bagnet_object"):
        kwargs = {"q": 9, "width": 0.125, "blocks": [1, 1, 1, 1]}
    if name == "bagnet_object":  # registered by the patch study: pooled over a 3 × 3 map's object windows
        import simplecnn.studies.patches.object_bagnet  # noqa: F401  (registers it)
        kwargs |= {"keep": [[False, True, False], [True, True, True], [False, True, False]]}
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


@pytest.mark.parametrize("q", [9, 17, 33])
def test_bagnet_patch_logit_sees_exactly_its_q_by_q_window(q):
    model = build_model("bagnet", 10, q=q, width=0.125, blocks=[1, 2, 1, 1])
    size = q + 3 * model.stride
    logits = model.patch_logits(torch.rand(1, 3, size, size))
    assert logits.shape[-1] == (size - q) // model.stride + 1
    for loc in [(0, 0), (1, 2), (3, 3)]:
        field = gradient_receptive_field(model, size, model.head, location=loc)
        assert (field["height"], field["width"]) == (q, q)
        assert (field["top"], field["left"]) == (loc[0] * model.stride, loc[1] * model.stride)
    assert receptive_field(model)["receptive_field"] == q


def test_bagnet_image_logits_are_the_mean_of_patch_logits():
    model = build_model("bagnet", 5, q=17, width=0.125, blocks=[1, 1, 1, 1]).eval()
    x = torch.rand(2, 3, 48, 48)
    torch.testing.assert_close(model(x), model.patch_logits(x).mean((2, 3)))


def test_bagnet_rejects_a_patch_size_it_cannot_build():
    with pytest.raises(ValueError, match="2\\^k \\+ 1"):
        build_model("bagnet", 10, q=16)


@pytest.mark.parametrize("channels", [2, 6, 8, 12])
def test_strided_pointwise_convs_train_in_channels_last(channels):
    """torch 2.14 corrupts the heap in this backward unless conv_bn subsamples first."""
    model = build_model("resnet", 3, channels=[channels, channels], blocks=[1, 1], bottleneck=True,
                        stem="cifar", stem_channels=channels).to(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 30, 30).to(memory_format=torch.channels_last)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_strided_pointwise_conv_keeps_the_plain_state_dict_keys():
    skip = build_model("resnet", 3, channels=[8, 16], blocks=[1, 1], stem="cifar").stages[1][0].skip
    assert {k.split(".")[0] for k in skip.state_dict()} == {"0", "1"}
