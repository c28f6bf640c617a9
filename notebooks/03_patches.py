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
seed: int = 0  # seed of every model (the tables, figures and background sections use it)
extra_seeds: list[int] = []  # more training seeds for the chapter's claims (gpu and paper: [1, 2]); [] : one trained model each
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
ceiling_floor: float = 80.0  # the CNN's test accuracy must reach it (%), or the ceiling is not worth approaching
bagnet_gap: float = 15.0  # the largest BagNet must come within this many points of the CNN (trained to strength)
like: "Optional[str]" = None  # recipe of a data set without one of its own: "imagenette" or "cifar10" (None: chosen from the data)
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

import pandas as pd
import torch

from simplecnn.core.params import check as check_parameters
from simplecnn.core import data, metrics, plots, present, recipes, results
from simplecnn.core.complexity import macs
from simplecnn.core.device import use_device
from simplecnn.core.models import count_params
from simplecnn.studies import gradcam, patches
from simplecnn.studies.patches import background, compare, figures, sift as sift_features, tiled_training, tiling

started = time.time()
check_parameters("patches", globals(), patches.PARAMETERS)  # bad values stop here, before any work
use_device(device)  # every model, inference and timing below runs there
splits = data.load_dataset(dataset, resolution, val_fraction=val_fraction, split_seed=split_seed)
splits = splits.reduced(train=train_size, val=val_size, test=test_size, seed=split_seed)
options = {"bagnet": bagnet, "sift": sift, "tile2vec": tile2vec, "pixels": pixels}
linear_options = patches.LinearOptions(**linear)
grids = {q: patches.Grid(q, stride, resolution) for q in qs}
seeds = [seed, *extra_seeds]
present.glue_all({
    "n_train": len(splits.train), "n_test": len(splits.test), "resolution": resolution, "stride": stride,
    "largest_share": 100 * max(qs) / resolution, "paper_top5": "/".join(f"{v:g}" for v in compare.BAGNET_TOP5.values()),
    "paper_qs": "/".join(map(str, compare.BAGNET_TOP5)), "paper_resnet50": compare.RESNET50_TOP5,
    "paper_px": compare.PAPER_RESOLUTION, "paper_q": max(compare.BAGNET_TOP5),
    "paper_share": 100 * max(compare.BAGNET_TOP5) / compare.PAPER_RESOLUTION,
    "sift_span": sift_features.DESCRIPTOR_SPAN, "sift_dim": 128, "max_patches": linear_options.max_patches,
    "batch_images": linear_options.batch_images, "rounds": bootstrap_rounds, "ci_level": 95, "n_seeds": len(seeds)})
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
table, preds, boots = compare.score_families(splits, grids, families, options, linear_options, seed, counts)

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
ceiling = recipes.train_recipe(ceiling_recipe, splits, like=like, epochs=ceiling_epochs, cpu_bf16=ceiling_cpu_bf16,
                               seed=seed)
ceiling_score, boots["full_cnn", resolution] = compare.score_images(
    torch.softmax(ceiling.logits(splits.test, "test").double(), 1), splits.test.labels, counts)
table = pd.concat([table, pd.DataFrame([{"method": "full_cnn", "q": resolution, **ceiling_score,
                                         "train_s": ceiling.train_s, "params": count_params(ceiling.model),
                                         "macs_per_patch": macs(ceiling.model, resolution)}])], ignore_index=True)
floors = compare.floor_checks(table, ceiling_floor, bagnet_gap)
print("\n".join(f"check: {f['text']}" for f in floors.values()))
present.glue_all({"ceiling_epochs": ceiling_epochs, "ceiling_acc": ceiling_score["image_acc"] * 100,
                  "floor_text": "; ".join(f["text"] for f in floors.values())})
compare.shown_table(table)

# %% [markdown]
# ## What the comparisons say, and about what
#
# The chapter's claims compare the BagNets with each other, each BagNet with the linear
# probe on its own features (same features, other objective) and with the best other family
# at its q, in image accuracy (points) and patch AUC. Each family here is **one trained
# model**: the paired bootstrap intervals below resample the test images and say how sure
# we are about these trained models, not about the methods, which would also vary with the
# training seed. {glue:text}`seed_claims_text`

# %%
pairs = compare.claim_pairs(methods, families, qs, table)
checks = compare.check_rows(pairs, boots, table)
seed_checks = compare.across_seed_rows(
    compare.per_seed_differences(splits, grids, pairs, options, linear_options, seeds, preds), seeds)
present.glue_all({"seed_claims_text": (
    f"This profile trains every family with {len(seeds)} seeds: the second table tests each claim across them "
    f"(Student-t over the per-seed differences), a claim about the methods." if seed_checks else
    "This profile trains one seed per family, so every verdict here is about its trained models; the gpu and "
    "paper profiles train three seeds and test each claim across them.")})
print("\n".join(r["text"] for r in seed_checks or checks))
present.checks_frame(checks)

# %%
present.checks_frame(seed_checks) if seed_checks else None

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
present.glue_all({"heatmap_q": heatmap_q, "best_method_mid": mid["patch_auc"].idxmax(),
                  "best_auc_mid": float(mid["patch_auc"].max()),
                  "best_image_acc_mid": float(mid.loc[mid["patch_auc"].idxmax(), "image_acc"] * 100)})
