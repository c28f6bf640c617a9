"""The registry of studies: one entry per chapter, with its notebook, the studies whose
results it reads (declared, not guessed) and the headline keys its results must hold.

The runner orders chapters and fingerprints them from this table; sweeps and tests read
the headline keys from it. Adding a chapter means adding one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from simplecnn.core.paths import NOTEBOOKS


@dataclass(frozen=True)
class Study:
    """A chapter: ``name`` keys its results file, ``module`` holds its methods and ``headline()``."""

    name: str
    notebook: str  # file name under notebooks/
    module: str  # the study's module, imported lazily
    upstream: tuple[str, ...] = ()  # studies whose results this chapter reads
    headline_keys: tuple[str, ...] = ()  # top-level keys of its results json
    inputs: tuple[str, ...] = ()  # folders under the committed results/<profile>/ whose files it reads

    @property
    def path(self) -> Path:
        return NOTEBOOKS / self.notebook

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


STUDIES: dict[str, Study] = {s.name: s for s in [
    Study("data", "00_data.py", "simplecnn.studies.data", (), ("cifar10", "imagenette")),
    Study("zoo", "01_zoo.py", "simplecnn.studies.zoo", (), ("resnet18", "resnet50", "vgg16")),
    Study("limited_resnets", "02_limited_resnets.py", "simplecnn.studies.limited", (),
          ("designs", "augmentation", "rank_corr")),
    Study("patches", "03_patches.py", "simplecnn.studies.patches", (), ("methods", "memory", "ceiling_acc")),
    Study("cascade", "04_cascade.py", "simplecnn.studies.cascade", (), ("stages", "targets", "report")),
    Study("gradcam", "05_gradcam.py", "simplecnn.studies.gradcam", ("patches",),
          ("deletion_auc", "insertion_auc", "randomisation_rank_corr", "bagnet_agreement")),
    Study("fusion", "06_fusion.py", "simplecnn.studies.fusion", ("patches",), ("classifiers", "best")),
    Study("summary", "07_summary.py", "simplecnn.studies.summary",
          ("data", "zoo", "limited_resnets", "patches", "cascade", "gradcam", "fusion"), ("rows",)),
    Study("reproducibility", "08_reproducibility.py", "simplecnn.studies.reproducibility",
          ("data", "zoo", "limited_resnets", "patches", "cascade", "gradcam", "fusion", "summary"), ("reports",),
          ("verify",)),
    Study("costs", "09_costs.py", "simplecnn.studies.costs",
          ("data", "zoo", "limited_resnets", "patches", "cascade", "gradcam", "fusion", "summary",
           "reproducibility"), ("chapters", "total_cold_min")),
]}


def get(name: str) -> Study:
    """The study called ``name``; an unknown name is an error listing the known ones."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; known studies: {', '.join(STUDIES)}")
    return STUDIES[name]


def by_notebook(notebook: Path | str) -> Study:
    """The study whose chapter is ``notebook`` (a path or file name)."""
    name = Path(notebook).name
    for study in STUDIES.values():
        if study.notebook == name:
            return study
    raise ValueError(f"{notebook} is not a chapter of the book; chapters: {[s.notebook for s in STUDIES.values()]}")


def ordered(names: list[str] | None = None) -> list[Study]:
    """``names`` (default: all) in an order where every study comes after its upstream ones."""
    wanted = [get(n) for n in (names or STUDIES)]
    done: list[Study] = []

    def visit(study: Study, stack: tuple[str, ...] = ()) -> None:
        if study in done:
            return
        if study.name in stack:
            raise ValueError(f"circular upstream declaration: {' -> '.join((*stack, study.name))}")
        for up in study.upstream:
            if get(up) in wanted:
                visit(get(up), (*stack, study.name))
        done.append(study)

    for study in sorted(wanted, key=lambda s: s.notebook):
        visit(study)
    return done
