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
# # Resolution cascades and their threshold maps
#
# The report {cite}`cascade_report` chains models at growing input resolutions: an image
# is first classified by a small model on a small copy of it, and moves on to the next
# model only while its top softmax probability stays under that stage's threshold δ_p; the
# last model takes the rest. With ResNet18@32, ResNet34@96 and ResNet50@224 on Imagenette,
# it drew maps of accuracy and cost over the thresholds, picked thresholds on validation,
# checked them on test, and claimed {glue:text}`report_mid_cut:.1f`× fewer "FLOPs" at
# ResNet34's accuracy and {glue:text}`report_top_cut:.1f`× at its top model's.
#
# Two questions are kept apart here. First, what the report's claim means in real
# multiply-accumulates (MACs): that needs its cost model and no training, and is answered
# in every profile. Second, what a cascade trained here achieves: the stages below are
# this profile's, each compared with the cascade at the stage's own (small) resolution; the
# report's cuts were measured against other models in another unit, so they stand beside
# these, never divided into them. Its exits must mean
# what they say, so the stages are trained without label smoothing (which makes a model
# under-confident by construction) and their confidences are also shown after temperature
# scaling; beside the report's threshold rule stands a learned exit policy; and the goals
# this scale sets itself are printed as checks, met or not.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
dataset: str = "imagenette"  # data set (a name or an ImageFolder path)
stages: list[dict] = [
    {"model": "resnet18", "resolution": 32, "width": 0.25, "epochs": 12, "batch_size": 128, "lr": 0.4},
    {"model": "resnet34", "resolution": 64, "width": 0.25, "epochs": 8, "batch_size": 128, "lr": 0.4},
    {"model": "resnet50", "resolution": 128, "width": 0.25, "epochs": 7, "batch_size": 128, "lr": 0.4},
]  # the cascade's models, cheapest first: registered model, input px, width and training budget
recipe: str = "fast"  # training regimen of every stage (the core's recipes)
label_smoothing: float = 0.0  # of every stage's training targets (the fast recipe's 0.2 makes exits under-confident)
cpu_bf16: bool = True  # bf16 autocast when training on the CPU (1.4–1.9× faster on this machine)
train_size: "Optional[int]" = None  # training images (None: all)
seed: int = 0  # seed of every stage's training
extra_seeds: list[int] = []  # ladders trained with more seeds for the goals across seeds (gpu and paper: [1, 2])
like: "Optional[str]" = None  # recipe of a data set without one of its own: "imagenette" or "cifar10" (None: chosen from the data)
grid_size: int = 40  # thresholds per axis of the maps (the report: 40)
zoom_size: int = 50  # thresholds per axis of the zoom near the top-right corner
zoom_low: float = 0.7  # the zoom's lowest threshold
scores: list[str] = ["max_prob", "margin", "entropy"]  # exit scores compared (max_prob is the report's)
learned_gate: bool = True  # also the learned exit policy (a logistic gate per stage, trained on validation)
gate_folds: int = 5  # cross-fitting folds of the gate's validation scores
ece_bins: int = 15  # equal-width confidence bins of the expected calibration error
stage_subsets: "Optional[list[list[int]]]" = None  # stage subsets compared (None: every subset of two or more)
bootstrap_rounds: int = 1000  # resamples of the test images for every interval
stability_rounds: int = 200  # resamples of the validation images, thresholds re-selected on each
bootstrap_seed: int = 0  # seed of the resamples
level: float = 0.95  # coverage of every interval
throughput_images: int = 500  # test images timed in batches for wall-clock throughput
latency_images: int = 200  # test images timed one at a time for the latency per image
timing_repeats: int = 3  # timed passes over the batched images (the fastest counts: a shared machine is noisy)
min_ladder_ratio: float = 30.0  # goal: the top stage costs at least this many times the first in MACs
goal_mid_cut: float = 3.5  # goal: MAC cut at the middle stage's accuracy
goal_top_cut: float = 2.5  # goal: MAC cut at the top stage's accuracy
goal_speedup: float = 2.0  # goal: wall-clock speed-up over the top stage alone, batched and one image at a time
val_fraction: float = 0.1  # share of CIFAR-10's training set held out for validation
split_seed: int = 0  # seed of the data splits

