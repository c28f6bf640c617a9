"""Patch classifiers on one grid: BagNet-q, dense SIFT, tile2vec and raw pixels, + linear.

Every image is cut into the windows of a ``Grid`` (side q, stride s, top-left corners at
multiples of s); every method gives class probabilities per window, stored in the cache as
N × side × side × classes for the validation and test images with the grid beside them, so
the fusion and Grad-CAM studies reuse them without retraining. A patch takes its image's
label. The linear read-outs are fitted on a seeded sample of training windows and predict
a batch of images at a time (``stream``), so memory does not grow with the data set;
``bagnet_probe`` is the same read-out on a trained BagNet's penultimate window features.
"""


from __future__ import annotations

from dataclasses import dataclass

import torch

from simplecnn.core import params as P
from simplecnn.core.data import DataSplits
from simplecnn.core.metrics import accuracy, macro_auc
from simplecnn.studies.patches.compare import headline
from simplecnn.studies.patches.plan import plan
from simplecnn.studies.patches.grid import Grid, extract, to_pixels, window_means
from simplecnn.studies.patches.methods import (METHODS, BagNetOptions, LinearOptions, bagnet_object_mask,
                                               bagnet_patch_logits, bagnet_window_features, object_positions,
                                               patch_predictions, train_bagnet)

__all__ = ["Grid", "extract", "LinearOptions", "BagNetOptions", "METHODS", "patch_predictions", "evaluate",
           "true_class", "to_pixels", "window_means", "PatchStudy", "load_study", "headline", "train_bagnet",
           "bagnet_object_mask", "object_positions", "bagnet_patch_logits", "bagnet_window_features", "plan"]


PARAMETERS = {**P.COMMON, "dataset": P.dataset(), "resolution": P.whole(8), "qs": P.some_of([3, 5, 9, 17, 33]),
         "stride": P.whole(1), "methods": P.some_of(list(METHODS)), "train_size": P.whole(2, optional=True),
         "val_size": P.whole(2, optional=True), "test_size": P.whole(2, optional=True), "extra_seeds": P.wholes(0, 0),
         "bootstrap_rounds": P.whole(10), "ci_seed": P.whole(0), "ceiling_epochs": P.whole(1),
         "ceiling_floor": P.number(0, 100), "bagnet_gap": P.number(0, 100), "like": P.one_of([None, "cifar10", "imagenette"]),
         "heatmap_images": P.whole(1), "memory_size": P.whole(8), "memory_q": P.one_of([3, 5, 9, 17, 33]),
         "memory_tile": P.whole(1), "train_memory_sizes": P.wholes(8, 1),
         "background_share": P.fraction(), "background_cam_stage": P.whole(0),
         ("heatmap_q", "qs"): P.together(lambda q, qs: q in qs, "such that heatmap_q is one of qs"),
         ("resolution", "qs"): P.together(lambda r, qs: max(qs) <= r, "such that every patch size q in qs is at most "
                                          "the resolution (a larger window does not fit in the image)"),
         ("resolution", "heatmap_q", "stride"): P.together(
             lambda r, q, s: q > r or (r - q) // s + 1 >= 2,  # q > r is the rule above's to name
             "such that the heatmap's grid has at least two windows a side ((resolution − heatmap_q) // stride + 1 "
             "≥ 2): one window has no background to compare the object with")}
"""Every parameter's allowed values, checked before the chapter trains anything (``core.params``)."""

def evaluate(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Patch-level AUC and accuracy (each window labelled by its image) and image-level after
    averaging the windows' probabilities."""
    n, c = probs.shape[0], probs.shape[-1]
    flat = probs.reshape(n, -1, c)
    patch_labels = labels.repeat_interleave(flat.shape[1])
    image = flat.mean(1)
    return {"patch_auc": macro_auc(flat.reshape(-1, c), patch_labels), "patch_acc": accuracy(flat.reshape(-1, c), patch_labels),
            "image_auc": macro_auc(image, labels), "image_acc": accuracy(image, labels)}


def true_class(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """N × side × side × classes → N × side × side: each window's value for its image's label."""
    index = labels.view(-1, 1, 1, 1).expand(*probs.shape[:3], 1)
    return probs.gather(-1, index)[..., 0]


@dataclass
class PatchStudy:
    """The patch study as a later chapter needs it: its parameters and data, its grids, its
    cached window probabilities and its full-image CNN, all from the cache (or recomputed
    with the same settings when the cache lost them)."""

    params: dict
    splits: DataSplits

    @property
    def qs(self) -> list[int]:
        return list(self.params["qs"])

    @property
    def methods(self) -> list[str]:
        return list(self.params["methods"])

    def grid(self, q: int) -> Grid:
        return Grid(q, self.params["stride"], self.params["resolution"])

    def predictions(self, method: str, q: int) -> dict:
        p = self.params
        options = p["bagnet"] if method == "bagnet_probe" else p[method]
        return patch_predictions(method, self.splits, self.grid(q), options, LinearOptions(**p["linear"]), p["seed"])

    def cnn(self):
        """The full-image CNN of the study (the ceiling)."""
        return self.cnn_of(self.params["seed"])

    def cnn_of(self, seed: int):
        """The full-image CNN trained with ``seed`` (the study's own seed, or one of its
        ``extra_seeds`` for claims across seeds)."""
        from simplecnn.core.recipes import train_recipe
        return train_recipe(self.params["ceiling_recipe"], self.splits, like=self.params.get("like"),
                            epochs=self.params["ceiling_epochs"], cpu_bf16=self.params.get("ceiling_cpu_bf16", False),
                            seed=seed)

    @property
    def seeds(self) -> list[int]:
        """The study's training seeds: its own first."""
        return [self.params["seed"], *self.params.get("extra_seeds", [])]


def load_study(profile: str) -> PatchStudy:
    """The patch study of ``profile`` from its ``results/<profile>/patches.json``."""
    from simplecnn.core.data import load_dataset
    from simplecnn.core.results import read_results
    p = read_results("patches", profile)["params"]
    if not p:
        raise ValueError(f"the patch study's results ({profile} profile) record no parameters, so its data and "
                         "models cannot be rebuilt: re-run the patch chapter (`python -m simplecnn run --profile "
                         f"{profile} --only patches`, or papermill on notebooks/03_patches.ipynb)")
    splits = load_dataset(p["dataset"], p["resolution"], val_fraction=p["val_fraction"], split_seed=p["split_seed"])
    return PatchStudy(p, splits.reduced(train=p["train_size"], val=p["val_size"], test=p["test_size"],
                                        seed=p["split_seed"]))
