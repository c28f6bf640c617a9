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
# sees only a q×q window, averaged over the image, reached {glue:text}`paper_top5` % top-5
# with q = {glue:text}`paper_qs` against ResNet-50's {glue:text}`paper_resnet50:.1f` % (the
# largest from the paper's abstract, the others read from its first figure). This chapter
# cuts every image into the same grid of q×q windows and compares four ways of classifying
# one window: a BagNet-q, dense SIFT with a linear classifier, tile2vec embeddings learnt
# without labels with a linear classifier, and raw pixels (PCA) with a linear classifier as
# the floor; a fifth row, the same linear classifier on the BagNet's own penultimate window
# features, separates what the BagNet's features are worth from how it is trained. A
# full-image CNN is the ceiling. Each window takes its image's label.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
dataset: str = "imagenette"  # data set (cifar10, imagenette or an ImageFolder path)
resolution: int = 64  # image side in px
qs: list[int] = [9, 17, 33]  # patch sides; BagNet builds 3, 5, 9, 17 and 33
stride: int = 8  # grid stride in px (a multiple of BagNet's 8)
methods: list[str] = ["bagnet", "sift", "tile2vec", "pixels"]  # patch classifiers to compare
train_size: "Optional[int]" = None  # training images, stratified subset (None: all)
val_size: "Optional[int]" = None  # validation images (None: all)
test_size: "Optional[int]" = None  # test images (None: all)
seed: int = 0  # seed of every model
bagnet: dict = {"width": 0.125, "blocks": [1, 1, 1, 1], "epochs": 8, "batch_size": 128, "lr": 0.8, "cpu_bf16": True}  # BagNet options
sift: dict = {"codebook": 256}  # visual words of the bag-of-words image classifier
tile2vec: dict = {"channels": 16, "dim": 64, "steps": 150, "batch_size": 256}  # encoder and triplet training
pixels: dict = {"components": 64}  # PCA components of the pixel floor
linear: dict = {"c": 1.0, "max_patches": 40000, "batch_images": 64}  # logistic regression: inverse L2, training windows (sampled), images featurised per call
probe: bool = True  # add the linear probe on BagNet's penultimate window features
bootstrap_rounds: int = 200  # resamples of the test images for every CI
ci_seed: int = 0  # seed of the resamples (shared by all families: paired differences)
ceiling_recipe: str = "fast"  # training recipe of the full-image CNN
ceiling_epochs: int = 28  # its epochs
ceiling_cpu_bf16: bool = True  # bf16 autocast in its training on the CPU too
heatmap_q: int = 17  # patch side of the ROC and evidence figures
heatmap_images: int = 4  # test images in the evidence figure
memory_size: int = 896  # side of the upscaled image of the memory test
memory_q: int = 33  # BagNet of the memory test
memory_tile: int = 8  # output rows and columns per tile (tile² patches per forward pass)
train_memory_sizes: list[int] = [224, 448]  # image sides of the training-memory measurement (one step, one image)
background_detectors: list[str] = ["gradcam", "saliency", "centre"]  # detectors of background windows
background_share: float = 0.5  # share of each image's windows, lowest detector score, called background
background_cam_stage: int = 1  # ResNet stage of the Grad-CAM detector (stage 1, layer2: 8×8 cells at 64 px)
background_refit: bool = True  # also train every family on the centre detector's object windows (at heatmap_q)
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
from simplecnn.core.device import use_device
from simplecnn.studies import gradcam, patches
from simplecnn.studies.patches import background, compare, sift as sift_features, tiled_training, tiling
from simplecnn.core.models import count_params
from simplecnn.core.complexity import macs

started = time.time()
use_device(device)  # every model, inference and timing below runs there
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
glue("paper_top5", results.Plain("/".join(f"{v:g}" for v in compare.BAGNET_TOP5.values())), display=False)
glue("paper_qs", results.Plain("/".join(map(str, compare.BAGNET_TOP5))), display=False)
glue("paper_resnet50", compare.RESNET50_TOP5, display=False)
glue("paper_px", compare.PAPER_RESOLUTION, display=False)
glue("paper_q", max(compare.BAGNET_TOP5), display=False)
glue("paper_share", 100 * max(compare.BAGNET_TOP5) / compare.PAPER_RESOLUTION, display=False)
glue("sift_span", sift_features.DESCRIPTOR_SPAN, display=False)
glue("sift_dim", 128, display=False)
glue("max_patches", linear_options.max_patches, display=False)
glue("batch_images", linear_options.batch_images, display=False)
glue("rounds", bootstrap_rounds, display=False)
glue("ci_level", 95, display=False)  # confidence_interval's level
pd.DataFrame({"q": qs, "windows per image": [g.count for g in grids.values()],
              "share of the image side": [q / resolution for q in qs]}).set_index("q").round(3)

