"""The patch classifiers: how each family turns a window into class probabilities.

BagNet-q (trained through its mean window logits, or over the centre detector's object
windows only), dense SIFT, tile2vec and raw pixels, each with a linear read-out, and the
linear probe on a trained BagNet's penultimate window features. ``patch_predictions`` caches
every family's val and test window probabilities; its key names this module and the modules
it calls, not the chapter's scoring (``compare``) or background analysis.
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

from simplecnn.core.cache import WEIGHTS, Cache
from simplecnn.core.complexity import macs
from simplecnn.core.data import DataSplits
from simplecnn.core.models import count_params
from simplecnn.core.train import TrainConfig, autocast, train_model
from simplecnn.studies.patches import object_bagnet, sift, stream, tile2vec
from simplecnn.studies.patches.grid import Grid, background_mask, centre_scores
from simplecnn.studies.patches.stream import sample_windows, sampled_features, streamed_probs

PROBS_CODE = (*WEIGHTS, "core.complexity", "studies.patches.methods", "studies.patches.grid", "studies.patches.sift",
              "studies.patches.stream", "studies.patches.tile2vec", "studies.patches.object_bagnet")
"""The code whose meaning decides the cached window probabilities (their cache key)."""


# --- the linear read-out shared by the feature methods --------------------------------

def _logistic(c: float, max_iter: int = 1000):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))


def fit_linear(features: np.ndarray, labels: np.ndarray, max_patches: int, c: float, seed: int):
    """Standardise + multinomial logistic regression on (a seeded sample of) patch features
    held in memory (N × P × D): the reference the streamed path (``stream``) reproduces."""
    n, p = features.shape[:2]
    keep = sample_windows(n, p, max_patches, seed)
    return _logistic(c).fit(features.reshape(-1, features.shape[-1])[keep], labels[keep // p])


def linear_probs(clf, features: np.ndarray, grid: Grid) -> torch.Tensor:
    """N × P × D features → N × side × side × classes probabilities."""
    probs = clf.predict_proba(features.reshape(-1, features.shape[-1]))
    return torch.from_numpy(probs.astype(np.float32)).reshape(len(features), grid.side, grid.side, -1)


@dataclass(frozen=True)
class LinearOptions:
    c: float = 1.0  # inverse L2 strength
    max_patches: int = 40_000  # training windows the classifier is fitted on (a seeded sample)
    batch_images: int = 64  # images featurised per call (bounds memory; does not change results)
    train_windows: str = "all"  # "all", or "centre": fit on the object windows of the centre detector only (a BagNet: pool its logits over them)
    train_share: float = 0.5  # with "centre": share of each training image's windows left out as background

    def __post_init__(self):
        if self.train_windows not in TRAIN_WINDOWS:
            raise ValueError(f"unknown train_windows {self.train_windows!r}; known: {TRAIN_WINDOWS}")

    def spec(self) -> dict:
        """The fields that change results (the background options only when they apply)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("batch_images", "train_windows", "train_share")}
        return out if self.train_windows == "all" else {**out, "train_windows": self.train_windows,
                                                        "train_share": self.train_share}


TRAIN_WINDOWS = ("all", "centre")


def object_positions(grid: Grid, share: float) -> np.ndarray:
    """Bool per window position: True where the centre detector (the proposal's model-free
    example) calls the window object, i.e. outside the ``share`` of windows farthest from
    the image centre. The same positions in every image, so training images need no detector pass."""
    return ~background_mask(centre_scores(1, grid), share)[0].flatten().numpy()


