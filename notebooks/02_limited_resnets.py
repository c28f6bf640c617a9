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
# # ResNets under a parameter budget, and what they owe to augmentation
#
# Ganz and Adya {cite}`ganz_limited_resnets` took the CIFAR ResNet-18 and cut it under
# {glue:text}`budget:,` parameters in six ways: fewer blocks with pointwise first
# convolutions (I), three stages with more blocks (II(a)) or wider kernels (II(b)), half the
# channels with more blocks (III(a)) or wider kernels (III(b)), and a quarter of the
# channels with wider kernels and shortcuts and more blocks (IV). Trained
# {glue:text}`paper_epochs` epochs on the training set plus {glue:text}`paper_copies`
# offline augmented copies, their best design, II(a), reached {glue:text}`paper_best` %
# on CIFAR-10. This chapter rebuilds the six designs from one configurable ResNet builder,
# trains them with the paper's regimen at the profile's scale, asks whether the paper's
# ranking survives, and measures what the paper did not: what each of its five
# augmentations contributes.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu or paper
dataset: str = "cifar10"  # data set (a name or an ImageFolder path)
resolution: int = 32  # input side in px
designs: list[str] = ["I", "IIa", "IIb", "IIIa", "IIIb", "IV"]  # the paper's designs to train
width: float = 0.25  # channel multiplier applied to every design (1.0: the paper's ~4.9 M parameters)
seeds: list[int] = [0, 1]  # one training run per seed and configuration
train_size: "Optional[int]" = 4000  # training images, stratified subset (None: all 45,000)
val_size: "Optional[int]" = 1000  # validation images for the training curves (None: all 5,000)
test_size: "Optional[int]" = 5000  # test images for the final numbers (None: all 10,000)
epochs: int = 3  # epochs of every run (over the originals plus any offline copies)
batch_size: int = 64  # the paper used 32
lr: float = 0.2  # initial learning rate, divided by 10 at 30/50/70/90 % of training
offline_copies: int = 0  # 0: augment online; k > 0: originals plus k fixed augmented copies (the paper: 5)
hue: str = "scale"  # fifth augmentation's hue: "scale" (the paper's sentence) or "shift" (ColorJitter's ±0.5 turn)
ablation_design: str = "I"  # design used for the augmentation ablation
val_fraction: float = 0.1  # share of CIFAR-10's training set held out for validation
split_seed: int = 0  # seed of the data splits and subsets

# %%
import time

import matplotlib.pyplot as plt
import seaborn as sns
from myst_nb import glue

from simplecnn.core import data, plots, results  # noqa: F401 (plots: book style)
from simplecnn.core.models import build_model, count_params
from simplecnn.studies import limited

started = time.time()
splits = data.load_dataset(dataset, resolution, val_fraction=val_fraction, split_seed=split_seed)
splits = splits.reduced(train=train_size, val=val_size, test=test_size, seed=split_seed)
names = limited.augmentations(hue)
settings = limited.ablation_settings(names)
paper = limited.PAPER
for key in ("budget", "epochs", "copies", "images", "batch_size"):
    glue(f"paper_{key}" if key != "budget" else "budget", paper[key], display=False)
glue("paper_best", max(limited.PAPER_ACC.values()), display=False)
glue("n_train", len(splits.train), display=False)
glue("n_test", len(splits.test), display=False)
glue("epochs", epochs, display=False)
glue("width", width, display=False)
glue("n_seeds", len(seeds), display=False)
splits.sizes()

# %% [markdown]
# ## Six designs, one builder
#
# Each design is a named configuration of `simplecnn.core.models.ResNet` (stage widths and
# depths, first-conv kernel, shortcut kernel), registered as `limited_<design>`; the
# template, the CIFAR ResNet-18, has {glue:text}`resnet18_params:,` parameters. At the
# paper's scale every design lands just under the budget
# ({glue:text}`params_min:,` to {glue:text}`params_max:,`), as the paper says;
# the readings this needed are listed at the end of the chapter. The profile trains them
# at width ×{glue:text}`width` (every channel count scaled, proportions kept).