# %% [markdown]
# ## The grid and the four patch classifiers
#
# Images are {glue:text}`resolution` px; windows are placed every {glue:text}`stride` px,
# the stride of BagNet's logit map, so a BagNet-q's outputs are exactly the grid's windows.
# Note the scale: on BagNet's {glue:text}`paper_px`-px ImageNet a {glue:text}`paper_q`-px
# patch is {glue:text}`paper_share:.0f` % of the side; here the largest patch covers
# {glue:text}`largest_share:.0f` % of it. Every method is trained on
# the same {glue:text}`n_train` training images and evaluated on {glue:text}`n_test` test
# images.
#
# - **BagNet-q**: the ResNet-50 layout with unpadded convolutions and 3×3 kernels only in
#   the first block of as many stages as q needs (`simplecnn.core.models.BagNet`; a test checks
#   that one output's gradient reaches exactly its q×q window). It is trained on image
#   labels through the mean of its patch logits and read per window.
# - **Dense SIFT + linear**: OpenCV's {glue:text}`sift_dim`-d descriptor of each window
#   computed on the window alone (keypoint size q / {glue:text}`sift_span`, upright), then a
#   logistic regression per window. From the same
#   descriptors, the classic bag-of-visual-words image classifier (k-means codebook,
#   histogram, logistic regression) is the image-level reference.
# - **tile2vec + linear**: a three-layer CNN trained without labels by the triplet loss
#   (a window, a neighbour from the same image, a window of another image), then a logistic
#   regression on its embeddings.
# - **Pixels + PCA + linear**: the floor.
# - **BagNet features + linear** (`bagnet_probe`): the trained BagNet-q's penultimate
#   window features (what its head reads) with the logistic regression of the rows above.
#
# Every logistic regression is fitted on the same seeded sample of at most
# {glue:text}`max_patches` training windows (standardised features, per-window labels); the
# windows are featurised {glue:text}`batch_images` images at a time, for the sample and for
# prediction, so memory does not grow with the data set (the paper profile's every window
# of every training image would need tens of GB; a test checks that the streamed path
# gives the in-memory predictions and never featurises more than a batch).
#
# Per-window probabilities of every method for the validation and test images are stored in
# the cache with the grid, for the fusion and Grad-CAM chapters.

# %%
families = methods + (["bagnet_probe"] if probe else [])
counts = metrics.bootstrap_counts(len(splits.test), bootstrap_rounds, ci_seed)  # shared by every family
rows, preds, boots = [], {}, {}
for q, grid in grids.items():
    for method in families:
        out = patches.patch_predictions(method, splits, grid, options.get(method, bagnet), linear_options, seed)
        preds[method, q] = out
        row, boots[method, q] = compare.score_windows(out["test"], splits.test.labels, counts)
        rows.append({"method": method, "q": q, **row, **compare.runtime(out["test_s"], len(splits.test), grid.count),
                     "train_s": out["train_s"], "patches_per_s": len(splits.test) * grid.count / out["test_s"],
                     "params": out["params"], "macs_per_patch": out["macs_per_patch"]})
        if method == "sift":
            row, boots["sift_bovw", q] = compare.score_images(out["bovw_test"], splits.test.labels, counts)
            rows.append({"method": "sift_bovw", "q": q, **row, "train_s": out["train_s"] + out["bovw_train_s"]})
table = pd.DataFrame(rows)

