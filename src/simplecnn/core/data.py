"""One loader for every study: uint8 image tensors at a requested resolution, with splits.

``dataset`` is ``"cifar10"``, ``"imagenette"`` or the path of any ImageFolder directory.
Images are decoded once (JPEG draft mode, all cores), converted to RGB, resized so that the
shorter side fits and centre-cropped to a square, then cached on disk as one uint8 tensor:
training reads memory, not JPEGs. Splits are deterministic and stratified; the test split
is for final numbers only.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from sklearn.model_selection import train_test_split

from simplecnn.core import progress
from simplecnn.core.archives import DataError
from simplecnn.core.cache import Cache, tensor_digest
from simplecnn.core.paths import data_dir, dry_run, user_path

DECODER_VERSION = 1  # bump when decoding changes what a cached tensor holds
IMAGENETTE_CLASSES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn",
    "n03417042": "garbage truck", "n03425413": "gas pump", "n03445777": "golf ball",
    "n03888257": "parachute",
}
IMAGE_SUFFIXES = {s.lower() for s in Image.registered_extensions()}
PARALLEL_MIN_FILES = 512  # below this a process pool costs more than it saves


@dataclass
class ImageSet:
    """Images as a uint8 tensor N×3×H×W with int64 labels and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor | np.ndarray | list[int]) -> "ImageSet":
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.classes)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])


@dataclass
class DataSplits:
    """Train, validation and test sets of one data set at one resolution."""

    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    spec: dict = field(default_factory=dict)  # how the tensors were made (data set, folders, splits), for people
    _content: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def content(self) -> dict:
        """What the splits hold (content hashes of each split's images and labels, and the
        class count), for cache keys: a model is keyed by the tensors it saw, not by the
        code or settings that made them, so loader changes that give the same tensors
        retrain nothing, and any that change a pixel or a label retrain."""
        if self._content is None:
            self._content = {"name": self.name, "classes": self.num_classes,
                             **{s: f"{tensor_digest(getattr(self, s).images)}:{tensor_digest(getattr(self, s).labels)}"
                                for s in ("train", "val", "test")}}
        return self._content

    def reduced(self, train: int | None = None, val: int | None = None, test: int | None = None,
                seed: int = 0) -> "DataSplits":
        """Stratified subsets of each split (None keeps a split whole); the spec records them,
        so models trained on a reduced set never share a cache entry with the full one."""
        sizes = {"train": train, "val": val, "test": test}
        if all(v is None for v in sizes.values()):
            return self
        parts = {k: stratified_subset(getattr(self, k), n, seed) for k, n in sizes.items()}
        return DataSplits(self.name, **parts, spec={**self.spec, "reduced": {**sizes, "seed": seed}})


# --- decoding -------------------------------------------------------------------------

def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to RGB: palette and alpha composited on white, 16-bit and float rescaled."""
    img = ImageOps.exif_transpose(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    elif img.mode.startswith("I;16"):
        img = Image.fromarray((np.asarray(img, dtype=np.float32) / 257.0).round().astype(np.uint8))
    elif img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        img = Image.fromarray(((arr - lo) / max(hi - lo, 1e-12) * 255).round().astype(np.uint8))
    return img.convert("RGB")


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """One file to an H×W×3 uint8 array: shorter side resized to ``size``, centre square crop."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode directly at a reduced scale when possible
            img.load()
            rgb = to_rgb(img)
            return np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BICUBIC), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path} ({exc}); delete or replace this file "
                        f"(if it came from an archive, delete data/ and run `make data` again)") from None


def list_image_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """Files and labels of an ImageFolder directory ``root/<class>/<image>``, sorted."""
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; run `make data`, or pass the path of an "
                        f"ImageFolder directory laid out as root/<class>/<image>")
    classes = class_folders(root)
    if not classes:
        raise DataError(f"{root} holds no class folders; lay it out as {root}/<class>/<image> (ImageFolder)")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))
        if not found:
            raise DataError(f"class folder {root / name} holds no images; add images to it or remove it")
        files += found
        labels += [label] * len(found)
    return files, labels, classes