# %%
import time

import pandas as pd
import torch

from simplecnn.core.params import check as check_parameters
from simplecnn.core import data, metrics, plots, present, results  # noqa: F401 (plots: book style)
from simplecnn.core.device import use_device
from simplecnn.studies import cascade
from simplecnn.studies.cascade import figures, goals as goal_checks, seeds as seed_claims, selection

started = time.time()
check_parameters("cascade", globals(), cascade.PARAMETERS)  # bad values stop here, before any work
use_device(device)  # every model, inference and timing below runs there
report = cascade.report_cost_model(cascade.report_real_macs(), cascade.report_params())
present.glue_all(cascade.report_values(report))
print("\n".join(cascade.report_lines(report)))
cascade.report_frame(report)

# %% [markdown]
# ## The report's claim in real MACs
#
# The report's cost of a stage, Table 2.1's "FLOPS_Res", is the model's **parameter count**
# (ImageNet head) times the squared ratio of its resolution to the full size: that rule
# {glue:text}`report_cost_model_ok` the printed column (the checks above), and the
# "FLOPS_224" column is the parameter count of ResNet18/34/50. Its expected cost follows
# equation 2.2: an image pays every stage it reaches. Its ratios divide parameter counts:
# §2.2.5's {glue:text}`report_mid_cut:.1f`× is {glue:text}`report_mid_figure:.2f` (ResNet34's
# parameters) over {glue:text}`report_mid_cost:.2f`, and §2.2.6's
# {glue:text}`report_top_cut:.1f`× is {glue:text}`report_top_figure:.2f` over
# {glue:text}`report_top_cost:.2f`; the text names ResNet152 as the reference there, but
# those are ResNet50's figures, the cascade's own top model.
#
# A quoted cost does not fix how many images reach each stage, only a range (the table:
# every share of images consistent with the quoted cost, to its rounding): at the §2.2.5
# point between {glue:text}`real_mid_r50_low:.2f` and {glue:text}`real_mid_r50_high:.2f` of
# the images reach ResNet50@224, at the §2.2.6 point between {glue:text}`real_top_r50_low:.2f`
# and {glue:text}`real_top_r50_high:.2f`. Over that range
# the same cascade, counted in real ptflops MACs (full width, Imagenette's classes), costs
# {glue:text}`real_mid_resnet34_low:.2f`–{glue:text}`real_mid_resnet34_high:.2f`× less than
# ResNet34@224 at the §2.2.5 point, and {glue:text}`real_top_resnet50_low:.2f`–{glue:text}`real_top_resnet50_high:.2f`×
# less than ResNet50@224 at the §2.2.6 point. The parameter-count proxy happens to rank these
# ResNets' MACs about as real counts do, so the report's conclusion survives the change of unit;
# its accuracies are the report's, on validation, and are not re-measured by this arithmetic.

# %%
specs = [cascade.Stage(**s) for s in stages]
if len(specs) < 2:
    raise ValueError(f"a cascade needs at least two stages, got {len(specs)}")
splits = {s.resolution: data.load_dataset(dataset, s.resolution, val_fraction=val_fraction, split_seed=split_seed)
          .reduced(train=train_size, seed=split_seed) for s in specs}
first = splits[specs[0].resolution]
for s in specs[1:]:  # the same images in the same order at every resolution
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(splits[s.resolution], split).labels, getattr(first, split).labels)
print("check: every stage sees the same images, in the same order, in every split")
labels = {"val": first.val.labels, "test": first.test.labels}
trained = [cascade.train_stage(s, splits[s.resolution], recipe, seed, label_smoothing=label_smoothing,
                               cpu_bf16=cpu_bf16, like=like) for s in specs]
logits = {split: [t.logits(getattr(splits[s.resolution], split), split) for s, t in zip(specs, trained)]
          for split in ("val", "test")}
stage_table = pd.DataFrame([{
    "stage": s.name, "resolution": s.resolution, "width": s.width, "params": cascade.stage_params(s, first.num_classes),
    "macs": cascade.stage_macs(s, first.num_classes), "val_acc": metrics.accuracy(lv, labels["val"]),
    "test_acc": metrics.accuracy(lt, labels["test"]), "train_s": t.train_s}
    for s, t, lv, lt in zip(specs, trained, logits["val"], logits["test"])]).set_index("stage")
