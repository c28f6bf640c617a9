"""Which device a run computes on, and how results name it.

``resolve_device("auto")`` picks CUDA, then Apple's MPS, then the CPU, so a chapter's
``device`` parameter works unchanged on a laptop, a GPU server or CI. The description
goes into results' provenance and into cache keys: weights trained on one device are
not silently reused as another's (kernels differ, so results do too).
"""

from __future__ import annotations

import os
import platform

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
_CHOSEN: list[str] = []  # the device a chapter chose with ``use_device`` (what "auto" means from then on)


def use_device(name: str = "auto") -> torch.device:
    """Make ``name`` the device that every later ``resolve_device("auto")`` returns: a
    chapter calls it once with its ``device`` parameter, and training, inference,
    attribution and timing all follow. Returns the resolved device (an unavailable one is
    an error naming the alternatives)."""
    device = resolve_device(name)
    _CHOSEN[:] = [] if str(name) == "auto" else [str(device)]
    return device


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> the chapter's chosen device (``use_device``), else the best available;
    an explicit name that is unavailable is an error."""
    if isinstance(name, torch.device):
        return name
    kind = str(name).split(":")[0]
    if kind not in DEVICES:
        raise ValueError(f"unknown device {name!r}; use one of {DEVICES} (optionally 'cuda:N')")
    if kind == "auto" and _CHOSEN:
        return torch.device(_CHOSEN[0])
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here; use device='auto' or 'cpu'")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asked for, but MPS is not available here; use device='auto' or 'cpu'")
    return torch.device(name)


def device_description(device: str | torch.device = "auto") -> str:
    """A human-readable name of the device (GPU model, or CPU and thread count)."""
    device = resolve_device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return f"mps: {platform.machine()}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {os.cpu_count()} cores"


def device_key(device: str | torch.device = "auto") -> str:
    """The part of a cache key that names the device: its kind and model, not its index."""
    device = resolve_device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type