def _sample(data: DataSplits, grid: Grid, featurize, linear: LinearOptions, seed: int, on_windows: bool = True
            ) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the training sample of windows, a batch of images at a time
    (only the centre detector's object windows with ``linear.train_windows == "centre"``)."""
    allowed = object_positions(grid, linear.train_share) if linear.train_windows == "centre" else None
    index = sample_windows(len(data.train), grid.count, linear.max_patches, seed, allowed)
    x = sampled_features(data.train.images, grid, featurize, index, linear.batch_images, on_windows)
    return x, data.train.labels.numpy()[index // grid.count]


def _feature_method(featurize: Callable[[torch.Tensor], np.ndarray], data: DataSplits, grid: Grid,
                    linear: LinearOptions, seed: int, fit_start: float, on_windows: bool = True,
                    sample: tuple[np.ndarray, np.ndarray] | None = None,
                    summarise: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[dict, dict]:
    """Fit the linear read-out on the training sample (``sample``, or featurised here) and
    predict every val and test window, streamed; returns the result and, with
    ``summarise``, its per-image rows for val and test (from the same features)."""
    x, y = sample if sample is not None else _sample(data, grid, featurize, linear, seed, on_windows)
    clf = _logistic(linear.c).fit(x, y)
    out = {"train_s": time.perf_counter() - fit_start, "linear_params": int(clf[-1].coef_.size + clf[-1].intercept_.size),
           "train_windows": int(len(x))}
    rows = {}
    for split in ("val", "test"):
        t0 = time.perf_counter()
        out[split], rows[split] = streamed_probs(clf, getattr(data, split).images, grid, featurize,
                                                 linear.batch_images, on_windows, summarise)
        out[f"{split}_s"] = time.perf_counter() - t0
    return out, rows


# --- the methods ------------------------------------------------------------------------

def run_sift(data: DataSplits, grid: Grid, options: dict, linear: LinearOptions, seed: int) -> dict:
    """Dense SIFT + linear per window; and, from the same descriptors, the bag-of-visual-words
    image classifier (k-means codebook of ``codebook`` words fitted on the training sample,
    histogram, linear) as image-level reference (``bovw_val``, ``bovw_test``: N × classes).
    Histograms are accumulated a batch of images at a time, like the window predictions."""
    start = time.perf_counter()
    featurize = lambda w: sift.patch_descriptors(w, progress=False)  # noqa: E731
    x, y = _sample(data, grid, featurize, linear, seed)
    codebook = sift.fit_codebook(x, options.get("codebook", 256), seed, linear.max_patches)
    summarise = lambda f: sift.bovw_histograms(f, codebook)  # noqa: E731
    out, hist = _feature_method(featurize, data, grid, linear, seed, start, sample=(x, y), summarise=summarise)
    t0 = time.perf_counter()
    train_hist = np.concatenate([summarise(f) for f in stream.stream_features(data.train.images, grid, featurize,
                                                                              linear.batch_images)])
    clf = _logistic(linear.c, 500).fit(train_hist, data.train.labels.numpy())
    bovw = {f"bovw_{k}": torch.from_numpy(clf.predict_proba(hist[k]).astype(np.float32)) for k in ("val", "test")}
    return {**out, **bovw, "bovw_train_s": time.perf_counter() - t0, "params": out["linear_params"],
            "macs_per_patch": None}


def run_pixels(data: DataSplits, grid: Grid, options: dict, linear: LinearOptions, seed: int) -> dict:
    """Raw pixels → PCA (``components``, fitted on the training sample) → linear: the floor."""
    start = time.perf_counter()
    raw = lambda w: w.reshape(*w.shape[:2], -1).float().numpy() / 255  # noqa: E731
    x, y = _sample(data, grid, raw, linear, seed)
    k = min(options.get("components", 64), x.shape[1])
    pca = PCA(k, svd_solver="randomized", random_state=seed).fit(x)

    def featurize(patches: torch.Tensor) -> np.ndarray:
        return pca.transform(raw(patches).reshape(-1, x.shape[1])).astype(np.float32).reshape(*patches.shape[:2], k)
    out, _ = _feature_method(featurize, data, grid, linear, seed, start, sample=(pca.transform(x).astype(np.float32), y))
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


def _check_bagnet_grid(bag: nn.Module, grid: Grid) -> int:
    if grid.stride % bag.stride or grid.q != bag.q:
        raise ValueError(f"a BagNet-{bag.q} gives windows of side {bag.q} every {bag.stride} px; the grid "
                         f"(q={grid.q}, stride {grid.stride}) needs q = {bag.q} and a stride that is a multiple "
                         f"of {bag.stride}")
    return grid.stride // bag.stride


@torch.no_grad()
def _bagnet_maps(model: nn.Module, images: torch.Tensor, grid: Grid, features: bool, batch_size: int) -> torch.Tensor:
    """N × side × side × (classes or channels): a BagNet's window logits, or with
    ``features`` its penultimate window features (the head's input), on ``grid``."""
    norm, bag = model[0], model[1]
    step = _check_bagnet_grid(bag, grid)
    out = []
    model.eval()
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].float().div_(255).contiguous(memory_format=torch.channels_last)
        with autocast(x.device):
            maps = bag.stages(bag.stem(norm(x))) if features else bag.patch_logits(norm(x))
            out.append(maps.float()[:, :, ::step, ::step][:, :, :grid.side, :grid.side].cpu())
    return torch.cat(out).permute(0, 2, 3, 1).contiguous()


def bagnet_patch_logits(model: nn.Module, images: torch.Tensor, grid: Grid, batch_size: int = 256) -> torch.Tensor:
    """N × side × side × classes logits of a trained BagNet (``Normalize`` + ``BagNet``) on ``grid``."""
    return _bagnet_maps(model, images, grid, False, batch_size)


def bagnet_window_features(model: nn.Module, images: torch.Tensor, grid: Grid, batch_size: int = 256) -> np.ndarray:
    """N × P × channels penultimate features of a trained BagNet's windows (what its linear
    head reads), computed for whole images (windows share computation)."""
    maps = _bagnet_maps(model, images, grid, True, batch_size)
    return maps.reshape(len(images), grid.count, -1).numpy()


@dataclass(frozen=True)
class BagNetOptions:
    width: float = 0.25
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    cpu_bf16: bool = False  # bf16 autocast on the CPU too (TrainConfig.cpu_bf16)


def train_bagnet(data: DataSplits, q: int, options: BagNetOptions, seed: int, cache: Cache,
                 keep: np.ndarray | None = None):
    """A BagNet-q trained through its mean logits over every window, or with ``keep`` (side
    × side bool over its logit map at the data's image size) over those windows only
    (``object_bagnet``)."""
    config = TrainConfig(epochs=options.epochs, batch_size=options.batch_size, lr=options.lr,
                         weight_decay=options.weight_decay, seed=seed, cpu_bf16=options.cpu_bf16)
    kwargs = {"q": q, "width": options.width, "blocks": list(options.blocks)}
    if keep is None:
        return train_model("bagnet", data, config, kwargs, cache=cache)
    kwargs |= {"keep": np.asarray(keep, dtype=bool).tolist()}
    return train_model("bagnet_object", data, config, kwargs, cache=cache)


def bagnet_object_mask(grid: Grid, share: float) -> np.ndarray:
    """The centre detector's object windows over a BagNet-q's whole logit map at the grid's
    image size (windows every ``MAP_STRIDE`` px): the positions ``object_positions`` gives
    the linear read-outs, on the map the BagNet pools."""
    full = Grid(grid.q, object_bagnet.MAP_STRIDE, grid.size)
    return object_positions(full, share).reshape(full.side, full.side)


def run_bagnet(data: DataSplits, grid: Grid, options: dict, linear: LinearOptions, seed: int,
               cache: Cache | None = None) -> dict:
    """A BagNet's window probabilities on ``grid``; with ``linear.train_windows == "centre"``
    the BagNet trained through its mean logits over the centre detector's object windows."""
    keep = bagnet_object_mask(grid, linear.train_share) if linear.train_windows == "centre" else None
    trained = train_bagnet(data, grid.q, BagNetOptions(**options), seed, cache or Cache(), keep)
    _check_bagnet_grid(trained.model[1], grid)
    map_side = Grid(grid.q, object_bagnet.MAP_STRIDE, grid.size).side
    out = {"train_s": trained.train_s, "params": count_params(trained.model),
           "train_windows": len(data.train) * int(map_side ** 2 if keep is None else keep.sum())}  # pooled in training
    for split in ("val", "test"):
        t0 = time.perf_counter()
        out[split] = torch.softmax(bagnet_patch_logits(trained.model, getattr(data, split).images, grid), -1)
        out[f"{split}_s"] = time.perf_counter() - t0
    bag = trained.model[1] if keep is None else object_bagnet.window_model(trained.model[1])
    out["macs_per_patch"] = macs(bag, grid.q)  # one window evaluated on its own
    return out


def run_bagnet_probe(data: DataSplits, grid: Grid, options: dict, linear: LinearOptions, seed: int,
                     cache: Cache | None = None) -> dict:
    """The linear read-out of the other families (sampled training windows, per-window
    labels) on the penultimate window features of the BagNet trained with ``options``:
    BagNet's features without its training objective (mean logits over the image)."""
    trained = train_bagnet(data, grid.q, BagNetOptions(**options), seed, cache or Cache())
    start = time.perf_counter()
    featurize = lambda imgs: bagnet_window_features(trained.model, imgs, grid)  # noqa: E731
    out, _ = _feature_method(featurize, data, grid, linear, seed, start, on_windows=False)
    head = trained.model[1].head
    return {**out, "train_s": trained.train_s + out["train_s"], "probe_train_s": out["train_s"],
            "params": count_params(trained.model) - count_params(head) + out["linear_params"],
            "macs_per_patch": macs(trained.model[1], grid.q)}  # the head's MACs stand in for the probe's


METHODS: dict[str, Callable[..., dict]] = {"bagnet": run_bagnet, "sift": run_sift, "tile2vec": run_tile2vec,
                                           "pixels": run_pixels, "bagnet_probe": run_bagnet_probe}
NEEDS_CACHE = ("bagnet", "bagnet_probe")  # methods that train (or reuse) a cached BagNet


def patch_predictions(method: str, data: DataSplits, grid: Grid, options: dict | None = None,
                      linear: LinearOptions = LinearOptions(), seed: int = 0, cache: Cache | None = None) -> dict:
    """Per-window probabilities of ``method`` on the val and test images, from the cache or computed.

    The entry holds ``val`` and ``test`` (N × side × side × classes), the grid, timings
    (``train_s``, ``val_s``, ``test_s``), ``params`` and ``macs_per_patch``. ``bagnet_probe``
    takes the BagNet's options. ``linear.batch_images`` bounds memory only and is not part
    of the cache key.
    """
    if method not in METHODS:
        raise ValueError(f"unknown patch method {method!r}; known: {sorted(METHODS)}")
    cache = cache or Cache()
    options = dict(options or {})
    linear_spec = linear.spec()
    spec = {"method": method, "grid": asdict(grid), "options": options, "linear": linear_spec, "seed": seed,
            "data": data.content()}
    extra = {"cache": cache} if method in NEEDS_CACHE else {}

    def compute() -> dict:
        torch.manual_seed(seed)
        result = METHODS[method](data, grid, options, linear, seed, **extra)
        return {**result, "grid": asdict(grid), "method": method}
    return cache.get_or_compute("patch_probs", spec, compute, code=PROBS_CODE)
