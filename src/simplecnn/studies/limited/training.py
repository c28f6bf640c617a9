"""How the designs are trained: the paper's regimen and a budget one, augmentation
settings (the paper's one-of policy online, or its fixed offline copies), and the grid of
runs (design × setting × seed) with each run's test accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd
import torch

from simplecnn.core import augment
from simplecnn.core.cache import Cache
from simplecnn.core.data import DataSplits, ImageSet
from simplecnn.core.metrics import accuracy
from simplecnn.core.plan import Loop
from simplecnn.core.train import TrainConfig, train_model
from simplecnn.studies.limited.augment import AUGMENTATIONS, augmentations, policy

# The paper's regimen (source 004 §2): a 5 M budget, 50 epochs of batch 32 over the 50 k
# originals plus five offline copies (300 k images), milestones at epochs 15/25/35/45.
PAPER = {"budget": 5_000_000, "epochs": 50, "batch_size": 32, "copies": 5, "images": 300_000, "lr": 0.1,
         "milestones": (15, 25, 35, 45), "momentum": 0.9, "weight_decay": 1e-4, "gamma": 0.1,
         "params_m": 4.9,  # "about 4.9 million parameters", each design
         "iv_kernel": 7, "iv_skip": 5}  # design IV: "each convolutional layer" 3x3 -> 7x7, skips 1x1 -> 5x5
MILESTONE_FRACTIONS = tuple(m / PAPER["epochs"] for m in PAPER["milestones"])  # 0.3, 0.5, 0.7, 0.9


@dataclass(frozen=True)
class Setting:
    """One augmentation setting of a training run.

    ``combine="oneof"`` is the paper's form: each draw shows the image as it is or with
    exactly one of ``names`` (online), or, with ``offline`` = k > 0, the training set is the
    originals plus k fixed copies and nothing is augmented online. ``combine="each"``
    applies every name to every draw (the modern crop+flip default). ``epochs`` overrides
    the grid's epoch count (the offline row of the ablation runs fewer epochs of its larger
    set, so that it takes as many steps as the online rows)."""

    names: tuple[str, ...] = ()
    combine: str = "oneof"
    offline: int = 0
    epochs: int | None = None

    def __post_init__(self):
        if self.combine not in ("oneof", "each"):
            raise ValueError(f"combine must be 'oneof' or 'each', got {self.combine!r}")
        if self.offline and (self.combine != "oneof" or not self.names):
            raise ValueError("offline copies need the paper's one-of form and at least one augmentation")
        object.__setattr__(self, "names", tuple(self.names))

    def online(self) -> tuple[str, ...]:
        """What TrainConfig.augment gets: nothing for offline sets."""
        if self.offline or not self.names:
            return ()
        return policy(self.names) if self.combine == "oneof" else self.names


CROP_FLIP = Setting(("crop", "flip"), "each")


def ablation_settings(names: tuple[str, ...] = AUGMENTATIONS, leave_one_out: bool = True, offline_copies: int = 0,
                      epochs: int | None = None) -> dict[str, Setting]:
    """none, all five (the paper's one-of policy), crop+flip (each draw), each alone, each
    left out (optional), and, with ``offline_copies`` k, all five as the paper's offline
    ×(1+k) set at the online rows' number of steps (``epochs`` / (1 + k) epochs)."""
    label = {n: "color" if n.startswith("color") else n for n in names}
    settings = {"none": Setting(), "all": Setting(tuple(names)), "crop+flip": CROP_FLIP}
    settings.update({f"only {label[a]}": Setting((a,)) for a in names})
    if leave_one_out:
        settings.update({f"without {label[a]}": Setting(tuple(b for b in names if b != a)) for a in names})
    if offline_copies:
        if epochs is None or epochs % (offline_copies + 1):
            raise ValueError(f"the offline row needs epochs divisible by {offline_copies + 1} (the copies plus the "
                             f"originals) to take as many steps as the online rows; got {epochs}")
        settings[f"all, offline ×{offline_copies}"] = Setting(tuple(names), offline=offline_copies,
                                                              epochs=epochs // (offline_copies + 1))
    return settings


def offline_copies_of(train: ImageSet, names: tuple[str, ...] | list[str], copies: int, seed: int,
                      chunk: int = 4096) -> ImageSet:
    """The originals followed by ``copies`` augmented copies of the whole set, drawn once.

    Copy j applies ``names[j % len(names)]``: with the paper's five names and five copies,
    one copy per augmentation (300 k images from 50 k). As in the paper the ``flip`` copy is
    mirrored outright and, when ``flip`` is among ``names``, every other copy is randomly
    flipped first. One seeded generator draws all copies, so a seed fixes the set."""
    if copies < 0:
        raise ValueError(f"offline copies must be >= 0, got {copies}")
    if copies and not names:
        raise ValueError("offline copies need at least one augmentation")
    if copies == 0:
        return train
    g = torch.Generator().manual_seed(seed)
    parts = [train.images]
    for j in range(copies):
        name = names[j % len(names)]
        fn = augment.mirror if name == "flip" else augment.AUGMENTATIONS[name]
        out = torch.empty_like(train.images)
        for start in range(0, len(train), chunk):
            index = torch.arange(start, min(start + chunk, len(train)))
            x = train.images[index]
            if name != "flip" and "flip" in names:
                x = augment.flip(x, g, index, 0)
            out[index] = fn(x, g, index, 0)
        parts.append(out)
    return ImageSet(torch.cat(parts), train.labels.repeat(copies + 1), train.classes)


def with_offline_copies(data: DataSplits, names: tuple[str, ...], copies: int, seed: int) -> DataSplits:
    """``data`` whose training set holds the originals plus ``copies`` fixed augmented copies;
    the spec records them, so such runs never share a cache entry with online ones."""
    if copies == 0:
        return data
    train = offline_copies_of(data.train, names, copies, seed)
    spec = {**data.spec, "offline": {"names": list(names), "copies": copies, "seed": seed}}
    return replace(data, train=train, spec=spec)


def paper_regimen(epochs: int, batch_size: int, lr: float, augment: tuple[str, ...], seed: int) -> TrainConfig:
    """SGD with momentum 0.9 (no Nesterov), weight decay 1e-4, plain cross-entropy, the rate
    divided by 10 at 30/50/70/90 % of training (the paper's 15/25/35/45 of 50 epochs)."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, momentum=PAPER["momentum"], nesterov=False,
                       weight_decay=PAPER["weight_decay"], schedule="multistep",
                       milestones=tuple(epochs * f for f in MILESTONE_FRACTIONS), gamma=PAPER["gamma"],
                       label_smoothing=0.0, augment=augment, seed=seed)


REGIMENS = ("paper", "budget")


@dataclass(frozen=True)
class Regimen:
    """How every run of a grid trains, apart from its augmentation, seed and epochs.

    ``paper``: ``paper_regimen`` (label smoothing, EMA and TTA are ignored). ``budget``:
    the core's training options that do not change the architecture, for a short budget:
    Nesterov SGD with a one-cycle rate that decays to zero at the end of the budget (the
    schedule that wins under a fixed budget, Li et al. 2020), weight decay 5e-4, label
    smoothing, an optional EMA of the weights and flip test-time augmentation. Either may
    start at a lower resolution (``low_res_epochs`` at ``low_res_scale`` of the side:
    progressive resizing, which buys epochs at a fraction of their cost)."""

    name: str = "budget"
    batch_size: int = 256
    lr: float = 0.4
    label_smoothing: float = 0.1
    ema: float = 0.0
    tta: bool = True
    cpu_bf16: bool = False  # bf16 autocast on the CPU too (either regimen)
    low_res_epochs: int = 0
    low_res_scale: float = 1.0

    def __post_init__(self):
        if self.name not in REGIMENS:
            raise ValueError(f"unknown regimen {self.name!r}; known: {REGIMENS}")

    def config(self, epochs: int, augment: tuple[str, ...], seed: int) -> TrainConfig:
        low = {"low_res_epochs": min(self.low_res_epochs, epochs - 1), "low_res_scale": self.low_res_scale} \
            if self.low_res_epochs else {}
        if self.name == "paper":
            return replace(paper_regimen(epochs, self.batch_size, self.lr, augment, seed), cpu_bf16=self.cpu_bf16,
                           **low)
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=5e-4,
                           schedule="onecycle", warmup=0.2, label_smoothing=self.label_smoothing,
                           augment=augment, seed=seed, ema=self.ema, tta=self.tta, cpu_bf16=self.cpu_bf16, **low)

    def describe(self) -> str:
        extras = [f"label smoothing {self.label_smoothing}"] + ([f"EMA {self.ema}"] if self.ema else []) + (
            ["flip test-time augmentation"] if self.tta else []) + (["bf16 autocast"] if self.cpu_bf16 else [])
        low = (f", the first {self.low_res_epochs} epochs on images at {self.low_res_scale:g} of their side "
               f"(progressive resizing)" if self.low_res_epochs else "")
        if self.name == "paper":
            return f"the paper's multi-step SGD at batch {self.batch_size}, lr {self.lr}{low}"
        return f"one-cycle Nesterov SGD to lr {self.lr} at batch {self.batch_size}, " + ", ".join(extras) + low


def train_and_test(design: str, data: DataSplits, config: TrainConfig, width: float,
                   cache: Cache | None = None, track_val: bool = True, train_images: ImageSet | None = None) -> dict:
    """Train (or load) one design and return its test accuracy, time and history; with
    ``train_images`` also its accuracy on them (un-augmented: does it fit its training set?)."""
    trained = train_model(f"limited_{design}", data, config, {"width": width}, cache, track_val=track_val)
    bf16 = config.cpu_bf16  # scored in the training's precision: only the predicted class counts here
    acc = accuracy(trained.logits(data.test, "test", bf16), data.test.labels)
    out = {"design": design, "seed": config.seed, "acc": acc, "train_s": trained.train_s, "history": trained.history}
    if train_images is not None:
        out["train_acc"] = accuracy(trained.logits(train_images, "train", bf16), train_images.labels)
    return out


def train_grid(designs: Sequence[str], settings: dict[str, Setting], seeds: Sequence[int], data: DataSplits,
               width: float, epochs: int, regimen: Regimen, track_val: bool = True, train_acc: bool = False,
               cache: Cache | None = None) -> pd.DataFrame:
    """One row per design × augmentation setting × seed, trained with ``regimen``.

    Offline settings train on the originals plus their fixed copies, drawn once per setting
    (seed 0 of the copies, the same for every design and training seed); ``train_acc``
    scores each run on the original training images too."""
    rows = []
    for name, setting in settings.items():
        train_data = with_offline_copies(data, setting.names, setting.offline, seed=0)
        for design in designs:
            for seed in seeds:
                config = regimen.config(setting.epochs or epochs, setting.online(), seed)
                rows.append({"setting": name, **train_and_test(design, train_data, config, width, cache, track_val,
                                                               data.train if train_acc else None)})
    return pd.DataFrame(rows)


def history_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run and epoch: design, seed and that epoch's history entries."""
    return pd.DataFrame([{"design": r.design, "seed": r.seed, **h} for r in runs.itertuples() for h in r.history])


def plan(params: dict, upstream: dict | None = None) -> list[Loop]:
    """Every model the chapter trains or runs with ``params`` (its parameters cell, after
    profile and overrides): each design and seed, each ablation setting and seed, each
    design's measured training step at full width, and the evaluation passes."""
    from simplecnn.core.data import split_sizes
    n = params["train_size"] or split_sizes(params["dataset"], params["val_fraction"])["train"]
    px, loops = params["resolution"], []
    copies = params["offline_copies"] if params["main_augmentation"] == "all" else 0
    low = params.get("low_res_epochs", 0)  # an early epoch at low_res_scale costs its share of the pixels
    epochs = params["epochs"] - low + low * params.get("low_res_scale", 1.0) ** 2
    for d in params["designs"]:
        for seed in params["seeds"]:
            loops.append(Loop(f"design {d}, seed {seed}", f"limited_{d}", {"width": params["width"]}, px,
                              params["batch_size"], round(n * (1 + copies) * epochs), ema=bool(params["ema"])))
        loops.append(Loop(f"design {d}, evaluation", f"limited_{d}", {"width": params["width"]}, px, 512))
    settings = ablation_settings(augmentations(params["hue"]), params["ablation_leave_one_out"],
                                 params["ablation_offline_copies"], params["ablation_epochs"])
    m = params["ablation_train_size"] or n
    for name, s in settings.items():
        for seed in params["seeds"]:
            loops.append(Loop(f"ablation {name}, seed {seed}", f"limited_{params['ablation_design']}",
                              {"width": params["ablation_width"]}, px, params["ablation_batch_size"],
                              m * (1 + s.offline) * (s.epochs or params["ablation_epochs"])))
    if params["measure_costs"]:
        loops += [Loop(f"design {d}, measured step at full width", f"limited_{d}", {}, px, params["cost_batch"])
                  for d in params["designs"]]
    return loops


def main_setting(name: str, names: tuple[str, ...], offline: int) -> tuple[Setting, str]:
    """The designs' augmentation setting and its description: ``crop+flip`` on every draw,
    or ``all`` (the paper's five: online one-of, or its offline set of ``offline`` copies)."""
    if name == "crop+flip":
        return CROP_FLIP, "crop and flip applied to every draw (the modern default)"
    if name == "all":
        return Setting(names, offline=offline), (
            f"the paper's five augmentations as its offline set (the originals plus {offline} fixed copies)" if offline
            else "the paper's five augmentations online (each draw: the image as it is or with one of the five)")
    raise ValueError(f"main_augmentation must be 'crop+flip' or 'all', got {name!r}")


def ablation_extra(leave_one_out: bool, offline: int, epochs: int) -> str:
    """The ablation's settings beyond none, all, crop+flip and each alone, in words."""
    return (", each left out" if leave_one_out else "") + (
        f", and all five as the paper's offline set (the originals plus {offline} fixed copies, "
        f"{epochs // (offline + 1)} epochs: as many steps as the online rows)" if offline else "")
