"""The data chapter: which images every study sees, and how they are split.

Loading and splitting are core (``simplecnn.core.data``); this module builds the chapter's
tables and states its headline: the split sizes that every later number is computed on.
"""

from __future__ import annotations

import pandas as pd

from simplecnn.core import params as P
from simplecnn.core.archives import ARCHIVES, Archive
from simplecnn.core.data import DataSplits
from simplecnn.core.results import Headline

# Facts about the data sets that the chapter's prose quotes (glued, not typed).
SOURCE_FACTS = {
    "cifar_px": 32,  # CIFAR-10's native side
    "cifar_jpeg_quality": 75,  # of the JPEG conversion shipped in ../shared/data
    "cifar_test_full": 10_000,  # CIFAR-10's test set
    "imagenette_classes": 10,
    "imagenette_release_px": 320,  # torchvision's downloader fetches this release
    "imagenette_copy_px": 224,  # the copy shipped in ../shared/data
}


PARAMETERS = {**P.COMMON, "datasets": P.Rule(lambda v: isinstance(v, list) and len(v) >= 1 and all(P.dataset().ok(d) for d in v),
                                                 "a list of data sets, each 'cifar10', 'imagenette' or an existing folder"),
              "max_per_class": P.whole(1, optional=True), "per_class": P.whole(1)}
"""Every parameter's allowed values, checked before the chapter decodes anything (``core.params``)."""


def archive_table(archives: dict[str, Archive] = ARCHIVES) -> pd.DataFrame:
    """One row per data set: the archive file, the folder it unpacks to, its sha256's head."""
    return pd.DataFrame([{"data set": name, "archive": a.file, "unpacks to": a.folder, "sha256": a.sha256[:16] + "…"}
                         for name, a in archives.items()]).set_index("data set")


def split_table(splits: dict[str, DataSplits]) -> pd.DataFrame:
    """Images per split, classes and resolution of each loaded data set."""
    sizes = pd.DataFrame({name: s.sizes() for name, s in splits.items()}).T
    sizes["classes"] = [s.num_classes for s in splits.values()]
    sizes["resolution"] = [s.train.resolution for s in splits.values()]
    return sizes


def results_dict(splits: dict[str, DataSplits]) -> dict[str, dict[str, int]]:
    """The results json: images per split for each data set."""
    return {name: s.sizes() for name, s in splits.items()}


def headline(results: dict) -> list[Headline]:
    """Images per split for each data set (no uncertainty: these are counts)."""
    return [Headline(f"{name} images (train / val / test)", f"{s['train']:,} / {s['val']:,} / {s['test']:,}",
                     interval="exact count", setting=f"{name}, stratified seeded splits", rule="exact")
            for name, s in results.items()]


def plan(params: dict, upstream: dict | None = None) -> list:
    """This chapter trains and runs no model."""
    return []