# %%
table = limited.design_table(width, resolution, splits.num_classes).loc[designs]
full = limited.design_table(1.0, resolution, splits.num_classes) if set(designs) != set(limited.DESIGNS) else table
glue("resnet18_params", count_params(build_model("cifar_resnet18", splits.num_classes)), display=False)
glue("params_min", int(full["paper_params"].min()), display=False)
glue("params_max", int(full["paper_params"].max()), display=False)
glue("macs_ratio", float(full["paper_macs"].max() / full["paper_macs"].min()), display=False)
glue("params_spread", float(100 * (full["paper_params"].max() / full["paper_params"].min() - 1)), display=False)
glue("stem_channels", limited.LIMITED["IIa"].stem_channels, display=False)
shown = table.assign(**{"paper params": table["paper_params"].map("{:,}".format),
                        "paper GMACs": table["paper_macs"] / 1e9, "params here": table["params"].map("{:,}".format),
                        "MMACs here": table["macs"] / 1e6})
shown[["paper params", "paper GMACs", "params here", "MMACs here", "paper_acc"]].rename(
    columns={"paper_acc": "paper test acc (%)"}).style.format(precision=3)

# %% [markdown]
# The parameter budget is spent very differently: the three-stage designs II(a) and II(b)
# keep {glue:text}`stem_channels` channels at full resolution and cost
# {glue:text}`macs_ratio:.1f` times the multiply-accumulates of the cheapest design, while
# IV's wide kernels on a quarter of the channels cost about as much as I's pointwise first
# convolutions.

# %% [markdown]
# ## Training with the paper's regimen
#
# SGD with momentum {glue:text}`momentum`, weight decay {glue:text}`weight_decay`, plain
# cross-entropy, learning rate {glue:text}`lr` multiplied by {glue:text}`gamma` at
# {glue:text}`milestone_pct` % of training (the paper's epochs {glue:text}`paper_milestones`
# of {glue:text}`paper_epochs`), and the paper's five augmentations, applied
# {glue:text}`augmentation_mode`. Each design trains on {glue:text}`n_train` images for
# {glue:text}`epochs` epochs per seed ({glue:text}`n_seeds` seeds) and is scored once on
# {glue:text}`n_test` test images.
#
# Online and offline augmentation are not the same training. Online, each time an image is
# drawn it is shown as it is or with exactly one of the five augmentations, uniformly, with
# a fresh random crop, angle or colour factor every time. Offline, as in the paper, each
# image has one fixed copy per augmentation, drawn once; every epoch shows the same
# {glue:text}`paper_copies_plus_one` versions of each image. A single draw has the same
# distribution either way, but the offline set offers far less variety over many epochs
# (the network can memorise the fixed copies), and its epoch is
# {glue:text}`paper_copies_plus_one` times longer, so the paper's {glue:text}`paper_epochs`
# epochs are {glue:text}`paper_passes` passes' worth of steps over the originals, and its
# milestones fall at those epochs of the longer set. The `offline_copies` parameter builds
# the paper's form (`limited.offline_copies_of`: the originals followed by copies that cycle
# through the augmentations, one seeded draw); the `paper` profile uses it.

# %%
config = limited.paper_regimen(epochs, batch_size, lr, (), 0)
glue("lr", lr, display=False)
glue("momentum", config.momentum, display=False)
glue("weight_decay", config.weight_decay, display=False)
glue("gamma", config.gamma, display=False)
glue("milestone_pct", results.Plain(", ".join(f"{100 * f:.0f}" for f in limited.MILESTONE_FRACTIONS)), display=False)
glue("paper_milestones", results.Plain(", ".join(map(str, paper["milestones"]))), display=False)
glue("paper_copies_plus_one", paper["copies"] + 1, display=False)
glue("paper_passes", paper["epochs"] * (paper["copies"] + 1), display=False)
mode = (f"offline: the originals plus {offline_copies} fixed augmented copies" if offline_copies
        else "online: each draw shows the image as it is or with one of the five, uniformly")
