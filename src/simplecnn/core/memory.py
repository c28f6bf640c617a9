"""Memory of a forward pass: counted activations, and measured peak of one training step.

Activations are counted with forward hooks (every leaf module's output, each storage once,
so in-place ReLUs are not counted twice). The peak of a training step is measured, not
estimated: on CUDA with the allocator's peak counter; on the CPU in a fresh subprocess,
as the growth of the resident set's high-water mark over the resident set before the step.
On Linux the mark is reset (``/proc/self/clear_refs``) just before the step, so earlier
peaks (imports, model construction) do not count; elsewhere the portable source is
``resource.getrusage`` (peak) and psutil (current), which can only over-estimate.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Callable, TypeVar

import psutil
import torch
from torch import nn

from simplecnn.core.paths import dry_run

T = TypeVar("T")


@torch.no_grad()
def layer_outputs(model: nn.Module, input_size: tuple[int, ...]) -> list[tuple[str, int]]:
    """(module name, values) of each leaf module's output for one input, each storage once."""
    seen: set[int] = set()
    alive: list[torch.Tensor] = []  # held so that a freed storage's address is not reused and skipped
    out: list[tuple[str, int]] = []

    def hook(name):
        def record(_module, _inputs, output):
            for t in output if isinstance(output, (tuple, list)) else [output]:
                if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in seen:
                    seen.add(t.untyped_storage().data_ptr())
                    alive.append(t)
                    out.append((name, t.numel()))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if not list(m.children())]
    try:
        device = next(model.parameters(), torch.empty(0)).device
        model.eval()(torch.zeros(1, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return out


def activation_bytes(model: nn.Module, input_size: tuple[int, ...], bytes_per_value: int = 4) -> int:
    """Sum of the outputs of all leaf modules for one input (batch 1), at ``bytes_per_value``."""
    return sum(n for _, n in layer_outputs(model, input_size)) * bytes_per_value


def _clear_refs() -> bool:
    """Reset the resident-set high-water mark where the kernel allows it (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _max_rss(was_reset: bool) -> int:
    """Peak resident set of this process in bytes: the kernel's reset high-water mark where
    ``_clear_refs`` worked, else ``getrusage`` (KiB on Linux, bytes on macOS; never reset)."""
    if was_reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def peak_bytes(fn: Callable[[], T], reset: Callable[[], bool] = _clear_refs) -> tuple[T, int]:
    """``fn()`` and the peak memory it added over what was in use when it started: the CUDA
    allocator's peak on a GPU, else the resident-set high-water mark (reset just before the
    call where possible, so earlier peaks do not count)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result = fn()
        torch.cuda.synchronize()
        return result, torch.cuda.max_memory_allocated() - base
    was_reset = reset()
    base = psutil.Process().memory_info().rss
    result = fn()
    return result, max(0, _max_rss(was_reset) - base)


def train_step_peak(model: nn.Module, batch: int, resolution: int, num_classes: int) -> int:
    """Peak bytes one SGD step (forward, backward, momentum update) adds, measured in-process.

    A warm-up step of one image on a throw-away copy comes first: a fresh process loads
    lazy modules and kernels on its first step (about 190 MB here), which is not the
    step's memory."""
    import copy
    warm = copy.deepcopy(model).train()
    warm_opt = torch.optim.SGD(warm.parameters(), lr=0.01, momentum=0.9)
    out = warm(torch.randn(1, 3, resolution, resolution))
    nn.functional.cross_entropy(out if isinstance(out, torch.Tensor) else out[0], torch.zeros(1, dtype=torch.long)).backward()
    warm_opt.step()
    del warm, warm_opt, out
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, resolution, resolution)
    y = torch.randint(0, num_classes, (batch,))
    if torch.cuda.is_available():
        model, x, y = model.cuda(), x.cuda(), y.cuda()

    def step() -> None:
        out = model(x)
        nn.functional.cross_entropy(out if isinstance(out, torch.Tensor) else out[0], y).backward()
        opt.step()
    return peak_bytes(step)[1]


