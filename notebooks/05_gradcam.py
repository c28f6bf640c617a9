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
# background patches affect patch classifiers. This chapter computes Grad-CAM (with captum)
# for the full-image CNN of the patch chapter beside three other attribution methods captum
# ships, and asks whether any of the maps deserves trust: does it find the pixels the model
# uses better than a smooth random map or a map that just looks at the centre (deletion,
# insertion and ROAD's remove-and-debias), does it change when the model's weights are
# randomised (Adebayo et al. {cite}`adebayo2018sanity`), and does it agree with BagNet's
# window evidence? Then it splits every patch classifier's windows into object and
# background by the map.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
layer: str = "stages.1"  # the ResNet layer Grad-CAM reads: stages.1 is layer2, 8×8 cells at 64 px
min_cells: int = 8  # the least cells per side a map needs to rank pixels (checked)
methods: list[str] = ["gradcam", "guided_gradcam", "integrated_gradients", "occlusion"]  # captum methods scored
curve_images: int = 120  # test images (stratified by class) of the faithfulness metrics and BagNet agreement (~15 s each map)
steps: int = 16  # pixel fractions of the deletion and insertion curves (fewer than the layer's cells)
road_fractions: list[float] = [0.2, 0.5, 0.8]  # shares of pixels ROAD imputes, most and least relevant first
road_noise: float = 0.01  # std of the noise added to imputed pixels (pixel values in [0, 1])
ig_steps: int = 16  # integration steps of integrated gradients
occlusion_window: int = 8  # side (and stride) of occlusion's squares in px: the layer's cell at 64 px
centre_sigma: float = 0.25  # width of the centre prior, in image sides
sanity_images: int = 48  # test images of the cascading randomisation
sanity_methods: list[str] = ["gradcam", "guided_gradcam"]  # methods randomised (one map per step and image)
sanity_max_corr: float = 0.5  # a map "changes" when ρ with the trained model's map stays below this at the end
bootstrap_rounds: int = 1000  # paired bootstrap resamples of the images
level: float = 0.95  # confidence level of every interval
object_share: float = 0.3  # share of each image's windows, ranked by Grad-CAM, called object
agreement_q: int = 17  # the BagNet whose patch evidence is compared with the maps
seed: int = 0  # seed of the sample, the random maps, the tie-breaking, ROAD's noise and the randomised model

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from myst_nb import glue

from simplecnn.core import metrics, plots, results
from simplecnn.core.device import use_device
from simplecnn.studies import gradcam, patches

started = time.time()
use_device(device)  # every model, inference and timing below runs there
study = patches.load_study(profile)  # the patch study's data, grids, predictions and CNN, from the cache
if agreement_q not in study.qs:
    raise ValueError(f"agreement_q={agreement_q} is not one of the patch study's q {study.qs}")
unknown = sorted(set(methods + sanity_methods) - set(gradcam.METHODS))
if unknown or "gradcam" not in methods:
    raise ValueError(f"methods must include 'gradcam' and come from {gradcam.METHODS}; got unknown {unknown}")
