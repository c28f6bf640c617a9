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
# # Patch classifiers: how much can one small patch tell?
#
# The proposal {cite}`zou_proposal` asks whether an image can be classified from small
# patches alone, each classified on its own and the votes fused afterwards. BagNet
# {cite}`brendel2019bagnet` answered part of it on ImageNet: a ResNet whose every output
# sees only a q×q window, averaged over the image, reached about 70/81/87 % top-5 with
# q = 9/17/33 against ResNet-50's 94 %. This chapter cuts every image into the same grid of
# q×q windows and compares four ways of classifying one window: a BagNet-q, dense SIFT with
# a linear classifier, tile2vec embeddings learnt without labels with a linear classifier,
# and raw pixels (PCA) with a linear classifier as the floor. A full-image CNN is the
# ceiling. Each window takes its image's label.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu or paper
dataset: str = "imagenette"  # data set (cifar10, imagenette or an ImageFolder path)
resolution: int = 64  # image side in px
qs: list[int] = [9, 17, 33]  # patch sides; BagNet builds 3, 5, 9, 17 and 33
stride: int = 8  # grid stride in px (a multiple of BagNet's 8)
methods: list[str] = ["bagnet", "sift", "tile2vec", "pixels"]  # patch classifiers to compare
train_size: "Optional[int]" = 4000  # training images, stratified subset (None: all)
val_size: "Optional[int]" = None  # validation images (None: all)
test_size: "Optional[int]" = None  # test images (None: all)
seed: int = 0  # seed of every model
bagnet: dict = {"width": 0.125, "blocks": [1, 1, 1, 1], "epochs": 5, "batch_size": 128, "lr": 0.8}  # BagNet options
sift: dict = {"codebook": 256}  # visual words of the bag-of-words image classifier
tile2vec: dict = {"channels": 16, "dim": 64, "steps": 150, "batch_size": 256}  # encoder and triplet training
pixels: dict = {"components": 64}  # PCA components of the pixel floor
linear: dict = {"c": 1.0, "max_patches": 40000}  # logistic regression: inverse L2 strength, training patches
ceiling_recipe: str = "fast"  # training recipe of the full-image CNN
ceiling_epochs: int = 10  # its epochs
heatmap_q: int = 17  # patch side of the ROC and evidence figures
heatmap_images: int = 4  # test images in the evidence figure
memory_size: int = 896  # side of the upscaled image of the memory test
memory_q: int = 33  # BagNet of the memory test
memory_tile: int = 8  # output rows and columns per tile (tile² patches per forward pass)
val_fraction: float = 0.1  # share of CIFAR-10's training set held out for validation
split_seed: int = 0  # seed of the data splits and subsets

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from myst_nb import glue

from simplecnn.core import data, metrics, plots, recipes, results
from simplecnn.studies import patches
from simplecnn.studies.patches import tiling
from simplecnn.core.models import count_params
from simplecnn.core.complexity import macs

started = time.time()
splits = data.load_dataset(dataset, resolution, val_fraction=val_fraction, split_seed=split_seed)
splits = splits.reduced(train=train_size, val=val_size, test=test_size, seed=split_seed)
options = {"bagnet": bagnet, "sift": sift, "tile2vec": tile2vec, "pixels": pixels}
linear_options = patches.LinearOptions(**linear)
grids = {q: patches.Grid(q, stride, resolution) for q in qs}
glue("n_train", len(splits.train), display=False)
glue("n_test", len(splits.test), display=False)
glue("resolution", resolution, display=False)
glue("stride", stride, display=False)
glue("largest_share", 100 * max(qs) / resolution, display=False)
pd.DataFrame({"q": qs, "windows per image": [g.count for g in grids.values()],
              "share of the image side": [q / resolution for q in qs]}).set_index("q").round(3)

# %% [markdown]
# ## The grid and the four patch classifiers
#
# Images are {glue:text}`resolution` px; windows are placed every {glue:text}`stride` px,
# the stride of BagNet's logit map, so a BagNet-q's outputs are exactly the grid's windows.
# Note the scale: on BagNet's 224-px ImageNet a 33-px patch is 15 % of the side; here the
# largest patch covers {glue:text}`largest_share:.0f` % of it. Every method is trained on
# the same {glue:text}`n_train` training images and evaluated on {glue:text}`n_test` test
# images.
#
# - **BagNet-q**: the ResNet-50 layout with unpadded convolutions and 3×3 kernels only in
#   the first block of as many stages as q needs (`simplecnn.core.models.BagNet`; a test checks
#   that one output's gradient reaches exactly its q×q window). It is trained on image
#   labels through the mean of its patch logits and read per window.
# - **Dense SIFT + linear**: OpenCV's 128-d descriptor of each window computed on the window
#   alone (keypoint size q/6, upright), then a logistic regression per window. From the same
#   descriptors, the classic bag-of-visual-words image classifier (k-means codebook,
#   histogram, logistic regression) is the image-level reference.
# - **tile2vec + linear**: a three-layer CNN trained without labels by the triplet loss
#   (a window, a neighbour from the same image, a window of another image), then a logistic
#   regression on its embeddings.
# - **Pixels + PCA + linear**: the floor.
#
# Per-window probabilities of every method for the validation and test images are stored in
# the cache with the grid, for the fusion and Grad-CAM chapters.

