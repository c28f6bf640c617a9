"""The architecture zoo: parameters, MACs, memory and receptive fields of classic CNNs.

Models are torchvision's (random weights: only shapes matter here) at 224×224 with 1000
classes, as in the lecture. MACs come from ptflops' aten backend, which counts the
multiply-accumulates of convolutions and matrix products only (what papers call "FLOPs"
or "multiply-adds"); a FLOP count proper is about twice that.
"""

from __future__ import annotations

import re
import warnings

import pandas as pd
import torch
import torchvision
from torch import nn

from simplecnn.core import params as P
from simplecnn.core.cache import Cache
from simplecnn.core.complexity import macs
from simplecnn.core.memory import ISOLATED_ENV, activation_bytes, layer_outputs, measure_train_step_peak
from simplecnn.core.models import count_params
from simplecnn.core.plan import Loop
from simplecnn.core.receptive import receptive_field
from simplecnn.core.results import Headline
from simplecnn.core.device import device_description

ZOO = ["alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
       "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

# The lecture's figures (source 003): parameters in millions and multiply-adds in 1e9.
# VGG A/B/D/E are vgg11/13/16/19 (the lecture's table has no BN variants); GoogLeNet's
# 6.7977 M is the original network's; ResNet multiply-adds are the original ResNet's.
LECTURE = {
    "vgg11": {"params_m": 133}, "vgg13": {"params_m": 133}, "vgg16": {"params_m": 138}, "vgg19": {"params_m": 144},
    "googlenet": {"params_m": 6.7977},
    "resnet18": {"gmacs": 1.8}, "resnet34": {"gmacs": 3.6}, "resnet50": {"gmacs": 3.8},
    "resnet101": {"gmacs": 7.6}, "resnet152": {"gmacs": 11.3},
}
# AlexNet's neurons per layer, as the lecture quotes the original paper (input excluded),
# and the original network's conv channels (torchvision's is the "one weird trick" variant).
LECTURE_ALEXNET_NEURONS = [253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]
ORIGINAL_ALEXNET_CHANNELS = [96, 256, 384, 384, 256]


BUILDER = "simplecnn.studies.zoo:build_zoo_model"


PROSE = ["alexnet", "vgg16", "googlenet", "resnet50"]
"""The models the chapter's prose compares with the lecture: every run must include them."""

PARAMETERS = {"device": P.device(), "resolution": P.whole(32), "peak_batch": P.whole(1),
              "models": P.Rule(lambda v: P.some_of(ZOO).ok(v) and set(PROSE) <= set(v),
                               f"a list of {list(ZOO)} holding {list(PROSE)} (the models the prose discusses)"),
              "peak_resolution": P.whole(32)}
"""Every parameter's allowed values, checked before the chapter builds anything (``core.params``)."""


def family(name: str) -> str:
    """``vgg16_bn`` -> ``vgg+BN``, ``resnet50`` -> ``resnet``: the hue of the zoo's figures."""
    return re.sub(r"\d+", "", name.removesuffix("_bn")) + ("+BN" if name.endswith("_bn") else "")


def build_zoo_model(name: str, num_classes: int = 1000) -> nn.Module:
    """A torchvision classification model with random weights; GoogLeNet without its
    auxiliary training heads (they are not part of the inference network)."""
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"unknown torchvision model {name!r}; the zoo has {ZOO}")
    kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs).eval()


def model_stats(name: str, resolution: int = 224, num_classes: int = 1000) -> dict:
    """Parameters, MACs, parameter and activation memory (fp32, batch 1), receptive field."""
    model = build_zoo_model(name, num_classes)
    params = count_params(model)
    with torch.no_grad():
        stats = {"model": name, "params": params, "param_bytes": params * 4,
                 "macs": macs(model, resolution),
                 "activation_bytes": activation_bytes(model, (3, resolution, resolution))}
    rf = receptive_field(model)
    stats.update(receptive_field=rf["receptive_field"], rf_layer=rf["layer"], rf_jump=rf["jump"])
    return stats


def zoo_table(models: list[str], resolution: int = 224, peak_batch: int | None = 8,
              peak_resolution: int = 224, cache: Cache | None = None) -> pd.DataFrame:
    """One row per model: ``model_stats`` plus the measured peak of one training step
    (``peak_batch`` images at ``peak_resolution``; skipped when ``peak_batch`` is None).
    Peaks are cached, keyed by model, batch, resolution and device."""
    cache = cache or Cache()
    rows = []
    for name in models:
        row = model_stats(name, resolution)
        if peak_batch:
            spec = {"model": name, "batch": peak_batch, "resolution": peak_resolution,
                    "device": device_description(), "torch": torch.__version__, "allocator": ISOLATED_ENV}
            row["train_step_peak_bytes"] = cache.get_or_compute(
                "zoo_peak", spec, lambda: measure_train_step_peak("simplecnn.studies.zoo:build_zoo_model", name,
                                                                  peak_batch, peak_resolution),
                code=("core.memory", "studies.zoo"))
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    table["family"] = [family(n) for n in table.index]
    lecture = pd.DataFrame.from_dict(LECTURE, orient="index")
    return table.join(lecture.rename(columns={"params_m": "lecture_params_m", "gmacs": "lecture_gmacs"}))


def alexnet_neurons() -> pd.DataFrame:
    """torchvision AlexNet's neurons per conv/linear layer beside the lecture's (original) ones."""
    model = build_zoo_model("alexnet")
    kinds = dict(model.named_modules())
    ours = [(n, v) for n, v in layer_outputs(model, (3, 224, 224)) if isinstance(kinds[n], (nn.Conv2d, nn.Linear))]
    return pd.DataFrame({"layer": [n for n, _ in ours], "torchvision": [v for _, v in ours],
                         "lecture (original AlexNet)": LECTURE_ALEXNET_NEURONS})


