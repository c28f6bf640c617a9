"""One rank of a distributed training job: ``torchrun ... -m simplecnn.core.ddp_job JOB``.

``distributed.launch`` writes the job (data tensors, model, config, cache key) and starts
this module in every process; each rank builds the same model and trains it with
``train.fit`` (which wraps it in DistributedDataParallel), and rank 0 stores the weights in
the cache. Kept apart from ``distributed`` so that the training loop and the helpers it uses
import in one direction: ``train`` -> ``distributed``, and this entry point -> both.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

from simplecnn.core.cache import Cache
from simplecnn.core.train import build_normalized, fit


def _main(job_path: str) -> None:
    job = torch.load(job_path, weights_only=False)  # our own job file, written a moment ago by launch()
    cuda = job["device"] == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        rank = dist.get_rank()
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        config, data, cache = job["config"], job["data"], Cache(job["cache"])
        model = build_normalized(job["name"], data, job["model_kwargs"], config.seed, config.whiten)
        scratch = cache.scratch("model", job["spec"], job["code"]) / "checkpoint.pt"
        with cache.computing() as cost:
            history = fit(model, data.train, config, data.val if job["track_val"] else None,
                          checkpoint=scratch, device=device, label=f"{job['name']} ({dist.get_world_size()} processes)")
        if rank == 0:
            model.cpu()
            cache.save("model", job["spec"], {"state": model.state_dict(), "history": history,
                                              "train_s": history[-1]["elapsed_s"]}, job["code"], cost)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _main(sys.argv[1])