def fingerprint(files: list[Path], root: Path) -> str:
    """Hash of relative names, sizes and modification times: changes when the data change."""
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def limit_per_class(labels: list[int], max_per_class: int | None, seed: int) -> np.ndarray:
    """Indices keeping at most ``max_per_class`` items of each class (seeded, order kept)."""
    labels_arr = np.asarray(labels)
    if max_per_class is None:
        return np.arange(len(labels_arr))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels_arr == c))[:max_per_class] for c in np.unique(labels_arr)]
    return np.sort(np.concatenate(keep))


def decode_files(files: list[Path], size: int, desc: str = "decoding") -> torch.Tensor:
    """Decode files into one N×3×size×size uint8 tensor, on all cores when it pays."""
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)
    workers = min(os.cpu_count() or 1, 8)
    started = time.perf_counter()
    progress.say(f"{desc}: {len(files):,} images")
    if len(files) >= PARALLEL_MIN_FILES and workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for i, arr in enumerate(pool.map(decode_image, files, repeat(size), chunksize=64)):
                out[i] = arr
    else:
        for i, f in enumerate(files):
            out[i] = decode_image(f, size)
    progress.say(f"{desc}: done in {progress.minutes(time.perf_counter() - started)}")
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def load_folder(root: Path, size: int, max_per_class: int | None = None, seed: int = 0,
                cache: Cache | None = None) -> tuple[ImageSet, dict]:
    """An ImageFolder directory as an ImageSet, decoded once and cached; also its spec."""
    files, labels, classes = list_image_folder(root)
    keep = limit_per_class(labels, max_per_class, seed)
    files = [files[i] for i in keep]
    labels = [labels[i] for i in keep]
    spec = {"folder": str(root.resolve()), "fingerprint": fingerprint(files, root), "resolution": size,
            "max_per_class": max_per_class, "seed": seed, "decoder": DECODER_VERSION}
    cache = cache or Cache()
    payload = cache.get_or_compute("images", spec, lambda: {
        "images": decode_files(files, size, desc=f"decoding {root.name} at {size}px"),
        "labels": torch.tensor(labels, dtype=torch.long), "classes": classes}, code=("core.data",))
    return ImageSet(payload["images"], payload["labels"], list(payload["classes"])), spec


def load_cifar_batches(root: Path, train: bool, size: int, max_per_class: int | None,
                       seed: int) -> tuple[ImageSet, dict]:
    """CIFAR-10 as torchvision downloads it (pickled batches), resized only if asked."""
    from torchvision.datasets import CIFAR10

    ds = CIFAR10(str(root.parent), train=train, download=False)
    keep = limit_per_class(ds.targets, max_per_class, seed)
    images = torch.from_numpy(ds.data[keep]).permute(0, 3, 1, 2).contiguous()
    if size != images.shape[-1]:
        images = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bicubic",
                                                 antialias=True).round().clamp(0, 255).to(torch.uint8)
    spec = {"folder": str(root.resolve()), "train": train, "resolution": size, "max_per_class": max_per_class,
            "seed": seed}
    return ImageSet(images, torch.tensor(ds.targets, dtype=torch.long)[keep], list(ds.classes)), spec


# --- splits ---------------------------------------------------------------------------

def stratified_split(labels: torch.Tensor, fraction: float, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out): ``fraction`` of each class held out, seeded."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
    index = np.arange(len(labels))
    try:
        kept, held = train_test_split(index, test_size=fraction, stratify=labels.numpy(), random_state=seed)
    except ValueError as exc:
        counts = torch.bincount(labels).tolist()
        raise DataError(f"{what} is too small to split {fraction:.0%} off per class (images per class: "
                        f"{counts}; {exc}); add images, raise max_per_class or lower val_fraction") from None
    return np.sort(kept), np.sort(held)


def find_layout(root: Path) -> dict[str, Path]:
    """Split folders of a data root: any of train/val/test, or none (one pool of classes)."""
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; run `make data`, or pass the path of an "
                        f"ImageFolder directory (root/<class>/<image>, optionally under train/ val/ test/)")
    return {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}