# %%
rows, preds = [], {}
for q, grid in grids.items():
    for method in methods:
        out = patches.patch_predictions(method, splits, grid, options[method], linear_options, seed)
        preds[method, q] = out
        n_patches = len(splits.test) * grid.count
        rows.append({"method": method, "q": q, **patches.evaluate(out["test"], splits.test.labels),
                     "train_s": out["train_s"], "patches_per_s": n_patches / out["test_s"],
                     "params": out["params"], "macs_per_patch": out["macs_per_patch"]})
        if method == "sift":
            rows.append({"method": "sift_bovw", "q": q, "train_s": out["train_s"] + out["bovw_train_s"],
                         "image_acc": metrics.accuracy(out["bovw_test"], splits.test.labels),
                         "image_auc": metrics.macro_auc(out["bovw_test"], splits.test.labels)})
table = pd.DataFrame(rows)

# %% [markdown]
# The ceiling is the full-image CNN of the core's `fast` recipe (ResNet-18 at half width,
# label smoothing, EMA of the weights, flip test-time augmentation) trained on the same
# images for {glue:text}`ceiling_epochs` epochs.

# %%
ceiling = recipes.train_recipe(ceiling_recipe, splits, epochs=ceiling_epochs)
t0 = time.perf_counter()
ceiling_logits = ceiling.logits(splits.test, "test")
ceiling_eval = metrics.acc_auc(ceiling_logits, splits.test.labels)
ceiling_row = {"method": "full_cnn", "q": resolution, "image_acc": ceiling_eval["acc"],
               "image_auc": ceiling_eval["auc"], "train_s": ceiling.train_s,
               "params": count_params(ceiling.model), "macs_per_patch": macs(ceiling.model, resolution)}
table = pd.concat([table, pd.DataFrame([ceiling_row])], ignore_index=True)
glue("ceiling_epochs", ceiling_epochs, display=False)
glue("ceiling_acc", ceiling_eval["acc"] * 100, display=False)
shown = table.set_index(["method", "q"])[["patch_auc", "patch_acc", "image_auc", "image_acc", "train_s",
                                          "patches_per_s", "params", "macs_per_patch"]]
shown.style.format({"patch_auc": "{:.3f}", "patch_acc": "{:.1%}", "image_auc": "{:.3f}", "image_acc": "{:.1%}",
                    "train_s": "{:.0f}", "patches_per_s": "{:,.0f}", "params": "{:,.0f}",
                    "macs_per_patch": "{:,.0f}"}, na_rep="—")

# %% [markdown]
# ## Accuracy and AUC against the patch size
#
# Patch-level numbers score every window against its image's label; image-level numbers
# average the windows' probabilities first (the fusion chapter compares other rules). The
# bag-of-words classifier and the full-image CNN are image-level only, drawn as references.
# The best patch classifier at q = {glue:text}`heatmap_q` is
# {glue:text}`best_method_mid`, with a patch AUC of {glue:text}`best_auc_mid:.3f` and an
# image accuracy after mean fusion of {glue:text}`best_image_acc_mid:.1f` %; the full-image
# CNN reaches {glue:text}`ceiling_acc:.1f` %.

# %%
patch_table = table[table["method"].isin(methods)]
mid = patch_table[patch_table["q"] == heatmap_q].set_index("method")
glue("heatmap_q", heatmap_q, display=False)
glue("best_method_mid", results.Plain(mid["patch_auc"].idxmax()), display=False)
glue("best_auc_mid", float(mid["patch_auc"].max()), display=False)
glue("best_image_acc_mid", float(mid.loc[mid["patch_auc"].idxmax(), "image_acc"] * 100), display=False)
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
for ax, metric in zip(axes, ["patch_auc", "image_auc", "image_acc"]):
    sns.lineplot(data=patch_table, x="q", y=metric, hue="method", marker="o", ax=ax, legend=ax is axes[0])
    ax.set_xticks(qs)
    if metric.startswith("image"):
        bovw = table[table["method"] == "sift_bovw"]
        ax.plot(bovw["q"], bovw[metric], "k--", label="SIFT bag of words")
        ax.axhline(ceiling_row[metric], color="grey", ls=":", label="full-image CNN")
    ax.set_title(metric.replace("_", " "))
axes[2].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## ROC curves
#
# Micro-averaged one-vs-rest ROC curves of the windows at q = {glue:text}`heatmap_q`
# (every class's decisions pooled), one per method.

# %%
fig, ax = plt.subplots(figsize=(5, 5))
patch_labels = splits.test.labels.repeat_interleave(grids[heatmap_q].count)
for method in methods:
    probs = preds[method, heatmap_q]["test"].reshape(-1, splits.num_classes)
    fpr, tpr = metrics.micro_roc(probs, patch_labels)
    ax.plot(fpr, tpr, label=f"{method} (macro AUC {mid.loc[method, 'patch_auc']:.3f})")