splits, size = study.splits, study.params["resolution"]
model = study.cnn()
test = splits.test
cells = gradcam.layer_cells(model.model, layer, size)
sample = gradcam.stratified_sample(test.labels, max(1, curve_images // len(test.classes)), seed)
images, labels = test.images[sample], test.labels[sample]
pred = gradcam.predicted_classes(model.model, images)  # the plain forward the maps explain
options = {"layer": layer, "ig_steps": ig_steps, "occlusion_window": occlusion_window}
maps = {m: gradcam.attribute(m, model.model, images, pred, **options) for m in methods}
maps |= {"smooth_random": gradcam.smooth_random_maps(len(sample), size, cells, seed),
         "centre": gradcam.centre_map(len(sample), size, centre_sigma)}
counts = metrics.bootstrap_counts(len(sample), bootstrap_rounds, seed)
checks = [gradcam.cells_check(cells, min_cells)]
glue("test_acc", float((model.logits(test, "test").argmax(1) == test.labels).float().mean() * 100), display=False)
glue("sample_acc", float((pred == labels).float().mean() * 100), display=False)
glue("resolution", size, display=False)
glue("n_images", len(sample), display=False)
glue("layer", results.Plain(f"`{layer}`"), display=False)
glue("cells", results.Plain(f"{cells[0]}×{cells[1]}"), display=False)
glue("cells_check", results.Plain(checks[0]["text"]), display=False)
glue("method_list", results.Plain(", ".join(gradcam.LABELS[m] for m in methods)), display=False)
glue("ig_steps", ig_steps, display=False)
glue("occlusion_window", occlusion_window, display=False)
glue("centre_sigma", centre_sigma, display=False)

# %% [markdown]
# ## The maps
#
# The model is the patch chapter's full-image CNN ({glue:text}`test_acc:.1f` % on the whole
# test split, {glue:text}`sample_acc:.1f` % on the {glue:text}`n_images` test images drawn
# here, the same number from each class). Every map explains the logit of the class the model
# predicts, with captum: {glue:text}`method_list`. Post-processing, the same everywhere:
# Grad-CAM is taken at layer {glue:text}`layer` ({glue:text}`cells` cells at
# {glue:text}`resolution` px) with captum's ReLU on (`relu_attributions=True`) and
# upsampled bilinearly; Guided Grad-CAM multiplies guided backprop by that map; integrated
# gradients ({glue:text}`ig_steps` steps) and occlusion ({glue:text}`occlusion_window`-px
# squares) start from the blurred copy the insertion curve starts from (which helps them on
# that curve; ROAD does not share it); pixel maps are summed over colour channels and kept
# signed, so counter-evidence ranks last. Overlays show each map's positive part over its
# maximum. Check: {glue:text}`cells_check`
#
# Two reference maps every method must beat: a **smooth random** map (uniform noise on the
# layer's cell grid, upsampled as Grad-CAM is: exactly as smooth) and a **centre prior** (a
# Gaussian of width {glue:text}`centre_sigma` image sides). One image per class, the model's
# correct predictions first, then its mistakes (true → predicted):

# %%
shown = {gradcam.LABELS[m]: gradcam.display_maps(maps[m]) for m in methods}
for correct in (True, False):
    rows = gradcam.overlay_picks(labels, pred, correct)
    names = [test.classes[labels[i]] + ("" if correct else f" → {test.classes[pred[i]]}") for i in rows]
    fig = plots.overlay_grid(images[rows], {k: v[rows] for k, v in shown.items()}, names, cmap="jet", alpha=0.45,
                             vmax=1.0)
    fig.suptitle("correct predictions" if correct else "wrong predictions", y=1.0)

# %% [markdown]
# ## Are the maps faithful? Deletion, insertion and ROAD
#
# **Deletion** {cite}`petsiuk2018rise` replaces pixels by a blurred copy in decreasing map order and reads the
# model's probability of its predicted class after each of {glue:text}`steps` steps; a
# faithful map makes it fall fast (small area). **Insertion** adds pixels to the blurred copy
# in that order; a faithful map makes it rise fast (large area). Both can reward a map for
# the blur pattern itself, so **ROAD** (Rong et al.) replaces pixels by noisy linear
# imputation from their neighbours instead, removing the most relevant (MoRF, lower is
# better) or least relevant (LeRF, higher is better) share at
# {glue:text}`road_fraction_list` of the pixels; its summary is half of LeRF − MoRF.
# Ties (the centre prior's rings) are broken at random. Each method is compared with each
# reference and with the better of the two in each bootstrap resample, paired over the same
# images ({glue:text}`level_pct:.0f` % intervals).

# %%
faith = {name: gradcam.faithfulness(model.model, images, pred, m, steps, road_fractions, road_noise, seed)
         for name, m in maps.items()}
scores = {name: f["scores"] for name, f in faith.items()}
score_rows = gradcam.score_rows(scores, counts, level)
comparisons = gradcam.compare(scores, methods, list(gradcam.REFERENCES), gradcam.METRICS, counts, level)
checks += gradcam.checks(comparisons, "gradcam")
glue("steps", steps, display=False)
glue("road_fraction_list", results.Plain(", ".join(f"{f:.0%}" for f in road_fractions)), display=False)
glue("level_pct", level * 100, display=False)
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for name, f in faith.items():
    c, style = f["curves"], ("--" if name in gradcam.REFERENCES else "-")
    for ax, (x, y) in zip(axes, [("fractions", "deletion"), ("fractions", "insertion"),
                                 ("road_fractions", "road_morf"), ("road_fractions", "road_lerf")]):
        ax.plot(c[x], c[y], style, marker="." if x == "road_fractions" else None, label=gradcam.LABELS[name])
for ax, title in zip(axes, ["deletion (blur)", "insertion (blur)", "ROAD, most relevant removed",
                            "ROAD, least relevant removed"]):
    ax.set_title(title), ax.set_xlabel("fraction of pixels")
axes[0].set_ylabel("p(predicted class)")
axes[-1].legend(fontsize=8)
table = pd.DataFrame([{"map": gradcam.LABELS[r["map"]], "metric": gradcam.METRIC_LABELS[r["metric"]],
                       "score": f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"} for r in score_rows])
table.pivot(index="map", columns="metric", values="score").loc[[gradcam.LABELS[m] for m in maps]]

# %% [markdown]
# Each method minus each reference (a positive difference on deletion and ROAD MoRF means
# the method is worse; ✓: the interval lies wholly on the good side, ✗: wholly on the bad
# side, blank: not resolved):

# %%
diff = pd.DataFrame([{"method": gradcam.LABELS[r["method"]], "reference": gradcam.LABELS[r["reference"]],
                      "metric": gradcam.METRIC_LABELS[r["metric"]],
                      "difference": f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
                                    + (" ✓" if r["beats"] else " ✗" if r["loses"] else "")} for r in comparisons])
diff.pivot(index=["method", "reference"], columns="metric", values="difference")

# %% [markdown]
# The chapter's checks on Grad-CAM:
#
# - {glue:text}`check_insertion_smooth_random`
# - {glue:text}`check_insertion_centre`
# - {glue:text}`check_deletion_smooth_random`
# - {glue:text}`check_deletion_centre`
#
# Against the better reference per resample, Grad-CAM's insertion difference is
# {glue:text}`gradcam_insertion_best` and its deletion difference
# {glue:text}`gradcam_deletion_best`; ROAD's summary difference {glue:text}`gradcam_road_best`.

# %%
for c in checks[1:]:
    glue(f"check_{c['metric']}_{c['reference']}", results.Plain(c["text"]), display=False)
for r in comparisons:
    if r["method"] == "gradcam" and r["reference"] == gradcam.BEST:
        glue(f"gradcam_{r['metric']}_best", results.Plain(f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"),
             display=False)
for c in checks:
    print(f"[{c['status']}] {c['text']}")

# %% [markdown]
# ## Sanity check: cascading randomisation
#
# If a map shows what the model learnt, it must change as the weights are re-drawn, block by
# block from the classifier head down to the stem (Adebayo et al.). Per step, on
# {glue:text}`sanity_images` of the images: Spearman ρ between the trained and the
# randomised model's maps (same images, same target classes), of the signed and the absolute
# maps, and SSIM of the absolute maps rescaled from their minimum to their maximum. A map whose
# scores stay near their top shows the image, not the model. {glue:text}`check_sanity`

# %%
sanity = gradcam.sanity_rows(model.model, images[:sanity_images], pred[:sanity_images], sanity_methods,
                             metrics.bootstrap_counts(min(sanity_images, len(sample)), bootstrap_rounds, seed), seed,
                             level, options)
checks.append(gradcam.sanity_check(sanity, "gradcam", sanity_max_corr) if "gradcam" in sanity_methods else
              {"claim": "Grad-CAM sanity", "metric": "randomisation", "reference": "", "status": "not run",
               "text": "Grad-CAM was not randomised (sanity_methods)", "difference": None, "low": None, "high": None})
glue("sanity_images", min(sanity_images, len(sample)), display=False)
glue("check_sanity", results.Plain(checks[-1]["text"]), display=False)
print(f"[{checks[-1]['status']}] {checks[-1]['text']}")
san = pd.DataFrame(sanity)
blocks = list(dict.fromkeys(san.block))
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), sharey=True)
for ax, metric in zip(axes, ("spearman", "spearman_abs", "ssim")):
    for m, part in san[san.metric == metric].groupby("method", sort=False):
        ax.plot(part.step, part.value, marker="o", label=gradcam.LABELS[m])
        ax.fill_between(part.step, part.low, part.high, alpha=0.2)
    ax.set_xticks(range(len(blocks)), blocks, rotation=60, fontsize=7)
    ax.set_title({"spearman": "Spearman ρ", "spearman_abs": "Spearman ρ of |map|", "ssim": "SSIM of |map|"}[metric])
    ax.axhline(0, color="grey", lw=0.5)
axes[0].set_ylabel("trained vs randomised (mean, CI)")
axes[0].legend(fontsize=8);

# %% [markdown]
# ## Does BagNet's evidence sit where the maps look?
#
# Per image, Spearman ρ between each map's mean over every window of the
# BagNet-{glue:text}`agreement_q` grid and BagNet's probability of the CNN's predicted class
# in that window: agreement at window resolution, no threshold. The reference maps say what a
# map gets for nothing (BagNet's evidence, too, tends to sit in the middle).
# {glue:text}`check_bagnet`

# %%
grid = study.grid(agreement_q)
evidence = patches.true_class(study.predictions("bagnet", agreement_q)["test"][sample], pred)
agree = {name: {"bagnet_agreement": gradcam.bagnet_agreement(m, evidence, grid)} for name, m in maps.items()}
agreement_rows = gradcam.score_rows(agree, counts, level)
agreement_comparisons = gradcam.compare(agree, methods, list(gradcam.REFERENCES), {"bagnet_agreement": True},
                                        counts, level)
best = next(r for r in agreement_comparisons if r["method"] == "gradcam" and r["reference"] == gradcam.BEST)
glue("agreement_q", agreement_q, display=False)
glue("check_bagnet", results.Plain(
    f"Grad-CAM agrees with BagNet {'more' if best['beats'] else 'less' if best['loses'] else 'no more or less'} than "
    f"the better reference map does (difference {best['difference']:+.3f} [{best['low']:+.3f}, {best['high']:+.3f}])"
    + (": resolved." if best["beats"] else "." if best["loses"] else ": not resolved.")), display=False)
pd.DataFrame([{"map": gradcam.LABELS[r["map"]], "Spearman ρ with BagNet": f"{r['value']:.3f} [{r['low']:.3f}, "
               f"{r['high']:.3f}]"} for r in agreement_rows]).set_index("map")

# %% [markdown]
# ## Object and background windows
#
# In each test image the {glue:text}`object_share_pct:.0f` % of windows with the highest
# true-class Grad-CAM (at the chapter's layer) are called object, the rest background. Each
# patch classifier's windows are scored separately; the last column is the share of windows
# whose top class is wrong: the votes that could mislead a fusion rule.

# %%
true_cam = gradcam.attribute("gradcam", model.model, test.images, test.labels, layer=layer)
regions = pd.DataFrame([{"method": m, "q": q, **row}
                        for m in study.methods for q in study.qs
                        for row in gradcam.region_rows(study.predictions(m, q)["test"], test.labels,
                                                       patches.window_means(true_cam, study.grid(q)), object_share)])
glue("object_share_pct", object_share * 100, display=False)
fig = sns.catplot(data=regions, x="q", y="patch_acc", hue="region", col="method", kind="bar", height=3, aspect=0.9)
fig.set_axis_labels("q", "patch accuracy")
regions.pivot_table(index=["method", "q"], columns="region", values=["patch_acc", "patch_auc", "wrong_votes"]).round(3)

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
setting = {"dataset": study.params["dataset"], "resolution": size, "n_images": len(sample), "layer": layer,
           "cells": list(cells), "level": level, "rounds": bootstrap_rounds, "steps": steps,
           "road_fractions": road_fractions, "sanity_images": min(sanity_images, len(sample)),
           "agreement_q": agreement_q, "target": "predicted class (plain forward)", "sample_acc": float((pred == labels)
                                                                                                  .float().mean())}
curves = {name: f["curves"] for name, f in faith.items()}
doc = gradcam.results_doc(setting, score_rows, comparisons, curves, sanity, agreement_rows, agreement_comparisons,
                          checks, regions.to_dict("records"))
print(results.write_results("gradcam", profile, doc, started))
