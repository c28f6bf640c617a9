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
# # The whole study at a glance
#
# Every chapter states its headline numbers through its study module's `headline()`, read
# from `results/<profile>/<study>.json`. This page sets them side by side for the
# **{glue:text}`summary_profile`** profile that built this book, next to the sources'
# figures and, where they were run, the results of {glue:text}`summary_beside`. A missing
# results file stops the build with the command that writes it.
#
# Each row says what it measures: the metric, the data set and split, and the resolution,
# on our side and on the source's. The two sides often differ (the BagNet paper reports
# ImageNet top-5 at full resolution; we report top-1 on Imagenette at a smaller size), so
# a gap between them is a difference of setting as much as of method; the chapters say
# where and why.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
beside: str = "gpu,paper"  # profiles (comma-separated) shown beside this one's, each only where its results exist

# %%
import time

from myst_nb import glue

from simplecnn.core import results
from simplecnn.core.device import use_device
from simplecnn.studies import summary

started = time.time()
use_device(device)  # nothing here computes on it; the results record it
beside_profiles = summary.beside_list(profile, beside)
table = summary.headline_table(profile, beside_profiles)
shown_beside = [p for p in beside_profiles if p in table.columns]
glue("summary_profile", results.Plain(profile), display=False)
glue("summary_beside", results.Plain(" and ".join(f"the {p} profile" for p in beside_profiles) or "no other profile"),
     display=False)
glue("summary_beside_shown", results.Plain(", ".join(shown_beside) or "none of them"), display=False)
glue("summary_rows", len(table), display=False)

# %% [markdown]
# ## Every headline
#
# One row per headline, {glue:text}`summary_rows` in all. Values carry their interval
# ("mean ± std" over seeds, or a bootstrap confidence interval in brackets); the
# `interval` column says which. Profiles shown beside this one: {glue:text}`summary_beside_shown`
# (a profile whose results do not exist gets no column; a value measured in another
# setting names it).

# %%
table.set_index(["study", "quantity"]).style.set_properties(**{"text-align": "left"})

# %% [markdown]
# ## Ours against the sources
#
# Of these headlines, {glue:text}`summary_compared` have a numeric figure in a source.
# Each dot below is our number divided by the source's, so the dashed line is where they
# would agree; bars are our interval. The left labels give our setting, the right ones the
# source's figure and setting: read a dot far from the line together with both.

# %%
compared = summary.comparison_frame(profile, beside_profiles)
glue("summary_compared", int((compared["profile"] == profile).sum()), display=False)
fig = summary.comparison_figure(compared)

# %%
print(results.write_results("summary", profile, {
    "rows": table.to_dict("records"),
    "compared": compared.astype(object).where(compared.notna(), None).to_dict("records"),
}, started))