def class_folders(root: Path) -> list[str]:
    """The class folders of an ImageFolder directory, sorted (hidden folders left out)."""
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def check_classes(layout: dict[str, Path]) -> list[str]:
    """The class names every split folder shares; folders that disagree are an error naming,
    per split, the missing and the extra classes. Labels are per-folder indices of the sorted
    class names, so one missing folder would shift every label after it."""
    found = {split: class_folders(folder) for split, folder in layout.items()}
    reference = found.get("train") or next(iter(found.values()))
    problems = []
    for split, names in found.items():
        missing, extra = sorted(set(reference) - set(names)), sorted(set(names) - set(reference))
        if missing or extra:
            parts = ([f"missing {missing}"] if missing else []) + ([f"extra {extra}"] if extra else [])
            problems.append(f"{layout[split]} has {' and '.join(parts)}")
    if problems:
        raise DataError("class folders differ between the splits (labels would not mean the same class): "
                        + "; ".join(problems) + f" (against {layout.get('train', next(iter(layout.values())))}). "
                        "Give every split the same class folders: add the missing ones (with images) or remove "
                        "the extra ones")
    return reference


DRY_RUN_PER_CLASS = 20  # images per class and split in a dry run


def resolve_dataset(dataset: str) -> tuple[str, Path]:
    """Name and root folder of ``dataset`` (a known name or a path)."""
    root = data_dir()
    if dataset == "cifar10":
        for folder in ("cifar10-jpg", "cifar-10-batches-py"):
            if (root / folder).is_dir():
                return dataset, root / folder
        raise DataError(f"CIFAR-10 not found under {root}; run `make data` (unpacks ../shared/data or downloads)")
    if dataset == "imagenette":
        for folder in ("imagenette2-224", "imagenette2-320", "imagenette2-160", "imagenette2"):
            if (root / folder).is_dir():
                return dataset, root / folder
        raise DataError(f"Imagenette not found under {root}; run `make data` (unpacks ../shared/data or downloads)")
    path = user_path(dataset)
    if not path.exists():
        raise DataError(f"unknown data set {dataset!r}: neither 'cifar10', 'imagenette' nor an existing folder; "
                        f"pass one of those names or the path of an ImageFolder directory")
    return path.resolve().name, path.resolve()


def load_dataset(dataset: str, resolution: int, *, val_fraction: float = 0.1, split_seed: int = 0,
                 max_per_class: int | None = None, cache: Cache | None = None) -> DataSplits:
    """Train/val/test uint8 tensors of ``dataset`` at ``resolution`` px, deterministic splits.

    Layouts: ``train/`` + ``test/`` (val carved from train, like CIFAR-10); ``train/`` +
    ``val/`` (val halved into val and test, stratified, like Imagenette); or one folder of
    classes (split into train/val/test with ``val_fraction`` each for val and test).
    ``max_per_class`` caps the images decoded per class and split (for quick runs).
    """
    if resolution < 8:
        raise ValueError(f"resolution must be at least 8 px, got {resolution}")
    if dry_run():  # a handful of images per class: the dry run proves code paths, not accuracy
        max_per_class = min(max_per_class or DRY_RUN_PER_CLASS, DRY_RUN_PER_CLASS)
    name, root = resolve_dataset(dataset)
    cache = cache or Cache()

    def load(folder: Path, train: bool) -> tuple[ImageSet, dict]:
        if root.name == "cifar-10-batches-py":
            return load_cifar_batches(root, train, resolution, max_per_class, split_seed)
        return load_folder(folder, resolution, max_per_class, split_seed, cache)

    if root.name == "cifar-10-batches-py":
        layout = {"train": root, "test": root}
    else:
        layout = find_layout(root)
        if len(layout) > 1:
            check_classes(layout)
    specs = {}
    if "train" in layout:
        train, specs["train"] = load(layout["train"], True)
        if "test" in layout:
            test, specs["test"] = load(layout["test"], False)
            if "val" in layout:
                val, specs["val"] = load(layout["val"], False)
            else:
                kept, held = stratified_split(train.labels, val_fraction, split_seed, f"{layout['train']}")
                train, val = train.subset(kept), train.subset(held)
        elif "val" in layout:
            pool, specs["val"] = load(layout["val"], False)
            kept, held = stratified_split(pool.labels, 0.5, split_seed, f"{layout['val']}")
            val, test = pool.subset(kept), pool.subset(held)
        else:
            load_dataset_layout_error(root, layout)
    elif layout:
        load_dataset_layout_error(root, layout)
    else:
        pool, specs["pool"] = load(root, True)
        rest, test_idx = stratified_split(pool.labels, val_fraction, split_seed, str(root))
        rest_set = pool.subset(rest)
        kept, held = stratified_split(rest_set.labels, val_fraction / (1 - val_fraction), split_seed, str(root))
        train, val, test = rest_set.subset(kept), rest_set.subset(held), pool.subset(test_idx)

    classes = [IMAGENETTE_CLASSES.get(c, c) for c in train.classes]
    for part in (train, val, test):
        part.classes = classes
    spec = {"dataset": name, "resolution": resolution, "val_fraction": val_fraction, "split_seed": split_seed,
            "max_per_class": max_per_class, "sources": specs}
    return DataSplits(name, train, val, test, spec)


