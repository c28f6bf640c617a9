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
# # Did it reproduce?
#
# Every headline of this book carries its own rule for judging a re-run: counts and MACs
# must be equal; an estimate with a bootstrap interval over test images is compared through
# the interval of the *difference* between two runs and an equivalence margin (two one-sided
# tests); a mean over training seeds through the pooled standard error; a check, a resolved
# difference or an ordering must keep its finding; timings are reported, never judged.
# `python -m simplecnn verify RUN` applies them to any run (`make verify` re-runs this
# profile into a scratch folder first) and says, per finding, **reproduced**,
# **inconclusive** or **changed**; `--save NAME` commits the report beside the results, and
# this page shows every such report of the **{glue:text}`repro_profile`** profile:
# {glue:text}`repro_count` in all.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps

# %%
import time

from IPython.display import Markdown
from myst_nb import glue

from simplecnn.core.params import check as check_parameters
from simplecnn.core import present, results  # present: tables show whole cells
from simplecnn.core.device import use_device
from simplecnn.core.paths import results_root
from simplecnn.studies import reproducibility

started = time.time()
check_parameters("reproducibility", globals(), reproducibility.PARAMETERS)  # bad values stop here, before any work
use_device(device)  # nothing here computes on it; the results record it
docs = reproducibility.read_docs(profile)
reports = reproducibility.reports(profile)
glue("repro_profile", results.Plain(profile), display=False)
glue("repro_count", len(reports), display=False)

# %% [markdown]
# ## The run behind these pages
#
# Each chapter's results file records the commit, device, thread count and package versions
# that made it.

# %%
reproducibility.provenance_table(docs)

# %% [markdown]
# ## Verification reports
#
# One section per committed report, oldest first: what was compared with what, the tier
# (the same profile expects the same values within their uncertainty; another profile, the
# same findings), the verdicts counted per chapter, and every finding that did not simply
# reproduce, with the reason its rule gives.

# %%
for report in reports:
    display(Markdown(reproducibility.report_header(report)))  # noqa: F821 (IPython's display)
    display(reproducibility.verdict_table(report))  # noqa: F821
    display(reproducibility.judged_table(report))  # noqa: F821
if not reports:
    print(f"no verification report under {results_root() / profile / 'verify'} yet: "
          f"`python -m simplecnn verify RUN --save NAME` writes one")

# %%
latest = reports[-1] if reports else {}
out = {"reports": [{"name": r["name"], "counts": r["counts"], "tier": r["tier"]} for r in reports],
       "latest": {"name": latest.get("name"), "counts": latest.get("counts", {})}}
print(results.write_results("reproducibility", profile, out, started, reproducibility.headline(out)))