stage_macs = stage_table["macs"].astype(float).tolist()
full_224 = report["references_real_macs"]
ladder = {"ratio": stage_macs[-1] / stage_macs[0], "goal": min_ladder_ratio,
          "report_ratio": full_224["resnet50@224"] / report["stages"]["resnet18@32"]["real_macs"]}
ladder["met"] = bool(ladder["ratio"] >= min_ladder_ratio)
present.glue_all({"n_stages": len(specs), "n_val": len(labels["val"]), "n_test": len(labels["test"]),
                  "label_smoothing": label_smoothing, "ladder_ratio": ladder["ratio"], "ladder_goal": min_ladder_ratio,
                  "ladder_report_ratio": ladder["report_ratio"], "ladder_status": "met" if ladder["met"] else "NOT met"})
print(f"check: the top stage {specs[-1].name} costs {ladder['ratio']:.1f}× the first stage's MACs (goal ≥ "
      f"{min_ladder_ratio:g}×; the report's ResNet50@224 over ResNet18@32: {ladder['report_ratio']:.0f}×) -> "
      f"{'met' if ladder['met'] else 'NOT met'}")
stage_table.style.format({"params": "{:,.0f}", "macs": "{:,.0f}", "val_acc": "{:.1%}", "test_acc": "{:.1%}",
                          "train_s": "{:.0f}"})

# %% [markdown]
# ## The stages trained here
#
# Each of the {glue:text}`n_stages` stages is trained from scratch through the core with the
# profile's recipe (label smoothing {glue:text}`label_smoothing:.2f`) and cached; the table
# gives its parameters, its real MACs at its own input size (ptflops) and its accuracy on the
# {glue:text}`n_val:,` validation and {glue:text}`n_test:,` test images. In this profile the
# stages may be narrower and at lower resolutions than the report's, so their ratios answer
# a different question from the report's: how much a cascade saves over its own last stage,
# not over ResNet50@224. A cascade can save only as much as its ladder is steep: the top
# stage here costs {glue:text}`ladder_ratio:.1f`× the first in MACs (goal at least
# {glue:text}`ladder_goal:.0f`×: {glue:text}`ladder_status`; the report's ResNet50@224 costs
# {glue:text}`ladder_report_ratio:.0f`× its ResNet18@32).
#
# ## Do the exits mean what they say?
#
# A threshold on the top probability assumes that a probability of, say, nine in ten is
# right nine times in ten. The expected calibration error (ECE, {glue:text}`ece_bins`
# equal-width bins {cite}`guo2017calibration`) measures the gap: the image-weighted mean
# distance between accuracy and mean confidence per bin. Each stage's temperature is fitted
# on validation (so its validation ECE after scaling is in-sample) and scored on test with
# bootstrap intervals. Fitted temperatures range from {glue:text}`t_min:.2f` to
# {glue:text}`t_max:.2f` (one: calibrated as trained; below one: under-confident; above: over-confident); the
# test ECE of the top stage goes from {glue:text}`top_ece_raw:.3f` to
# {glue:text}`top_ece_cal:.3f` after scaling. Both the raw and the scaled scores go through
# the selection below.
#
# Read the intervals with care. ECE is biased upward: in a resample every bin's accuracy is
# noisier, and the gaps are taken as absolute values, so the resampled ECE sits mostly
# above the full-sample one. The intervals are percentiles of the resampled ECE and show
# its spread; they can lie wholly above the estimate, as they do for
# {glue:text}`ece_intervals_above` of the {glue:text}`ece_intervals` test intervals here.

