"""The one training loop of every study, its evaluation, and cached training.

Data are uint8 tensors in memory; each step takes a batch by index, augments it on the
tensor, converts to float and runs the model in channels_last (mixed precision on CUDA).
The learning-rate schedule steps per batch. After every epoch a checkpoint (weights,
optimiser, schedule, random-generator states, history) is written atomically, so an
interrupted run resumes where it stopped and ends with the weights an uninterrupted run
would have: on the CPU the same seed gives the same weights.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from simplecnn.core import distributed, memory, progress, sharing
from simplecnn.core.sharing import ThreadGovernor
from simplecnn.core.augment import build_pipeline, used_functions
from simplecnn.core.cache import WEIGHTS, Cache, modules_of, spec_key, tensor_digest
from simplecnn.core.io import atomic_torch_save
from simplecnn.core.data import DataSplits, ImageSet
from simplecnn.core.device import device_key, resolve_device
from simplecnn.core.whitening import patch_whitening_
from simplecnn.core.models import MODELS, Normalize, build_model
from simplecnn.core.paths import dry_run

SCHEDULES = ("onecycle", "cosine", "multistep", "constant")
DRY_RUN_BATCH = 4  # images per process and step in a dry run (the real batch is estimated, not run)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run besides model and data (part of cache keys)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup: float = 0.25  # fraction of steps spent warming up (onecycle, cosine)
    milestones: tuple[float, ...] = ()  # epochs (fractions allowed) at which multistep multiplies the rate by gamma
    gamma: float = 0.1
    label_smoothing: float = 0.1
    augment: tuple[str, ...] = ("crop", "flip")
    channels_last: bool = True
    eval_batch_size: int = 512
    seed: int = 0
    ema: float = 0.0  # decay of an exponential moving average of the weights per step; 0: off
    tta: bool = False  # evaluate on each image and its mirror, averaging the logits
    whiten: bool = False  # initialise the model's ``whiten`` conv from training patches (frozen)
    compile: bool = False  # torch.compile the training step (repays its ~1 min only on long runs)
    cpu_bf16: bool = False  # bf16 autocast on the CPU too (CUDA always uses it); pays on CPUs with AVX512-BF16/AMX
    low_res_epochs: int = 0  # progressive resizing: the first epochs see the batch downscaled by low_res_scale
    low_res_scale: float = 0.75  # side of those epochs' images over the data's (FFCV's low-resolution start)

    def __post_init__(self):
        object.__setattr__(self, "augment", tuple(self.augment))
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig: unknown schedule {self.schedule!r}; use one of {SCHEDULES}")
        bounds = [("epochs", self.epochs >= 1, "a whole number >= 1"),
                  ("batch_size", self.batch_size >= 2, "a whole number >= 2 (batch norm needs two images)"),
                  ("eval_batch_size", self.eval_batch_size >= 1, "a whole number >= 1"),
                  ("lr", self.lr > 0, "> 0"), ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
                  ("weight_decay", self.weight_decay >= 0, ">= 0"), ("warmup", 0 <= self.warmup <= 1, "in [0, 1]"),
                  ("gamma", self.gamma > 0, "> 0"), ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
                  ("ema", 0 <= self.ema < 1, "in [0, 1) (0: off)"),
                  ("low_res_epochs", 0 <= self.low_res_epochs < self.epochs, "in [0, epochs): the last epoch "
                                                                              "trains at full resolution"),
                  ("low_res_scale", 0 < self.low_res_scale <= 1, "in (0, 1]"),
                  ("milestones", all(0 < m <= self.epochs for m in self.milestones), "epochs in (0, epochs]")]
        for name, ok, allowed in bounds:
            if not ok:
                raise ValueError(f"TrainConfig: {name} must be {allowed}, got {getattr(self, name)!r}")
        build_pipeline(self.augment)  # fail now on an unknown augmentation

    def side(self, epoch: int, resolution: int) -> int:
        """The image side epoch ``epoch`` (from 0) trains at: ``low_res_scale`` of the data's
        in the first ``low_res_epochs`` epochs (at least 8 px), the data's after."""
        return resolution if epoch >= self.low_res_epochs else max(8, round(resolution * self.low_res_scale))


def default_device() -> torch.device:
    """The chapter's device (``core.device.use_device``), else CUDA, MPS or the CPU."""
    return resolve_device("auto")