def conv_channels(model: nn.Module) -> list[int]:
    """Output channels of each conv layer, in module order (how wide a network's convs are)."""
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def stride_in_1x1(model: nn.Module) -> nn.Module:
    """Move each torchvision Bottleneck's stride from its 3×3 conv to its first 1×1 conv.

    torchvision's ResNet-50/101/152 are "v1.5" (stride in the 3×3, more MACs, better
    accuracy); the original paper, and the lecture's FLOPs row, put it in the 1×1.
    """
    for block in model.modules():
        if isinstance(block, torchvision.models.resnet.Bottleneck) and block.conv2.stride != (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
    return model


def original_resnet_macs(name: str, resolution: int = 224) -> int:
    """MACs of the original (stride-in-1×1) variant of a torchvision bottleneck ResNet."""
    return macs(stride_in_1x1(build_zoo_model(name)), resolution)


BOTTLENECK_RESNETS = ("resnet50", "resnet101", "resnet152")
LECTURE_SETTING = {"params_m": "the lecture's Table 2 (VGG A/B/D/E) and GoogLeNet slide, original networks",
                   "gmacs": "the lecture's ResNet row, labelled FLOPs but counting multiply-adds of the original "
                            "(stride-in-1×1) ResNet, 224 px"}


COMPARABLE = ("vgg11", "vgg13", "vgg16", "vgg19")
"""Models whose parameter count is the lecture's own network's (torchvision's GoogLeNet adds
batch norm to the original, so its count is shown beside the lecture's, not divided by it)."""


def lecture_comparison(table: pd.DataFrame, resolution: int = 224) -> pd.DataFrame:
    """GMACs of the bottleneck ResNets in ``table`` as torchvision builds them, in the
    original stride-in-1×1 layout, and as the lecture quotes them."""
    names = [n for n in BOTTLENECK_RESNETS if n in table.index]
    return pd.DataFrame({"torchvision (v1.5) GMACs": table.loc[names, "macs"] / 1e9,
                         "stride in 1×1 (original) GMACs": [original_resnet_macs(n, resolution) / 1e9 for n in names],
                         "lecture GMACs": table.loc[names, "lecture_gmacs"]}, index=pd.Index(names, name="model"))


def peak_estimate(table: pd.DataFrame, batch: int) -> pd.DataFrame:
    """The measured growth of memory in one training step beside a rough estimate (bytes):
    gradients and momentum (one copy of the parameters each) plus ``batch`` images' layer
    outputs; ``ratio`` is measured over estimated."""
    estimate = 2 * table["param_bytes"] + batch * table["activation_bytes"]
    return pd.DataFrame({"measured": table["train_step_peak_bytes"], "estimate": estimate,
                         "ratio": table["train_step_peak_bytes"] / estimate})


def results_dict(table: pd.DataFrame, original: pd.DataFrame | None = None, resolution: int = 224) -> dict:
    """One entry per model (its counts as ints), plus the original-layout MACs of the
    bottleneck ResNets when ``original`` (``lecture_comparison``'s frame) is given."""
    keys = ["params", "macs", "activation_bytes", "receptive_field", "param_bytes", "train_step_peak_bytes"]
    out = {}
    for name, row in table.iterrows():
        out[name] = {k: int(row[k]) for k in keys if k in row and pd.notna(row[k])}
        out[name]["resolution"] = resolution
        if original is not None and name in original.index:
            out[name]["original_macs"] = int(round(original.loc[name, "stride in 1×1 (original) GMACs"] * 1e9))
    return out


def headline(results: dict) -> list[Headline]:
    """Parameters and MACs of the lecture's models beside the lecture's figures. Counts are
    exact (no interval); for bottleneck ResNets the original layout's MACs are the
    comparable figure, torchvision's are stated beside them."""
    rows = []
    for name, lecture in LECTURE.items():
        r = results.get(name)
        if r is None:
            continue
        px = r.get("resolution", 224)
        if "params_m" in lecture:
            rows.append(Headline(f"{name} parameters (M)", r["params"] / 1e6, interval="exact count",
                                 setting=f"torchvision {name}, 1000 classes, auxiliary heads excluded",
                                 source=lecture["params_m"], source_setting=LECTURE_SETTING["params_m"],
                                 comparable=name in COMPARABLE, rule="exact"))
        if "gmacs" in lecture:
            if "original_macs" in r:
                setting = (f"ptflops MACs, {px} px, original stride-in-1×1 layout "
                           f"(torchvision v1.5: {r['macs'] / 1e9:.2f} G)")
                value = r["original_macs"] / 1e9
            else:
                setting, value = f"ptflops MACs, {px} px, torchvision layout", r["macs"] / 1e9
            rows.append(Headline(f"{name} GMACs", value, interval="exact count", setting=setting,
                                 source=lecture["gmacs"], source_setting=LECTURE_SETTING["gmacs"],
                                 comparable="original_macs" in r or name not in BOTTLENECK_RESNETS, rule="exact"))
    return rows


def plan(params: dict, upstream: dict | None = None) -> list[Loop]:
    """The reference models at their measured training step (``peak_batch`` images at
    ``peak_resolution``) and at batch 1 for their counts (MACs, activations, receptive fields)."""
    loops = [Loop(f"{m}, counted", m, {}, params["resolution"], 1, classes=1000, builder=BUILDER)
             for m in params["models"]]
    if params["peak_batch"]:
        loops += [Loop(f"{m}, measured training step", m, {}, params["peak_resolution"], params["peak_batch"],
                       classes=1000, builder=BUILDER) for m in params["models"]]
    return loops