# %% [markdown]
# The ceiling is the full-image CNN of the core's `fast` recipe (ResNet-18 at half width,
# label smoothing, EMA of the weights, flip test-time augmentation) trained on the same
# images for {glue:text}`ceiling_epochs` epochs.
#
# Every family is scored on the same windows of the same test images by one protocol: (a)
# the macro one-vs-rest AUC of the windows, each labelled by its image, and (b) the image
# decision by the mean of the windows' logits, the BagNet's own output; for the linear
# read-outs that is the mean of their log-probabilities (log p differs from the logits by
# one number per window, so for the BagNet both are the same). The earlier rule, the mean
# of probabilities, is the `image_acc_mean_prob` column. Intervals are {glue:text}`ci_level` % bootstrap
# intervals over {glue:text}`rounds` resamples of the test images, a window going with its
# image (for the patch AUC to first order in each image's weight, which a test checks
# against exact resampling); one set of resamples serves every family, so differences are
# paired. Runtime is inference on the test images, features and read-out included.

# %%
ceiling = recipes.train_recipe(ceiling_recipe, splits, epochs=ceiling_epochs, cpu_bf16=ceiling_cpu_bf16)
t0 = time.perf_counter()
ceiling_logits = ceiling.logits(splits.test, "test")
ceiling_s = time.perf_counter() - t0
ceiling_score, boots["full_cnn", resolution] = compare.score_images(torch.softmax(ceiling_logits.double(), 1),
                                                                    splits.test.labels, counts)
ceiling_row = {"method": "full_cnn", "q": resolution, **ceiling_score, "train_s": ceiling.train_s,
               "params": count_params(ceiling.model), "macs_per_patch": macs(ceiling.model, resolution)}
ceiling_eval = {"acc": ceiling_score["image_acc"], "auc": ceiling_score["image_auc"]}
table = pd.concat([table, pd.DataFrame([ceiling_row])], ignore_index=True)
glue("ceiling_epochs", ceiling_epochs, display=False)
glue("ceiling_acc", ceiling_eval["acc"] * 100, display=False)


def interval(row, key, scale=1.0, fmt="{:.3f}"):
    if pd.isna(row.get(key)):
        return "—"
    lo, hi = row.get(f"{key}_low"), row.get(f"{key}_high")
    ci = "" if pd.isna(lo) else f" [{fmt.format(lo * scale)}, {fmt.format(hi * scale)}]"
    return fmt.format(row[key] * scale) + ci


shown = pd.DataFrame({"patch AUC": table.apply(interval, axis=1, key="patch_auc"),
                      "image acc (%)": table.apply(interval, axis=1, key="image_acc", scale=100, fmt="{:.1f}"),
                      "image AUC": table.apply(interval, axis=1, key="image_auc"),
                      "image acc, mean prob (%)": (100 * table["image_acc_mean_prob"]).round(1),
                      "µs / window": table["us_per_window"].round(2), "ms / image": table["ms_per_image"].round(2),
                      "train s": table["train_s"].round(0), "params": table["params"],
                      "MACs / window": table["macs_per_patch"]}).set_axis(
    pd.MultiIndex.from_frame(table[["method", "q"]]), axis=0)
shown.astype(object).where(shown.notna(), "—")

# %% [markdown]
# ## Checks
#
# Paired bootstrap differences of image accuracy (points) and patch AUC: the BagNets
# against each other, each BagNet against the linear probe on its own features (same
# features, other objective) and against the best other family at its q. A difference is
# resolved when its interval excludes zero.

# %%
def check(a, b, key):
    ra = table[(table.method == a[0]) & (table.q == a[1])].iloc[0]
    rb = table[(table.method == b[0]) & (table.q == b[1])].iloc[0]
    d = compare.difference(boots[a], boots[b], key, (ra[key], rb[key]))
    scale = 100 if key == "image_acc" else 1
    return {"a": f"{a[0]}-{a[1]}", "b": f"{b[0]}-{b[1]}", "metric": key, "diff": d["diff"] * scale,
            "low": d["low"] * scale, "high": d["high"] * scale, "p": d["p"], "resolved": d["resolved"]}


pairs = [(("bagnet", hi), ("bagnet", lo)) for lo, hi in zip(qs, qs[1:])] if "bagnet" in methods else []
for q in qs:
    others = [m for m in families if m != "bagnet"]
    if "bagnet" in methods and others:
        best = max(others, key=lambda m: table[(table.method == m) & (table.q == q)]["patch_auc"].iloc[0])
        pairs += [(("bagnet", q), (m, q)) for m in dict.fromkeys(["bagnet_probe", best]) if m in families]
