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
# # Grad-CAM: where does the full CNN look, and do background patches mislead?
#
# The proposal {cite}`zou_proposal` uses Grad-CAM {cite}`selvaraju2017gradcam` to see how
# background patches affect patch classifiers. This chapter computes Grad-CAM (with
# captum) for the full-image CNN of the patch chapter, checks that the maps deserve trust
# (deletion and insertion curves against a random order; the model-randomisation test of
# Adebayo et al. {cite}`adebayo2018sanity`), compares them with BagNet's patch evidence,
# and splits every patch classifier's windows into object and background by the map.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu or paper
stages: list[int] = [-1, -2]  # residual stages Grad-CAM is taken at (-1: the last)
overlay_images: int = 4  # correct and as many wrong test predictions in the overlay figure
curve_images: int = 300  # test images of the deletion/insertion curves and the sanity check
steps: int = 16  # pixel fractions of the deletion and insertion curves
baseline: str = "blur"  # what removed pixels become: blur or zero
object_share: float = 0.3  # share of each image's windows, ranked by Grad-CAM, called object
agreement_q: int = 17  # the BagNet whose patch evidence is compared with Grad-CAM
seed: int = 0  # seed of the random orders and of the randomised model

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from myst_nb import glue

from simplecnn.studies import gradcam, patches
from simplecnn.core import metrics, plots, results

started = time.time()
study = patches.load_study(profile)  # the patch study's data, grids, predictions and CNN, from the cache
if agreement_q not in study.qs:
    raise ValueError(f"agreement_q={agreement_q} is not one of the patch study's q {study.qs}")
splits = study.splits
model = study.cnn()
test = splits.test
pred = model.logits(test, "test").argmax(1)
cams = {s: gradcam.predicted_class_cam(model, test.images, "test", s) for s in stages}
glue("test_acc", float((pred == test.labels).float().mean() * 100), display=False)
glue("resolution", study.params["resolution"], display=False)

# %% [markdown]
# ## Where the CNN looks
#
# Grad-CAM of the predicted class, at the last residual stage and one stage earlier,
# upsampled to the {glue:text}`resolution`-px image; the model is the patch chapter's
# full-image CNN ({glue:text}`test_acc:.1f` % on test). Rows: correct predictions first,
# then wrong ones (true → predicted).

# %%
correct = (pred == test.labels).nonzero().flatten()[:overlay_images]
wrong = (pred != test.labels).nonzero().flatten()[:overlay_images]
pick = torch.cat([correct, wrong])
row_labels = [test.classes[test.labels[i]] if pred[i] == test.labels[i]
              else f"{test.classes[test.labels[i]]} → {test.classes[pred[i]]}" for i in pick]
norm = {s: c[pick] / c[pick].flatten(1).max(1).values.clamp_min(1e-12)[:, None, None] for s, c in cams.items()}
fig = plots.overlay_grid(test.images[pick], {f"stage {s}": m for s, m in norm.items()}, row_labels, cmap="jet",
                         alpha=0.5, vmax=1.0)

# %% [markdown]
# ## Are the maps faithful? Deletion and insertion
#
# Pixels are removed from the image (replaced by a blurred copy) in decreasing Grad-CAM
# order, and the probability of the predicted class is read after each step (deletion);
# or added to the blurred copy in that order (insertion). A faithful map makes deletion
# fall fast (small area) and insertion rise fast (large area). A random order is the
# baseline. On {glue:text}`curve_images` test images: deletion area
# {glue:text}`deletion_auc:.3f` (random {glue:text}`deletion_auc_random:.3f`), insertion
# area {glue:text}`insertion_auc:.3f` (random {glue:text}`insertion_auc_random:.3f`).

# %%
sample = torch.arange(min(curve_images, len(test)))
g = torch.Generator().manual_seed(seed)
random_maps = torch.rand(len(sample), *test.images.shape[-2:], generator=g)
curves = {"Grad-CAM": gradcam.deletion_insertion(model.model, test.images[sample], pred[sample],
                                                 cams[-1][sample], steps, baseline),
          "random": gradcam.deletion_insertion(model.model, test.images[sample], pred[sample], random_maps, steps,
                                               baseline)}
aucs = {f"{kind}_auc{'' if name == 'Grad-CAM' else '_random'}": gradcam.curve_auc(c[kind], c["fractions"])
        for name, c in curves.items() for kind in ("deletion", "insertion")}
for k, v in aucs.items():
    glue(k, v, display=False)
glue("curve_images", len(sample), display=False)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, kind in zip(axes, ("deletion", "insertion")):
    for name, c in curves.items():
        ax.plot(c["fractions"], c[kind].mean(0), label=f"{name} (area {gradcam.curve_auc(c[kind], c['fractions']):.3f})")
    ax.set_title(kind), ax.set_xlabel("fraction of pixels " + ("removed" if kind == "deletion" else "inserted"))
    ax.legend(fontsize=8)