# %%
temperatures = [cascade.fit_temperature(lg, labels["val"]) for lg in logits["val"]]
counts = metrics.bootstrap_counts(len(labels["test"]), bootstrap_rounds, bootstrap_seed)
calibration = cascade.calibration_table(logits, labels, [s.name for s in specs], temperatures, counts, ece_bins, level)
ece_intervals = [row[f"test_ece_{k}"] for row in calibration for k in ("raw", "calibrated")]
present.glue_all({"ece_bins": ece_bins, "t_min": min(temperatures), "t_max": max(temperatures),
                  "top_ece_raw": calibration[-1]["test_ece_raw"]["value"],
                  "top_ece_cal": calibration[-1]["test_ece_calibrated"]["value"], "ece_intervals": len(ece_intervals),
                  "ece_intervals_above": sum(e["value"] < e["low"] for e in ece_intervals)})
print("\n".join(cascade.calibration_lines(calibration)))
cascade.calibration_frame(calibration)

# %% [markdown]
# ## A learned exit policy
#
# The threshold rule looks at one number. A learned gate looks at the stage's whole
# softmax output: its sorted top probabilities, their entropy and the log-ratio of the two
# largest, fed to a logistic regression per stage that predicts "this stage's prediction is
# right". It is trained on **validation**; its own validation scores are cross-fitted
# ({glue:text}`gate_folds` folds: every image scored by a gate that did not see it), so that
# its thresholds, chosen on validation like the others, are not chosen on its training fit;
# test images are scored by the gate fitted on all of validation. Its probability is the exit
# score. How well each score ranks right predictions before wrong ones (ROC AUC; one half
# is chance) is in the table: on the first stage the gate scores
# {glue:text}`gate_auc_0:.3f` on test against {glue:text}`maxprob_auc_0:.3f` for the top
# probability.

# %%
gates, val_gate = cascade.fit_gates(logits["val"], labels["val"], gate_folds, seed)
gate_scores = {"val": val_gate, "test": [g.score(lg) for g, lg in zip(gates, logits["test"])]}
gate_rows = cascade.ranking_table(logits, labels, [s.name for s in specs], gate_scores, scores)
present.glue_all({"gate_folds": gate_folds, "gate_auc_0": gate_rows[0]["test_auc_gate"],
                  "maxprob_auc_0": gate_rows[0]["test_auc_max_prob"]})
pd.DataFrame(gate_rows).set_index("stage").round(3)

# %% [markdown]
# ## Threshold maps
#
# As the report drew them: for every pair (δ₀, δ₁) of the first two stages' thresholds,
# the cascade's validation accuracy and expected MACs per image, on a coarse grid of
# {glue:text}`grid_size` thresholds per axis and a zoom of {glue:text}`zoom_size` from
# {glue:text}`zoom_low:.2f` upwards (in a deeper cascade later thresholds are held at the
# top of the grid). Thresholds are **selected** on the union of both grids, the fine grid of
# {glue:text}`fine_size` thresholds per axis. Stars mark, for each stage's validation
# accuracy as the target, the cheapest combination that reaches it (the report's rule).

# %%
grid, zoom = cascade.threshold_grid(grid_size), cascade.threshold_grid(zoom_size, zoom_low, 1.0)
fine = cascade.fine_grid(grid, zoom)
present.glue_all({"grid_size": grid_size, "zoom_size": zoom_size, "zoom_low": zoom_low, "fine_size": len(fine)})
rules = cascade.variants(scores, len(specs), stage_subsets, gate=learned_gate)
gate_rule = next((r.name for r in rules if r.score == cascade.GATE and r.stages == tuple(range(len(specs)))), None)
report_rule = rules[0].name
references = [cascade.Reference(s.name, lv.argmax(1) == labels["val"], lt.argmax(1) == labels["test"], m)
              for s, lv, lt, m in zip(specs, logits["val"], logits["test"], stage_macs)]
table = cascade.score_variants(logits, labels, stage_macs, fine, rules, references, temperatures, counts,
                               level=level, gate_scores=gate_scores)
val_scores, val_correct = cascade.variant_inputs(logits["val"], labels["val"], rules[0], temperatures)
fig = figures.threshold_maps(val_scores, val_correct, stage_macs, grid, zoom, zoom_low,
                             table[(table["rule"] == report_rule) & table["reached"]].set_index("reference"))

