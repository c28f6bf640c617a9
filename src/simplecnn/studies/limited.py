"""Study: ResNets limited to 5 M parameters (source 004) and what they owe to augmentation.

The six designs are named configurations of the one ResNet builder (``models.LIMITED``);
this module holds the paper's regimen as a TrainConfig, its augmentation policy and the
ablation settings, and one function that trains a design and scores it on test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simplecnn.core.cache import Cache
from simplecnn.core.data import DataSplits
from simplecnn.core.metrics import accuracy
from simplecnn.core.models import build_model, count_params
from simplecnn.core.train import TrainConfig, train_model
from simplecnn.core.complexity import macs

DESIGNS = ["I", "IIa", "IIb", "IIIa", "IIIb", "IV"]
PAPER_ACC = {"I": 94.24, "IIa": 95.67, "IIb": 95.17, "IIIa": 95.10, "IIIb": 93.82, "IV": 92.42}  # Table 1, %
AUGMENTATIONS = ("flip", "crop", "scale_crop", "rotate", "color")  # the paper's five, in its order
ANCHORS = pd.DataFrame([  # reference points quoted in the chapter (params in millions, CIFAR-10 test %)
    {"model": "ResNet-20 (He et al. 2016)", "params_m": 0.27, "acc": 91.25},
    {"model": "airbench95 (Jordan 2024)", "params_m": 4.6, "acc": 95.01},
    {"model": "Efficient-ResNets (2022)", "params_m": 4.70, "acc": 96.04},
])


def policy(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The paper's offline ×(1+k) set as an online policy over ``names`` (empty: none)."""
    return (f"oneof:{'+'.join(names)}",) if names else ()


def ablation_settings(names: tuple[str, ...] = AUGMENTATIONS) -> dict[str, tuple[str, ...]]:
    """none, all, each augmentation alone, and each left out."""
    settings = {"none": policy(()), "all": policy(names)}
    settings.update({f"only {a}": policy((a,)) for a in names})
    settings.update({f"without {a}": policy(tuple(b for b in names if b != a)) for a in names})
    return settings


def paper_regimen(epochs: int, batch_size: int, lr: float, augment: tuple[str, ...], seed: int) -> TrainConfig:
    """SGD with momentum 0.9 (no Nesterov), weight decay 1e-4, plain cross-entropy, the rate
    divided by 10 at 30/50/70/90 % of training (the paper's 15/25/35/45 of 50 epochs)."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, momentum=0.9, nesterov=False,
                       weight_decay=1e-4, schedule="multistep",
                       milestones=tuple(epochs * f for f in (0.3, 0.5, 0.7, 0.9)), gamma=0.1,
                       label_smoothing=0.0, augment=augment, seed=seed)


def design_table(width: float, resolution: int = 32, num_classes: int = 10) -> pd.DataFrame:
    """Exact parameter counts at paper scale, and parameters and MACs at ``width``."""
    rows = []
    for d in DESIGNS:
        paper = build_model(f"limited_{d}", num_classes)
        small = build_model(f"limited_{d}", num_classes, width=width)
        rows.append({"design": d, "paper_params": count_params(paper), "paper_macs": macs(paper, resolution),
                     "params": count_params(small), "macs": macs(small, resolution), "paper_acc": PAPER_ACC[d]})
    return pd.DataFrame(rows).set_index("design")


def train_and_test(design: str, data: DataSplits, config: TrainConfig, width: float,
                   cache: Cache | None = None, track_val: bool = True) -> dict:
    """Train (or load) one design and return its test accuracy, time and history."""
    trained = train_model(f"limited_{design}", data, config, {"width": width}, cache, track_val=track_val)
    acc = accuracy(trained.logits(data.test, "test"), data.test.labels)
    return {"design": design, "seed": config.seed, "acc": acc, "train_s": trained.train_s,
            "history": trained.history}


def train_grid(designs: list[str], policies: dict[str, tuple[str, ...]], seeds: list[int], data: DataSplits,
               width: float, epochs: int, batch_size: int, lr: float, track_val: bool = True,
               cache: Cache | None = None) -> pd.DataFrame:
    """One row per design × augmentation setting × seed, trained with the paper's regimen."""
    rows = []
    for design in tqdm(designs, desc="designs", disable=len(designs) == 1):
        for setting, augment in tqdm(policies.items(), desc="settings", disable=len(policies) == 1):
            for seed in seeds:
                config = paper_regimen(epochs, batch_size, lr, augment, seed)
                rows.append({"setting": setting, **train_and_test(design, data, config, width, cache, track_val)})
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean and std of accuracy (in %) and mean training time per ``by``."""
    grouped = runs.groupby(by, sort=False)
    return pd.DataFrame({"acc_mean": grouped["acc"].mean() * 100, "acc_std": grouped["acc"].std(ddof=0) * 100,
                         "train_s": grouped["train_s"].mean(), "n": grouped.size()})


def rank_agreement(paper: dict[str, float], measured: dict[str, float]) -> float:
    """Spearman rank correlation of the designs' accuracies in the paper and here."""
    from scipy.stats import spearmanr
    keys = [k for k in paper if k in measured]
    return float(spearmanr(np.array([paper[k] for k in keys]), np.array([measured[k] for k in keys])).statistic)
