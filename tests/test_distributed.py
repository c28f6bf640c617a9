"""Training on several processes (DDP under torchrun, gloo on the CPU) gives the weights of
single-process training at the same global batch, to float tolerance."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from simplecnn.core.paths import ROOT



SCRIPT = '''
import sys
import torch
import torch.distributed as dist
from torch import nn
from simplecnn.core.data import ImageSet
from simplecnn.core.train import TrainConfig, fit

dist.init_process_group("gloo")
g = torch.Generator().manual_seed(0)
images = torch.randint(0, 255, (64, 3, 8, 8), dtype=torch.uint8, generator=g)
labels = torch.arange(64) % 3
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 36, 3))  # no batch norm: see the module
config = TrainConfig(epochs=2, batch_size=16, lr=0.05, augment=("crop", "flip"), channels_last=False, label_smoothing=0.0)
fit(model, ImageSet(images, labels, ["a", "b", "c"]), config)
if dist.get_rank() == 0:
    torch.save(model.state_dict(), sys.argv[1])
dist.destroy_process_group()
'''


def train(tmp_path, nproc: int) -> dict:
    script, out = tmp_path / "ddp_fit.py", tmp_path / f"weights-{nproc}.pt"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                           str(script), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out, weights_only=True)


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one(tmp_path):
    one, two = train(tmp_path, 1), train(tmp_path, 2)
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-5, rtol=1e-4), name
    assert any((one[n] != 0).any() for n in one)


@pytest.mark.slow
def test_train_model_with_two_processes_lands_in_the_cache(tmp_path):
    from conftest import separable_task

    from simplecnn.core.cache import Cache
    from simplecnn.core.train import TrainConfig, train_model
    data = separable_task(n=120, size=16)
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    cache = Cache(tmp_path / "cache")
    trained = train_model("cifar_resnet18", data, config, {"width": 0.125}, cache=cache, nproc=2)
    assert trained.spec["processes"] == 2 and len(trained.history) == 2
    assert cache.load("model", trained.spec, trained.code) is not None
    assert (trained.logits(data.test, "test").argmax(1) == data.test.labels).float().mean() > 0.6


def test_simplecnn_nproc_sets_the_processes_of_every_run(monkeypatch):
    from simplecnn.core.train import processes
    monkeypatch.delenv("SIMPLECNN_NPROC", raising=False)
    assert processes() == 1
    monkeypatch.setenv("SIMPLECNN_NPROC", "4")
    assert processes() == 4
    monkeypatch.setenv("LOCAL_RANK", "0")  # inside a torchrun rank: the launcher already distributes
    assert processes() == 1
    monkeypatch.delenv("LOCAL_RANK")
    monkeypatch.setenv("SIMPLECNN_NPROC", "two")
    with pytest.raises(ValueError, match="SIMPLECNN_NPROC"):
        processes()