fig = figures.size_figure(table, families, qs)

# %% [markdown]
# ## ROC curves
#
# Micro-averaged one-vs-rest ROC curves of the windows at q = {glue:text}`heatmap_q`
# (every class's decisions pooled), one per method.

# %%
fig = figures.roc_figure(preds, splits.test.labels, families, heatmap_q, grids[heatmap_q].count, mid["patch_auc"])

# %% [markdown]
# ## What a window costs
#
# Inference speed is measured on the test windows, features and classifier included (SIFT
# runs one OpenCV call per window; the BagNet evaluates all windows of an image in one
# pass, sharing computation). Parameters count everything learnt; MACs per window are those
# of one window evaluated on its own (SIFT's are not multiply-accumulates and are left out).

# %%
fig = figures.cost_figure(patch_table)

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
bag = patches.train_bagnet(splits, memory_q, patches.BagNetOptions(**bagnet), seed, None).model
memory, bag_kwargs = tiling.memory_test(bag, splits.test.images[:1], memory_size, memory_q, memory_tile, bagnet)
present.glue_all({"memory_size": memory_size, "memory_q": memory_q, "memory_tile_patches": memory_tile ** 2,
                  "memory_max_diff": memory["max_abs_diff"], "memory_whole_mib": memory["whole_peak_bytes"] / 2**20,
                  "memory_tiled_mib": memory["tiled_peak_bytes"] / 2**20})
fig = figures.inference_memory_figure(memory)

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
train_memory_table, train_memory = tiled_training.memory_study(
    bag, splits.test.images[:1], splits.test.labels[:1], bag_kwargs, splits.num_classes, train_memory_sizes,
    memory_tile, resolution, seed)
top = train_memory_table[train_memory_table.image_px == max(train_memory_sizes)].set_index("mode")
present.glue_all({"grad_rel_diff": train_memory["gradient_gap"]["max_rel_diff"], "grad_px": train_memory["gradient_px"],
                  "train_mem_top_px": max(train_memory_sizes), "train_mem_whole_mib": float(top.loc["whole image", "peak_mib"]),
                  "train_mem_tiled_mib": float(top["peak_mib"].drop("whole image").iloc[0]),
                  "train_mem_slowdown": float(top["seconds"].drop("whole image").iloc[0] / top.loc["whole image", "seconds"])})
fig = figures.train_memory_figure(train_memory_table, memory_q)

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
background_result = background.analysis(
    {(m, q): preds[m, q]["test"] for m in families for q in qs}, splits.test.labels, grids, splits.test.images,
    background_detectors, background_share, counts,
    gradcam.window_weights(ceiling, splits.test.images, "test", background_cam_stage),
    background_cam_stage)
print("\n".join(background_result["checks"]))
holds = background_result["hypothesis_holds"]
cam_cells = gradcam.layer_cells(ceiling.model, f"stages.{background_cam_stage}", resolution)
present.glue_all({"bg_share_pct": 100 * background_share, "bg_cam_stage": background_cam_stage,
                  "bg_cam_cells": "×".join(map(str, cam_cells)), "bg_seconds": background_result["seconds"],
                  "bg_rows": next(iter(background_result["summaries"].values()))["rows"],
                  "bg_findings": background.findings_text(background_result["summaries"]),
                  "bg_verdict": f"holds for {', '.join(holds)}" if holds else "does not hold for any detector here"})
background.rows_frame(background_result["rows"])

# %%
fig = figures.background_figure(pd.DataFrame(background_result["rows"]))

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
refit_methods = list(families) if background_refit else []
refit_rows, refit_checks = background.refit_study(
    {m: preds[m, heatmap_q]["test"] for m in refit_methods}, splits, grids[heatmap_q],
    {m: options.get(m, bagnet) for m in refit_methods}, linear_options, seed, background_share, counts)
print("\n".join(refit_checks) or "refit skipped (background_refit=False)")
present.glue_all({
    "refit_q": heatmap_q,
    "refit_bagnet_train_s": next((r["train_s"] for r in refit_rows if r["method"] == "bagnet"), float("nan")),
    "refit_object_pct": float(100 * patches.object_positions(grids[heatmap_q], background_share).mean()),
    "refit_findings": ("Measured, for these trained models (intervals over test images): " + "; ".join(refit_checks)
                       + "." if refit_checks else "Not run in this profile (`background_refit` is off).")})
background_result["refit"] = {"q": heatmap_q, "detector": "centre", "share": background_share,
                              "rows": refit_rows, "checks": refit_checks}
background.refit_frame(refit_rows)

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
present.glue_all({"bagnet_lr": bagnet["lr"]})
setting = {"dataset": dataset, "resolution": resolution, "stride": stride, "n_train": len(splits.train),
           "n_test": len(splits.test), "bootstrap_rounds": bootstrap_rounds, "seeds": seeds,
           "aggregation": "mean logits (BagNet) / mean log-probabilities (linear read-outs)",
           "train_windows": linear_options.max_patches}
out = compare.results_dict(table, checks, seed_checks, floors, setting, memory=memory, train_memory=train_memory,
                           background=background_result)
print(results.write_results("patches", profile, out, started, patches.headline(out)))