# %% [markdown]
# ## Thresholds chosen on validation, scored once on test
#
# For each stage's validation accuracy as the target, the report's rule (top probability,
# uncalibrated, all stages) is selected on validation and scored once on test. Every
# interval is a {glue:text}`level:.0%` percentile bootstrap over the test images
# ({glue:text}`bootstrap_rounds:,` resamples, the same for cascade and reference, so the
# accuracy difference is paired). A row says **matched** when that difference's interval
# reaches zero, i.e. the test set shows no shortfall beyond its own uncertainty (which is
# not proof of equal accuracy), and **not matched** otherwise. The MAC cut compares the
# reference stage at its own resolution with the cascade's expected MACs on test. These
# intervals resample the test images of **one trained ladder**: they say how sure we are
# about this ladder, not about cascades of these models in general (the goals below are
# judged across training seeds where a profile trains several).
#
# At the last stage's accuracy the cascade spends {glue:text}`top_cut:.2f`×
# ({glue:text}`top_cut_low:.2f`–{glue:text}`top_cut_high:.2f`) fewer MACs than that stage
# on test; its accuracy is {glue:text}`top_status` (cascade minus stage:
# {glue:text}`top_diff:+.1f` points, interval {glue:text}`top_diff_low:+.1f` to
# {glue:text}`top_diff_high:+.1f`). At the middle stage's accuracy the cut is
# {glue:text}`mid_cut:.2f`× ({glue:text}`mid_cut_low:.2f`–{glue:text}`mid_cut_high:.2f`),
# accuracy {glue:text}`mid_status` ({glue:text}`mid_diff:+.1f` points, interval
# {glue:text}`mid_diff_low:+.1f` to {glue:text}`mid_diff_high:+.1f`). The learned
# gate, declared beside the report's rule before the test set was looked at and selected in
# the same way, cuts {glue:text}`gate_top_cut:.2f`× ({glue:text}`gate_top_cut_low:.2f`–{glue:text}`gate_top_cut_high:.2f`)
# at the last stage's accuracy ({glue:text}`gate_top_status`) and {glue:text}`gate_mid_cut:.2f`×
# ({glue:text}`gate_mid_cut_low:.2f`–{glue:text}`gate_mid_cut_high:.2f`) at the middle
# stage's ({glue:text}`gate_mid_status`).

# %%
val_counts = metrics.bootstrap_counts(len(labels["val"]), stability_rounds, bootstrap_seed + 1)
judged = {"report rule": report_rule, **({"learned gate": gate_rule} if gate_rule else {})}  # declared before test
judged_targets = selection.judge_rules(judged, rules, logits, labels, stage_macs, fine, references, temperatures,
                                       gate_scores, table, val_counts, level)
targets = judged_targets["report rule"]
present.glue_all({"level": level, "bootstrap_rounds": bootstrap_rounds,
                  **selection.target_values(targets, specs[-1].name, "top"),
                  **selection.target_values(targets, specs[-2].name, "mid"),
                  **selection.target_values(judged_targets.get("learned gate", {}), specs[-1].name, "gate_top"),
                  **selection.target_values(judged_targets.get("learned gate", {}), specs[-2].name, "gate_mid")})
print("\n".join(selection.target_lines(judged_targets)))
selection.targets_frame(judged_targets)

# %% [markdown]
# ## How stable is the chosen point?
#
# The threshold choice depends on which validation images happened to be drawn. Redrawing
# the validation set {glue:text}`stability_rounds:,` times (bootstrap), re-selecting the
# thresholds on each draw for the reference's accuracy on that draw, and scoring each
# choice on the whole test set, the MAC cut at the last stage's accuracy ranges over
# {glue:text}`top_stab_low:.2f`–{glue:text}`top_stab_high:.2f`× (the central
# {glue:text}`level:.0%` of draws; the table's "validation resamples" row). This spread
# comes on top of the test-set interval above: a single run's cut is one draw from it.
#
# ## Exit rules compared
#
# Every exit rule is put through the same path: each exit score (top probability, margin
# between the two top probabilities, one minus the normalised entropy), with and without
# temperature scaling fitted on validation {cite}`guo2017calibration`, and the learned gate,
# over every subset of two or more stages (so two-stage and three-stage cascades side by
# side); selected on validation, scored once on test. The figure shows each
# rule's test MAC cut with its interval; filled markers are matched in accuracy, and a rule
# without a marker reached no threshold with the target's accuracy on validation. Each
# rule's expected MACs are compared with the report rule's on the same resampled test
# images, with Holm's correction over the {glue:text}`n_rules` other rules
# ({glue:text}`n_cheaper` of them are significantly cheaper at the last stage's accuracy,
# adjusted p below {glue:text}`alpha:.2f`). No rule is picked by these test numbers: they
# describe, they do not select.

