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
# # ResNets limited to 5 M parameters, and what they owe to augmentation
#
# Ganz and Adya {cite}`ganz_limited_resnets` took the CIFAR ResNet-18
# and cut it under 5 M parameters in six ways: fewer blocks with 1×1 first convolutions
# (I), three stages with more blocks (II(a)) or wider kernels (II(b)), half the channels
# with more blocks (III(a)) or wider kernels (III(b)), and a quarter of the channels with
# 7×7 kernels, 5×5 shortcuts and more blocks (IV). Trained 50 epochs on the training set
# augmented offline five times, their best design, II(a), reached 95.67 % on CIFAR-10.
# This chapter rebuilds the six designs from one configurable ResNet builder, trains them
# with the paper's regimen at the profile's scale, asks whether the paper's ranking
# survives, and measures what the paper did not: what each of its five augmentations
# contributes.

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
epochs: int = 3  # epochs of every run
batch_size: int = 64  # the paper used 32
lr: float = 0.2  # initial learning rate, divided by 10 at 30/50/70/90 % of training
ablation_design: str = "I"  # design used for the augmentation ablation
val_fraction: float = 0.1  # share of CIFAR-10's training set held out for validation
split_seed: int = 0  # seed of the data splits and subsets

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from myst_nb import glue

from simplecnn import data, limited, plots, results  # noqa: F401 (plots: book style)
from simplecnn.core.models import build_model, count_params

started = time.time()
splits = data.load_dataset(dataset, resolution, val_fraction=val_fraction, split_seed=split_seed)
splits = splits.reduced(train=train_size, val=val_size, test=test_size, seed=split_seed)
settings = limited.ablation_settings()
glue("n_train", len(splits.train), display=False)
glue("n_test", len(splits.test), display=False)
glue("epochs", epochs, display=False)
glue("width", width, display=False)
splits.sizes()

# %% [markdown]
# ## Six designs, one builder
#
# Each design is a named configuration of `simplecnn.core.models.ResNet` (stage widths and
# depths, first-conv kernel, shortcut kernel), registered as `limited_<design>`; the
# template, the CIFAR ResNet-18, has {glue:text}`resnet18_params:,` parameters. At the
# paper's scale every design lands just under 5,000,000 parameters
# ({glue:text}`params_min:,` to {glue:text}`params_max:,`), as the paper says;
# the readings this needed are listed at the end of the chapter. The profile trains them
# at width ×{glue:text}`width` (every channel count scaled, proportions kept).

# %%
table = limited.design_table(width, resolution, splits.num_classes).loc[designs]
glue("resnet18_params", count_params(build_model("cifar_resnet18", splits.num_classes)), display=False)
glue("params_min", int(table["paper_params"].min()), display=False)
glue("params_max", int(table["paper_params"].max()), display=False)
glue("macs_ratio", float(table["paper_macs"].max() / table["paper_macs"].min()), display=False)
glue("params_spread", float(100 * (table["paper_params"].max() / table["paper_params"].min() - 1)), display=False)
shown = table.assign(**{"paper params": table["paper_params"].map("{:,}".format),
                        "paper GMACs": table["paper_macs"] / 1e9, "params here": table["params"].map("{:,}".format),
                        "MMACs here": table["macs"] / 1e6})
shown[["paper params", "paper GMACs", "params here", "MMACs here", "paper_acc"]].rename(
    columns={"paper_acc": "paper test acc (%)"}).style.format(precision=3)

# %% [markdown]
# The parameter budget is spent very differently: the three-stage designs II(a) and II(b)
# keep 64 channels at full resolution and cost {glue:text}`macs_ratio:.1f` times the
# multiply-accumulates of the cheapest design, while IV's 7×7 kernels on a quarter of the
# channels cost about as much as I's 1×1 first convolutions.

# %% [markdown]
# ## Training with the paper's regimen
#
# SGD with momentum 0.9, weight decay 10⁻⁴, plain cross-entropy, learning rate
# {glue:text}`lr` divided by 10 at 30, 50, 70 and 90 % of training (the paper's 15/25/35/45
# of 50 epochs), and the paper's five augmentations as an online policy: each time an
# image is drawn it is shown as it is or with exactly one of the five augmentations,
# uniformly, which is what sampling from the paper's offline set (the original plus one
# augmented copy per augmentation) amounts to. Each design trains on
# {glue:text}`n_train` images for {glue:text}`epochs` epochs per seed and is scored once
# on {glue:text}`n_test` test images.

# %%
glue("lr", lr, display=False)
runs = limited.train_grid(designs, {"all": settings["all"]}, seeds, splits, width, epochs, batch_size, lr)
by_design = limited.summarise(runs, "design").join(table[["params", "macs", "paper_params", "paper_acc"]])
by_design.style.format(precision=2)

