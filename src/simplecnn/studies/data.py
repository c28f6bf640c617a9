"""The data chapter: which images every study sees, and how they are split.

Loading and splitting are core (``simplecnn.core.data``); this module only states the
chapter's headline: the split sizes that every later number is computed on.
"""

from __future__ import annotations

from simplecnn.core.results import Headline


def headline(results: dict) -> list[Headline]:
    """Images per split for each data set (no uncertainty: these are counts)."""
    return [Headline(f"{name} images (train / val / test)", f"{s['train']:,} / {s['val']:,} / {s['test']:,}",
                     setting=f"{name}, stratified seeded splits") for name, s in results.items()]
