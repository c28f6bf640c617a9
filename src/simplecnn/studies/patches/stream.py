"""Window features in bounded memory: a sampled training budget and streamed prediction.

Featurising every window of every image at once does not scale (the paper profile, 224 px
and q = 33, has 576 windows per image: about 71 GB of float32 features for the training
set alone). The linear read-outs therefore see (i) for fitting, a seeded sample of at most
``max_patches`` training windows, featurised a batch of images at a time, the same sample
the in-memory reference ``fit_linear`` draws, and (ii) for prediction, the windows of
``batch_images`` images at a time, so memory depends on the batch, not on the data set.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from simplecnn.studies.patches.grid import Grid, extract

# N×P×3×q×q uint8 windows (or N×3×H×W images, see ``on_windows``) → N×P×D float features
Featurize = Callable[[torch.Tensor], np.ndarray]


def sample_windows(n_images: int, per_image: int, budget: int, seed: int,
                   allowed: np.ndarray | None = None) -> np.ndarray:
    """Flat window indices (image · per_image + window) of the training sample: all of them
    in order when they fit the budget, else ``budget`` drawn without replacement (seeded).
    ``allowed`` (bool, one per window position) restricts the sample to those positions of
    every image (e.g. the object windows of a fixed background detector)."""
    if allowed is None:
        total = n_images * per_image
        if total <= budget:
            return np.arange(total)
        return np.random.default_rng(seed).choice(total, budget, replace=False)
    allowed = np.asarray(allowed, bool)
    if allowed.shape != (per_image,) or not allowed.any():
        raise ValueError(f"allowed must be {per_image} booleans, at least one True; got shape {allowed.shape}")
    pool = (np.arange(n_images)[:, None] * per_image + np.flatnonzero(allowed)[None, :]).ravel()
    if len(pool) <= budget:
        return pool
    return np.sort(np.random.default_rng(seed).choice(pool, budget, replace=False))


def _check_batch(batch_images: int) -> None:
    if batch_images < 1:
        raise ValueError(f"batch_images must be at least 1 image per featurisation call, got {batch_images}")


def sampled_features(images: torch.Tensor, grid: Grid, featurize: Featurize, index: np.ndarray,
                     batch_images: int, on_windows: bool = True) -> np.ndarray:
    """Features of the windows at flat ``index`` (rows in ``index`` order), computed for
    ``batch_images`` images at a time. ``on_windows``: ``featurize`` takes windows and only
    the sampled ones are featurised (as 1 × M × 3 × q × q); otherwise it takes a batch of
    images (sharing computation between windows) and the sampled rows are picked out."""
    _check_batch(batch_images)
    p = grid.count
    owner = index // p
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(0, len(images) + batch_images, batch_images))
    out = None
    for b, i in enumerate(range(0, len(images), batch_images)):
        rows = order[bounds[b]:bounds[b + 1]]
        if not len(rows):
            continue
        img, win = torch.as_tensor(owner[rows] - i), torch.as_tensor(index[rows] % p)
        batch = images[i:i + batch_images]
        if on_windows:
            feats = featurize(extract(batch, grid)[img, win][None])[0]
        else:
            feats = np.asarray(featurize(batch))[img.numpy(), win.numpy()]
        if out is None:
            out = np.empty((len(index), feats.shape[-1]), np.float32)
        out[rows] = feats
    return out if out is not None else np.empty((0, 0), np.float32)


def stream_features(images: torch.Tensor, grid: Grid, featurize: Featurize, batch_images: int,
                    on_windows: bool = True) -> Iterator[np.ndarray]:
    """N_b × P × D features of consecutive batches of ``batch_images`` images."""
    _check_batch(batch_images)
    for i in range(0, len(images), batch_images):
        batch = images[i:i + batch_images]
        yield np.asarray(featurize(extract(batch, grid) if on_windows else batch))


def streamed_probs(clf, images: torch.Tensor, grid: Grid, featurize: Featurize, batch_images: int,
                   on_windows: bool = True, summarise: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> tuple[torch.Tensor, np.ndarray | None]:
    """N × side × side × classes probabilities of ``clf`` (a scikit-learn classifier with
    ``predict_proba``) on every window, a batch of images at a time; with ``summarise``
    (N_b × P × D features → N_b × K, e.g. bag-of-words histograms) also its rows, from the
    same features."""
    probs, summaries = [], []
    for feats in stream_features(images, grid, featurize, batch_images, on_windows):
        flat = clf.predict_proba(feats.reshape(-1, feats.shape[-1])).astype(np.float32)
        probs.append(torch.from_numpy(flat).reshape(len(feats), grid.side, grid.side, -1))
        if summarise is not None:
            summaries.append(summarise(feats))
    return torch.cat(probs), (np.concatenate(summaries) if summarise is not None else None)
