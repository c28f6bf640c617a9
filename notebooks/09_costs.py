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
# # What it costs
#
# What each chapter of the **{glue:text}`costs_profile`** book costs to compute, from the
# provenance its results record: the chapter's wall time in the run that built these pages,
# the seconds of the computations behind every cached result it loaded instead (each cache
# entry records its own), and their sum, the chapter's cost from an empty cache. So a book
# rebuilt from a warm cache in minutes still says what a cold build costs:
# {glue:text}`costs_total:.0f` minutes for the whole book (an entry several chapters load,
# such as the patch chapter's CNN that Grad-CAM reads again, counted once), on
# {glue:text}`costs_device`. `make book` reads the same records before it starts and prints,
# chapter by chapter, what this run will take given what the cache already holds.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu, gpu or paper
device: str = "auto"  # compute device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
others: str = "gpu,paper"  # profiles whose recorded costs are shown too, where their results exist

# %%
import time

from myst_nb import glue

from simplecnn.core.params import check as check_parameters
from simplecnn.core import results
from simplecnn.core.device import use_device
from simplecnn.studies import costs

started = time.time()
check_parameters("costs", globals(), costs.PARAMETERS)  # bad values stop here, before any work
use_device(device)  # nothing here computes on it; the results record it
docs = costs.read_docs(profile)
table = costs.cost_table(docs)
runs = costs.run_table(docs)
glue("costs_profile", results.Plain(profile), display=False)
glue("costs_total", costs.results_dict(table, runs)["total_cold_min"], display=False)
glue("costs_device", results.Plain("; ".join(runs["device"].astype(str).unique())), display=False)
table.style.format(precision=1)

# %% [markdown]
# ## Where it was measured
#
# The device, threads, commit and package versions of the run; chapters run in one setting
# share a row.

# %%
runs

# %% [markdown]
# ## The other profiles
#
# The `gpu` and `paper` profiles are meant for a GPU. Their recorded costs appear here once
# a run of theirs is committed under `results/<profile>/` ({glue:text}`costs_others`).
# Until then, `benchmarks/profile_hours.py --save` estimates their training hours from the
# images each training loop sees and the img/s measured for its model, batch and resolution
# on the machine that ran it (evaluation not counted); the table shows each estimate that
# is committed, with that machine ({glue:text}`costs_estimated`). Run it on your own
# machine before you start a profile there.

# %%
other = {p.strip(): costs.read_docs(p.strip()) for p in others.split(",") if p.strip()}
other = {p: costs.cost_table(d) for p, d in other.items() if d}
hours = costs.estimates([p.strip() for p in others.split(",") if p.strip()])
glue("costs_others", results.Plain(", ".join(f"{p}: {t.loc['total', 'cold (min)']:.0f} min" for p, t in other.items())
                                   or "none committed yet"), display=False)
glue("costs_estimated", results.Plain("; ".join(f"{c}: {hours.loc['total', c]:.1f} h" for c in hours.columns)
                                      or "none committed yet"), display=False)
for p, t in other.items():
    print(f"{p} profile")
    display(t.style.format(precision=1))  # noqa: F821 (IPython's display)
hours.style.format(precision=2)

# %%
out = costs.results_dict(table, runs)
print(results.write_results("costs", profile, out, started, costs.headline(out)))
