"""Named training recipes: a model and a TrainConfig per data set, for every study to reuse.

``plain`` is the baseline the project started from (ResNet-18 at quarter width, one-cycle
SGD, label smoothing 0.1, pad-crop and flip). ``fast`` gathers the choices of the fastest
published CIFAR-10 recipes that transfer to a CPU (airbench, hlb-CIFAR10, Page's ResNet-9
tricks): a network that spends its MACs at low resolution early (FastNet), a frozen
patch-whitening first layer, frozen BN scales, larger batches, label smoothing 0.2,
alternating flips with small translations, an EMA of the weights and flip test-time
augmentation. Epochs are set so that each fits the budget of issue 9 on the 2-core
machine (10 minutes on CIFAR-10, 6 on Imagenette at 64 px); ``benchmarks/recipes.py``
measures both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from simplecnn.core import progress
from simplecnn.core.cache import Cache
from simplecnn.core.data import DataSplits
from simplecnn.core.train import TrainConfig, Trained, train_model


@dataclass(frozen=True)
class Recipe:
    model: str
    model_kwargs: dict = field(default_factory=dict)
    config: TrainConfig = field(default_factory=TrainConfig)


RECIPES: dict[str, dict[str, Recipe]] = {
    "plain": {
        "cifar10": Recipe("cifar_resnet18", {"width": 0.25},
                          TrainConfig(epochs=3, batch_size=128, lr=0.1, weight_decay=5e-4, label_smoothing=0.1)),
        "imagenette": Recipe("resnet18", {"width": 0.25},
                             TrainConfig(epochs=8, batch_size=128, lr=0.1, weight_decay=5e-4, label_smoothing=0.1)),
    },
    "fast": {
        "cifar10": Recipe("fastnet", {"widths": [64, 128, 256]},
                          TrainConfig(epochs=6, batch_size=512, lr=0.4, weight_decay=5e-4, label_smoothing=0.2,
                                      warmup=0.2, augment=("small_crop", "alternate_flip"), whiten=True,
                                      ema=0.98, tta=True)),
        "imagenette": Recipe("resnet18", {"width": 0.5},
                             TrainConfig(epochs=28, batch_size=256, lr=0.4, weight_decay=5e-4, label_smoothing=0.2,
                                         warmup=0.2, augment=("crop", "alternate_flip"), ema=0.98, tta=True)),
    },
}


def borrowed(dataset: str, resolution: int) -> tuple[str, str]:
    """The known data set whose recipe a data set without one borrows, chosen from its
    resolution, and why: small images (≤ 40 px) train like CIFAR-10, photos like Imagenette."""
    if resolution <= 40:
        return "cifar10", f"{dataset} at {resolution} px is small like CIFAR-10 (32 px)"
    return "imagenette", f"{dataset} at {resolution} px is a photo set like Imagenette (64 px and up)"


def recipe(name: str, dataset: str, like: str | None = None, resolution: int | None = None,
           **config_overrides) -> Recipe:
    """The recipe ``name`` for ``dataset``, config overridable. A data set without a recipe
    of its own borrows one: ``like`` names the known data set, else its ``resolution``
    decides (``borrowed``, said on the terminal)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    key = like or dataset
    if like is not None and like not in RECIPES[name]:
        raise ValueError(f"like={like!r}: recipe {name!r} has settings for {sorted(RECIPES[name])} only")
    if key not in RECIPES[name]:
        if resolution is None:
            raise ValueError(f"recipe {name!r} has no settings for data set {key!r}; it has {sorted(RECIPES[name])}: "
                             f"pass like='imagenette' (photos, 64 px) or like='cifar10' (32 px) to borrow theirs")
        key, why = borrowed(dataset, resolution)
        progress.say(f"recipe {name!r} for {dataset}: {key}'s settings ({why}; set like= to choose)")
    chosen = RECIPES[name][key]
    return replace(chosen, config=replace(chosen.config, **config_overrides)) if config_overrides else chosen


def train_recipe(name: str, data: DataSplits, cache: Cache | None = None, like: str | None = None,
                 **config_overrides) -> Trained:
    """Train (or take from the cache) the recipe ``name`` for ``data``'s data set."""
    chosen = recipe(name, data.name, like, data.train.resolution, **config_overrides)
    return train_model(chosen.model, data, chosen.config, chosen.model_kwargs, cache=cache)
