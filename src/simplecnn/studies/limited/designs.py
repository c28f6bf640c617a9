"""The six designs as the paper states them, what each costs, and the reference points
the chapter quotes: parameter counts and MACs at paper scale and as trained, activation
memory, the measured peak of one training step and training images/s.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from simplecnn.core.cache import Cache
from simplecnn.core.complexity import macs, train_images_per_s
from simplecnn.core.device import device_description
from simplecnn.core.memory import ISOLATED_ENV, activation_bytes, measure_train_step_peak
from simplecnn.core.models import LIMITED, ResNetSpec, build_model, count_params

DESIGNS = ["I", "IIa", "IIb", "IIIa", "IIIb", "IV"]
PAPER_ACC = {"I": 94.24, "IIa": 95.67, "IIb": 95.17, "IIIa": 95.10, "IIIb": 93.82, "IV": 92.42}  # Table 1, %
PAPER_SETTING = "CIFAR-10 test, full width (~4.9 M parameters), 50 epochs of its offline ×5 set, one run"
ANCHORS = pd.DataFrame([  # reference points quoted in the chapter (params in millions, CIFAR-10 test %)
    {"model": "ResNet-20 (He et al. 2016)", "params_m": 0.27, "acc": 91.25},
    {"model": "airbench95 (Jordan 2024)", "params_m": 4.6, "acc": 95.01},
    {"model": "Efficient-ResNets (2022)", "params_m": 4.70, "acc": 96.04},
])


def kernel_text(design: str) -> dict[str, str]:
    """The kernels a design's spec sets, as text (``7×7``) for the chapter to glue."""
    spec: ResNetSpec = LIMITED[design]
    side = lambda k: f"{k}×{k}"  # noqa: E731
    stem = 3  # the CIFAR stem of core.models.ResNet is a 3×3 conv in every design
    return {"stem": side(stem), "first": side(spec.first_kernel), "second": side(spec.kernel),
            "skip": side(spec.skip_kernel)}


def params_with_stem_kernel(design: str, kernel: int, num_classes: int = 10) -> int:
    """Parameters of a design at paper scale with its stem conv given ``kernel`` (the code's
    stem is 3×3): what the other reading of design IV's "each convolutional layer" costs."""
    model = build_model(f"limited_{design}", num_classes)
    conv = model.stem[0]
    model.stem[0] = torch.nn.Conv2d(conv.in_channels, conv.out_channels, kernel, padding=kernel // 2, bias=False)
    return count_params(model)


def design_table(width: float, resolution: int = 32, num_classes: int = 10) -> pd.DataFrame:
    """Exact parameter counts at paper scale, and parameters and MACs at ``width``."""
    rows = []
    for d in DESIGNS:
        paper = build_model(f"limited_{d}", num_classes)
        small = build_model(f"limited_{d}", num_classes, width=width)
        rows.append({"design": d, "paper_params": count_params(paper), "paper_macs": macs(paper, resolution),
                     "params": count_params(small), "macs": macs(small, resolution), "paper_acc": PAPER_ACC[d]})
    return pd.DataFrame(rows).set_index("design")


def design_costs(designs: Sequence[str], resolution: int = 32, batch: int = 32, num_classes: int = 10,
                 measure: bool = True, cache: Cache | None = None) -> pd.DataFrame:
    """What each design costs at paper scale (full width): exact parameters, MACs, fp32
    activation memory of one image, and, with ``measure``, the measured peak memory of one
    training step at ``batch`` (fresh process) and training images/s on this device. The
    measurements are cached by design, batch, resolution and device."""
    cache = cache or Cache()
    rows = []
    for d in designs:
        model = build_model(f"limited_{d}", num_classes)
        with torch.no_grad():
            row = {"design": d, "paper_params": count_params(model), "paper_macs": macs(model, resolution),
                   "activation_bytes": activation_bytes(model, (3, resolution, resolution))}
        if measure:
            spec = {"design": d, "batch": batch, "resolution": resolution, "device": device_description(),
                    "torch": torch.__version__, "allocator": ISOLATED_ENV}
            row["train_step_peak_bytes"] = cache.get_or_compute("limited_peak", spec, lambda: measure_train_step_peak(
                "simplecnn.core.models:build_model", f"limited_{d}", batch, resolution, num_classes),
                code=("core.memory", "core.models"))
            row["train_img_s"] = cache.get_or_compute("limited_rate", spec, lambda: train_images_per_s(
                build_model(f"limited_{d}", num_classes), batch, resolution, num_classes),
                code=("core.complexity", "core.models"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("design")


def designs_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The design table as the chapter shows it: parameters and GMACs at paper scale, as
    trained, and the paper's accuracy."""
    shown = table.assign(**{"paper params": table["paper_params"].map("{:,}".format),
                            "paper GMACs": table["paper_macs"] / 1e9,
                            "params here": table["params"].map("{:,}".format), "MMACs here": table["macs"] / 1e6})
    return shown[["paper params", "paper GMACs", "params here", "MMACs here", "paper_acc"]].rename(
        columns={"paper_acc": "paper test acc (%)"})


def costs_frame(costs: pd.DataFrame) -> pd.DataFrame:
    """Each design's cost at paper scale as the chapter shows it (measured columns where measured)."""
    shown = costs.assign(**{"params": costs["paper_params"].map("{:,}".format), "GMACs": costs["paper_macs"] / 1e9,
                            "activations (MiB)": costs["activation_bytes"] / 2**20})
    columns = ["params", "GMACs", "activations (MiB)"]
    if "train_step_peak_bytes" in costs:
        shown["training-step peak (MiB)"] = costs["train_step_peak_bytes"] / 2**20
        shown["training img/s"] = costs["train_img_s"]
        columns += ["training-step peak (MiB)", "training img/s"]
    return shown[columns]


def reading_values() -> dict[str, object]:
    """The glue of the chapter's readings of the paper: kernels as the specs set them and the
    paper's own figures."""
    from simplecnn.studies.limited.augment import COLOR_RANGE
    from simplecnn.studies.limited.training import PAPER
    k = {d: kernel_text(d) for d in ("I", "IIb", "IV")}
    return {"stem_kernel": k["IV"]["stem"], "i_first": k["I"]["first"], "i_skip": k["I"]["skip"],
            "iib_first": k["IIb"]["first"], "iv_first": k["IV"]["first"], "iv_skip": k["IV"]["skip"],
            "paper_params_m": PAPER["params_m"], "paper_iv_kernel": f"{PAPER['iv_kernel']}×{PAPER['iv_kernel']}",
            "paper_iv_skip": f"{PAPER['iv_skip']}×{PAPER['iv_skip']}", "color_low": COLOR_RANGE[0],
            "color_high": COLOR_RANGE[1]}