glue("augmentation_mode", results.Plain(mode), display=False)
runs = limited.train_grid(designs, {"all": settings["all"]}, seeds, splits, width, epochs, batch_size, lr,
                          offline_copies=offline_copies)
by_design = limited.summarise(runs, "design").join(table[["params", "macs", "paper_params", "paper_acc"]])
by_design.style.format(precision=2)

# %%
curves = limited.history_frame(runs)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
sns.lineplot(data=curves, x="epoch", y="train_loss", hue="design", errorbar="sd", ax=axes[0])
sns.lineplot(data=curves, x="epoch", y="val_acc", hue="design", errorbar="sd", ax=axes[1])
axes[0].set_ylabel("training loss"), axes[1].set_ylabel("validation accuracy")
fig.suptitle("Training curves (mean over seeds, band: ± one standard deviation)")
fig.tight_layout()

# %% [markdown]
# ## Accuracy, parameters and compute
#
# Across designs the mean test accuracies span {glue:text}`design_span:.1f` percentage
# points, against a mean seed-to-seed standard deviation of {glue:text}`seed_std:.1f`
# points; the design with the highest mean here is {glue:text}`best_design`.
#
# Bubble size is the parameter count as trained; the paper's designs differ by at most
# {glue:text}`params_spread:.1f` % in parameters, so what separates them is how they spend
# compute.

# %%
glue("design_span", float(by_design["acc_mean"].max() - by_design["acc_mean"].min()), display=False)
glue("seed_std", float(by_design["acc_std"].mean()), display=False)
glue("best_design", results.Plain(by_design["acc_mean"].idxmax()), display=False)
bubble = by_design.reset_index()
ax = sns.scatterplot(data=bubble, x=bubble["macs"] / 1e6, y="acc_mean", size="params", hue="design",
                     sizes=(80, 400), legend="brief")
ax.errorbar(bubble["macs"] / 1e6, bubble["acc_mean"], yerr=bubble["acc_std"], fmt="none", ecolor="grey")
ax.set_xlabel("multiply-accumulates per image (M), as trained")
ax.set_ylabel("test accuracy (%)")
sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1));

# %% [markdown]
# ## Which differences are resolved
#
# For every pair of designs, the difference in test accuracy is taken per seed (same seed,
# same data order) and averaged; the interval is Student's t over the
# {glue:text}`n_seeds` seeds, and the paired t-test's p-values are Holm-adjusted over all
# {glue:text}`n_pairs` pairs. {glue:text}`n_resolved` of the {glue:text}`n_pairs` pairs
# are resolved at the adjusted level {glue:text}`alpha`; the others, and the ranking that
# rests on them, are not: {glue:text}`resolved_text`. With so few seeds the intervals are
# wide by construction, which is the honest statement of what this run can tell apart.

# %%
pairs = limited.pairwise_differences(runs)
glue("n_pairs", len(pairs), display=False)
glue("n_resolved", int(pairs["resolved"].sum()), display=False)
glue("alpha", 0.05, display=False)
resolved = [f"{r.a} vs {r.b}" for r in pairs.itertuples() if r.resolved]
glue("resolved_text", results.Plain("resolved: " + ", ".join(resolved) if resolved else "no pair is resolved"),
     display=False)
pairs.style.format(precision=3)

# %% [markdown]
# ## The paper's results table beside this run
#
# Absolute accuracies are not comparable (the paper trained the full-width networks on
# {glue:text}`paper_images:,` images for {glue:text}`paper_epochs` epochs; this profile
# trains the same shapes at width ×{glue:text}`width` and briefly); the question is whether
# the order of the designs survives. Kendall's tau between the paper's accuracies and the
# measured means is {glue:text}`kendall:.2f` (permutation p = {glue:text}`kendall_p:.3f`)
# and Spearman's rho {glue:text}`spearman:.2f` (p = {glue:text}`spearman_p:.3f`), over
# {glue:text}`n_designs` designs; each p-value is the share of all orders of the measured
# means that agree with the paper's at least as well. Both statistics are at their maximum
# for the same order and their minimum for the reversed one. For scale, the dotted lines
# mark the published anchors listed in the table below the figure.

