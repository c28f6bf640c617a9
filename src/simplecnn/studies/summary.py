"""The book's closing chapter: every study's headline numbers beside the sources' figures.

Each study states its headlines through its module's ``headline(results)`` (a list of
``core.results.Headline``), read from ``results/<profile>/<study>.json``. The main profile's
results must all exist (a missing file is an error naming the command that writes it); a
profile shown beside it gets a column only where some of its results exist.
"""

from __future__ import annotations

import importlib
import math
import textwrap
from collections.abc import Sequence
from numbers import Real
from types import ModuleType

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from simplecnn.core import params as P
from simplecnn.core.results import Headline, read_results

# study name (its results file) -> the module holding its ``headline()``; the pipeline's
# registry says the same (a test checks), but studies may not import the pipeline
STUDIES: dict[str, str] = {"data": "simplecnn.studies.data", "zoo": "simplecnn.studies.zoo",
                           "limited_resnets": "simplecnn.studies.limited", "patches": "simplecnn.studies.patches",
                           "cascade": "simplecnn.studies.cascade", "gradcam": "simplecnn.studies.gradcam",
                           "fusion": "simplecnn.studies.fusion"}
MISSING = "—"


def study_module(study: str) -> ModuleType:
    """The module of ``study`` (an unknown name is an error listing the known ones)."""
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; known: {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[study])


def study_headlines(study: str, results: dict, profile: str = "") -> list[Headline]:
    """``study``'s headlines from its results; a module without ``headline()``, or results
    it cannot read (written by older code), is an error saying so."""
    module = study_module(study)
    fn = getattr(module, "headline", None)
    if not callable(fn):
        raise NotImplementedError(f"{module.__name__} has no headline(results) -> list[Headline]; the summary "
                                  f"cannot state the {study} study's numbers until it has one")
    try:
        rows = list(fn(results))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"{module.__name__}.headline() cannot read the {study} results ({profile or '?'} profile): "
                         f"{type(exc).__name__}: {exc}; they may predate its code: re-run it (`python -m simplecnn "
                         f"run --profile {profile or '<profile>'} --only {study}`)") from exc
    bad = [r for r in rows if not isinstance(r, Headline)]
    if bad:
        raise TypeError(f"{module.__name__}.headline() returned {type(bad[0]).__name__}, not Headline")
    seen = [r.quantity for r in rows]
    dupes = sorted({q for q in seen if seen.count(q) > 1})
    if dupes:
        raise ValueError(f"{module.__name__}.headline() repeats quantities {dupes}: each must be unique")
    return rows


def headlines(profile: str, studies: Sequence[str] | None = None, required: bool = True) -> dict[str, list[Headline]]:
    """Study -> its headlines for ``profile``: those the run stored with its results (as the
    study's ``headline()`` stated them then), else the current ``headline()`` of its results.
    ``required``: a missing results file is an error naming the fix (``read_results``);
    otherwise that study is left out."""
    out = {}
    for study in studies or STUDIES:
        try:
            doc = read_results(study, profile)
        except FileNotFoundError:
            if required:
                raise
            continue
        out[study] = ([Headline(**h) for h in doc["headlines"]] if "headlines" in doc
                      else study_headlines(study, doc["results"], profile))
    return out


def is_number(x: object) -> bool:
    """A real, finite number (bools and strings are not)."""
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(float(x))


