"""Patch classifiers on one grid: BagNet-q, dense SIFT, tile2vec and raw pixels, + linear.

Every image is cut into the windows of a ``Grid`` (side q, stride s, top-left corners at
multiples of s); every method gives class probabilities per window, stored in the cache as
N × side × side × classes for the validation and test images with the grid beside them, so
the fusion and Grad-CAM studies reuse them without retraining. A patch takes its image's
label.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from simplecnn.studies.patches import sift, tile2vec
from simplecnn.core.cache import Cache
from simplecnn.core.data import DataSplits
from simplecnn.core.metrics import accuracy, macro_auc
from simplecnn.core.models import count_params
from simplecnn.core.train import TrainConfig, autocast, train_model
from simplecnn.core.complexity import macs


@dataclass(frozen=True)
class Grid:
    """Square windows of side ``q`` at a ``stride`` over ``size``-pixel square images."""

    q: int
    stride: int
    size: int

    def __post_init__(self):
        if not 1 <= self.q <= self.size:
            raise ValueError(f"patch size q={self.q} must be between 1 and the image size {self.size}")
        if self.stride < 1:
            raise ValueError(f"grid stride must be at least 1, got {self.stride}")

    @property
    def side(self) -> int:
        """Windows per row (and per column)."""
        return (self.size - self.q) // self.stride + 1

    @property
    def count(self) -> int:
        return self.side ** 2

    def centres(self) -> torch.Tensor:
        """side × side × 2 (y, x) pixel centres of the windows."""
        c = torch.arange(self.side) * self.stride + (self.q - 1) / 2
        return torch.stack(torch.meshgrid(c, c, indexing="ij"), -1)


def extract(images: torch.Tensor, grid: Grid) -> torch.Tensor:
    """N×3×H×W images → N × P × 3 × q × q windows, row-major over the grid (views, no copy)."""
    if images.shape[-1] != grid.size or images.shape[-2] != grid.size:
        raise ValueError(f"images are {tuple(images.shape[-2:])} px but the grid is for {grid.size} px")
    w = images.unfold(2, grid.q, grid.stride).unfold(3, grid.q, grid.stride)  # N×3×side×side×q×q
    return w.permute(0, 2, 3, 1, 4, 5).reshape(len(images), grid.count, 3, grid.q, grid.q)


# --- the linear read-out shared by the feature methods --------------------------------

def fit_linear(features: np.ndarray, labels: np.ndarray, max_patches: int, c: float, seed: int):
    """Standardise + multinomial logistic regression on (a seeded sample of) patch features."""
    flat, y = features.reshape(-1, features.shape[-1]), np.repeat(labels, features.shape[1])
    if len(flat) > max_patches:
        keep = np.random.default_rng(seed).choice(len(flat), max_patches, replace=False)
        flat, y = flat[keep], y[keep]
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(flat, y)


def linear_probs(clf, features: np.ndarray, grid: Grid) -> torch.Tensor:
    """N × P × D features → N × side × side × classes probabilities."""
    probs = clf.predict_proba(features.reshape(-1, features.shape[-1]))
    return torch.from_numpy(probs.astype(np.float32)).reshape(len(features), grid.side, grid.side, -1)


@dataclass(frozen=True)
class LinearOptions:
    c: float = 1.0  # inverse L2 strength
    max_patches: int = 40_000  # training patches the classifier is fitted on (sampled)


def _feature_method(featurize: Callable[[torch.Tensor], np.ndarray], data: DataSplits, grid: Grid,
                    linear: LinearOptions, seed: int, fit_start: float) -> tuple[dict, dict[str, np.ndarray]]:
    """Fit the linear read-out on training-patch features and predict val and test patches;
    returns the result and the features of each split."""
    features = {"train": featurize(extract(data.train.images, grid))}
    clf = fit_linear(features["train"], data.train.labels.numpy(), linear.max_patches, linear.c, seed)
    out = {"train_s": time.perf_counter() - fit_start, "linear_params": int(clf[-1].coef_.size + clf[-1].intercept_.size)}
    for split in ("val", "test"):
        t0 = time.perf_counter()
        features[split] = featurize(extract(getattr(data, split).images, grid))
        out[split] = linear_probs(clf, features[split], grid)
        out[f"{split}_s"] = time.perf_counter() - t0
    return out, features


# --- the methods ------------------------------------------------------------------------

def run_sift(data: DataSplits, grid: Grid, options: dict, linear: LinearOptions, seed: int) -> dict:
    """Dense SIFT + linear per window; and, from the same descriptors, the bag-of-visual-words
    image classifier (k-means codebook of ``codebook`` words, histogram, linear) as image-level
    reference (``bovw_val``, ``bovw_test``: N × classes)."""
    start = time.perf_counter()
    out, features = _feature_method(sift.patch_descriptors, data, grid, linear, seed, start)
    t0 = time.perf_counter()
    codebook = sift.fit_codebook(features["train"], options.get("codebook", 256), seed, linear.max_patches)
    hist = {k: sift.bovw_histograms(v, codebook) for k, v in features.items()}
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=linear.c, max_iter=500)).fit(
        hist["train"], data.train.labels.numpy())
    bovw = {f"bovw_{k}": torch.from_numpy(clf.predict_proba(hist[k]).astype(np.float32)) for k in ("val", "test")}
    return {**out, **bovw, "bovw_train_s": time.perf_counter() - t0, "params": out["linear_params"],
            "macs_per_patch": None}


def run_pixels(data: DataSplits, grid: Grid, options: dict, linear: LinearOptions, seed: int) -> dict:
    """Raw pixels → PCA (``components``, fitted on training patches) → linear: the floor."""
    start = time.perf_counter()
    train = extract(data.train.images, grid).reshape(len(data.train), grid.count, -1)
    rng = np.random.default_rng(seed)
    flat = train.reshape(-1, train.shape[-1])
    sample = flat[torch.as_tensor(rng.choice(len(flat), min(len(flat), linear.max_patches), replace=False))]
    k = min(options.get("components", 64), sample.shape[1])
    pca = PCA(k, svd_solver="randomized", random_state=seed).fit(sample.float().numpy() / 255)

    def featurize(patches: torch.Tensor) -> np.ndarray:
        flat = patches.reshape(-1, patches[0, 0].numel()).float().numpy() / 255
        return pca.transform(flat).astype(np.float32).reshape(*patches.shape[:2], k)
    out, _ = _feature_method(featurize, data, grid, linear, seed, start)
    d = grid.q * grid.q * 3
    return {**out, "params": out["linear_params"] + pca.components_.size,
            "macs_per_patch": d * k + out["linear_params"]}


def run_tile2vec(data: DataSplits, grid: Grid, options: dict, linear: LinearOptions, seed: int) -> dict:
    config = tile2vec.Tile2VecConfig(**{**options, "seed": seed})
    start = time.perf_counter()
    encoder, losses, _ = tile2vec.train_encoder(data.train.images, grid.q, config)
    out, _ = _feature_method(lambda p: tile2vec.embed(encoder, p).numpy(), data, grid, linear, seed, start)
    with torch.no_grad():
        encoder_macs = macs(encoder, grid.q)
    return {**out, "params": count_params(encoder) + out["linear_params"],
            "macs_per_patch": encoder_macs + out["linear_params"], "triplet_loss": losses}


@torch.no_grad()
def bagnet_patch_logits(model: nn.Module, images: torch.Tensor, grid: Grid, batch_size: int = 256) -> torch.Tensor:
    """N × side × side × classes logits of a trained BagNet (``Normalize`` + ``BagNet``) on ``grid``."""
    norm, bag = model[0], model[1]
    if grid.stride % bag.stride or grid.q != bag.q:
        raise ValueError(f"a BagNet-{bag.q} gives windows of side {bag.q} every {bag.stride} px; the grid "
                         f"(q={grid.q}, stride {grid.stride}) needs q = {bag.q} and a stride that is a multiple "
                         f"of {bag.stride}")
    step = grid.stride // bag.stride
    out = []
    model.eval()
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].float().div_(255).contiguous(memory_format=torch.channels_last)
        with autocast(x.device):
            out.append(bag.patch_logits(norm(x)).float()[:, :, ::step, ::step][:, :, :grid.side, :grid.side])
    return torch.cat(out).permute(0, 2, 3, 1).contiguous()


@dataclass(frozen=True)
class BagNetOptions:
    width: float = 0.25
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4


def train_bagnet(data: DataSplits, q: int, options: BagNetOptions, seed: int, cache: Cache):
    config = TrainConfig(epochs=options.epochs, batch_size=options.batch_size, lr=options.lr,
                         weight_decay=options.weight_decay, seed=seed)
    return train_model("bagnet", data, config, {"q": q, "width": options.width, "blocks": list(options.blocks)},
                       cache=cache)


def run_bagnet(data: DataSplits, grid: Grid, options: dict, linear: LinearOptions, seed: int,
               cache: Cache | None = None) -> dict:
    trained = train_bagnet(data, grid.q, BagNetOptions(**options), seed, cache or Cache())
    out = {"train_s": trained.train_s, "params": count_params(trained.model)}
    for split in ("val", "test"):
        t0 = time.perf_counter()
        out[split] = torch.softmax(bagnet_patch_logits(trained.model, getattr(data, split).images, grid), -1)
        out[f"{split}_s"] = time.perf_counter() - t0
    out["macs_per_patch"] = macs(trained.model[1], grid.q)  # one window evaluated on its own
    return out


METHODS: dict[str, Callable[..., dict]] = {"bagnet": run_bagnet, "sift": run_sift, "tile2vec": run_tile2vec,
                                           "pixels": run_pixels}


def patch_predictions(method: str, data: DataSplits, grid: Grid, options: dict | None = None,
                      linear: LinearOptions = LinearOptions(), seed: int = 0, cache: Cache | None = None) -> dict:
    """Per-window probabilities of ``method`` on the val and test images, from the cache or computed.

    The entry holds ``val`` and ``test`` (N × side × side × classes), the grid, timings
    (``train_s``, ``val_s``, ``test_s``), ``params`` and ``macs_per_patch``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown patch method {method!r}; known: {sorted(METHODS)}")
    cache = cache or Cache()
    options = dict(options or {})
    spec = {"method": method, "grid": asdict(grid), "options": options, "linear": asdict(linear), "seed": seed,
            "data": data.spec}
    extra = {"cache": cache} if method == "bagnet" else {}

    def compute() -> dict:
        torch.manual_seed(seed)
        result = METHODS[method](data, grid, options, linear, seed, **extra)
        return {**result, "grid": asdict(grid), "method": method}
    return cache.get_or_compute("patch_probs", spec, compute)


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


