"""What each chapter costs: from the results' provenance, per chapter, this run's wall time,
the seconds of the computations behind every cache entry it loaded (``core.cache``), and
their sum, what the chapter costs from an empty cache on the machine that ran it; with the
device, commit and package versions of that run. A run from a warm cache thus still says
what a cold one costs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from simplecnn.core import params as P
from simplecnn.core.paths import results_root
from simplecnn.core.results import Headline
from simplecnn.studies.reproducibility import read_docs

__all__ = ["read_docs", "cost_table", "run_table", "estimates", "results_dict", "headline", "plan"]


def cost_table(docs: dict[str, dict]) -> pd.DataFrame:
    """Per chapter, in minutes: this run's wall time, the computations behind the cache
    entries it loaded, and their sum, what the chapter costs on its own from an empty cache;
    the total row is the book's (a shared entry counted once)."""
    rows = []
    for study, doc in docs.items():
        p = doc.get("provenance", {})
        wall = float(p.get("wall_time_s", float("nan")))
        cached = float(p.get("cached_seconds", float("nan")))
        cold = float(p.get("cold_seconds", wall + cached))
        rows.append({"chapter": study, "this run (min)": wall / 60, "loaded from the cache (min)": cached / 60,
                     "cold (min)": cold / 60})
    columns = ["chapter", "this run (min)", "loaded from the cache (min)", "cold (min)"]
    table = pd.DataFrame(rows, columns=columns).set_index("chapter")
    if len(table):
        book = _book_total(docs, table)  # from the chapters' rows, before the total row joins them
        table.loc["total"] = table.sum(numeric_only=True)
        table.loc["total", ["loaded from the cache (min)", "cold (min)"]] = book
    return table


def _book_total(docs: dict[str, dict], table: pd.DataFrame) -> tuple[float, float]:
    """Minutes loaded from the cache by the book as a whole, and its cold cost: an entry
    several chapters loaded (the patch chapter's CNN, read again by Grad-CAM) counts once,
    and not at all when a chapter of this run computed it. Results without the entry lists
    (older runs) fall back to the chapters' sum."""
    caches = [d.get("provenance", {}).get("cache") for d in docs.values()]
    if any(c is None for c in caches):
        return float(table["loaded from the cache (min)"].sum()), float(table["cold (min)"].sum())
    computed = {name for c in caches for name in c.get("computed", {})}
    loaded = {name: s for c in caches for name, s in c.get("loaded", {}).items() if name not in computed}
    minutes = sum(loaded.values()) / 60
    return minutes, float(table["this run (min)"].sum()) + minutes



def run_table(docs: dict[str, dict]) -> pd.DataFrame:
    """Where and with what the costs were measured: device, threads, commit and the main
    package versions, one row per distinct setting (usually one)."""
    rows = []
    for study, doc in docs.items():
        p = doc.get("provenance", {})
        packages = p.get("packages", {})
        rows.append({"device": p.get("device", "?"), "threads": p.get("threads", "?"),
                     "commit": str(p.get("git_commit", "?"))[:12], "python": p.get("python", "?"),
                     **{k: packages.get(k, "?") for k in ("torch", "torchvision", "numpy")}, "chapter": study})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    keys = [c for c in table.columns if c != "chapter"]
    return table.groupby(keys, sort=False)["chapter"].agg(", ".join).reset_index()


def estimates(profiles: Sequence[str], root: Path | None = None) -> pd.DataFrame:
    """The training hours ``benchmarks/profile_hours.py --save`` estimated for other profiles
    (``results/<profile>/estimate.json``): one column per profile, one row per chapter, with
    the device they were measured on. Profiles without an estimate are left out."""
    columns, devices = {}, {}
    for profile in profiles:
        path = (root or results_root()) / profile / "estimate.json"
        if not path.exists():
            continue
        try:
            doc = json.loads(path.read_text())
            columns[profile] = {**doc["hours"], "total": doc["total_h"]}
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path} is not an estimate ({type(exc).__name__}: {exc}); "
                             f"re-run benchmarks/profile_hours.py --profile {profile} --save") from None
        devices[profile] = f"{doc.get('device', '?')}, {doc.get('threads', '?')} threads, torch {doc.get('torch', '?')}"
    table = pd.DataFrame(columns)
    if table.empty:
        return table
    table = table.reindex([*[i for i in table.index if i != "total"], "total"])
    table.columns = [f"{p} (h on {devices[p]})" for p in table.columns]
    table.index.name = "chapter"
    return table


def results_dict(table: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """The chapter's results json: each chapter's cold and wall minutes, the book's total."""
    return {"device": "; ".join(runs["device"].astype(str).unique()) if len(runs) else "?",
            "chapters": {s: {"cold_min": float(r["cold (min)"]), "wall_min": float(r["this run (min)"])}
                         for s, r in table.drop("total", errors="ignore").iterrows()},
            "total_cold_min": float(table.loc["total", "cold (min)"]) if "total" in table.index else 0.0}


def headline(results: dict) -> list[Headline]:
    """Each chapter's cold cost and the book's (timings: reported, never judged)."""
    rows = [Headline(f"{study}: cold cost (min)", r["cold_min"], interval="one run",
                     setting=f"wall time + cached computations, {results.get('device', '?')}")
            for study, r in results.get("chapters", {}).items()]
    if "total_cold_min" in results:
        rows.append(Headline("the book: cold cost (min)", results["total_cold_min"], interval="one run",
                             setting=f"every chapter from an empty cache, {results.get('device', '?')}"))
    return rows


def plan(params: dict, upstream: dict | None = None) -> list:
    """This chapter trains and runs no model."""
    return []


PARAMETERS = {"device": P.device()}
"""Every parameter's allowed values (``core.params``)."""