checks = pd.DataFrame([check(a, b, key) for a, b in pairs for key in ("image_acc", "patch_auc")])
checks_text = "; ".join(f"{r.a} − {r.b} {r.metric.replace('_', ' ')} {r.diff:+.3g} [{r.low:.3g}, {r.high:.3g}]: "
                        f"{'resolved' if r.resolved else 'not resolved'}" for r in checks.itertuples())
print(checks_text)
checks.round(4)

# %% [markdown]
# ## Accuracy and AUC against the patch size
#
# Patch-level numbers score every window against its image's label; image-level numbers
# average the windows' logits first (the fusion chapter compares other rules). The
# bag-of-words classifier and the full-image CNN are image-level only, drawn as references.
# The best patch classifier at q = {glue:text}`heatmap_q` is
# {glue:text}`best_method_mid`, with a patch AUC of {glue:text}`best_auc_mid:.3f` and an
# image accuracy by mean logits of {glue:text}`best_image_acc_mid:.1f` %; the full-image
# CNN reaches {glue:text}`ceiling_acc:.1f` %.

# %%
patch_table = table[table["method"].isin(families)]
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
for method in families:
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
sns.scatterplot(data=patch_table, x="us_per_window", y="patch_auc", hue="method", style="q", s=80, ax=ax)
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
# ## Memory: training on large images by tiles
#
# Training needs the activations of every window for the backward pass, so the whole-image
# step grows with the image. A BagNet can instead be trained tile by tile with the whole
# image's gradient (`simplecnn.studies.patches.tiled_training`): the image's logits are the
# mean of its windows' logits and its loss is not linear in them, so a first pass over the
# tiles without autograd gives the image-level gradient of the loss with respect to the
# mean logits, and a second pass back-propagates it through each tile in turn. With frozen
# batch-norm statistics the accumulated gradient is the whole image's: here it differs by
# {glue:text}`grad_rel_diff:.1e` of the largest gradient on a test image at
# {glue:text}`grad_px` px (float32; a test checks it in float64). In training mode batch
# norm sees one tile at a time, as ghost batches do. One training step of a freshly
# initialised BagNet-{glue:text}`memory_q` on one image, whole and in tiles of
# {glue:text}`memory_tile_patches` windows, each in a fresh process: at
# {glue:text}`train_mem_top_px` px the peak is {glue:text}`train_mem_whole_mib:.0f` MiB whole
# and {glue:text}`train_mem_tiled_mib:.0f` MiB by tiles, and the tiled step takes
# {glue:text}`train_mem_slowdown:.1f` times as long (two forward passes instead of one, and
# smaller kernels). `benchmarks/patch_memory.py` prints the same comparison with windows
# per second.

# %%
bag_kwargs = {**kwargs, "q": memory_q}
check_bag = bag[1].eval()
grad_px = max(memory_q + 4 * memory_tile * check_bag.stride, resolution)
x_check = torch.nn.functional.interpolate(splits.test.images[:1].float() / 255, size=grad_px, mode="bilinear",
                                          align_corners=False)
gap = tiled_training.gradient_gap(check_bag, bag[0](x_check), splits.test.labels[:1], memory_tile)
train_rows = []
for size in train_memory_sizes:
    for mode, tile in (("whole image", None), (f"tiles of {memory_tile ** 2} windows", memory_tile)):
        r = tiled_training.isolated_train_peak(bag_kwargs, splits.num_classes, size, tile, seed)
        train_rows.append({"image_px": size, "mode": mode, "peak_mib": r["peak_bytes"] / MiB, "seconds": r["seconds"],
                           "windows_per_s": r["windows"] / r["seconds"], "peak_bytes": r["peak_bytes"],
                           "windows": r["windows"]})
train_memory_table = pd.DataFrame(train_rows)
top = train_memory_table[train_memory_table.image_px == max(train_memory_sizes)].set_index("mode")["peak_mib"]
top_s = train_memory_table[train_memory_table.image_px == max(train_memory_sizes)].set_index("mode")["seconds"]
train_memory = {"q": memory_q, "tile_windows": memory_tile ** 2, "gradient_gap": gap, "gradient_px": grad_px,
                "device": "cuda" if torch.cuda.is_available() else "cpu",
                "rows": [{"image_px": size, "windows": int(g.windows.iloc[0]),
                          "whole_peak_bytes": int(g[g["mode"] == "whole image"].peak_bytes.iloc[0]),
                          "tiled_peak_bytes": int(g[g["mode"] != "whole image"].peak_bytes.iloc[0]),
                          "whole_windows_per_s": float(g[g["mode"] == "whole image"].windows_per_s.iloc[0]),
                          "tiled_windows_per_s": float(g[g["mode"] != "whole image"].windows_per_s.iloc[0])}
                         for size, g in train_memory_table.groupby("image_px")]}