# %%
alpha = 1 - level
reached = selection.cut_frame(table)
top_rows = reached[reached["reference"] == specs[-1].name]
base_cut = targets.get(specs[-1].name, {}).get("mac_cut", {}).get("value", float("inf"))
p_holm = top_rows["macs_p_holm"] if "macs_p_holm" in top_rows else pd.Series(1.0, index=top_rows.index)
present.glue_all({"stability_rounds": stability_rounds, "n_rules": len(rules) - 1, "alpha": alpha,
                  "n_cheaper": int(((p_holm < alpha) & (top_rows["cut"] > base_cut)).sum())})
fig = figures.rule_cuts(reached, [r.name for r in references], [r.name for r in rules])

# %%
selection.variants_frame(table).style.format({"val_acc": "{:.1%}", "macs_p_holm": "{:.3g}"}, na_rep="")

# %% [markdown]
# ## Pareto frontiers
#
# Every threshold combination of the fine grid is a point (accuracy, expected MACs) on
# validation; the frontier keeps those no other combination beats on both, for each exit
# score over all stages, with and without temperature, and for the learned gate (thick
# line; its validation scores cross-fitted). The stars are the report rule's chosen points
# on test with their intervals, the diamonds the gate's; the single stages are shown on test.

# %%
fig = figures.pareto(rules, logits, labels, temperatures, gate_scores, stage_macs, fine, judged_targets, stage_table)

# %% [markdown]
# ## Wall-clock time on this machine
#
# MACs are not seconds. Each judged cascade is timed as it would run, at the thresholds
# chosen for the last stage's accuracy: in batches (stage 0 on all of
# {glue:text}`n_timed:,` test images, the images that do not leave gathered and sent on as
# batches), and one image at a time over {glue:text}`n_latency:,` test images, where each
# image's latency is the time from its pixels to its class. Each single model is timed on
# the same images. In batches the report rule's cascade classifies
# {glue:text}`cascade_ips:,.0f` images/s against {glue:text}`top_ips:,.0f` for the last
# stage alone; one image at a time its median latency is {glue:text}`cascade_p50_ms:.2f` ms
# (p95: {glue:text}`cascade_p95_ms:.2f` ms, the images that go through every stage) against
# {glue:text}`top_p50_ms:.2f` ms (p95: {glue:text}`top_p95_ms:.2f` ms). The speed-up one
# image at a time is the ratio of mean latencies (what a stream of single images pays).

# %%
n, n_lat = min(throughput_images, len(labels["test"])), min(latency_images, len(labels["test"]))
images = [splits[s.resolution].test.images[:max(n, n_lat)] for s in specs]
models = [t.model.eval() for t in trained]
deployed = {}  # judged rule -> (its models, images, thresholds, exit scorers) at the last stage's target
for label, name in judged.items():
    rule = next(r for r in rules if r.name == name)
    if judged_targets[label].get(specs[-1].name, {}).get("reached"):
        deployed[label] = ([models[p] for p in rule.stages], [images[p] for p in rule.stages],
                           judged_targets[label][specs[-1].name]["thresholds"],
                           cascade.variant_scorers(rule, temperatures, gates))
top = specs[-1].name
ips, lat, speedup = goal_checks.time_cascades(models, images, [s.name for s in specs], deployed, n, n_lat,
                                              timing_repeats, top)
present.glue_all({"n_timed": n, "n_latency": n_lat, "cascade_ips": ips.get("report rule", float("nan")),
                  "top_ips": ips[top], **{f"{key}_{q}_ms": 1e3 * lat.get(name, {}).get(q, float("nan"))
                                          for key, name in (("cascade", "report rule"), ("top", top))
                                          for q in ("p50", "p95")}})