# %%
rank = limited.rank_agreement(limited.PAPER_ACC, by_design["acc_mean"].to_dict())
for key in ("kendall", "kendall_p", "spearman", "spearman_p"):
    glue(key, rank[key], display=False)
glue("n_designs", rank["n"], display=False)
compare = by_design[["paper_acc", "acc_mean"]].rename(columns={"paper_acc": "paper (4.9 M, 50 epochs)",
                                                               "acc_mean": f"here (×{width}, {epochs} epochs)"})
ax = compare.plot.bar(figsize=(8, 4), rot=0, yerr={compare.columns[1]: by_design["acc_std"]})
ax.set_ylabel("CIFAR-10 test accuracy (%)")
ax.set_ylim(max(0, compare.min().min() - 10), 100)
for _, anchor in limited.ANCHORS.iterrows():
    ax.axhline(anchor["acc"], ls=":", c="grey", lw=1)
    ax.annotate(anchor["model"], (len(compare) - 0.5, anchor["acc"]), fontsize=7, ha="right", va="bottom")
limited.ANCHORS.rename(columns={"params_m": "params (M)", "acc": "CIFAR-10 test acc (%)"})

# %% [markdown]
# ## What each augmentation contributes
#
# The paper credits augmentation with most of its accuracy but did not measure the parts.
# On design {glue:text}`ablation_design`, with everything else fixed: no augmentation, all
# five, each alone, and each left out. Bars show the change in test accuracy against no
# augmentation, paired by seed: here no augmentation gives {glue:text}`acc_none:.1f` ±
# {glue:text}`acc_none_std:.1f` % and all five {glue:text}`acc_all:.1f` ±
# {glue:text}`acc_all_std:.1f` % (mean ± std over {glue:text}`n_seeds` seeds), a change of
# {glue:text}`gain_all:.1f` ± {glue:text}`gain_all_std:.1f` points. At a budget this small
# a network underfits, and an augmentation that makes the task harder can cost accuracy;
# the paper's long training is the regime where augmentation pays.

# %%
glue("ablation_design", results.Plain(ablation_design), display=False)
ablation = limited.train_grid([ablation_design], settings, seeds, splits, width, epochs, batch_size, lr,
                              track_val=False, offline_copies=offline_copies)
by_setting = limited.ablation_summary(ablation)
ax = sns.barplot(data=limited.gains(ablation), y="setting", x="gain", order=[s for s in settings if s != "none"],
                 errorbar="sd")
ax.axvline(0, c="black", lw=1)
ax.set_xlabel("test accuracy change against no augmentation (percentage points)");

# %%
for key, setting in (("none", "none"), ("all", "all")):
    glue(f"acc_{key}", float(by_setting.loc[setting, "acc_mean"]), display=False)
    glue(f"acc_{key}_std", float(by_setting.loc[setting, "acc_std"]), display=False)
glue("gain_all", float(by_setting.loc["all", "gain_mean"]), display=False)
glue("gain_all_std", float(by_setting.loc["all", "gain_std"]), display=False)
by_setting.style.format(precision=2)