glue("grad_rel_diff", gap["max_rel_diff"], display=False)
glue("grad_px", grad_px, display=False)
glue("train_mem_top_px", max(train_memory_sizes), display=False)
glue("train_mem_whole_mib", float(top["whole image"]), display=False)
glue("train_mem_tiled_mib", float(top.drop("whole image").iloc[0]), display=False)
glue("train_mem_slowdown", float(top_s.drop("whole image").iloc[0] / top_s["whole image"]), display=False)
fig, ax = plt.subplots(figsize=(6, 3.5))
sns.lineplot(data=train_memory_table, x="image_px", y="peak_mib", hue="mode", marker="o", ax=ax)
ax.set_xticks(train_memory_sizes)
ax.set_xlabel("image side (px)"), ax.set_ylabel("peak memory of one training step (MiB)")
ax.set_title(f"BagNet-{memory_q}, one image, fresh process");

# %% [markdown]
# ## Background windows
#
# The proposal expects votes over patches to fail where background patches abound, and
# proposes to weight each patch by whether it is background, for instance by its distance
# from the centre. Three detectors score every test window (higher: more likely object):
# **Grad-CAM**, the mean over the window of the full-image CNN's Grad-CAM for its own
# predicted class (no label needed) at stage {glue:text}`bg_cam_stage` of its ResNet, whose
# {glue:text}`bg_cam_cells` cells are upsampled to the image (`studies.gradcam.patch_weights`;
# it borrows the full CNN, so it measures what knowing where the object is would be worth,
# not a patch-only method); **saliency**, the mean of OpenCV's spectral-residual saliency
# map over the window (model-free); and **centre**, closeness of the window's centre to
# the image centre (model-free, the proposal's example). In each image the
# {glue:text}`bg_share_pct:.0f` % of windows with the lowest score are background (a
# parameter fixed in advance, not tuned; ties in a random order). For every family and q,
# on the test images: the patch AUC of object and of background windows, and the image
# decision by mean log-probability over all windows against over the object windows only
# (background weighted zero); intervals are paired bootstrap intervals over the same
# resamples of test images as above.
#
# Ignoring background windows when fusing needs the detectors on the test images only: this
# section took {glue:text}`bg_seconds:.0f` s here. Ignoring them in *training* is the next
# section.
#
# Per detector, averaged over the {glue:text}`bg_rows` family × q rows:
# {glue:text}`bg_findings`. The proposal's hypothesis (background windows are classified
# worse, and ignoring them improves the image decision, both beyond their intervals)
# {glue:text}`bg_verdict`.

# %%
t0 = time.perf_counter()
unknown = set(background_detectors) - set(background.DETECTORS)
if unknown:
    raise ValueError(f"unknown background detectors {sorted(unknown)}; known: {list(background.DETECTORS)}")
saliency = background.saliency_maps(splits.test.images) if "saliency" in background_detectors else None
detector_scores = {}
for q, grid in grids.items():
    for d in background_detectors:
        if d == "gradcam":
            detector_scores[d, q] = gradcam.patch_weights(ceiling, splits.test.images, "test", grid,
                                                          background_cam_stage)["weights"]
        elif d == "saliency":
            detector_scores[d, q] = patches.window_means(saliency, grid)
        else:
            detector_scores[d, q] = background.centre_scores(len(splits.test), grid)
bg_rows, bg_summaries = background.study_rows({(m, q): preds[m, q]["test"] for m in families for q in qs},
                                              splits.test.labels, detector_scores, background_share, counts)
