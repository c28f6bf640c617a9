# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The data, the splits and the run
#
# Every study reads its images through one loader, `simplecnn.core.data.load_dataset`: a data
# set is decoded once into a uint8 tensor at the requested resolution, cached on disk and
# held in memory while models train. This chapter shows what that loader hands the studies
# and which run produced the book.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
datasets: list[str] = ["cifar10", "imagenette"]  # data sets to describe (names or ImageFolder paths)
resolutions: dict = {"cifar10": 32, "imagenette": 64}  # px per data set for the sample grids
max_per_class: "Optional[int]" = None  # cap on decoded images per class and split (None: all of them)
val_fraction: float = 0.1  # share of CIFAR-10's train set held out for validation
split_seed: int = 0  # seed of every split: fixed, so all studies see the same test images
per_class: int = 6  # sample images per class in the grids

# %%
import time

from myst_nb import glue

from simplecnn.core.params import check as check_parameters
from simplecnn.core import data, plots, results
from simplecnn.core.device import use_device
from simplecnn.studies import data as study

started = time.time()
check_parameters("data", globals(), study.PARAMETERS)  # bad values stop here, before any work
use_device(device)  # nothing here computes on it; the results record it
glue("profile", results.Plain(profile), display=False)  # pasted by the intro page

# %% [markdown]
# ## Where the images come from
#
# The archives in `../shared/data` are unpacked by `make data`, which checks each one's
# sha256 first; without them it falls back to torchvision's downloaders (CIFAR-10's
# original pickled batches, Imagenette's {glue:text}`imagenette_release_px` px release),
# and the loader reads either. CIFAR-10 here is a JPEG conversion (quality
# {glue:text}`cifar_jpeg_quality`) of the original {glue:text}`cifar_px` px images, so
# pixels carry mild JPEG artefacts and accuracies are close to, not identical with, results
# on the original batches. Imagenette is {glue:text}`imagenette_classes` easy ImageNet
# classes (fastai, Apache-2.0) in a {glue:text}`imagenette_copy_px` px copy of the
# `imagenette2` split.

# %%
for key, value in study.SOURCE_FACTS.items():
    glue(key, value, display=False)
study.archive_table()

# %% [markdown]
# ## Splits
#
# Splits are stratified and seeded, identical for every study. CIFAR-10 keeps its
# {glue:text}`cifar_test_full:,` test images for final numbers and carves validation out of
# its training set.
# Imagenette has no test split, so its official `val` folder is halved, stratified, into
# validation and test. Anything a study chooses (thresholds, fusion rules, epochs) is
# chosen on validation; test is touched once.

# %%
splits = {name: data.load_dataset(name, resolutions.get(name, 64), val_fraction=val_fraction,
                                   split_seed=split_seed, max_per_class=max_per_class)
          for name in datasets}
sizes = study.split_table(splits)
for name, row in sizes.iterrows():
    for split in ("train", "val", "test"):
        glue(f"{name}_{split}", int(row[split]), display=False)
sizes

# %% [markdown]
# With this profile CIFAR-10 gives {glue:text}`cifar10_train` training,
# {glue:text}`cifar10_val` validation and {glue:text}`cifar10_test` test images; Imagenette
# {glue:text}`imagenette_train`, {glue:text}`imagenette_val` and {glue:text}`imagenette_test`.

# %%
for name, s in splits.items():
    plots.image_grid(s.train.images, s.train.labels, s.classes, per_class,
                     title=f"{name}: training images at {s.train.resolution} px")

# %%
out = study.results_dict(splits)
print(results.write_results("data", profile, out, started, study.headline(out)))