def stratified_subset(images: ImageSet, n: int | None, seed: int = 0) -> ImageSet:
    """``n`` images of ``images`` with class proportions kept (all of them when n is None or larger)."""
    if n is None or n >= len(images):
        return images
    _, keep = stratified_split(images.labels, n / len(images), seed, "the subset")
    return images.subset(keep)


KNOWN_SIZES = {"cifar10": {"train": 50_000, "test": 10_000}, "imagenette": {"train": 9_469, "val": 3_925}}
"""Images per split folder of the known data sets (their archives'), when they are not unpacked."""


def load_dataset_layout_error(root: Path | None, splits: dict) -> None:
    """The error ``load_dataset`` gives a split layout it cannot use (raised, never returned)."""
    if "train" in splits:
        raise DataError(f"{root} has train/ but neither val/ nor test/; add one, or put the class "
                        f"folders directly under {root} to have them split automatically")
    raise DataError(f"{root} has {sorted(splits)} but no train/ folder; add {root / 'train' if root else 'train/'}")


def split_sizes(dataset: str, val_fraction: float = 0.1) -> dict[str, int]:
    """Images per split (train, val, test) that ``load_dataset`` gives ``dataset``, from file
    counts and the same split arithmetic, without decoding anything: what a chapter's plan
    needs to say how long its training takes."""
    try:
        root = resolve_dataset(dataset)[1]
    except DataError:
        if dataset not in KNOWN_SIZES:
            raise
        root = None  # a known data set not unpacked here: its archive's counts
    if root is None or root.name == "cifar-10-batches-py":
        counts = dict(KNOWN_SIZES[dataset])
    else:
        layout = find_layout(root) or {"pool": root}
        counts = {s: len(list_image_folder(p)[0]) for s, p in layout.items()}
    held = lambda n, f: math.ceil(n * f)  # noqa: E731  (scikit-learn's test_size arithmetic)
    if "pool" not in counts and ("train" not in counts or len(counts) == 1):
        load_dataset_layout_error(root, counts)
    if "pool" in counts:
        n = counts["pool"]
        test = held(n, val_fraction)
        val = held(n - test, val_fraction / (1 - val_fraction))
        return {"train": n - test - val, "val": val, "test": test}
    if "test" in counts and "val" not in counts:
        val = held(counts["train"], val_fraction)
        return {"train": counts["train"] - val, "val": val, "test": counts["test"]}
    if "test" in counts:
        return {"train": counts["train"], "val": counts["val"], "test": counts["test"]}
    test = held(counts["val"], 0.5)
    return {"train": counts["train"], "val": counts["val"] - test, "test": test}