bg_seconds = time.perf_counter() - t0
bg_checks = [background.check_line(d, s) for d, s in bg_summaries.items()]
print("\n".join(bg_checks))
holds = [d for d, s in bg_summaries.items() if s["hypothesis_holds"]]
glue("bg_share_pct", 100 * background_share, display=False)
glue("bg_cam_stage", background_cam_stage, display=False)
cam_cells = gradcam.layer_cells(ceiling.model, f"stages.{background_cam_stage}", resolution)
glue("bg_cam_cells", results.Plain("×".join(map(str, cam_cells))), display=False)
glue("bg_seconds", bg_seconds, display=False)
glue("bg_rows", next(iter(bg_summaries.values()))["rows"], display=False)
glue("bg_findings", results.Plain("; ".join(
    f"{d}: patch AUC object − background {s['auc_gap']:+.3f} [{s['auc_gap_low']:+.3f}, {s['auc_gap_high']:+.3f}], "
    f"image accuracy {100 * s['image_acc_change']:+.1f} [{100 * s['image_acc_change_low']:+.1f}, "
    f"{100 * s['image_acc_change_high']:+.1f}] points when background is ignored "
    f"({s['image_acc_change_rows_up']} rows up, {s['image_acc_change_rows_down']} down beyond their intervals), "
    f"image AUC {s['image_auc_change']:+.3f} [{s['image_auc_change_low']:+.3f}, {s['image_auc_change_high']:+.3f}]"
    for d, s in bg_summaries.items())), display=False)
glue("bg_verdict", results.Plain(f"holds for {', '.join(holds)}" if holds else
                                 "does not hold for any detector here"), display=False)
bg_table = pd.DataFrame(bg_rows)
pd.DataFrame({
    "patch AUC, object": bg_table.apply(interval, axis=1, key="patch_auc_object"),
    "patch AUC, background": bg_table.apply(interval, axis=1, key="patch_auc_background"),
    "object − background": bg_table.apply(interval, axis=1, key="auc_gap"),
    "image acc, all (%)": bg_table.apply(interval, axis=1, key="image_acc_all", scale=100, fmt="{:.1f}"),
    "image acc, object only (%)": bg_table.apply(interval, axis=1, key="image_acc_object", scale=100, fmt="{:.1f}"),
    "change (points)": bg_table.apply(interval, axis=1, key="image_acc_change", scale=100, fmt="{:+.1f}"),
    "image AUC change": bg_table.apply(interval, axis=1, key="image_auc_change", fmt="{:+.3f}")}).set_axis(
    pd.MultiIndex.from_frame(bg_table[["detector", "method", "q"]]), axis=0)

# %%
fig, axes = plt.subplots(2, len(bg_summaries), figsize=(4.5 * len(bg_summaries), 6), squeeze=False, sharey="row")
for j, (d, g) in enumerate(bg_table.groupby("detector", sort=False)):
    names = [f"{m}-{q}" for m, q in zip(g.method, g.q)]
    for i, (key, scale, label) in enumerate((("auc_gap", 1, "patch AUC, object − background"),
                                             ("image_acc_change", 100, "image accuracy change (points)"))):
        ax = axes[i, j]
        ax.errorbar(range(len(g)), g[key] * scale, yerr=[(g[key] - g[f"{key}_low"]) * scale,
                                                         (g[f"{key}_high"] - g[key]) * scale], fmt="o", capsize=3)
        ax.axhline(0, color="grey", ls=":")
        ax.set_xticks(range(len(g)), names if i else [], rotation=90, fontsize=7)
        ax.set_title(d if i == 0 else ""), ax.set_ylabel(label if j == 0 else "")
fig.tight_layout()
background_result = {"share": background_share, "detectors": list(bg_summaries), "split": "test",
                     "cam_stage": background_cam_stage,
                     "done": "aggregation: background windows of the test images weighted 0 in the mean "
                             "log-probability; refit: the linear read-outs refitted on the centre detector's "
                             "object windows (see refit)",
                     "seconds": bg_seconds, "rows": bg_rows, "summaries": bg_summaries, "checks": bg_checks,
                     "hypothesis_holds": holds}

