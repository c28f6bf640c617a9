"""Dense SIFT on a patch grid (OpenCV), and the bag-of-visual-words image classifier.

Each patch's descriptor is computed on the patch alone (a q×q image with one keypoint at
its centre), so, like a BagNet-q output, it sees exactly its q×q window: OpenCV skips
descriptor samples that fall outside the image. The keypoint size is q / 6 because
OpenCV's descriptor spans 4 bins of 3·(size / 2) pixels each: a 6·size-pixel square.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans
from tqdm.auto import tqdm

DESCRIPTOR_SPAN = 6  # OpenCV's SIFT descriptor covers a square of side 6 × keypoint size


def to_gray(patches: torch.Tensor) -> np.ndarray:
    """uint8 RGB patches (…×3×q×q) to uint8 gray (…×q×q), with OpenCV's weights."""
    rgb = patches.movedim(-3, -1).contiguous().numpy()
    flat = rgb.reshape(-1, *rgb.shape[-3:])
    gray = np.stack([cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in flat])
    return gray.reshape(*rgb.shape[:-1])


def patch_descriptors(patches: torch.Tensor, progress: bool = True) -> np.ndarray:
    """128-d SIFT descriptor of every patch (N×P×3×q×q uint8) → N×P×128 float32.

    Orientation is fixed (upright), as in dense SIFT: a patch grid has no keypoint angle."""
    n, p, _, q, _ = patches.shape
    gray = to_gray(patches.reshape(n * p, 3, q, q))
    sift = cv2.SIFT_create()
    keypoint = [cv2.KeyPoint((q - 1) / 2, (q - 1) / 2, q / DESCRIPTOR_SPAN, 0)]
    out = np.empty((n * p, 128), np.float32)
    for k in tqdm(range(n * p), desc=f"SIFT q={q}", disable=not progress, mininterval=2.0):
        _, desc = sift.compute(gray[k], keypoint)
        out[k] = desc[0] if desc is not None else 0.0
    return out.reshape(n, p, 128)


def bovw_histograms(descriptors: np.ndarray, codebook: MiniBatchKMeans) -> np.ndarray:
    """Per image (N×P×128 descriptors), the L1-normalised, square-rooted (Hellinger) histogram
    of its descriptors' nearest visual words."""
    n, p, d = descriptors.shape
    words = codebook.predict(descriptors.reshape(-1, d)).reshape(n, p)
    hist = np.zeros((n, codebook.n_clusters), np.float32)
    np.add.at(hist, (np.repeat(np.arange(n), p), words.ravel()), 1.0)
    return np.sqrt(hist / p)


def fit_codebook(descriptors: np.ndarray, size: int, seed: int, max_samples: int = 50_000) -> MiniBatchKMeans:
    """k-means codebook of ``size`` visual words on up to ``max_samples`` training descriptors."""
    flat = descriptors.reshape(-1, descriptors.shape[-1])
    rng = np.random.default_rng(seed)
    sample = flat[rng.choice(len(flat), min(max_samples, len(flat)), replace=False)]
    if len(sample) < size:
        raise ValueError(f"a codebook of {size} words needs at least {size} SIFT descriptors, got {len(sample)} "
                         f"(few training images, or max_patches {max_samples}); lower sift's codebook or use more images")
    return MiniBatchKMeans(size, random_state=seed, n_init=3, batch_size=4096).fit(sample)
