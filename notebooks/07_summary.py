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
# they are set beside each other, never divided, unless they measure the same thing; the
# chapters say where and why.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
beside: str = "gpu,paper"  # profiles (comma-separated) shown beside this one's, each only where its results exist

# %%
import time

from IPython.display import Markdown

from simplecnn.core.params import check as check_parameters
from simplecnn.core import present, results
from simplecnn.core.device import use_device
from simplecnn.studies import summary

started = time.time()
check_parameters("summary", globals(), summary.PARAMETERS)  # bad values stop here, before any work
use_device(device)  # nothing here computes on it; the results record it
beside_profiles = summary.beside_list(profile, beside)
found = summary.headlines(profile)
others = {p: h for p in beside_profiles if (h := summary.headlines(p, required=False))}
compared = summary.comparison_frame(profile, beside_profiles)
present.glue_all({"summary_profile": profile,
                  "summary_beside": " and ".join(f"the {p} profile" for p in beside_profiles) or "no other profile",
                  "summary_beside_shown": ", ".join(others) or "none of them",
                  "summary_rows": sum(len(h) for h in found.values()),
                  "summary_compared": int((compared["profile"] == profile).sum())})

# %% [markdown]
# ## Every headline, study by study
#
# One table per study, {glue:text}`summary_rows` headlines in all. A value carries its
# interval ("mean ± std" over training seeds, or a bootstrap interval in brackets over the
# test images of one trained model); the next column says which. Profiles shown beside this
# one: {glue:text}`summary_beside_shown` (a profile whose results do not exist gets no
# column). The source's figure stands in its own column, and `ours ÷ source` is given only
# where both measure the same thing (metric, data set, split and reference model); the
# numbered notes under each table give the settings.

# %%
for study, rows in found.items():
    table, notes = summary.study_table(study, rows, {p: h.get(study, []) for p, h in others.items()})
    display(Markdown(f"**{study}**"))  # noqa: F821 (IPython's display)
    display(table)  # noqa: F821
    display(Markdown("\n".join(f"- {n}" for n in notes)))  # noqa: F821

# %% [markdown]
# ## Ours against the sources, where they measure the same thing
#
# Of these headlines, {glue:text}`summary_compared` measure what a source figure measures.
# Each dot is our number divided by the source's, so the dashed line is where they would
# agree; bars are our interval.

# %%
fig = summary.comparison_figure(compared)

# %%
out = {"rows": summary.headline_table(profile, beside_profiles).to_dict("records"),
       "compared": compared.astype(object).where(compared.notna(), None).to_dict("records")}
print(results.write_results("summary", profile, out, started, summary.headline(out)))