def format_number(x: object) -> str:
    """Four significant figures, thousands separated; integers exact; text as it is."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    if not is_number(x):
        return str(x)
    if isinstance(x, int) or (float(x).is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def interval_decimals(half_width: float) -> int:
    """Decimals that show ``half_width`` to one significant figure (two when it starts with 1)."""
    exponent = math.floor(math.log10(half_width))
    leading = round(half_width / 10 ** exponent)
    return min(8, max(0, -exponent + (1 if leading < 2 else 0)))


def format_value(h: Headline) -> str:
    """``h.value`` with its interval: "75.2 ± 0.4" where ``h.interval`` says ± (mean ± std),
    "0.743 [0.731, 0.755]" for other intervals (a CI), the value alone where there is none."""
    if not is_number(h.value) or not (is_number(h.low) and is_number(h.high)) or h.high <= h.low:
        return format_number(h.value)
    d = interval_decimals((h.high - h.low) / 2)
    if "±" in h.interval:
        return f"{h.value:.{d}f} ± {(h.high - h.low) / 2:.{d}f}"
    return f"{h.value:.{d}f} [{h.low:.{d}f}, {h.high:.{d}f}]"


def _beside_cell(h: Headline | None, main: Headline | None) -> str:
    if h is None:
        return MISSING
    differs = main is not None and h.setting and h.setting != main.setting
    return format_value(h) + (f" ({h.setting})" if differs else "")


def beside_list(profile: str, beside_profiles: Sequence[str] | str) -> list[str]:
    """``beside_profiles`` (a list or comma-separated text) without blanks, repeats or ``profile``."""
    if isinstance(beside_profiles, str):
        beside_profiles = beside_profiles.split(",")
    return [p for p in dict.fromkeys(p.strip() for p in beside_profiles) if p and p != profile]


def study_table(study: str, rows: list[Headline], others: dict[str, list[Headline]] | None = None
                ) -> tuple[pd.DataFrame, list[str]]:
    """One study's headlines as a table a laptop screen holds: quantity, our value with its
    interval, what the interval covers, the value of each other profile where it ran, the
    source's figure, and ``ours ÷ source`` only where the two measure the same thing
    (``Headline.comparable``). Settings go to the returned notes (numbered, the table's
    ``note`` column points at them)."""
    notes: list[str] = []
    records = []
    for h in rows:
        text = h.setting + (f"; source: {h.source_setting}" if h.source_setting else "")
        if text and text not in notes:
            notes.append(text)
        ratio = (format_number(h.value / h.source) if h.comparable and is_number(h.value) and is_number(h.source)
                 and h.source != 0 else "")
        row = {"quantity": h.quantity, "value": format_value(h), "interval covers": h.interval or MISSING}
        for p, found in (others or {}).items():
            row[p] = _beside_cell({x.quantity: x for x in found}.get(h.quantity), h)
        row |= {"source": format_number(h.source) if h.source is not None else MISSING,
                "goal": format_number(h.goal) if h.goal is not None else "", "ours ÷ source": ratio,
                "note": notes.index(text) + 1 if text else ""}
        records.append(row)
    return pd.DataFrame(records).set_index("quantity"), [f"[{k}] {n}" for k, n in enumerate(notes, 1)]


def headline_table(profile: str, beside_profiles: Sequence[str] | str = ()) -> pd.DataFrame:
    """Every headline of every study in one long table (for the results file): study,
    quantity, setting, value, interval, each other profile's value, source and its setting,
    and whether the two are comparable."""
    main = headlines(profile)
    others = {p: headlines(p, required=False) for p in beside_list(profile, beside_profiles)}
    others = {p: found for p, found in others.items() if found}  # a profile never run gets no column
    rows = []
    for study, ours in main.items():
        by_q = {h.quantity: h for h in ours}
        extra = [h for found in others.values() for h in found.get(study, []) if h.quantity not in by_q]
        for q in list(by_q) + list(dict.fromkeys(h.quantity for h in extra)):
            h = by_q.get(q)
            ref = h or next(x for x in extra if x.quantity == q)
            row = {"study": study, "quantity": q, "setting": ref.setting, profile: format_value(h) if h else MISSING,
                   "interval": h.interval if h else ""}
            for p, found in others.items():
                row[p] = _beside_cell({x.quantity: x for x in found.get(study, [])}.get(q), h)
            row |= {"source": format_number(ref.source), "source setting": ref.source_setting,
                    "comparable": bool(ref.comparable), "goal": ref.goal}
            rows.append(row)
    return pd.DataFrame(rows, columns=["study", "quantity", "setting", profile, "interval", *others, "source",
                                       "source setting", "comparable", "goal"])


def comparison_frame(profile: str, beside_profiles: Sequence[str] | str = ()) -> pd.DataFrame:
    """Numeric rows for the figure: every headline (of ``profile`` and, where run,
    ``beside_profiles``) that measures what its source figure measures (``comparable``: metric,
    data set, split and reference model alike), with ``ratio`` = ours / source and its
    interval likewise (NaN where there is none). Unlike pairs never get a ratio."""
    found = {profile: headlines(profile)}
    found.update({p: headlines(p, required=False) for p in beside_list(profile, beside_profiles)})
    rows = []
    for p, studies in found.items():
        for study, hs in studies.items():
            for h in hs:
                if not (h.comparable and is_number(h.value) and is_number(h.source) and h.source != 0):
                    continue
                has_ci = is_number(h.low) and is_number(h.high)
                rows.append({"study": study, "quantity": h.quantity, "setting": h.setting, "profile": p,
                             "value": float(h.value), "low": float(h.low) if has_ci else math.nan,
                             "high": float(h.high) if has_ci else math.nan, "interval": h.interval,
                             "source": float(h.source), "source_setting": h.source_setting,
                             "ratio": h.value / h.source,
                             "ratio_low": h.low / h.source if has_ci else math.nan,
                             "ratio_high": h.high / h.source if has_ci else math.nan})
    return pd.DataFrame(rows, columns=["study", "quantity", "setting", "profile", "value", "low", "high", "interval",
                                       "source", "source_setting", "ratio", "ratio_low", "ratio_high"])


def comparison_figure(frame: pd.DataFrame, width: int = 46) -> plt.Figure:
    """A dot plot, one line per headline: ours ÷ the source's figure (1 = the source's
    number), with its interval, one colour per profile; each line names our setting on
    the left and the source's raw figure and setting on the right."""
    labels = list(dict.fromkeys(zip(frame["study"], frame["quantity"])))
    fig, ax = plt.subplots(figsize=(11, 0.55 * max(2, len(labels)) + 1.2))
    if frame.empty:
        ax.text(0.5, 0.5, "no headline measures what a source figure measures", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    ypos = {key: i for i, key in enumerate(labels)}
    df = frame.assign(y=[ypos[(s, q)] for s, q in zip(frame["study"], frame["quantity"])])
    profiles = list(dict.fromkeys(df["profile"]))
    offsets = {p: (k - (len(profiles) - 1) / 2) * 0.2 for k, p in enumerate(profiles)}
    df["y"] = df["y"] + df["profile"].map(offsets)
    palette = dict(zip(profiles, sns.color_palette("deep", len(profiles))))
    ax.axvline(1.0, color="0.3", lw=1, ls="--", zorder=0)
    for p, part in df.groupby("profile", sort=False):
        ci = part.dropna(subset=["ratio_low", "ratio_high"])
        ax.errorbar(ci["ratio"], ci["y"], xerr=[ci["ratio"] - ci["ratio_low"], ci["ratio_high"] - ci["ratio"]],
                    fmt="none", ecolor=palette[p], elinewidth=1.5, capsize=3)
    sns.scatterplot(data=df, x="ratio", y="y", hue="profile", style="profile", palette=palette, s=70, ax=ax,
                    zorder=3)
    positive = bool((df[["ratio", "ratio_low", "ratio_high"]].stack() > 0).all())
    if positive:
        ax.set_xscale("log")
    first = df.drop_duplicates(["study", "quantity"]).set_index(["study", "quantity"])
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([textwrap.fill(f"{s}: {q}, {first.loc[(s, q), 'setting']}", width) for s, q in labels],
                       fontsize=8)
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(len(labels)))
    right.set_yticklabels([textwrap.fill(f"source: {format_number(first.loc[(s, q), 'source'])}, "
                                         f"{first.loc[(s, q), 'source_setting']}", width) for s, q in labels],
                          fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_ylabel("")
    ax.set_xlabel("ours ÷ the source's figure (dashed line: equal; bars: our interval)"
                  + (", log scale" if positive else ""))
    ax.legend(title="profile", loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def headline(results: dict) -> list[Headline]:
    """The closing chapter's own finding: how many headlines measure what a source figure
    measures (an exact count: it follows from the code), and how many of those with an
    interval hold the source's figure inside it (reported: a count of agreements, not a test)."""
    compared = results.get("compared", [])
    with_interval = [r for r in compared if is_number(r.get("low")) and is_number(r.get("high"))]
    inside = sum(r["low"] <= r["source"] <= r["high"] for r in with_interval)
    return [Headline("headlines compared like with like with a source", len(compared), interval="exact count",
                     setting="same metric, data set, split and reference model", rule="exact"),
            Headline("source figure inside our interval", inside, interval=f"count, of {len(with_interval)} "
                     "compared headlines with an interval", setting="like-with-like comparisons")]


def plan(params: dict, upstream: dict | None = None) -> list:
    """This chapter trains and runs no model."""
    return []


PARAMETERS = {"device": P.device()}
"""Every parameter's allowed values (``core.params``)."""