axes[0].set_ylabel("probability of the predicted class");

# %% [markdown]
# ## Sanity check: maps of a randomised model
#
# If Grad-CAM shows what the model learnt, the maps of the same architecture with random
# weights must differ. Per image, the Spearman correlation between the trained and the
# randomised model's maps (same images, same target classes) has median
# {glue:text}`randomisation_rank_corr:.2f`; a value near 1 would mean the map shows the
# image's edges, not the model.

# %%
random_model = gradcam.randomised_copy(model.model, seed)
random_cam = gradcam.grad_cam(random_model, gradcam.stage_layer(random_model, -1), test.images[sample], pred[sample])
rand_corr = gradcam.rank_correlations(cams[-1][sample], random_cam)
glue("randomisation_rank_corr", float(np.nanmedian(rand_corr)), display=False)
fig, ax = plt.subplots(figsize=(6, 3))
sns.histplot(rand_corr[~np.isnan(rand_corr)], bins=30, ax=ax)
ax.set_xlabel("Spearman ρ, trained vs randomised model's map (per image)");

# %% [markdown]
# ## Does BagNet's evidence sit where Grad-CAM looks?
#
# Per test image, the Spearman correlation between the Grad-CAM of the true class averaged
# over each window of the patch grid and the BagNet-{glue:text}`agreement_q` probability of
# the true class in that window. Median: {glue:text}`bagnet_agreement:.2f`.

# %%
grid = study.grid(agreement_q)
preds = {(m, q): study.predictions(m, q) for m in study.methods for q in study.qs}
true_cam = gradcam.grad_cam(model.model, gradcam.stage_layer(model.model, -1), test.images, test.labels)
bag_evidence = patches.true_class(preds["bagnet", agreement_q]["test"], test.labels)
agreement = gradcam.rank_correlations(patches.window_means(true_cam, grid), bag_evidence)
glue("agreement_q", agreement_q, display=False)
glue("bagnet_agreement", float(np.nanmedian(agreement)), display=False)
fig, ax = plt.subplots(figsize=(6, 3))
sns.histplot(agreement[~np.isnan(agreement)], bins=30, ax=ax)
ax.set_xlabel(f"Spearman ρ, Grad-CAM vs BagNet-{agreement_q} evidence (per image)");

# %% [markdown]
# ## Object and background windows
#
# In each image the {glue:text}`object_share_pct:.0f` % of windows with the highest
# true-class Grad-CAM are called object, the rest background. Each patch classifier's
# windows are scored separately; the last column is the share of windows whose top class
# is wrong: the votes that could mislead a fusion rule.

# %%
rows = []
for (m, q), out in preds.items():
    g_q = study.grid(q)
    weight = patches.window_means(true_cam, g_q).flatten(1)
    k = max(1, int(round(object_share * weight.shape[1])))
    is_object = torch.zeros_like(weight, dtype=torch.bool)
    is_object.scatter_(1, weight.topk(k, 1).indices, True)
    probs = out["test"].flatten(1, 2)
    labels = test.labels[:, None].expand(-1, probs.shape[1])
    for region, mask in (("object", is_object), ("background", ~is_object)):
        p, y = probs[mask], labels[mask]
        rows.append({"method": m, "q": q, "region": region, "patch_acc": metrics.accuracy(p, y),
                     "patch_auc": metrics.macro_auc(p, y), "wrong_votes": 1 - metrics.accuracy(p, y)})
regions = pd.DataFrame(rows)
glue("object_share_pct", object_share * 100, display=False)
fig = sns.catplot(data=regions, x="q", y="patch_acc", hue="region", col="method", kind="bar", height=3, aspect=0.9)
fig.set_axis_labels("q", "patch accuracy")
regions.pivot_table(index=["method", "q"], columns="region", values=["patch_acc", "patch_auc"]).round(3)

# %% [markdown]
# ## For the fusion chapter
#
# The mean predicted-class Grad-CAM of every window of every grid, for validation and test
# images, goes to the cache (with each image's CAM-estimated object size), so the fusion
# rules can weight windows by it without a label.

# %%
for split in ("val", "test"):
    for q in study.qs:
        gradcam.patch_weights(model, getattr(splits, split).images, split, study.grid(q))
headline = {**aucs, "randomisation_rank_corr": float(np.nanmedian(rand_corr)),
            "bagnet_agreement": float(np.nanmedian(agreement)),
            "regions": {m: {str(q): {r["region"]: {"patch_acc": r["patch_acc"], "patch_auc": r["patch_auc"],
                                                   "wrong_votes": r["wrong_votes"]}
                                     for _, r in regions[(regions.method == m) & (regions.q == q)].iterrows()}
                            for q in study.qs} for m in study.methods}}
print(results.write_results("gradcam", profile, headline, started))