# %% [markdown]
# ## Readings of the paper
#
# - The template is the CIFAR ResNet-18 the paper cites (a {glue:text}`stem_kernel` stem
#   of {glue:text}`stem_channels` channels, no max-pool, {glue:text}`i_skip` projection
#   shortcuts); the stem keeps its kernel and the first stage's width in every design.
# - "The first convolutional layer of each block" (I, II(b), III(b)) is the block's first
#   conv ({glue:text}`i_first` in I, {glue:text}`iib_first` in II(b) and III(b)). With the
#   readings below all six designs have {glue:text}`params_min:,` to
#   {glue:text}`params_max:,` parameters, matching the paper's "about
#   {glue:text}`paper_params_m` million".
# - Design IV: "the kernel of each convolutional layer was increased" from
#   {glue:text}`stem_kernel` to {glue:text}`paper_iv_kernel` and the skip connections' to
#   {glue:text}`paper_iv_skip`. The code applies {glue:text}`iv_first` to both
#   convolutions of every block and {glue:text}`iv_skip` to the projection shortcuts
#   (identity shortcuts have no kernel), and keeps the {glue:text}`stem_kernel` stem. The
#   sentence could include the stem; the parameter count cannot decide, since a
#   {glue:text}`iv_first` stem adds only {glue:text}`iv_stem_extra:,` parameters
#   ({glue:text}`iv_stem_params:,` in all, still about {glue:text}`paper_params_m` million). The stem is kept
#   because the paper's section on architecture names as its variables the residual
#   layers, their blocks, channels and kernels, and describes the stem separately as the
#   "initial convolutional layer"; keeping it makes the six designs differ only where the
#   paper says they differ.
# - The fifth augmentation changes "brightness, contrast, saturation, and hue ... between
#   {glue:text}`color_low` and {glue:text}`color_high` of the original value". For the first
#   three that is a factor, as in torchvision's `ColorJitter`. For hue, `ColorJitter`'s
#   largest setting adds up to half a turn of the colour wheel, which sends any hue to any
#   other and so randomises colour entirely; that is not what the sentence says. The code
#   follows the sentence (`hue="scale"`, `limited.color_hue_scale`): each image's hue angle
#   is multiplied by a factor in that range, which keeps reds red and moves other hues in
#   proportion. The authors may have run `ColorJitter` with its hue at half a turn and
#   described it loosely; `hue="shift"` trains that reading. This run used
#   {glue:text}`hue_reading`.
# - Augmentation: random flips precede the other four augmentations, as in the paper,
#   whenever flipping is part of the setting, and the flip copy is mirrored outright. This
#   run augmented {glue:text}`augmentation_mode`; online and offline differ as stated above.
# - Weight decay is not applied to batch-norm parameters and biases (the core's
#   convention); the paper's vanilla SGD decays all parameters.
# - The paper selected its schedule by watching the test loss; here nothing is selected on
#   test.
# - What the profile cuts: width, training images, epochs and batch size (the paper's:
#   {glue:text}`paper_batch_size`; see the parameters cell); the `paper` profile restores
#   the paper's widths, data and offline copies.

# %%
kernels = {d: limited.kernel_text(d) for d in ("I", "IIb", "IV")}
glue("stem_kernel", results.Plain(kernels["IV"]["stem"]), display=False)
glue("i_first", results.Plain(kernels["I"]["first"]), display=False)
glue("i_skip", results.Plain(kernels["I"]["skip"]), display=False)
glue("iib_first", results.Plain(kernels["IIb"]["first"]), display=False)
glue("iv_first", results.Plain(kernels["IV"]["first"]), display=False)
glue("iv_skip", results.Plain(kernels["IV"]["skip"]), display=False)
iv_stem = limited.params_with_stem_kernel("IV", limited.LIMITED["IV"].kernel, splits.num_classes)
glue("iv_stem_params", iv_stem, display=False)
glue("iv_stem_extra", iv_stem - int(full.loc["IV", "paper_params"]), display=False)
glue("paper_params_m", paper["params_m"], display=False)
glue("paper_iv_kernel", results.Plain(f"{paper['iv_kernel']}×{paper['iv_kernel']}"), display=False)
glue("paper_iv_skip", results.Plain(f"{paper['iv_skip']}×{paper['iv_skip']}"), display=False)
glue("color_low", limited.COLOR_RANGE[0], display=False)
glue("color_high", limited.COLOR_RANGE[1], display=False)
glue("hue_reading", results.Plain({"scale": "the hue scaling", "shift": "the hue shift"}[hue]), display=False)

# %%
setting = {"n_train": len(splits.train), "n_test": len(splits.test), "resolution": resolution, "width": width,
           "epochs": epochs, "seeds": seeds, "ablation_design": ablation_design, "hue": hue,
           "offline_copies": offline_copies,
           "augmentation": f"offline ×{offline_copies}" if offline_copies else "online one-of policy"}
out = limited.results_dict(table, by_design, pairs, rank, by_setting, setting)
print(results.write_results("limited_resnets", profile, out, started))
