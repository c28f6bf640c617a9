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
# The patch chapter averaged the windows' probabilities. The proposal {cite}`zou_proposal`
# warns that a majority vote may fail when background windows dominate, and suggests
# weighting windows, for instance by their distance from the centre. This chapter compares
# simple fusion rules on every patch classifier of the patch chapter, from its cached
# window probabilities (nothing is retrained), by image-level AUC with bootstrap
# confidence intervals.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu or paper
rules: list[str] = ["majority", "mean_prob", "mean_logit", "geometric_mean", "centre", "confidence", "certainty", "top_k",
         "cam_weighted", "cam_masked", "learned"]  # fusion rules compared
sigma: float = 0.3  # centre weighting: Gaussian σ in units of the image side
sigmas: list[float] = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 3.0]  # the σ sweep
top_k: int = 5  # windows kept by the top-k rule
cam_share: float = 0.3  # share of windows kept by the CAM mask
learned_c: float = 1.0  # inverse L2 strength of the learned rule
bootstrap: int = 1000  # bootstrap resamples of the test images
size_bins: int = 3  # bins of CAM-estimated object size
seed: int = 0  # seed of the bootstrap

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from myst_nb import glue

from simplecnn.core import metrics, plots, results  # noqa: F401 (plots: book style)
from simplecnn.studies import fusion, gradcam, patches

started = time.time()
if "majority" not in rules:
    raise ValueError(f"rules {rules} must include 'majority', the reference every rule is tested against")
study = patches.load_study(profile)  # the patch study's data, grids, predictions and CNN, from the cache
splits = study.splits
cnn = study.cnn()
labels = {s: getattr(splits, s).labels for s in ("val", "test")}
classifiers, contexts = {}, {}
for q in study.qs:
    grid = study.grid(q)
    cam = {s: gradcam.patch_weights(cnn, getattr(splits, s).images, s, grid) for s in ("val", "test")}
    for m in study.methods:
        out = study.predictions(m, q)
        name = f"{m}@{q}"
        classifiers[name] = {s: out[s] for s in ("val", "test")}
        contexts[name] = {s: fusion.Context(grid, cam[s]["weights"], sigma, top_k, cam_share) for s in ("val", "test")}
        contexts[name]["test"].learned = fusion.fit_learned(out["val"], labels["val"], learned_c, seed)
object_size = cam["test"]["object_size"]
y = labels["test"].numpy()
counts = metrics.bootstrap_counts(len(y), bootstrap, seed)
glue("n_classifiers", len(classifiers), display=False)
glue("bootstrap", bootstrap, display=False)

# %% [markdown]
# ## The rules
#
# Each rule is one small function in `simplecnn.studies.fusion` (registry `RULES`): majority
# vote; mean probability; mean logit (BagNet's own rule, which from probabilities is the
# softmax of the mean log-probability, i.e. the normalised geometric mean); the
# unnormalised geometric mean; centre weighting (Gaussian in the distance of a window's
# centre from the image centre, σ = {glue:text}`sigma` image sides); confidence weighting
# by the top probability and by one minus the normalised entropy; the mean of the
# {glue:text}`top_k` most confident windows; Grad-CAM weighting and masking with the
# full-image CNN's map of its own predicted class (so no label is used); and a learned
# rule, a logistic regression over window probabilities pooled over the image and its
# quadrants, fitted on the validation images only. Every number below is on test, with
# {glue:text}`bootstrap` paired bootstrap resamples.

# %%
glue("sigma", sigma, display=False)
glue("top_k", top_k, display=False)
scores, rows, boots = {}, [], {}
for name, probs in classifiers.items():
    for rule in rules:
        s = fusion.fuse(rule, probs["test"], contexts[name]["test"]).numpy()
        scores[name, rule] = s
        boots[name, rule] = metrics.weighted_macro_auc(s, y, counts)
        lo, hi = metrics.confidence_interval(boots[name, rule])
        rows.append({"classifier": name, "rule": rule, "image_auc": metrics.macro_auc(s, y), "ci_low": lo,
                     "ci_high": hi, "image_acc": metrics.accuracy(s, y)})
table = pd.DataFrame(rows)
auc = table.pivot(index="classifier", columns="rule", values="image_auc")[rules].loc[list(classifiers)]
fig, ax = plt.subplots(figsize=(12, 0.45 * len(auc) + 1.5))
sns.heatmap(auc, annot=True, fmt=".3f", cmap="viridis", ax=ax, cbar_kws={"label": "image macro AUC (test)"})
ax.set_xlabel(""), ax.set_ylabel("");

# %% [markdown]
# ## Best rule against majority vote
#
# Per patch classifier, the rule with the highest test AUC against majority vote: the
# difference and a two-sided paired bootstrap p-value (the share of resamples in which the
# difference changes sign, doubled). Choosing the best rule on the same test images
# favours it; the p-value says how stable the gap is, not that the choice generalises.
# The best rule beats majority vote on {glue:text}`n_better` of {glue:text}`n_classifiers`
# classifiers at p < 0.05.