ax.plot([0, 1], [0, 1], "k:", lw=1)
ax.set_xlabel("false positive rate"), ax.set_ylabel("true positive rate")
ax.legend(fontsize=8);

# %% [markdown]
# ## What a window costs
#
# Inference speed is measured on the test windows, features and classifier included (SIFT
# runs one OpenCV call per window; the BagNet evaluates all windows of an image in one
# pass, sharing computation). Parameters count everything learnt; MACs per window are those
# of one window evaluated on its own (SIFT's are not multiply-accumulates and are left out).

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
speed = patch_table.assign(us_per_patch=1e6 / patch_table["patches_per_s"])
sns.scatterplot(data=speed, x="us_per_patch", y="patch_auc", hue="method", style="q", s=80, ax=ax)
ax.set_xscale("log")
ax.set_xlabel("inference time per window (µs, log)"), ax.set_ylabel("patch macro AUC");

# %% [markdown]
# ## Where the evidence lies
#
# For a few test images, each method's probability of the true class in every window at
# q = {glue:text}`heatmap_q` (drawn at the window's centre, one stride wide).

# %%
pick = torch.arange(0, len(splits.test), max(1, len(splits.test) // heatmap_images))[:heatmap_images]
grid = grids[heatmap_q]
maps = {m: patches.to_pixels(patches.true_class(preds[m, heatmap_q]["test"][pick], splits.test.labels[pick]), grid)
        for m in methods}
fig = plots.overlay_grid(splits.test.images[pick], maps, [splits.classes[c] for c in splits.test.labels[pick]],
                         vmax=1.0)

# %% [markdown]
# ## Memory: a large image, whole or tile by tile
#
# The proposal's case for patches is memory: a patch classifier never needs the activations
# of the whole image at once. A test image upscaled to {glue:text}`memory_size` px is run
# through the BagNet-{glue:text}`memory_q` whole and in tiles of at most
# {glue:text}`memory_tile_patches` windows, each in a fresh process whose peak resident
# memory is measured. The logits agree to {glue:text}`memory_max_diff:.1e` (max abs
# difference) while the peak falls from {glue:text}`memory_whole_mib:.0f` MiB to
# {glue:text}`memory_tiled_mib:.0f` MiB.

# %%
MiB = 2**20
bag = patches.train_bagnet(splits, memory_q, patches.BagNetOptions(**bagnet), seed, None).model
big = torch.nn.functional.interpolate(splits.test.images[:1].float() / 255, size=memory_size, mode="bilinear",
                                      align_corners=False)
x = bag[0](big)
kwargs = {"q": memory_q, **{k: tuple(v) if isinstance(v, list) else v for k, v in bagnet.items()
                            if k in ("width", "blocks")}}
whole, whole_peak = tiling.isolated_peak(bag[1], kwargs, x, None)
tiled, tiled_peak = tiling.isolated_peak(bag[1], kwargs, x, memory_tile)
memory = {"image_px": memory_size, "q": memory_q, "windows": int(whole[0, 0].numel()),
          "tile_windows": memory_tile ** 2, "whole_peak_bytes": whole_peak, "tiled_peak_bytes": tiled_peak,
          "max_abs_diff": float((whole - tiled).abs().max())}
glue("memory_size", memory_size, display=False)
glue("memory_q", memory_q, display=False)
glue("memory_tile_patches", memory_tile ** 2, display=False)
glue("memory_max_diff", memory["max_abs_diff"], display=False)
glue("memory_whole_mib", whole_peak / MiB, display=False)
glue("memory_tiled_mib", tiled_peak / MiB, display=False)
fig, ax = plt.subplots(figsize=(5, 2.5))
sns.barplot(x=[whole_peak / MiB, tiled_peak / MiB],
            y=["whole image", f"tiles of {memory_tile ** 2} windows"], ax=ax)
ax.set_xlabel(f"peak memory of BagNet-{memory_q} inference on {memory_size} px (MiB)");

# %% [markdown]
# ## What the profile cuts
#
# BagNet's width, depth and epochs, the training images, tile2vec's steps and the patch
# sizes are parameters (see the parameters cell). At this budget the BagNets' one-cycle peak
# learning rate of 0.8 was chosen against 0.2 on the validation images (the BagNet's own
# mean-logit accuracy), never on test. The `paper` profile trains the
# BagNet at the published depth and width on 224-px images. CIFAR-10 is a few parameters
# away (`-p dataset cifar10 -p resolution 32 -p qs "[5, 9, 17]" -p memory_q 17`), but does
# not fit this profile's budget beside Imagenette.

# %%
def _clean(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


keys = ["patch_auc", "patch_acc", "image_acc", "image_auc", "train_s", "patches_per_s", "params", "macs_per_patch"]
headline = {"methods": {}, "memory": memory, "ceiling_acc": ceiling_eval["acc"], "ceiling_auc": ceiling_eval["auc"]}
for _, row in table.iterrows():
    headline["methods"].setdefault(row["method"], {})[str(row["q"])] = {k: _clean(row.get(k)) for k in keys}
print(results.write_results("patches", profile, headline, started))