# %%
curves = pd.DataFrame([{"design": r.design, "seed": r.seed, **h} for r in runs.itertuples() for h in r.history])
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
# points; the best design here is {glue:text}`best_design`.
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
# ## The paper's Table 1 beside this run
#
# Absolute accuracies are not comparable (the paper trained ~4.9 M-parameter networks on
# 300,000 augmented images for 50 epochs; this profile trains the same shapes narrowed
# and briefly); the question is whether the order of the designs survives. The rank
# correlation between the paper's accuracies and the measured means is
# {glue:text}`rank_corr:.2f` (1: same order, −1: reversed, 0: unrelated). For scale, the
# paper's anchors: a ResNet-20 of 0.27 M parameters reaches 91.25 %, airbench95 95.01 %
# with about 4.6 M, and Efficient-ResNets 96.04 % with 4.70 M.

# %%
rank_corr = limited.rank_agreement(limited.PAPER_ACC, by_design["acc_mean"].to_dict())
glue("rank_corr", rank_corr, display=False)
compare = by_design[["paper_acc", "acc_mean"]].rename(columns={"paper_acc": "paper (4.9 M, 50 epochs)",
                                                               "acc_mean": f"here (×{width}, {epochs} epochs)"})
ax = compare.plot.bar(figsize=(8, 4), rot=0, yerr={compare.columns[1]: by_design["acc_std"]})
ax.set_ylabel("CIFAR-10 test accuracy (%)")
ax.set_ylim(max(0, compare.min().min() - 10), 100)
for _, anchor in limited.ANCHORS.iterrows():
    ax.axhline(anchor["acc"], ls=":", c="grey", lw=1)
    ax.annotate(anchor["model"], (len(compare) - 0.5, anchor["acc"]), fontsize=7, ha="right", va="bottom")
compare.round(2)

# %% [markdown]
# ## What each augmentation contributes
#
# The paper credits augmentation with most of its accuracy but did not measure the parts.
# On design {glue:text}`ablation_design`, with everything else fixed: no augmentation, all
# five, each alone (the original plus that augmentation's copy), and each left out. Bars
# show the change in test accuracy against no augmentation: here no augmentation gives
# {glue:text}`acc_none:.1f` % and all five {glue:text}`acc_all:.1f` %. At a budget this small a
# network underfits, and an augmentation that makes the task harder can cost accuracy; the
# paper's long training is the regime where augmentation pays.

# %%
glue("ablation_design", results.Plain(ablation_design), display=False)
ablation = limited.train_grid([ablation_design], settings, seeds, splits, width, epochs, batch_size, lr,
                              track_val=False)
by_setting = limited.summarise(ablation, "setting")
none = ablation[ablation.setting == "none"].set_index("seed")["acc"]
ablation["gain"] = (ablation["acc"] - ablation["seed"].map(none)) * 100
order = [s for s in settings if s != "none"]
ax = sns.barplot(data=ablation[ablation.setting != "none"], y="setting", x="gain", order=order, errorbar="sd")
ax.axvline(0, c="black", lw=1)
ax.set_xlabel("test accuracy change against no augmentation (percentage points)");

# %%
glue("acc_none", float(by_setting.loc["none", "acc_mean"]), display=False)
glue("acc_all", float(by_setting.loc["all", "acc_mean"]), display=False)
by_setting.style.format(precision=2)

# %% [markdown]
# ## Readings of the paper
#
# - The template is the CIFAR ResNet-18 the paper cites (3×3 stem of 64 channels, no
#   max-pool, 1×1 projection shortcuts); the stem keeps its 3×3 kernel and the first
#   stage's width in every design.
# - "The first convolutional layer of each block" (I, II(b), III(b)) is the block's first
#   conv; IV's 7×7 applies to both block convolutions and its 5×5 to the projection
#   shortcuts (identity shortcuts have no kernel). With these readings all six designs
#   have {glue:text}`params_min:,` to {glue:text}`params_max:,` parameters, matching the
#   paper's "about 4.9 million".
# - The offline ×5 augmentation is trained as its online equivalent (see above); random
#   flips precede the other four augmentations, as in the paper, whenever flipping is
#   part of the policy. "Brightness, contrast, saturation and hue between 0.5 and 1.5" is
#   read as torchvision's `ColorJitter(0.5, 0.5, 0.5, 0.5)`: factors in [0.5, 1.5] for the
#   first three and a hue shift of up to half a turn.
# - Weight decay is not applied to batch-norm parameters and biases (the core's
#   convention); the paper's vanilla SGD decays all parameters.
# - The paper selected its schedule by watching the test loss; here nothing is selected on
#   test.
# - What the profile cuts: width, training images, epochs and batch size (see the
#   parameters cell); the `paper` profile restores the paper's widths and data.

# %%
headline = {d: {"paper_params": int(table.loc[d, "paper_params"]), "params": int(table.loc[d, "params"]),
                "macs": int(table.loc[d, "macs"]), "acc_mean": float(by_design.loc[d, "acc_mean"]),
                "acc_std": float(by_design.loc[d, "acc_std"]), "train_s": float(by_design.loc[d, "train_s"]),
                "paper_acc": limited.PAPER_ACC[d]} for d in designs}
headline["augmentation"] = {s: {"acc_mean": float(r["acc_mean"]), "acc_std": float(r["acc_std"])}
                            for s, r in by_setting.iterrows()}
headline["rank_corr"] = rank_corr
print(results.write_results("limited_resnets", profile, headline, started))