# %%
best = []
for name in classifiers:
    sub = table[table.classifier == name].set_index("rule")
    rule = sub["image_auc"].idxmax()
    best.append({"classifier": name, "best_rule": rule, "best_auc": sub.loc[rule, "image_auc"],
                 "majority_auc": sub.loc["majority", "image_auc"],
                 "p_value": metrics.paired_p_value(boots[name, rule], boots[name, "majority"])})
best = pd.DataFrame(best).set_index("classifier")
glue("n_better", int(((best.best_auc > best.majority_auc) & (best.p_value < 0.05)).sum()), display=False)
best.style.format({"best_auc": "{:.3f}", "majority_auc": "{:.3f}", "p_value": "{:.3g}"})

# %% [markdown]
# ## ROC curves of the best rules
#
# For the classifier whose best rule scores highest ({glue:text}`top_classifier`), the
# micro-averaged ROC curves of its three best rules and of majority vote.

# %%
top_name = best["best_auc"].idxmax()
glue("top_classifier", results.Plain(top_name), display=False)
ranked = table[table.classifier == top_name].sort_values("image_auc", ascending=False)["rule"].tolist()
fig, ax = plt.subplots(figsize=(5, 5))
for rule in dict.fromkeys(ranked[:3] + ["majority"]):
    fpr, tpr = metrics.micro_roc(scores[top_name, rule], y)
    ax.plot(fpr, tpr, label=f"{rule} ({metrics.macro_auc(scores[top_name, rule], y):.3f})")
ax.plot([0, 1], [0, 1], "k:", lw=1)
ax.set_xlabel("false positive rate"), ax.set_ylabel("true positive rate"), ax.legend(fontsize=8);

# %% [markdown]
# ## Where fusion fails: object size
#
# Test images are binned by the share of their pixels at or above half of the CNN's
# Grad-CAM maximum (a rough object size), and each rule's AUC is averaged over all patch
# classifiers per bin. If the proposal is right, the rules that down-weight background
# (centre, CAM) gain most over majority vote on small objects. Measured: their mean gain in
# AUC over majority vote is {glue:text}`gain_small:+.3f` in the smallest-object bin and
# {glue:text}`gain_large:+.3f` in the largest.

# %%
bins = pd.qcut(object_size.numpy(), size_bins, labels=False, duplicates="drop")
by_size = []
for (name, rule), s in scores.items():
    for b in np.unique(bins):
        keep = bins == b
        by_size.append({"rule": rule, "size bin (small → large)": b, "classifier": name,
                        "image_auc": metrics.weighted_macro_auc(s, y, keep.astype(float))[0]})
by_size = pd.DataFrame(by_size)
per_bin = by_size.groupby(["size bin (small → large)", "rule"])["image_auc"].mean().unstack()
background_rules = [r for r in ("centre", "cam_weighted", "cam_masked") if r in per_bin]
gain = per_bin[background_rules].mean(1) - per_bin["majority"]
glue("gain_small", float(gain.iloc[0]), display=False)
glue("gain_large", float(gain.iloc[-1]), display=False)
fig, ax = plt.subplots(figsize=(8, 4.5))
sns.pointplot(data=by_size, x="size bin (small → large)", y="image_auc", hue="rule", errorbar=None, ax=ax)
ax.legend(fontsize=7, ncol=2)
ax.set_ylabel("image AUC, mean over classifiers");

# %% [markdown]
# ## The centre-weighting σ
#
# Small σ keeps only the central windows; large σ tends to the mean probability.

# %%
sweep = []
for name, probs in classifiers.items():
    for sg in sigmas:
        ctx = fusion.Context(contexts[name]["test"].grid, sigma=sg)
        sweep.append({"classifier": name, "sigma": sg,
                      "image_auc": metrics.macro_auc(fusion.fuse("centre", probs["test"], ctx), y)})
sweep = pd.DataFrame(sweep)
fig, ax = plt.subplots(figsize=(8, 4.5))
sns.lineplot(data=sweep, x="sigma", y="image_auc", hue="classifier", marker="o", ax=ax)
ax.set_xscale("log"), ax.set_xlabel("σ (image sides, log)"), ax.legend(fontsize=7, ncol=2);

# %%
headline = {"classifiers": {name: {rule: {"image_auc": float(r.image_auc), "image_auc_ci": [float(r.ci_low),
                                                                                            float(r.ci_high)],
                                          "image_acc": float(r.image_acc)}
                                   for r in table[table.classifier == name].itertuples()} for name in classifiers},
            "best": {name: {"rule": r.best_rule, "image_auc": float(r.best_auc),
                            "majority_auc": float(r.majority_auc), "p_value": float(r.p_value)}
                     for name, r in best.iterrows()}}
print(results.write_results("fusion", profile, headline, started))