# %% [markdown]
# ## Training without background windows
#
# The proposal's full recipe also trains the patch classifiers without background. Here
# every family at q = {glue:text}`refit_q` is trained again on the windows the **centre**
# detector calls object (the same {glue:text}`refit_object_pct:.0f` % of positions in every
# image, so the {glue:text}`n_train` training images need no detector pass): the linear
# read-outs are refitted on a sample of the same size drawn from those windows, and the
# BagNet, whose objective is the image's mean logit, is trained from scratch with the same
# budget and its mean taken over those windows only, so background windows get no gradient
# (its training took {glue:text}`refit_bagnet_train_s:.0f` s here). Each image is then
# decided by the object windows only. Two changes per family, paired over the same test
# resamples: *refit* (trained without background against the original, both voting with
# object windows only: what training without background adds) and *total* (that plus the
# object-only vote against the original over all windows: the recipe against none). The
# probe keeps the original BagNet's features and refits its read-out only.
#
# {glue:text}`refit_findings`

# %%
refit_grid = grids[heatmap_q]
refit_methods = list(families) if background_refit else []
refit_rows, refit_checks = background.refit_study(
    {m: preds[m, heatmap_q]["test"] for m in refit_methods}, splits, refit_grid,
    {m: options.get(m, bagnet) for m in refit_methods}, linear_options, seed, background_share, counts)
print("\n".join(refit_checks) or "refit skipped (background_refit=False)")
glue("refit_q", heatmap_q, display=False)
glue("refit_bagnet_train_s", next((r["train_s"] for r in refit_rows if r["method"] == "bagnet"), float("nan")),
     display=False)
glue("refit_object_pct", float(100 * patches.object_positions(refit_grid, background_share).mean()), display=False)
glue("refit_findings", results.Plain("Measured: " + "; ".join(refit_checks) + "." if refit_checks else
                                     "Not run in this profile (`background_refit` is off)."), display=False)
background_result["refit"] = {"q": heatmap_q, "detector": "centre", "share": background_share,
                              "rows": refit_rows, "checks": refit_checks}
refit_table = pd.DataFrame(refit_rows or [{"method": "(not run)"}]).set_index("method")
pd.DataFrame({name: refit_table.apply(interval, axis=1, key=key, scale=100, fmt=fmt) for name, key, fmt in (
    *((f"fit {f}, vote {a} (%)", f"image_acc_fit_{f}_agg_{a}", "{:.1f}") for f, a in background.REFIT_CASES),
    ("refit (points)", "image_acc_refit", "{:+.1f}"), ("total (points)", "image_acc_total", "{:+.1f}"))}
             ) if refit_rows else refit_table

# %% [markdown]
# ## What the profile cuts
#
# BagNet's width, depth and epochs, the training images, tile2vec's steps and the patch
# sizes are parameters (see the parameters cell). The BagNets' one-cycle peak learning rate
# ({glue:text}`bagnet_lr`) is a parameter too; this chapter does not show a validation
# search for it, so it is not a tuned result. The `paper` profile trains the BagNet at the
# published depth and width on {glue:text}`paper_px`-px images, its linear read-outs on a
# sample of training windows (its `max_patches`), streamed. CIFAR-10 is a few parameters
# away (`-p dataset cifar10 -p resolution 32 -p qs "[5, 9, 17]" -p memory_q 17`), but does
# not fit this profile's budget beside Imagenette.

# %%
glue("bagnet_lr", bagnet["lr"], display=False)


def _clean(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


keys = ["patch_auc", "patch_auc_low", "patch_auc_high", "patch_acc", "image_acc", "image_acc_low", "image_acc_high",
        "image_auc", "image_auc_low", "image_auc_high", "image_acc_mean_prob", "image_auc_mean_prob", "us_per_window",
        "ms_per_image", "train_s", "patches_per_s", "params", "macs_per_patch"]
headline = {"methods": {}, "memory": memory, "train_memory": train_memory, "ceiling_acc": ceiling_eval["acc"],
            "ceiling_auc": ceiling_eval["auc"], "checks": checks.to_dict("records"),
            "setting": {"dataset": dataset, "resolution": resolution, "stride": stride, "n_train": len(splits.train),
                        "n_test": len(splits.test), "bootstrap_rounds": bootstrap_rounds,
                        "aggregation": "mean logits (BagNet) / mean log-probabilities (linear read-outs)",
                        "train_windows": linear_options.max_patches}}
for _, row in table.iterrows():
    headline["methods"].setdefault(row["method"], {})[str(row["q"])] = {k: _clean(row.get(k)) for k in keys}
headline["background"] = background_result
print(results.write_results("patches", profile, headline, started))
