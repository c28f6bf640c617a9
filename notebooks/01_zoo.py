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
# # The architecture zoo: what the classic CNNs cost
#
# Before simplifying a classifier we measure what the classic ones spend. For AlexNet,
# VGG-11/13/16/19 (with and without batch norm), GoogLeNet and ResNet-18/34/50/101/152 at
# {glue:text}`resolution` px square inputs with {glue:text}`num_classes` classes, as in
# the lecture (source `003_…`), this chapter counts
# parameters and multiply-accumulates (MACs), the memory of a forward pass's activations
# beside the memory of the parameters, the measured peak memory of one training step, and
# the theoretical receptive field of the last convolutional layer. Weights are random:
# only shapes matter here.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
models: list[str] = ["alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
          "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]  # torchvision names
resolution: int = 224  # input side (px) for parameters, MACs, activations and receptive fields
peak_batch: int = 8  # batch of the measured training step
peak_resolution: int = 224  # input side (px) of the measured training step

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from myst_nb import glue

from simplecnn.core.params import check as check_parameters
from simplecnn.core import plots, results
from simplecnn.core.device import use_device
from simplecnn.studies import zoo

started = time.time()
check_parameters("zoo", globals(), zoo.PARAMETERS)  # bad values stop here, before any work
use_device(device)  # every model, inference and timing below runs there
MiB = 2**20
glue("resolution", resolution, display=False)
glue("num_classes", 1000, display=False)
table = zoo.zoo_table(models, resolution, peak_batch, peak_resolution)

# %% [markdown]
# ## The table
#
# MACs are counted by ptflops (aten backend: convolutions and matrix products only); the
# lecture's "FLOPs" are multiply-adds too, so they compare directly. A FLOP count proper
# is about twice the MAC count. Activations are the outputs of every layer for one image
# in fp32; the peak is measured while one SGD step with momentum runs on a batch of
# {glue:text}`peak_batch` images, over what model and input already occupy.

# %%
glue("peak_batch", peak_batch, display=False)
shown = pd.DataFrame({
    "params (M)": table["params"] / 1e6,
    "lecture params (M)": table["lecture_params_m"],
    "GMACs": table["macs"] / 1e9,
    "lecture GMACs": table["lecture_gmacs"],
    "activations (MiB)": table["activation_bytes"] / MiB,
    "parameters (MiB)": table["param_bytes"] / MiB,
    "train-step peak (MiB)": table.get("train_step_peak_bytes", pd.Series(dtype=float)) / MiB,
    "receptive field (px)": table["receptive_field"],
})
shown.style.format(precision=2, na_rep="")

# %% [markdown]
# ## Parameters against compute
#
# The two costs are nearly unrelated across families: VGG's fully connected layers hold
# most of its parameters while its convolutions at full resolution hold most of its
# MACs; GoogLeNet and the ResNets drop the big fully connected layers for global average
# pooling.

# %%
ax = plots.labelled_scatter(table.assign(GMACs=table["macs"] / 1e9, Mparams=table["params"] / 1e6),
                            "Mparams", "GMACs", hue="family", xlabel="parameters (millions)",
                            ylabel="multiply-accumulates per image (G)", skip_label="_bn")
ax.set_title(f"Parameters vs MACs at {resolution}×{resolution}");

# %% [markdown]
# ## Activation memory against parameter memory
#
# Per image, activations are small next to the parameters of VGG and AlexNet but not
# next to a ResNet's; they grow with the batch while parameters do not, which is why
# training memory is dominated by activations (the motivation of the patch-wise
# classifiers in the next chapters, which never hold a full image's activations).

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 5), squeeze=False)
plots.labelled_scatter(table.assign(act=table["activation_bytes"] / MiB, par=table["param_bytes"] / MiB),
                       "par", "act", hue="family", xlabel="parameter memory (MiB, fp32)",
                       ylabel="activation memory per image (MiB, fp32)", ax=axes[0][0], skip_label="_bn")
lim = [min(axes[0][0].get_xlim()[0], axes[0][0].get_ylim()[0]), max(axes[0][0].get_xlim()[1], axes[0][0].get_ylim()[1])]
axes[0][0].plot(lim, lim, ls="--", c="grey", lw=1)
peaks = zoo.peak_estimate(table, peak_batch)
glue("peak_ratio_min", float(peaks["ratio"].min()), display=False)
glue("peak_ratio_max", float(peaks["ratio"].max()), display=False)
frame = pd.DataFrame({"measured": peaks["measured"] / MiB,
                      "gradients + momentum + batch × activations": peaks["estimate"] / MiB}).reset_index()
sns.barplot(data=frame.melt(id_vars="model", var_name="what", value_name="MiB"), y="model", x="MiB",
            hue="what", ax=axes[0][1])
sns.move_legend(axes[0][1], "lower center", bbox_to_anchor=(0.5, 1.08), ncol=1, title=None, frameon=False)
axes[0][1].set_xlabel(f"peak memory one training step adds (MiB), batch {peak_batch} at {peak_resolution} px")
fig.tight_layout()