def to_pixels(maps: torch.Tensor, grid: Grid) -> torch.Tensor:
    """N × side × side window values → N × size × size, each pixel taking the value of the
    window whose centre is nearest; pixels farther than half a stride beyond the outermost
    centres (no window centred near them) are NaN, drawn transparent."""
    coords = torch.arange(grid.size, dtype=torch.float32)
    first = (grid.q - 1) / 2
    cell = ((coords - first) / grid.stride).round().long()
    inside = (cell >= 0) & (cell < grid.side) & ((coords - first - cell * grid.stride).abs() <= grid.stride / 2)
    cell = cell.clamp(0, grid.side - 1)
    out = maps[:, cell][:, :, cell].float()
    mask = inside[:, None] & inside[None, :]
    return out.masked_fill(~mask, float("nan"))


def window_means(maps: torch.Tensor, grid: Grid) -> torch.Tensor:
    """N × size × size pixel maps (a CAM) → N × side × side: the mean over each window."""
    return torch.nn.functional.avg_pool2d(maps[:, None].float(), grid.q, grid.stride)[:, 0]


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
        return patch_predictions(method, self.splits, self.grid(q), p[method], LinearOptions(**p["linear"]), p["seed"])

    def cnn(self):
        """The full-image CNN of the study (the ceiling)."""
        from simplecnn.core.recipes import train_recipe
        return train_recipe(self.params["ceiling_recipe"], self.splits, epochs=self.params["ceiling_epochs"])


def load_study(profile: str) -> PatchStudy:
    """The patch study of ``profile`` from its ``results/<profile>/patches.json``."""
    from simplecnn.core.data import load_dataset
    from simplecnn.core.results import read_results
    p = read_results("patches", profile)["params"]
    splits = load_dataset(p["dataset"], p["resolution"], val_fraction=p["val_fraction"], split_seed=p["split_seed"])
    return PatchStudy(p, splits.reduced(train=p["train_size"], val=p["val_size"], test=p["test_size"],
                                        seed=p["split_seed"]))