def make_scheduler(opt: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """Per-step schedules: ``onecycle`` is a triangle (linear warm-up from lr/25 to lr, then
    linear decay to zero, as airbench does), ``cosine`` a linear warm-up then a cosine."""
    total = config.epochs * steps_per_epoch
    warm = max(1, int(config.warmup * total))

    def onecycle(s: int) -> float:
        if s < warm:
            return 1 / 25 + (1 - 1 / 25) * s / warm
        return max(0.0, (total - s) / max(1, total - warm))

    def cosine(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm))))

    if config.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, [round(m * steps_per_epoch) for m in config.milestones],
                                                    config.gamma)
    shape = {"onecycle": onecycle, "cosine": cosine, "constant": lambda s: 1.0}[config.schedule]
    return torch.optim.lr_scheduler.LambdaLR(opt, shape)


def to_input(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 batch to float in [0, 1] on ``device``."""
    x = x.to(device, non_blocking=True).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def resized(x: torch.Tensor, side: int) -> torch.Tensor:
    """A float batch at ``side`` px (bilinear, antialiased: progressive resizing's smaller
    epochs), in its memory format; unchanged when it already is."""
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    channels_last = x.is_contiguous(memory_format=torch.channels_last)
    out = nn.functional.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def autocast(device: torch.device, cpu: bool = False):
    """bf16 autocast: always on CUDA; on the CPU only when asked (``TrainConfig.cpu_bf16``),
    since it pays only where the processor has bf16 dot products."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" or cpu)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512, device: torch.device | None = None,
            channels_last: bool = True, tta: bool = False, bf16: bool = False) -> torch.Tensor:
    """Logits (float32, CPU) of ``model`` for uint8 ``images``, in eval mode.

    With ``tta`` each image's logits are averaged with its mirror image's. ``bf16``: autocast
    on the CPU too (about twice as fast here); for a prediction's class, not for scores whose
    small differences matter (the logits are rounded to bf16's 8 bits)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    batches = range(0, len(images), batch_size)
    for i in batches:
        x = to_input(images[i:i + batch_size], device, channels_last)
        with autocast(device, bf16):
            logits = model(x).float()
            if tta:
                logits = (logits + model(x.flip(3)).float()) / 2
        out.append(logits.cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def fit(model: nn.Module, train: ImageSet, config: TrainConfig, val: ImageSet | None = None,
        checkpoint: Path | None = None, device: torch.device | None = None,
        on_epoch_end: Callable[[dict], None] | None = None, label: str = "model") -> list[dict]:
    """Train ``model`` in place; returns one history row per epoch (loss, accuracies, lr, time).

    With ``checkpoint``, state is saved there after each epoch and a run finding it resumes.
    Each epoch ends with a progress line naming ``label`` (``core.progress``).
    """
    device = device or default_device()
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:  # frozen weights (whitening, BN scales) stay out of the optimiser
            (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    n = len(train)
    steps = n // config.batch_size if n >= config.batch_size else 1
    batch = min(config.batch_size, n)
    rank, world = distributed.rank_and_world()
    if batch % world:
        raise ValueError(f"batch {batch} must be divisible by the {world} processes, so that each takes an equal share")
    sched = make_scheduler(opt, config, steps)
    if dry_run():  # real model and resolution, two steps of a small batch; memory estimated at the real batch
        memory.record_dry_run(model, config.batch_size, train.resolution, bool(config.ema))
        batch = min(batch, DRY_RUN_BATCH * world)
        steps = min(steps, 2)
        config = replace(config, epochs=1, low_res_epochs=0, milestones=tuple(m for m in config.milestones if m <= 1))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    augment = build_pipeline(config.augment)
    gen = torch.Generator().manual_seed(config.seed)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
           if config.ema else None)
    step_model = distributed.wrap(model, device) if world > 1 else model
    step_model = torch.compile(step_model) if config.compile else step_model
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, weights_only=True, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        gen.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        history, start_epoch, elapsed = state["history"], state["epoch"] + 1, state["elapsed"]
    images = train.images.to(device) if device.type == "cuda" else train.images
    labels = train.labels.to(device)

    governor = ThreadGovernor() if sharing.enabled() and device.type == "cpu" else None
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            side = config.side(epoch, train.resolution)
            model.train()
            perm = torch.randperm(n, generator=gen)
            total_loss, correct, seen = 0.0, 0, 0
            for s in range(steps):
                if governor is not None:
                    governor.step()
                idx = perm[s * batch:(s + 1) * batch]
                x = augment(images[idx.to(images.device)], gen, idx, epoch)
                y = labels[idx.to(labels.device)]
                if world > 1:  # every rank augments the global batch alike (one generator), then takes its share
                    x, y = x[rank::world], y[rank::world]
                with autocast(device, config.cpu_bf16):
                    logits = step_model(resized(to_input(x, device, config.channels_last), side))
                    loss = loss_fn(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                lr = opt.param_groups[0]["lr"]  # the rate this step used
                sched.step()
                if ema is not None:
                    ema.update_parameters(model)
                total_loss += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
            row = {"epoch": epoch + 1, "train_loss": total_loss / seen, "train_acc": correct / seen,
                   "lr": lr}
            elapsed += time.perf_counter() - t0
            if val is not None:
                row["val_acc"] = accuracy_of(ema.module if ema is not None else model, val, config, device)
            row["elapsed_s"] = elapsed
            history.append(row)
            if rank == 0:
                per_epoch = elapsed / (epoch + 1)
                val_text = f", val {row['val_acc']:.1%}" if "val_acc" in row else ""
                progress.say(f"{label}: epoch {epoch + 1}/{config.epochs}, loss {row['train_loss']:.3f}{val_text} "
                             f"({progress.minutes(elapsed)} in, ~{progress.minutes(per_epoch * (config.epochs - epoch - 1))}"
                             f" to go)")
            if checkpoint is not None and rank == 0:
                atomic_torch_save({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                   "scheduler": sched.state_dict(), "generator": gen.get_state(),
                                   **({"ema": ema.state_dict()} if ema is not None else {}),
                                   "torch_rng": torch.get_rng_state(), "history": history, "elapsed": elapsed},
                                  Path(checkpoint))
            if on_epoch_end is not None:
                on_epoch_end(row)
    finally:
        if governor is not None:  # also after an interrupt: the next governor must start from the full count
            governor.restore()
    if ema is not None:  # the averaged weights are the result
        model.load_state_dict(ema.module.state_dict())
    return history


def accuracy_of(model: nn.Module, data: ImageSet, config: TrainConfig, device: torch.device) -> float:
    """Accuracy of ``model`` on ``data`` as training tracks it (in the training's precision)."""
    logits = predict(model, data.images, config.eval_batch_size, device, config.channels_last, tta=config.tta,
                     bf16=config.cpu_bf16)
    return (logits.argmax(1) == data.labels).float().mean().item()


def weights_code(name: str, config: TrainConfig) -> tuple[str, ...]:
    """The modules whose meaning decides the weights of ``name`` trained with ``config``:
    ``cache.WEIGHTS`` and the modules that registered the model and its augmentations (a
    study's own augmentation or model counts, the rest of that study does not)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return tuple(dict.fromkeys((*WEIGHTS, *modules_of(MODELS[name], *used_functions(config.augment)))))


@dataclass
class Trained:
    """A trained model with its history, training wall time, the spec that keys it and the
    code whose meaning does (``weights_code``)."""

    model: nn.Module
    history: list[dict]
    train_s: float
    spec: dict
    cache: Cache = field(repr=False, default_factory=Cache)
    code: tuple[str, ...] = WEIGHTS

    @property
    def key(self) -> str:
        return spec_key("model", self.spec, self.code)

    def logits(self, data: ImageSet, split: str, bf16: bool = False) -> torch.Tensor:
        """Logits on a named split of the training data, cached next to the weights (keyed by
        the weights' key and ``predict``'s code); ``bf16``: see ``predict``."""
        spec = {"model": self.key, "split": split, "images": tensor_digest(data.images),
                **({"bf16": True} if bf16 else {})}
        tta = self.spec["train"].get("tta", False)
        return self.cache.get_or_compute("logits", {**spec, "tta": tta},
                                         lambda: predict(self.model, data.images, tta=tta, bf16=bf16),
                                         code=("core.train",))


def channel_stats(images: torch.Tensor, max_images: int = 10_000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units, from up to ``max_images`` evenly spaced images."""
    step = max(1, len(images) // max_images)
    x = images[::step].float().div_(255)
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()


def build_normalized(name: str, data: DataSplits, model_kwargs: dict, seed: int, whiten: bool = False) -> nn.Module:
    """``Normalize`` (train-set statistics) followed by a registered model, seeded; with
    ``whiten`` its ``whiten`` conv is set from 5,000 training images' patches."""
    torch.manual_seed(seed)
    body = build_model(name, data.num_classes, **model_kwargs)
    mean, std = channel_stats(data.train.images)
    model = nn.Sequential(Normalize(mean, std), body)
    if whiten:
        if not isinstance(getattr(body, "whiten", None), nn.Conv2d):
            raise ValueError(f"whiten=True needs a model with a `whiten` conv; {name!r} has none")
        sample = data.train.images[:: max(1, len(data.train) // 5000)]
        patch_whitening_(body.whiten, model[0](sample.float() / 255))
    return model


def processes() -> int:
    """Processes each training run uses: ``SIMPLECNN_NPROC`` (e.g. the machine's GPU count, so
    that ``SIMPLECNN_NPROC=8 make book PROFILE=paper`` trains every model on eight GPUs), else 1.
    Inside a torchrun rank it is 1: the launcher is already distributing."""
    if distributed.rank_and_world()[1] > 1 or os.environ.get("LOCAL_RANK") is not None:
        return 1
    value = os.environ.get("SIMPLECNN_NPROC", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SIMPLECNN_NPROC must be a whole number >= 1, got {value!r}")
    return int(value)


def train_model(name: str, data: DataSplits, config: TrainConfig, model_kwargs: dict | None = None,
                cache: Cache | None = None, device: torch.device | str | None = None,
                track_val: bool = True, nproc: int | None = None) -> Trained:
    """Train a registered model on ``data.train`` or take it from the cache.

    The cache key covers the model (name and arguments), the data spec, the training config
    (seed included), the device kind and the meaning of the code that trains it
    (``weights_code``): a docstring edit, or a change of metrics or plots, retrains nothing.
    Checkpoints go to the cache's scratch folder, so an interrupted call resumes;
    ``track_val`` records validation accuracy after each epoch. With ``nproc`` > 1 the
    training runs in ``nproc`` processes under torchrun (DistributedDataParallel, one GPU
    each on CUDA, gloo on the CPU) and lands in the same cache.
    """
    cache = cache or Cache()
    model_kwargs = dict(model_kwargs or {})
    device = resolve_device(device or "auto")
    nproc = nproc or processes()
    seen = {k: v for k, v in data.content().items() if k != "test" and (k != "val" or track_val)}
    spec = {"model": {"name": name, **model_kwargs}, "data": seen, "train": asdict(config),
            "device": device_key(device), **({"processes": nproc} if nproc > 1 else {}),
            **({"dry_run": True} if dry_run() else {})}
    code = weights_code(name, config) + (("core.ddp_job",) if nproc > 1 else ())
    model = build_normalized(name, data, model_kwargs, config.seed, config.whiten)
    hit = cache.load("model", spec, code)
    if hit is not None:
        model.load_state_dict(hit["state"])
        model.to(device)  # evaluation, attribution and timing stay on the training device
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        return Trained(model.eval(), hit["history"], hit["train_s"], spec, cache, code)
    label = describe(name, model_kwargs, config)
    progress.say(f"training {label} on {len(data.train):,} images, {config.epochs} epochs")
    if nproc > 1:
        distributed.launch(name, data, config, model_kwargs, spec, code, cache, device, nproc, track_val)
        trained = train_model(name, data, config, model_kwargs, cache, device, track_val, nproc)
        cache.computed_here("model", spec, code)  # trained by this run's workers, not loaded from an earlier run
        return trained
    with cache.computing() as cost:
        history = fit(model, data.train, config, data.val if track_val else None,
                      checkpoint=cache.scratch("model", spec, code) / "checkpoint.pt", device=device, label=label)
    train_s = history[-1]["elapsed_s"]
    cost["own_s"] = max(cost["own_s"], train_s)  # a resumed run's entry still records the whole training
    state = {k: v.cpu() for k, v in model.state_dict().items()}  # the model itself stays on its device
    cache.save("model", spec, {"state": state, "history": history, "train_s": train_s}, code, cost)
    return Trained(model.eval(), history, train_s, spec, cache, code)


def describe(name: str, model_kwargs: dict, config: TrainConfig) -> str:
    """A short name of a training run for progress lines: model, width or q, seed."""
    extra = [f"q={model_kwargs['q']}" for _ in [0] if "q" in model_kwargs]
    extra += [f"×{model_kwargs['width']:g}" for _ in [0] if isinstance(model_kwargs.get("width"), (int, float))]
    return " ".join([name, *extra, f"seed {config.seed}"])