# %% [markdown]
# On the right, the measured growth of memory during one training step (the weights are
# already in memory before it) beside a rough estimate: gradients and momentum, one copy
# of the parameters each, plus one set of layer outputs per image. Measured over estimated
# ranges from {glue:text}`peak_ratio_min:.2f` to {glue:text}`peak_ratio_max:.2f` across the
# zoo; the measurement is higher where backward keeps more than the layer
# outputs (ReLU masks, batch-norm statistics, convolution workspaces) and lower where
# autograd frees activations early and the allocator reuses their memory.

# %% [markdown]
# ## Where our numbers differ from the lecture's, and why

# %%
original = zoo.lecture_comparison(table, resolution)
for n, row in original.iterrows():
    glue(f"{n}_gmacs", float(row["torchvision (v1.5) GMACs"]), display=False)
    glue(f"{n}_gmacs_v1", float(row["stride in 1×1 (original) GMACs"]), display=False)
    glue(f"{n}_gmacs_lecture", float(row["lecture GMACs"]), display=False)
for n in ("vgg16", "googlenet", "alexnet"):
    if n in table.index:
        glue(f"{n}_params_m", float(table.loc[n, "params"] / 1e6), display=False)
        if "params_m" in zoo.LECTURE.get(n, {}):
            glue(f"{n}_lecture_m", zoo.LECTURE[n]["params_m"], display=False)
glue("alexnet_channels", results.Plain(", ".join(map(str, zoo.conv_channels(zoo.build_zoo_model("alexnet"))))),
     display=False)
glue("alexnet_original_channels", results.Plain(", ".join(map(str, zoo.ORIGINAL_ALEXNET_CHANNELS))), display=False)
original.round(3)

# %% [markdown]
# - **ResNet-50/101/152: stride placement.** torchvision's bottleneck ResNets are "v1.5":
#   the stride of each down-sampling block sits in its middle (spatial) convolution, which
#   then runs at the higher resolution. Moving it back into the first pointwise
#   convolution, as in the
#   original paper, brings the counts close to the lecture's multiply-adds, which are
#   rounded to one decimal (table above; for ResNet-50
#   {glue:text}`resnet50_gmacs:.2f` G in torchvision against
#   {glue:text}`resnet50_gmacs_v1:.2f` G in the original layout and
#   {glue:text}`resnet50_gmacs_lecture` G in the lecture). ResNet-18/34 use basic blocks
#   and agree without change.
# - **FLOPs or multiply-adds.** The lecture's ResNet row is labelled FLOPs but counts
#   multiply-adds, like ptflops; a FLOP count proper doubles every figure.
# - **VGG.** Parameter counts agree with the lecture's table of configurations (VGG-16:
#   {glue:text}`vgg16_params_m:.1f` M against {glue:text}`vgg16_lecture_m` M); configuration
#   C of that table (with pointwise convolutions) has no torchvision counterpart, and the
#   `_bn` variants add
#   batch norm, which adds few parameters and no MACs that the aten counter sees.
# - **GoogLeNet.** torchvision's network has {glue:text}`googlenet_params_m:.2f` M
#   parameters against the lecture's {glue:text}`googlenet_lecture_m` M: it is counted
#   here without the two auxiliary classifiers (training-only heads), it adds batch norm,
#   and the inception branch documented with the widest kernel uses the same small kernel
#   as its neighbour, a known quirk kept for compatibility with its published weights.
# - **AlexNet.** torchvision follows the single-GPU "one weird trick" variant
#   ({glue:text}`alexnet_channels` channels) instead of the original's
#   {glue:text}`alexnet_original_channels`, so its
#   first layers hold fewer neurons than the lecture's list from the original paper:

# %%
zoo.alexnet_neurons().set_index("layer")

# %% [markdown]
# ## Receptive fields
#
# The theoretical receptive field of the last convolution (`simplecnn.core.receptive`, computed
# over the traced graph and checked against gradients in the tests) exceeds the
# {glue:text}`resolution` px
# input for every ResNet and GoogLeNet: border effects, not the field, limit what their
# last layer sees. AlexNet's {glue:text}`rf_alexnet` px and VGG's fields are smaller than
# the image. The
# stride placement matters here too: ResNet-50 has a field of
# {glue:text}`rf_resnet50` px as torchvision builds it and {glue:text}`rf_resnet50_v1` px
# in the original layout. The patch classifiers of the later chapters cut this field down
# to the size of a patch on purpose.

# %%
from simplecnn.core.receptive import receptive_field

glue("rf_alexnet", int(table.loc["alexnet", "receptive_field"]), display=False)
if "resnet50" in table.index:
    glue("rf_resnet50", int(table.loc["resnet50", "receptive_field"]), display=False)
    glue("rf_resnet50_v1", receptive_field(zoo.stride_in_1x1(zoo.build_zoo_model("resnet50")))["receptive_field"],
         display=False)
ax = sns.barplot(x=table["receptive_field"], y=table.index, hue=table["family"], dodge=False)
ax.axvline(resolution, ls="--", c="grey")
ax.set_xlabel("receptive field of the last conv layer (px); dashed: input size");

# %%
out = zoo.results_dict(table, original, resolution)
print(results.write_results("zoo", profile, out, started, zoo.headline(out)))
