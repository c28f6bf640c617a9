"""What the chapters share to show their numbers: an interval as text, a column of them,
glue of many values at once, and tables whose intervals say what they cover (importing
this module sets pandas to show every table cell whole).

Chapters call these instead of defining helpers of their own, so every page formats an
interval alike and a notebook's cells stay calls, tables and figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from simplecnn.core.results import Plain

MISSING = "—"

# A chapter's tables show whole cells: pandas cuts text at 50 characters by default, which
# clipped what an interval covers ("… (one t...") and why a verdict was reached.
pd.set_option("display.max_colwidth", None)


def _finite(x: object) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def interval(value: object, low: object = None, high: object = None, scale: float = 1.0,
             fmt: str = "{:.3f}") -> str:
    """"0.743 [0.731, 0.755]": a value with its interval (the value alone where there is
    none; "—" where there is no value)."""
    if not _finite(value):
        return MISSING
    text = fmt.format(float(value) * scale)
    if _finite(low) and _finite(high):
        text += f" [{fmt.format(float(low) * scale)}, {fmt.format(float(high) * scale)}]"
    return text


def interval_of(d: Mapping, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    """``interval`` of a dict holding ``value``, ``low`` and ``high`` (as the results store them)."""
    return interval(d.get("value"), d.get("low"), d.get("high"), scale, fmt)


def interval_column(frame: pd.DataFrame, key: str, scale: float = 1.0, fmt: str = "{:.3f}") -> pd.Series:
    """``interval`` of each row's ``key`` with its ``key_low`` and ``key_high`` columns."""
    return frame.apply(lambda r: interval(r.get(key), r.get(f"{key}_low"), r.get(f"{key}_high"), scale, fmt), axis=1)


def glue_all(values: Mapping[str, object]) -> None:
    """Glue every value for the prose (``display=False``); strings are pasted without quotes."""
    from myst_nb import glue

    for key, value in values.items():
        glue(key, Plain(value) if isinstance(value, str) else value, display=False)


def with_dashes(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing cells shown as "—" (object columns), for tables of mixed rows."""
    return frame.astype(object).where(frame.notna(), MISSING)


def checks_frame(rows: list[dict]) -> pd.DataFrame:
    """A table of findings (``core.findings``): the comparison, the difference with its
    interval, what the interval covers, and the verdict in words."""
    if not rows:
        return pd.DataFrame(columns=["comparison", "metric", "difference", "interval covers", "finding"])
    return pd.DataFrame([{"comparison": f"{r['a']} − {r['b']}", "metric": r.get("metric", ""),
                          "difference": interval(r["diff"], r["low"], r["high"], fmt="{:+.3g}"),
                          "interval covers": r.get("covers", ""), "finding": r["status"]} for r in rows])
