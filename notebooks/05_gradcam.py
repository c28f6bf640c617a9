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
centre_area: float = 0.25  # the central square whose share of a map's mass measures how central the evidence sits

# %%
import time

import pandas as pd

from simplecnn.core.params import check as check_parameters
from simplecnn.core import metrics, plots, present, results  # noqa: F401 (plots: book style)
from simplecnn.core.device import use_device
from simplecnn.studies import gradcam, patches
from simplecnn.studies.gradcam import agreement, figures, seeds as seed_claims
from simplecnn.studies.patches import background

started = time.time()
check_parameters("gradcam", globals(), gradcam.PARAMETERS)  # bad values stop here, before any work
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
present.glue_all({
    "test_acc": float((model.logits(test, "test").argmax(1) == test.labels).float().mean() * 100),
    "sample_acc": float((pred == labels).float().mean() * 100), "resolution": size, "n_images": len(sample),
    "layer": layer, "cells": f"{cells[0]}×{cells[1]}", "cells_check": checks[0]["text"],
    "method_list": ", ".join(gradcam.LABELS[m] for m in methods), "ig_steps": ig_steps,
    "occlusion_window": occlusion_window, "centre_sigma": centre_sigma})

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
fig = figures.overlays(images, labels, pred, maps, methods, test.classes, correct=True)

# %%
fig = figures.overlays(images, labels, pred, maps, methods, test.classes, correct=False)

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
present.glue_all({"steps": steps, "road_fraction_list": ", ".join(f"{f:.0%}" for f in road_fractions),
                  "level_pct": level * 100})
fig = figures.curves(faith)
figures.score_frame(score_rows, list(maps))

# %% [markdown]
# Each method minus each reference (a positive difference on deletion and ROAD MoRF means
# the method is worse; ✓: the interval lies wholly on the good side, ✗: wholly on the bad
# side, blank: not resolved):

# %%
figures.difference_frame(comparisons)

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
# These intervals resample the images of **one trained CNN**: they are claims about that
# model's maps. {glue:text}`seed_checks_text`

# %%
per_seed = [seed_claims.seed_differences(study.cnn_of(s).model, images, layer, steps, road_fractions, road_noise,
                                         centre_sigma, seed) for s in study.seeds] if len(study.seeds) > 1 else []
seed_checks = seed_claims.across_seeds(per_seed, study.seeds, level)
present.glue_all({**{f"check_{c['metric']}_{c['reference']}": c["text"] for c in checks[1:]},
                  **{f"gradcam_{r['metric']}_best": f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
                     for r in comparisons if r["method"] == "gradcam" and r["reference"] == gradcam.BEST},
                  "seed_checks_text": " ".join(c["text"] + "." for c in seed_checks) if seed_checks else
                  "The patch study trained one CNN in this profile, so these verdicts are about that trained model; "
                  "the gpu and paper profiles train three and test each check across them."})
print("\n".join(f"[{c['status']}] {c['text']}" for c in checks + seed_checks))

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
present.glue_all({"sanity_images": min(sanity_images, len(sample)), "check_sanity": checks[-1]["text"]})
print(f"[{checks[-1]['status']}] {checks[-1]['text']}")
fig = figures.sanity(sanity)

# %% [markdown]
# ## Does BagNet's evidence sit where the maps look?
#
# Per image, Spearman ρ between each map's mean over every window of the
# BagNet-{glue:text}`agreement_q` grid and BagNet's probability of the CNN's predicted class
# in that window: agreement at window resolution, no threshold. The reference maps say what a
# map gets for nothing (how central the maps' mass sits is measured in the next section).
# {glue:text}`check_bagnet`

# %%
evidence = patches.true_class(study.predictions("bagnet", agreement_q)["test"][sample], pred)
agree = {name: {"bagnet_agreement": gradcam.bagnet_agreement(m, evidence, study.grid(agreement_q))}
         for name, m in maps.items()}
agreement_rows = gradcam.score_rows(agree, counts, level)
agreement_comparisons = gradcam.compare(agree, methods, list(gradcam.REFERENCES), {"bagnet_agreement": True},
                                        counts, level)
best = next(r for r in agreement_comparisons if r["method"] == "gradcam" and r["reference"] == gradcam.BEST)
present.glue_all({"agreement_q": agreement_q, "check_bagnet": (
    f"For this trained model, Grad-CAM agrees with BagNet "
    f"{'more' if best['beats'] else 'less' if best['loses'] else 'no more or less'} than the better reference map does "
    f"(difference {best['difference']:+.3f} [{best['low']:+.3f}, {best['high']:+.3f}], over test images)"
    + (": resolved." if best["beats"] or best["loses"] else ": not resolved."))})
pd.DataFrame([{"map": gradcam.LABELS[r["map"]], "Spearman ρ with BagNet": present.interval(r["value"], r["low"],
                                                                                           r["high"])}
              for r in agreement_rows]).set_index("map")

# %% [markdown]
# ## Is the evidence in the middle?
#
# The centre prior's strength says something about the data: how much of what matters sits
# in the middle. Measured rather than assumed: the share of each test image's mass that lies
# in the central square covering {glue:text}`centre_area_pct:.0f` % of its area (as much
# for mass spread evenly), for the model-free spectral-residual saliency map (where the
# image itself is busy) and for the CNN's Grad-CAM (where the model looks):
# {glue:text}`centre_share_text`.

# %%
centre = {"spectral-residual saliency": gradcam.centre_share(background.saliency_maps(images), centre_area),
          "Grad-CAM": gradcam.centre_share(maps["gradcam"], centre_area)}
centre_share = {k: {**gradcam.interval(v.numpy(), counts, level), "area": centre_area} for k, v in centre.items()}
present.glue_all({"centre_area_pct": 100 * centre_area, "centre_share_text": "; ".join(
    f"{k}: {100 * c['value']:.0f} % [{100 * c['low']:.0f}, {100 * c['high']:.0f}]" for k, c in centre_share.items())})
pd.DataFrame(centre_share).T

# %% [markdown]
# ## Object and background windows
#
# In each test image the {glue:text}`object_share_pct:.0f` % of windows with the highest
# true-class Grad-CAM (at the chapter's layer) are called object, the rest background. Each
# patch classifier's windows are scored separately; the last column is the share of windows
# whose top class is wrong: the votes that could mislead a fusion rule.

# %%
true_cam = gradcam.attribute("gradcam", model.model, test.images, test.labels, layer=layer)
regions = agreement.region_table(study, true_cam, object_share)
present.glue_all({"object_share_pct": object_share * 100})
fig = figures.regions(regions)
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
           "agreement_q": agreement_q, "target": "predicted class (plain forward)",
           "sample_acc": float((pred == labels).float().mean()), "seeds": study.seeds}
doc = gradcam.results_doc(setting, score_rows, comparisons, {name: f["curves"] for name, f in faith.items()}, sanity,
                          agreement_rows, agreement_comparisons, checks, regions.to_dict("records"),
                          centre_share=centre_share, checks_across_seeds=seed_checks)
print(results.write_results("gradcam", profile, doc, started, gradcam.headline(doc)))
