"""Training on several processes: DistributedDataParallel under torchrun.

``train_model(..., nproc=N)`` writes the job (data tensors, model, config) to a file and runs
``torchrun --standalone --nproc_per_node N -m simplecnn.core.ddp_job JOB``: each rank
builds the same model, ``fit`` wraps it in DDP and every rank augments the same global batch
(one seeded generator) and takes its share (rows ``rank::world``), so gradients average to
the single-process gradient of that batch; rank 0 alone writes checkpoints and the cache
entry, which the calling process then loads. On CUDA each rank takes one GPU
(``LOCAL_RANK``) and batch norm is synchronised across ranks; on the CPU (gloo, used by the
tests) batch norm stays per rank, since PyTorch's SyncBatchNorm is GPU-only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP around ``model`` (synchronised batch norm on CUDA)."""
    from torch.nn.parallel import DistributedDataParallel
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index or 0])
    return DistributedDataParallel(model)


def launch(name: str, data, config, model_kwargs: dict, spec: dict, code: tuple[str, ...], cache,
           device: torch.device, nproc: int, track_val: bool) -> None:
    """Train under torchrun with ``nproc`` processes; the result lands in ``cache`` under ``spec``."""
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.pt"
        torch.save({"name": name, "data": data, "config": config, "model_kwargs": model_kwargs, "spec": spec, "code": code,
                    "cache": str(cache.root), "device": device.type, "track_val": track_val}, job)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "simplecnn.core.ddp_job", str(job)]
        done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
        if done.returncode != 0:
            raise RuntimeError(f"distributed training failed (exit {done.returncode}): {' '.join(cmd)}")
