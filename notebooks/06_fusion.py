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
# # Decision fusion: from patch votes to an image label
#
# The patch chapter decided each image by the mean of its windows' logits (for the linear
# read-outs, of their log-probabilities). The proposal {cite}`zou_proposal`
# warns that a majority vote may fail when background windows dominate, and suggests
# weighting windows, for instance by their distance from the centre. This chapter compares
# simple fusion rules on every patch classifier of the patch chapter, from its cached
# window probabilities (nothing is retrained), by image-level macro AUC. Every choice (a
# classifier's rule, the centre rule's σ) is made on the validation images; the test images
# are scored once, for every rule, and each rule is compared with the mean-logit rule
# (BagNet's own) by a paired bootstrap, with Holm's correction over the rules compared.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
rules: list[str] = ["majority", "mean_prob", "mean_logit", "geometric_mean", "centre", "confidence", "certainty", "top_k",
         "cam_weighted", "cam_masked", "learned"]  # fusion rules compared
reference: str = "mean_logit"  # the rule every other rule is tested against (BagNet's mean logit)
sigma: float = 0.3  # centre weighting: a σ (image sides) always among the validation candidates
sigmas: list[float] = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 3.0]  # the σ candidates, chosen among on validation
top_k: int = 5  # windows kept by the top-k rule
cam_share: float = 0.3  # share of windows kept by the CAM mask
learned_c: float = 1.0  # inverse L2 strength of the learned rule
bootstrap: int = 1000  # bootstrap resamples of the test images
level: float = 0.95  # confidence level of the intervals
alpha: float = 0.05  # family-wise error rate of Holm's correction
size_bins: int = 3  # bins of CAM-estimated object size
seed: int = 0  # seed of the bootstrap

# %%
import time

from simplecnn.core.params import check as check_parameters
from simplecnn.core import plots, present, results  # noqa: F401 (plots: book style)
from simplecnn.core.device import use_device
from simplecnn.studies import fusion, patches
from simplecnn.studies.fusion import figures

started = time.time()
check_parameters("fusion", globals(), fusion.PARAMETERS)  # bad values stop here, before any work
use_device(device)  # every model, inference and timing below runs there
study = patches.load_study(profile)  # the patch study's data, grids, predictions and CNN, from the cache
inputs = fusion.load_inputs(study, top_k, cam_share)
result = fusion.evaluate(inputs.classifiers, inputs.contexts, inputs.labels, rules, sorted({sigma, *sigmas}),
                         reference, learned_c, bootstrap, seed, level, alpha)
names = list(inputs.classifiers)
present.glue_all({"n_classifiers": len(names), "n_rules": len([r for r in rules if r not in fusion.SUPERVISED]) - 1,
                  "bootstrap": bootstrap, "level": f"{level:.0%}", "alpha": alpha,
                  "n_val": len(inputs.labels["val"]), "n_test": len(inputs.labels["test"])})

# %% [markdown]
# ## The rules
#
# Each rule is one small function in `simplecnn.studies.fusion` (registry `RULES`): majority
# vote; mean probability; mean logit (BagNet's own rule, which from probabilities is the
# softmax of the mean log-probability, i.e. the normalised geometric mean); the
# unnormalised geometric mean; centre weighting (Gaussian in the distance of a window's
# centre from the image centre, σ in image sides, chosen per classifier on validation);
# confidence weighting by the top probability and by one minus the normalised entropy; the
# mean of the {glue:text}`top_k` most confident windows; Grad-CAM weighting and masking
# with the full-image CNN's map of its own predicted class (so no label is used). Beside
# them, and kept apart from them, stands a **supervised** rule: a logistic regression over
# window probabilities pooled over the image and its quadrants, fitted on the labelled
# validation images (scored out of fold there). It is not a way of fusing votes but a
# second classifier trained on labels, so it is never chosen as a classifier's fusion rule
# and never counted among them. Mean logit here is the patch chapter's own image decision,
# one implementation for both chapters, so a classifier has the same accuracy in each. The heat map shows
# every rule's test AUC; the {glue:text}`n_val` validation images chose, the
# {glue:text}`n_test` test images score, with {glue:text}`bootstrap` paired bootstrap
# resamples.

