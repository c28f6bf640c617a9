"""Shared fixtures: an isolated cache, synthetic image folders and a separable tensor task."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simplecnn.core.cache import Cache
from simplecnn.core.data import DataSplits, ImageSet


def pytest_configure(config) -> None:
    """Under ``pytest -n 2`` each worker takes one core (its kernels and subprocesses too), and
    training never changes its thread count mid-run (``core.sharing``): tests that compare two
    trainings bit for bit stay deterministic whatever runs beside them."""
    os.environ["SIMPLECNN_SHARE"] = "0"
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


@pytest.fixture(autouse=True)
def isolated_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the project's cache, results or build folders."""
    monkeypatch.setenv("SIMPLECNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SIMPLECNN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SIMPLECNN_BUILD", str(tmp_path / "build"))


def write_image(path: Path, mode: str, size: tuple[int, int], value: int, fmt: str | None = None) -> None:
    """One image of a given PIL mode; ``value`` sets its brightness so classes differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    w, h = size
    base = np.clip(rng.normal(value, 10, (h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(base)
    if mode == "L":
        img = img.convert("L")
    elif mode == "RGBA":
        img = img.convert("RGBA")
    elif mode == "P":
        img = img.convert("P")
    elif mode == "CMYK":
        img = img.convert("CMYK")
    elif mode == "I;16":
        img = Image.fromarray((np.asarray(img.convert("L"), dtype=np.uint16) * 257))
    img.save(path, format=fmt)


@pytest.fixture
def mixed_folder(tmp_path: Path):
    """Build root/<class>/<image> with mixed sizes and modes; returns a builder."""

    def build(root: Path | None = None, classes: int = 3, per_class: int = 8) -> Path:
        root = root or tmp_path / "images"
        kinds = [("RGB", (40, 30), "JPEG", ".jpg"), ("L", (25, 50), "PNG", ".png"), ("RGBA", (32, 32), "PNG", ".png"),
                 ("P", (20, 20), "GIF", ".gif"), ("CMYK", (30, 30), "JPEG", ".jpg"), ("I;16", (24, 24), "PNG", ".png"),
                 ("RGB", (3, 5), "PNG", ".png"), ("RGB", (300, 200), "JPEG", ".jpeg")]
        for c in range(classes):
            for i in range(per_class):
                mode, size, fmt, suffix = kinds[i % len(kinds)]
                write_image(root / f"class{c}" / f"img{i:03d}{suffix}", mode, size, 40 + 80 * c, fmt)
        return root

    return build


def separable_task(n: int = 480, size: int = 16, classes: int = 3, seed: int = 0) -> DataSplits:
    """Images whose class is which horizontal band is bright: easy for any small CNN."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 60, (n, 3, size, size), generator=g, dtype=torch.uint8)
    band = size // classes
    for i, c in enumerate(labels.tolist()):
        images[i, :, c * band:(c + 1) * band, :] += 150
    names = [f"band{c}" for c in range(classes)]
    cut1, cut2 = int(n * 0.7), int(n * 0.85)
    parts = [ImageSet(images[a:b], labels[a:b], names) for a, b in ((0, cut1), (cut1, cut2), (cut2, n))]
    return DataSplits("bands", *parts, spec={"dataset": "bands", "n": n, "size": size, "seed": seed})


@pytest.fixture
def bands() -> DataSplits:
    return separable_task()


def texture_task(n: int = 240, size: int = 32, seed: int = 0) -> DataSplits:
    """Images whose class shows in every patch: horizontal stripes, vertical stripes or
    speckle, with random phase, period and noise; for patch classifiers."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        period = 4 + int(torch.randint(0, 4, (1,), generator=g))
        phase = int(torch.randint(0, period, (1,), generator=g))
        if c == 2:
            base = torch.rand(size, size, generator=g) * 200
        else:
            base = (((yy if c == 0 else xx) + phase) % period < period // 2).float() * 160 + 40
        noise = torch.randn(3, size, size, generator=g) * 15
        images[i] = (base + noise).clamp(0, 255).to(torch.uint8)
    names = ["horizontal", "vertical", "speckle"]
    cut1, cut2 = int(n * 0.6), int(n * 0.8)
    parts = [ImageSet(images[a:b], labels[a:b], names) for a, b in ((0, cut1), (cut1, cut2), (cut2, n))]
    return DataSplits("textures", *parts, spec={"dataset": "textures", "n": n, "size": size, "seed": seed})


@pytest.fixture(scope="session")
def textures() -> DataSplits:
    return texture_task()