# glibc raises its mmap threshold as large blocks are freed, after which freed pages stay
# resident and later allocations reuse them without growing the resident set; a fixed
# threshold maps every large tensor afresh, so the high-water mark follows the allocations.
ISOLATED_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def run_isolated(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -c code args…`` in a fresh interpreter with the allocator settings above."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **ISOLATED_ENV})


def measure_train_step_peak(builder: str, model_name: str, batch: int, resolution: int,
                            num_classes: int = 1000) -> int:
    """``train_step_peak`` in a fresh interpreter (nothing else in its memory) of the model
    that ``builder`` (``"package.module:function"``, called as ``function(name, classes)``)
    builds: core code measures any study's models without importing the study. In a dry
    run (which proves code paths, not numbers) it returns ``training_estimate`` instead.
    """
    module, function = builder.split(":")
    if dry_run():
        import importlib
        model = getattr(importlib.import_module(module), function)(model_name, num_classes)
        return training_estimate(model, batch, resolution)
    args = json.dumps([module, function, model_name, batch, resolution, num_classes])
    code = ("import importlib,json,sys; from simplecnn.core.memory import train_step_peak;"
            "m,f,n,b,r,c=json.loads(sys.argv[1]); build=getattr(importlib.import_module(m),f);"
            "print(json.dumps(train_step_peak(build(n,c),b,r,c)))")
    done = run_isolated(code, args)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {model_name} failed:\n{done.stderr[-2000:]}")
    return int(json.loads(done.stdout.strip().splitlines()[-1]))


DRY_RUN_ESTIMATES: list[dict] = []  # one per training loop of this process's dry run


def training_estimate(model: nn.Module, batch: int, resolution: int, ema: bool = False) -> int:
    """Bytes one training step at ``batch`` needs on an accelerator, estimated: weights,
    gradients and momentum (and an EMA copy) in fp32, plus every leaf module's output kept
    for the backward pass for ``batch`` images in fp32 (bf16 autocast roughly halves that
    part, so this errs high). Used by the dry run, which trains at a small batch."""
    params = sum(p.numel() for p in model.parameters()) * 4
    with torch.no_grad():
        was = model.training
        activations = activation_bytes(model, (3, resolution, resolution)) * batch
        model.train(was)
    return params * (4 if ema else 3) + activations


def record_dry_run(model: nn.Module, batch: int, resolution: int, ema: bool = False) -> None:
    """Remember a training loop's estimate (for the results' provenance in a dry run)."""
    DRY_RUN_ESTIMATES.append({"batch": batch, "resolution": resolution, "model_params": sum(
        p.numel() for p in model.parameters()), "estimate_bytes": training_estimate(model, batch, resolution, ema)})


def fake_pass(loop) -> dict:
    """``loop``'s model (a ``core.plan.Loop``) forward and backward at its real batch and
    resolution on the meta device (shapes and dtypes, no data, no arithmetic): a layer that
    does not fit the input raises here as it would on the accelerator. A model whose
    initialiser reads values (``trunc_normal_``'s rejection loop) is built on the CPU and moved.

    Returns the parameter count, the fp32 bytes of every leaf module's output kept for the
    backward pass (counted as ``layer_outputs`` counts them: an output sharing another's
    storage, an in-place ReLU or a view, once) and the training estimate of
    ``training_estimate`` (weights, gradients, momentum, EMA) at that batch."""
    try:
        with torch.device("meta"):  # no weights to initialise: VGG's take a second each on the CPU
            model = loop.build()
    except (NotImplementedError, RuntimeError):  # an initialiser that reads values (GoogLeNet's trunc_normal_)
        model = loop.build().to("meta")
    model.train(loop.trains)  # a loop that only counts or times runs in eval mode
    seen: set[int] = set()
    alive: list[torch.Tensor] = []  # held so that an id is not reused while counting
    total = [0]

    def record(_module, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else [output]:
            if isinstance(t, torch.Tensor):
                base = t._base if t._base is not None else t
                if id(base) not in seen:
                    seen.add(id(base))
                    alive.append(base)
                    total[0] += t.numel()

    handles = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    try:
        with torch.set_grad_enabled(loop.trains):
            out = model(torch.empty(loop.batch, 3, loop.resolution, loop.resolution, device="meta"))
        if loop.trains:
            (out if isinstance(out, torch.Tensor) else out[0]).float().sum().backward()
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    activations = total[0] * 4
    return {"params": params, "activation_bytes": activations,
            "estimate_bytes": params * 4 * (4 if loop.ema else 3) + activations}