# %%
present.glue_all({"top_k": top_k})
fig = figures.auc_heatmap(result, rules, names)

# %% [markdown]
# ## Every rule against mean logit
#
# For each classifier, each of the {glue:text}`n_rules` other rules is compared with
# mean logit on the same test resamples: the difference in AUC, its {glue:text}`level`
# interval, and a two-sided paired bootstrap p-value (twice the share of resamples on the
# smaller side of zero), Holm-adjusted over the fusion rules of that classifier. A rule
# "beats" mean logit on a classifier when its adjusted p is below {glue:text}`alpha` and
# its difference is positive. The intervals resample the test images of these trained
# classifiers. {glue:text}`verdict_text`
#
# Apart: {glue:text}`supervised_text`

# %%
present.glue_all({"verdict_text": fusion.verdict_sentence(result),
                  "supervised_text": fusion.supervised_sentence(result, len(inputs.labels["val"]))})
print(fusion.verdict_sentence(result))
result.verdicts()

# %%
result.verdicts(supervised=True)

# %% [markdown]
# ## The rule chosen on validation, on test
#
# Per classifier, the rule with the highest validation AUC (mean logit kept on a tie), and
# its test AUC against mean logit's. The choice follows validation even where test would
# have preferred another rule (the heat map shows all of them). The validation choice beats
# mean logit on test on {glue:text}`n_better` of {glue:text}`n_classifiers` classifiers
# after Holm, loses on {glue:text}`n_worse`, and is mean logit itself on
# {glue:text}`n_reference`.

# %%
chosen = result.chosen
present.glue_all({"n_better": int((chosen.resolved & (chosen.delta > 0)).sum()),
                  "n_worse": int((chosen.resolved & (chosen.delta < 0)).sum()),
                  "n_reference": int((chosen.rule == reference).sum())})
print("\n".join(fusion.check_lines(result)))
chosen[["rule", "sigma", "val_auc", "image_auc", "reference_auc", "delta", "delta_low", "delta_high", "p_value",
        "p_holm", "resolved"]].style.format(precision=3)

# %% [markdown]
# ## ROC curves of the chosen classifier
#
# For the classifier whose chosen rule scores highest on validation
# ({glue:text}`top_classifier`), the micro-averaged test ROC curves of its chosen rule, of
# mean logit and of majority vote.

# %%
top_name = fusion.top_classifier(result)
present.glue_all({"top_classifier": top_name})
fig = figures.roc(result, top_name, [chosen.loc[top_name, "rule"], reference, "majority"])

# %% [markdown]
# ## Where fusion fails: object size
#
# Test images are binned by the share of their pixels at or above half of the CNN's
# Grad-CAM maximum (a rough object size), and each rule's AUC is averaged over all patch
# classifiers per bin. If the proposal is right, the rules that down-weight background
# (centre, CAM) gain most over mean logit on small objects. Measured, as their mean gain in
# AUC with its {glue:text}`level` paired bootstrap interval over test images (these trained
# models), and the smallest bin's gain minus the largest's tested on the same resamples:
# {glue:text}`size_text`

# %%
by_size, gains, size_effect = fusion.by_object_size(result, inputs.object_size, size_bins)
present.glue_all({"size_text": fusion.size_sentence(gains, size_effect)})
print(f"background rules − {reference}: {fusion.size_sentence(gains, size_effect)}")
fig = figures.by_size(by_size)
gains

# %% [markdown]
# ## The centre-weighting σ
#
# Small σ keeps only the central windows; large σ tends to the mean probability. Each
# classifier's σ is the one with the highest validation AUC (solid); the test AUC (dashed)
# is drawn beside it only to show how far the validation choice carries. The median chosen
# σ is {glue:text}`sigma_median` image sides.

# %%
present.glue_all({"sigma_median": float(chosen["sigma"].median())})
fig = figures.sigma_sweep(result.sweep)

# %%
doc = result.to_json(dataset=study.params["dataset"], resolution=study.params["resolution"],
                     n_val=len(inputs.labels["val"]))
doc["object_size"] = {"gain": fusion.records(gains), "auc": fusion.records(by_size), "effect": size_effect}
print(results.write_results("fusion", profile, doc, started, fusion.headline(doc)))
