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
# Every chapter wrote its headline numbers to `results/<profile>/<study>.json`. This page
# reads them all and sets them beside the sources' figures, for the
# **{glue:text}`summary_profile`** profile that built this book, with the `paper`
# profile's numbers where a GPU run produced them. A missing results file stops the build
# with the command that writes it. The sources measured other things at other scales
# (ImageNet top-5 for BagNet, 50 epochs for the limited ResNets, full-width models at
# 224 px for the cascade); the chapters say where and why the numbers differ.

# %% tags=["parameters"]
profile: str = "cpu"  # parameter profile that produced this run: smoke, cpu or paper
beside: str = "paper"  # profile whose results are shown beside this one's where they exist

# %%
import time

import pandas as pd
from myst_nb import glue

from simplecnn.core import results
from simplecnn.studies import summary

started = time.time()
glue("summary_profile", results.Plain(profile), display=False)
table = summary.headline_table(profile, beside)


def fmt(v):
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "—"
    return f"{v:,.3g}" if isinstance(v, float) else str(v)


shown = table.set_index(["study", "quantity"]).map(fmt)
shown.style.set_properties(**{"text-align": "left"})

# %%
print(results.write_results("summary", profile, {"rows": table.astype(object).where(table.notna(), None).to_dict("records")}, started))
