"""What a chapter will compute, read from its parameters before it runs: every model it
trains or runs, at its real width, resolution and batch.

Each study's ``plan(params, upstream)`` lists its ``Loop``s. The runner turns them into the
expected minutes it prints before a run without a recorded cost (training images over the
img/s measured here), and the shape-and-memory check of the gpu and paper profiles runs each
loop forward and backward on meta tensors (``core.memory.fake_pass``): seconds,
where executing those profiles on this CPU took a quarter of an hour.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from torch import nn

DEFAULT_BUILDER = "simplecnn.core.models:build_model"


@dataclass(frozen=True)
class Loop:
    """One model a chapter trains (``images`` > 0: images seen over all epochs) or only
    runs (inference, attribution, a measured step), with what it needs to be rebuilt."""

    what: str  # what the chapter does with it, for messages
    model: str
    kwargs: dict = field(default_factory=dict)
    resolution: int = 32
    batch: int = 1
    images: int = 0
    classes: int = 10
    ema: bool = False
    builder: str = DEFAULT_BUILDER  # "package.module:function", called as function(model, classes, **kwargs)

    @property
    def trains(self) -> bool:
        return self.images > 0

    def build(self) -> nn.Module:
        """The model, freshly initialised ."""
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)(self.model, self.classes, **self.kwargs)

    def key(self) -> tuple:
        """What decides the model's cost: loops that share it are timed once."""
        return (self.builder, self.model, tuple(sorted((k, repr(v)) for k, v in self.kwargs.items())),
                self.resolution, self.batch, self.classes)


def loops_of(studies_plans: dict[str, list[Loop]]) -> list[tuple[str, Loop]]:
    """(study, loop) pairs in chapter order."""
    return [(study, loop) for study, loops in studies_plans.items() for loop in loops]