timing = pd.DataFrame({"images/s (batches)": ips, **{f"{q} latency (ms)": {k: 1e3 * v[q] for k, v in lat.items()}
                                                    for q in ("p50", "p95", "mean")}})
fig = figures.timing(timing)
timing.round(2)

# %% [markdown]
# ## Goals at this scale
#
# The goals were set before this run, at the scale of this profile: a MAC cut of at least
# {glue:text}`goal_mid_cut:.1f`× at the middle stage's accuracy and
# {glue:text}`goal_top_cut:.1f`× at the top stage's, and a wall-clock speed-up of at least
# {glue:text}`goal_speedup:.1f`× over the top stage alone, in batches and one image at a
# time. Each is judged on the test numbers of the rules declared beforehand (the report's
# rule and the learned gate); a cut only counts where its accuracy is matched, and
# **resolved** says the interval lies wholly on one side of the goal. Nothing was tuned
# to meet them. Where a cut falls short, the checks say why, from the cheapest cascade
# that exits knowing which predictions are right could build from these stages (the
# oracle): if even that misses the goal, the ladder is too flat; if it does not, the exit
# rule is what falls short. For the report's rule: at the middle stage's accuracy
# {glue:text}`goal_mid_status` ({glue:text}`goal_mid_reason`); at the top stage's
# {glue:text}`goal_top_status` ({glue:text}`goal_top_reason`); speed-up in batches
# {glue:text}`goal_speed_batched_status` ({glue:text}`goal_speed_batched_reason`), one image
# at a time {glue:text}`goal_speed_one_status` ({glue:text}`goal_speed_one_reason`).
# {glue:text}`seed_goals_text`

# %%
oracle = goal_checks.oracles([lt.argmax(1) == labels["test"] for lt in logits["test"]], stage_macs, references)
goals = cascade.goals_table(judged_targets, oracle, speedup, specs[-2].name, top, goal_mid_cut, goal_top_cut,
                            goal_speedup)
per_seed = [{r: t["mac_cut"]["value"] if t.get("reached") else float("nan") for r, t in targets.items()}]
per_seed += [seed_claims.ladder_cuts(specs, splits, labels, stage_macs, fine, rules[0], recipe, s, label_smoothing,
                                     cpu_bf16, like) for s in extra_seeds]
seed_rows = seed_claims.across_seeds(per_seed, [seed, *extra_seeds],
                                     {specs[-2].name: goal_mid_cut, specs[-1].name: goal_top_cut}, level)
present.glue_all({"goal_mid_cut": goal_mid_cut, "goal_top_cut": goal_top_cut, "goal_speedup": goal_speedup,
                  **goal_checks.goal_values(goals),
                  "seed_goals_text": " ".join(r["text"] + "." for r in seed_rows) if seed_rows else
                  "This profile trains one ladder, so these verdicts are about that trained ladder; the gpu and paper "
                  "profiles train three and judge the goals across them."})
print("\n".join(goal_checks.goal_lines(goals) + [r["text"] for r in seed_rows]))
pd.DataFrame(goals).set_index(["rule", "quantity"]).reindex(columns=["value", "low", "high", "goal", "status",
                                                                  "resolved", "matched", "oracle_cut", "reason"]).round(2)

# %%
setting = {"dataset": dataset, "n_val": len(labels["val"]), "n_test": len(labels["test"]),
           "grid": {"coarse": grid_size, "zoom": zoom_size, "zoom_low": zoom_low, "fine": len(fine)},
           "bootstrap_rounds": bootstrap_rounds, "stability_rounds": stability_rounds, "level": level,
           "report_rule": report_rule, "gate_rule": gate_rule, "label_smoothing": label_smoothing, "cpu_bf16": cpu_bf16,
           "ece_bins": ece_bins, "gate_folds": gate_folds, "timed_images": n, "latency_images": n_lat,
           "timing_repeats": timing_repeats, "seeds": [seed, *extra_seeds]}
out = cascade.results_dict(setting, specs, stage_table, temperatures, ladder, calibration, gate_rows, judged_targets,
                           table, full_224, ips, lat, speedup, oracle, goals, report, seed_rows)
print(results.write_results("cascade", profile, out, started, cascade.headline(out)))
