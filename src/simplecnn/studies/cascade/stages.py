"""The cascade's stages: registered models at growing resolutions, each trained through the
core with a recipe's regimen, with its real MACs and parameters; and the chapter's plan."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from simplecnn.core.cache import Cache
from simplecnn.core.complexity import macs
from simplecnn.core.data import DataSplits
from simplecnn.core.models import build_model, count_params
from simplecnn.core.plan import Loop
from simplecnn.core.recipes import recipe
from simplecnn.core.train import Trained, train_model


@dataclass(frozen=True)
class Stage:
    """One cascade stage: a registered model at a resolution, with its training budget."""

    model: str
    resolution: int
    width: float = 1.0
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.2
    extra: dict = field(default_factory=dict)  # further model arguments

    @property
    def name(self) -> str:
        return f"{self.model}@{self.resolution}"

    def model_kwargs(self) -> dict:
        return {"width": self.width, **self.extra}


def train_stage(stage: Stage, data: DataSplits, recipe_name: str = "fast", seed: int = 0,
                cache: Cache | None = None, label_smoothing: float = 0.0, cpu_bf16: bool = False,
                like: str | None = None) -> Trained:
    """Train a stage through the core with a recipe's regimen (epochs, batch and lr from the
    stage). ``label_smoothing`` defaults to none: smoothing caps every training target's
    probability below one, so the exits' confidences come out under-confident by
    construction, and a threshold on them no longer means what it says. No validation pass
    after each epoch: the chapter scores each stage once, after training, and the passes
    (about a minute of the cpu profile) change no weight."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
    chosen = recipe(recipe_name, data.name, like, stage.resolution, epochs=stage.epochs, batch_size=stage.batch_size,
                    lr=stage.lr, seed=seed,
                    label_smoothing=label_smoothing, cpu_bf16=cpu_bf16,
                    tta=False)  # one forward pass per image, so that the MACs counted are the MACs spent
    # the stage trains its own model: a whitening stem belongs to the recipe's (FastNet's), not to a ResNet stage
    config = replace(chosen.config, whiten=chosen.config.whiten and chosen.model == stage.model)
    return train_model(stage.model, data, config, stage.model_kwargs(), cache=cache, track_val=False)


def stage_macs(stage: Stage, num_classes: int) -> int:
    """Multiply-accumulates of one image at the stage's own input size (ptflops)."""
    return macs(build_model(stage.model, num_classes, **stage.model_kwargs()), stage.resolution)


def stage_params(stage: Stage, num_classes: int) -> int:
    return count_params(build_model(stage.model, num_classes, **stage.model_kwargs()))


def plan(params: dict, upstream: dict | None = None) -> list[Loop]:
    """Every model the chapter trains or runs with ``params``: each stage trained with the
    recipe's regimen, then scored in batches (512 for logits, 256 deployed) and one image
    at a time (latency); the report's full-width models are counted, never run."""
    from simplecnn.core.data import split_sizes
    n = params["train_size"] or split_sizes(params["dataset"], params["val_fraction"])["train"]
    loops = []
    for s in map(lambda d: Stage(**d), params["stages"]):
        config = recipe(params["recipe"], params["dataset"], like=params.get("like"), resolution=s.resolution).config
        loops += [Loop(f"stage {s.name}", s.model, s.model_kwargs(), s.resolution, s.batch_size, n * s.epochs,
                       ema=bool(config.ema)),
                  Loop(f"stage {s.name}, scoring", s.model, s.model_kwargs(), s.resolution, 512),
                  Loop(f"stage {s.name}, one image at a time", s.model, s.model_kwargs(), s.resolution, 1)]
    return loops
